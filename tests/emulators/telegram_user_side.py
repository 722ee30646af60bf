"""The users' side of the emulated Telegram: what people do in chats, delivered to bots as updates.

Messages get ids from the chat's sequence (shared with the bot's messages), dates in whole seconds and a
`from` user with `is_bot: false`; a private chat's id is the user's id. Each action returns the Update
it queued, or None when the bot's allowed_updates exclude it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from tests.emulators.telegram_backend import Backend
from tests.emulators.telegram_updates import UpdateQueue
from tests.emulators.telegram_users import TelegramUser, user_message
from tests.emulators.telegram_world import BotAccount, Chat, PendingCallback, World


class UserSide:
    """Simulated Telegram users acting in private chats and groups; `bot` picks a bot by its token."""

    def __init__(
        self, *, world: World, backend: Backend, wall_clock: Callable[[], float], primary_bot: BotAccount
    ) -> None:
        self._world = world
        self._backend = backend
        self._wall_clock = wall_clock
        self.bot = primary_bot

    def user_sends_text(
        self,
        user: TelegramUser,
        text: str,
        *,
        chat_id: int | None = None,
        message_thread_id: int | None = None,
        bot: str | None = None,
    ) -> dict[str, Any] | None:
        """The user writes `text` in the private chat (or the group `chat_id`); returns the Update."""
        return self._user_message(user, chat_id, bot, text=text, message_thread_id=message_thread_id)

    def user_sends_command(
        self,
        user: TelegramUser,
        command: str,
        payload: str | None = None,
        *,
        chat_id: int | None = None,
        mention: bool | None = None,
        message_thread_id: int | None = None,
        bot: str | None = None,
    ) -> dict[str, Any] | None:
        """`/start payload` as a deep link sends it; in groups the command names the bot (`/cmd@bot`)."""
        account = self._bot(bot)
        in_group = chat_id is not None and chat_id < 0
        name = command if command.startswith("/") else f"/{command}"
        if mention if mention is not None else in_group:
            name = f"{name}@{account.username}"
        text = f"{name} {payload}" if payload else name
        return self._user_message(user, chat_id, bot, text=text, message_thread_id=message_thread_id)

    def group_message(
        self,
        chat_id: int,
        user: TelegramUser,
        text: str,
        *,
        message_thread_id: int | None = None,
        bot: str | None = None,
    ) -> dict[str, Any] | None:
        return self._user_message(user, chat_id, bot, text=text, message_thread_id=message_thread_id)

    def user_shares_location(
        self, user: TelegramUser, latitude: float, longitude: float, *, bot: str | None = None
    ) -> dict[str, Any] | None:
        return self._user_message(user, None, bot, location={"latitude": latitude, "longitude": longitude})

    def user_presses_button(
        self,
        user: TelegramUser,
        message_id: int,
        callback_data: str,
        *,
        chat_id: int | None = None,
        bot: str | None = None,
    ) -> dict[str, Any] | None:
        """The user presses an inline button of a bot message; ValueError if it has no such button."""
        account = self._bot(bot)
        self._world.add_user(user)
        target = chat_id if chat_id is not None else user.id
        message = self._world.dialog(account.id, target).messages.get(message_id)
        if message is None:
            raise ValueError(f"chat {target} has no message {message_id}")
        rows = message.get("reply_markup", {}).get("inline_keyboard", [])
        offered = [button.get("callback_data") for row in rows for button in row]
        if callback_data not in offered:
            raise ValueError(
                f"message {message_id} has no button with callback_data {callback_data!r}: {offered}"
            )
        query_id = self._world.next_callback_id()
        self._world.callbacks[query_id] = PendingCallback(query_id, account.id, user.id, callback_data)
        payload = {
            "id": query_id,
            "from": user.to_json(),
            "message": message,
            "chat_instance": str((account.id * 1_000_003 + target) % (1 << 62)),
            "data": callback_data,
        }
        return self._queue(bot).push("callback_query", payload)

    def user_answers_poll(
        self, user: TelegramUser, poll_id: str, option_ids: Iterable[int], *, bot: str | None = None
    ) -> dict[str, Any] | None:
        """The user votes; a non-anonymous poll gives a poll_answer update (the returned one)."""
        account = self._bot(bot)
        self._world.add_user(user)
        poll = self._world.polls.get(poll_id)
        if poll is None or poll.bot_id != account.id:
            raise ValueError(f"bot {account.id} sent no poll {poll_id}")
        chosen = tuple(option_ids)
        if poll.is_closed:
            raise ValueError(f"poll {poll_id} is closed")
        if any(not 0 <= index < len(poll.options) for index in chosen) or len(set(chosen)) != len(chosen):
            raise ValueError(f"poll {poll_id} has no options {chosen}")
        if len(chosen) > 1 and not poll.allows_multiple_answers:
            raise ValueError(f"poll {poll_id} takes one answer")
        if poll.type == "quiz" and user.id in poll.votes:
            raise ValueError("a quiz answer cannot be changed")
        if chosen:
            poll.votes[user.id] = chosen
        else:
            poll.votes.pop(user.id, None)
        stored = self._world.dialog(account.id, poll.chat_id).messages.get(poll.message_id)
        if stored is not None:
            stored["poll"] = poll.to_json()
        queue = self._queue(bot)
        answer = None
        if not poll.is_anonymous:
            answer = queue.push(
                "poll_answer",
                {
                    "poll_id": poll.id,
                    "user": user.to_json(),
                    "option_ids": list(chosen),
                    "option_persistent_ids": [str(index) for index in chosen],
                },
            )
        state = queue.push("poll", poll.to_json())
        return answer if not poll.is_anonymous else state

    def user_deletes_message(self, user_id: int, message_id: int, *, bot: str | None = None) -> None:
        """The user deletes a bot message in their private chat for both sides (bots get no update)."""
        dialog = self._world.dialog(self._bot(bot).id, user_id)
        if dialog.messages.pop(message_id, None) is None:
            raise ValueError(f"chat {user_id} has no message {message_id}")

    def block_bot(self, user_id: int, *, bot: str | None = None) -> None:
        """The user blocks the bot: sends answer 403 and the bot gets a my_chat_member update."""
        self._set_blocked(user_id, True, bot)

    def unblock_bot(self, user_id: int, *, bot: str | None = None) -> None:
        self._set_blocked(user_id, False, bot)

    def migrate_group(self, old_chat_id: int, new_chat_id: int) -> Chat:
        """Upgrade a group to a supergroup: later calls to the old id answer "migrated"."""
        old = self._group(old_chat_id)
        new = Chat(
            id=new_chat_id,
            type="supergroup",
            title=old.title,
            owner_id=old.owner_id,
            admin_ids=set(old.admin_ids),
            bot_rights=dict(old.bot_rights),
        )
        old.migrated_to = new_chat_id
        self._world.add_group(new)
        bots = {bot_id for bot_id, chat_id in self._world.dialogs if chat_id == old_chat_id} or {self.bot.id}
        for account in self._world.bots.values():
            if account.id in bots:
                self._service_message(account, old, migrate_to_chat_id=new_chat_id)
                self._service_message(account, new, migrate_from_chat_id=old_chat_id)
        return new

    def _bot(self, token: str | None) -> BotAccount:
        if token is None:
            return self.bot
        bot = self._world.bots.get(token)
        if bot is None:
            raise ValueError(f"unknown bot token {token!r}")
        return bot

    def _queue(self, token: str | None) -> UpdateQueue:
        return self._backend.queue(self._bot(token).id)

    def _group(self, chat_id: int) -> Chat:
        chat = self._world.find_chat(chat_id)
        if chat is None or chat.is_private:
            raise ValueError(f"no group {chat_id}; add it with add_group()")
        return chat

    def _user_message(
        self,
        user: TelegramUser,
        chat_id: int | None,
        bot: str | None,
        *,
        text: str | None = None,
        message_thread_id: int | None = None,
        **content: Any,
    ) -> dict[str, Any] | None:
        account = self._bot(bot)
        self._world.add_user(user)
        if chat_id is None or chat_id == user.id:
            chat = self._world.chats[user.id]
            if self._world.dialog(account.id, user.id).blocked:
                self._set_blocked(user.id, False, bot)
        else:
            chat = self._group(chat_id)
        dialog = self._world.dialog(account.id, chat.id)
        message = user_message(
            message_id=dialog.allocate_message_id(),
            date=int(self._wall_clock()),
            user=user,
            chat=chat.to_json(),
            text=text,
            message_thread_id=message_thread_id,
            **content,
        )
        dialog.messages[message["message_id"]] = message
        return self._queue(bot).push("message", message)

    def _set_blocked(self, user_id: int, blocked: bool, token: str | None) -> None:
        account = self._bot(token)
        chat = self._world.find_chat(user_id)
        if chat is None or not chat.is_private or chat.user is None:
            raise ValueError(f"no user {user_id}")
        dialog = self._world.dialog(account.id, user_id)
        if dialog.blocked == blocked:
            return
        dialog.blocked = blocked
        bot_user = account.user_json()
        statuses = (
            {"status": "member", "user": bot_user},
            {"status": "kicked", "user": bot_user, "until_date": 0},
        )
        old, new = statuses if blocked else statuses[::-1]
        self._queue(token).push(
            "my_chat_member",
            {
                "chat": chat.to_json(),
                "from": chat.user.to_json(),
                "date": int(self._wall_clock()),
                "old_chat_member": old,
                "new_chat_member": new,
            },
        )

    def _service_message(self, bot: BotAccount, chat: Chat, **content: Any) -> None:
        dialog = self._world.dialog(bot.id, chat.id)
        message: dict[str, Any] = {
            "message_id": dialog.allocate_message_id(),
            "chat": chat.to_json(),
            "date": int(self._wall_clock()),
            **content,
        }
        owner = self._world.users.get(chat.owner_id) if chat.owner_id is not None else None
        if owner is not None:
            message["from"] = owner.to_json()
        dialog.messages[message["message_id"]] = message
        self._backend.queue(bot.id).push("message", message)
