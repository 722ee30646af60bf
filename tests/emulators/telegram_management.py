"""Bot API methods about the bot itself, its updates, commands, chats, forum topics and files."""

from __future__ import annotations

import re
from typing import Any

from tests.emulators.telegram_api_errors import bad_request
from tests.emulators.telegram_backend import Answer, Backend, Handler
from tests.emulators.telegram_params import Params
from tests.emulators.telegram_updates import WebhookConfig
from tests.emulators.telegram_world import GENERAL_TOPIC_ID, AdminRights, BotAccount, Chat, ForumTopic

MAX_COMMANDS = 100
MAX_TOPIC_NAME = 128
TOPIC_ICON_COLORS = (0x6FB9F0, 0xFFD67E, 0xCB86DB, 0x8EEE98, 0xFF93B2, 0xFB6F5F)
_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")
_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_SCOPES_WITH_CHAT = ("chat", "chat_administrators", "chat_member")
_SCOPES = ("default", "all_private_chats", "all_group_chats", "all_chat_administrators", *_SCOPES_WITH_CHAT)


class ManagementMethods:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.world = backend.world

    def handlers(self) -> dict[str, Handler]:
        return {
            "getMe": self.get_me,
            "getUpdates": self.get_updates,
            "setWebhook": self.set_webhook,
            "deleteWebhook": self.delete_webhook,
            "getWebhookInfo": self.get_webhook_info,
            "setMyCommands": self.set_my_commands,
            "getMyCommands": self.get_my_commands,
            "deleteMyCommands": self.delete_my_commands,
            "getChat": self.get_chat,
            "getChatMember": self.get_chat_member,
            "getChatAdministrators": self.get_chat_administrators,
            "createForumTopic": self.create_forum_topic,
            "editForumTopic": self.edit_forum_topic,
            "closeForumTopic": self.close_forum_topic,
            "reopenForumTopic": self.reopen_forum_topic,
            "getFile": self.get_file,
            "close": self.close,
            "logOut": self.log_out,
        }

    async def get_me(self, bot: BotAccount, params: Params) -> dict[str, Any]:
        return bot.me_json()

    async def get_updates(self, bot: BotAccount, params: Params) -> list[dict[str, Any]]:
        queue = self.backend.queue(bot.id)
        limit = params.integer("limit") or 100
        if not 1 <= limit <= 100:
            limit = 100
        queue.set_allowed(params.structured("allowed_updates"))
        return await queue.poll(params.integer("offset"), limit, params.seconds("timeout") or 0.0)

    async def set_webhook(self, bot: BotAccount, params: Params) -> Answer:
        url = (params.text("url") or "").strip()
        queue = self.backend.queue(bot.id)
        if not url:
            return await self.delete_webhook(bot, params)
        if not url.startswith(("http://", "https://")):
            raise bad_request("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
        secret = params.text("secret_token")
        if secret is not None and not _SECRET_TOKEN.match(secret):
            raise bad_request("secret token contains unallowed characters")
        max_connections = params.integer("max_connections") or 40
        if not 1 <= max_connections <= 100:
            raise bad_request("bad webhook: max_connections must be between 1 and 100")
        if params.flag("drop_pending_updates"):
            queue.drop_pending()
        queue.set_allowed(params.structured("allowed_updates"))
        unchanged = (
            queue.webhook is not None and queue.webhook.url == url and queue.webhook.secret_token == secret
        )
        queue.webhook = WebhookConfig(url=url, secret_token=secret, max_connections=max_connections)
        queue.wake()
        self.backend.on_webhook_change(bot)
        await self.backend.record_action("setWebhook", bot, params, True)
        return Answer(True, "Webhook is already set" if unchanged else "Webhook was set")

    async def delete_webhook(self, bot: BotAccount, params: Params) -> Answer:
        queue = self.backend.queue(bot.id)
        was_set = queue.webhook is not None
        queue.webhook = None
        if params.flag("drop_pending_updates"):
            queue.drop_pending()
        queue.wake()
        self.backend.on_webhook_change(bot)
        await self.backend.record_action("deleteWebhook", bot, params, True)
        return Answer(True, "Webhook was deleted" if was_set else "Webhook is already deleted")

    async def get_webhook_info(self, bot: BotAccount, params: Params) -> dict[str, Any]:
        queue = self.backend.queue(bot.id)
        webhook = queue.webhook
        info: dict[str, Any] = {
            "url": webhook.url if webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(queue.pending),
        }
        if webhook is not None:
            info["max_connections"] = webhook.max_connections
            if webhook.last_error_date is not None:
                info["last_error_date"] = webhook.last_error_date
                info["last_error_message"] = webhook.last_error_message
            if queue.allowed_named:
                info["allowed_updates"] = queue.allowed_named
        return info

    def _scope_key(self, bot: BotAccount, params: Params) -> str:
        scope = params.structured("scope") or {"type": "default"}
        if not isinstance(scope, dict) or scope.get("type") not in _SCOPES:
            raise bad_request("can't parse BotCommandScope")
        kind = str(scope["type"])
        if kind not in _SCOPES_WITH_CHAT:
            return kind
        chat_id = scope.get("chat_id")
        if chat_id is None:
            raise bad_request("can't parse BotCommandScope: chat_id is empty")
        chat = self.world.target_chat(bot, chat_id if isinstance(chat_id, int) else _as_chat_id(chat_id))
        if kind == "chat_member":
            if not isinstance(scope.get("user_id"), int):
                raise bad_request("can't parse BotCommandScope: user_id is empty")
            return f"chat_member:{chat.id}:{scope['user_id']}"
        return f"{kind}:{chat.id}"

    def _language(self, params: Params) -> str:
        language = params.text("language_code") or ""
        if language and not re.match(r"^[a-z]{2}$", language):
            raise bad_request("invalid language code specified")
        return language

    async def set_my_commands(self, bot: BotAccount, params: Params) -> bool:
        commands = params.structured("commands")
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        if len(commands) > MAX_COMMANDS:
            raise bad_request("too much commands")
        checked = []
        for command in commands:
            if not isinstance(command, dict):
                raise bad_request("can't parse BotCommand")
            name, description = command.get("command"), command.get("description")
            if not isinstance(name, str) or not _COMMAND.match(name.removeprefix("/")):
                raise bad_request("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
                raise bad_request(
                    "command description is empty" if not description else "BOT_COMMAND_DESCRIPTION_INVALID"
                )
            checked.append({"command": name.removeprefix("/"), "description": description})
        key = (bot.id, self._scope_key(bot, params), self._language(params))
        if checked:
            self.world.commands[key] = checked
        else:
            self.world.commands.pop(key, None)
        await self.backend.record_action("setMyCommands", bot, params, True)
        return True

    async def get_my_commands(self, bot: BotAccount, params: Params) -> list[dict[str, str]]:
        key = (bot.id, self._scope_key(bot, params), self._language(params))
        return list(self.world.commands.get(key, []))

    async def delete_my_commands(self, bot: BotAccount, params: Params) -> bool:
        key = (bot.id, self._scope_key(bot, params), self._language(params))
        self.world.commands.pop(key, None)
        await self.backend.record_action("deleteMyCommands", bot, params, True)
        return True

    async def get_chat(self, bot: BotAccount, params: Params) -> dict[str, Any]:
        return self.world.target_chat(bot, params.chat_id()).full_info_json()

    def _member(self, bot: BotAccount, chat: Chat, user_id: int) -> dict[str, Any]:
        if user_id == bot.id:
            rights = chat.bot_rights.get(bot.id)
            user = bot.user_json()
            return (
                rights.member_json(user)
                if rights and not chat.is_private
                else {"status": "member", "user": user}
            )
        user_model = self.world.users.get(user_id)
        user = (
            user_model.to_json()
            if user_model
            else {"id": user_id, "is_bot": False, "first_name": f"User {user_id}"}
        )
        if chat.owner_id == user_id:
            return {"status": "creator", "user": user, "is_anonymous": False}
        if user_id in chat.admin_ids:
            return AdminRights(
                can_change_info=True, can_promote_members=True, can_restrict_members=True
            ).member_json(user)
        return {"status": "member", "user": user}

    async def get_chat_member(self, bot: BotAccount, params: Params) -> dict[str, Any]:
        chat = self.world.target_chat(bot, params.chat_id())
        user_id = params.integer("user_id")
        if user_id is None:
            raise bad_request("user_id is empty")
        if user_id != bot.id and user_id not in self.world.users and self.world.strict_chats:
            raise bad_request("user not found")
        return self._member(bot, chat, user_id)

    async def get_chat_administrators(self, bot: BotAccount, params: Params) -> list[dict[str, Any]]:
        chat = self.world.target_chat(bot, params.chat_id())
        if chat.is_private:
            raise bad_request("there are no administrators in the private chat")
        ids = ([chat.owner_id] if chat.owner_id is not None else []) + sorted(
            chat.admin_ids - {chat.owner_id}
        )
        if bot.id in chat.bot_rights:
            ids.append(bot.id)
        return [self._member(bot, chat, user_id) for user_id in ids]

    def _forum(self, bot: BotAccount, params: Params) -> Chat:
        chat = self.world.target_chat(bot, params.chat_id())
        if not chat.is_forum:
            raise bad_request("the chat is not a forum")
        rights = chat.bot_rights.get(bot.id)
        if rights is None or not rights.can_manage_topics:
            raise bad_request("not enough rights to create a topic")
        return chat

    def _topic(self, chat: Chat, params: Params) -> ForumTopic:
        topic = chat.topics.get(params.integer("message_thread_id") or 0)
        if topic is None:
            raise bad_request("message thread not found")
        return topic

    def _topic_name(self, params: Params, required: bool) -> str | None:
        name = params.text("name")
        if name is None and not required:
            return None
        if not name or not name.strip() or len(name) > MAX_TOPIC_NAME:
            raise bad_request("TOPIC_TITLE_EMPTY" if not (name or "").strip() else "TOPIC_TITLE_INVALID")
        return name

    async def create_forum_topic(self, bot: BotAccount, params: Params) -> dict[str, Any]:
        chat = self._forum(bot, params)
        name = self._topic_name(params, required=True) or ""
        color = params.integer("icon_color")
        if color is not None and color not in TOPIC_ICON_COLORS:
            raise bad_request("invalid icon color specified")
        dialog = self.world.dialog(bot.id, chat.id)
        dialog.next_message_id = max(dialog.next_message_id, GENERAL_TOPIC_ID + 1)
        thread_id = dialog.allocate_message_id()
        topic = ForumTopic(
            message_thread_id=thread_id,
            name=name,
            icon_color=color if color is not None else TOPIC_ICON_COLORS[thread_id % len(TOPIC_ICON_COLORS)],
            icon_custom_emoji_id=params.text("icon_custom_emoji_id"),
        )
        chat.topics[thread_id] = topic
        result = topic.to_json()
        await self.backend.record_action("createForumTopic", bot, params, result, chat_id=chat.id)
        return result

    async def edit_forum_topic(self, bot: BotAccount, params: Params) -> bool:
        chat = self._forum(bot, params)
        topic = self._topic(chat, params)
        name = self._topic_name(params, required=False)
        emoji = params.text("icon_custom_emoji_id")
        if (name is None or name == topic.name) and (emoji is None or emoji == topic.icon_custom_emoji_id):
            raise bad_request("TOPIC_NOT_MODIFIED")
        if name is not None:
            topic.name = name
        if emoji is not None:
            topic.icon_custom_emoji_id = emoji or None
        await self.backend.record_action("editForumTopic", bot, params, True, chat_id=chat.id)
        return True

    async def _set_closed(self, method: str, bot: BotAccount, params: Params, closed: bool) -> bool:
        chat = self._forum(bot, params)
        topic = self._topic(chat, params)
        if topic.closed == closed:
            raise bad_request("TOPIC_NOT_MODIFIED")
        topic.closed = closed
        await self.backend.record_action(method, bot, params, True, chat_id=chat.id)
        return True

    async def close_forum_topic(self, bot: BotAccount, params: Params) -> bool:
        return await self._set_closed("closeForumTopic", bot, params, True)

    async def reopen_forum_topic(self, bot: BotAccount, params: Params) -> bool:
        return await self._set_closed("reopenForumTopic", bot, params, False)

    async def get_file(self, bot: BotAccount, params: Params) -> dict[str, Any]:
        file_id = params.text("file_id") or ""
        stored = self.backend.files.file(bot.id, file_id)
        if stored is None:
            raise bad_request("invalid file_id" if file_id else "file_id is empty")
        if stored.size > 20 * 1024 * 1024:
            raise bad_request("file is too big")
        return stored.file_json()

    async def close(self, bot: BotAccount, params: Params) -> bool:
        await self.backend.record_action("close", bot, params, True)
        return True

    async def log_out(self, bot: BotAccount, params: Params) -> bool:
        bot.logged_out = True
        await self.backend.record_action("logOut", bot, params, True)
        return True


def _as_chat_id(value: Any) -> int | str:
    text = str(value)
    if text.startswith("@"):
        return text
    try:
        return int(text)
    except ValueError:
        raise bad_request("chat not found") from None
