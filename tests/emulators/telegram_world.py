"""The emulated Telegram: bots, users, chats, forum topics, messages, polls and callback queries."""

from __future__ import annotations

import itertools
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from tests.emulators.telegram_api_errors import bad_request, chat_migrated, forbidden, not_found, unauthorized
from tests.emulators.telegram_users import TelegramUser

_TOKEN = re.compile(r"^(\d{1,20}):[A-Za-z0-9_-]{20,}$")


def bot_id_of(token: str) -> int | None:
    """The bot id a well-formed token starts with, or None for a malformed token."""
    match = _TOKEN.match(token)
    return int(match.group(1)) if match else None


@dataclass
class BotAccount:
    token: str
    id: int
    username: str
    first_name: str
    can_join_groups: bool = True
    can_read_all_group_messages: bool = False
    supports_inline_queries: bool = False
    logged_out: bool = False

    def user_json(self) -> dict[str, Any]:
        return {"id": self.id, "is_bot": True, "first_name": self.first_name, "username": self.username}

    def me_json(self) -> dict[str, Any]:
        return {
            **self.user_json(),
            "can_join_groups": self.can_join_groups,
            "can_read_all_group_messages": self.can_read_all_group_messages,
            "supports_inline_queries": self.supports_inline_queries,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }


@dataclass(frozen=True)
class AdminRights:
    """An administrator's rights in a group, as getChatMember reports them."""

    can_manage_chat: bool = True
    can_delete_messages: bool = True
    can_manage_video_chats: bool = False
    can_restrict_members: bool = False
    can_promote_members: bool = False
    can_change_info: bool = False
    can_invite_users: bool = True
    can_post_stories: bool = False
    can_edit_stories: bool = False
    can_delete_stories: bool = False
    can_pin_messages: bool = True
    can_manage_topics: bool = True
    is_anonymous: bool = False

    def member_json(self, user: dict[str, Any]) -> dict[str, Any]:
        return {"status": "administrator", "user": user, "can_be_edited": False, **asdict(self)}


@dataclass
class ForumTopic:
    message_thread_id: int
    name: str
    icon_color: int
    icon_custom_emoji_id: str | None = None
    closed: bool = False

    def to_json(self) -> dict[str, Any]:
        topic: dict[str, Any] = {
            "message_thread_id": self.message_thread_id,
            "name": self.name,
            "icon_color": self.icon_color,
        }
        if self.icon_custom_emoji_id:
            topic["icon_custom_emoji_id"] = self.icon_custom_emoji_id
        return topic


GENERAL_TOPIC_ID = 1


@dataclass
class Chat:
    id: int
    type: str
    title: str | None = None
    username: str | None = None
    user: TelegramUser | None = None
    is_forum: bool = False
    owner_id: int | None = None
    admin_ids: set[int] = field(default_factory=set)
    bot_rights: dict[int, AdminRights] = field(default_factory=dict)
    """bot id -> its administrator rights; a bot not listed is a plain member."""
    topics: dict[int, ForumTopic] = field(default_factory=dict)
    migrated_to: int | None = None
    description: str | None = None

    @property
    def is_private(self) -> bool:
        return self.type == "private"

    def to_json(self) -> dict[str, Any]:
        if self.user is not None:
            return self.user.private_chat_json()
        chat: dict[str, Any] = {"id": self.id, "type": self.type, "title": self.title or ""}
        if self.username:
            chat["username"] = self.username
        if self.is_forum:
            chat["is_forum"] = True
        return chat

    def full_info_json(self) -> dict[str, Any]:
        info = {
            **self.to_json(),
            "accent_color_id": self.id % 7,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }
        if self.description:
            info["description"] = self.description
        return info


@dataclass
class Dialog:
    """One bot's view of one chat: the shared message id sequence and the messages still there."""

    next_message_id: int = 1
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    blocked: bool = False
    """The user blocked this bot (private chats only)."""
    pinned: list[int] = field(default_factory=list)

    def allocate_message_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id


@dataclass
class StoredPoll:
    id: str
    bot_id: int
    chat_id: int
    message_id: int
    question: str
    options: list[str]
    type: str
    correct_option_ids: tuple[int, ...]
    explanation: str | None
    explanation_entities: tuple[dict[str, Any], ...]
    is_anonymous: bool
    allows_multiple_answers: bool
    is_closed: bool = False
    votes: dict[int, tuple[int, ...]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        counts = [0] * len(self.options)
        for chosen in self.votes.values():
            for index in chosen:
                counts[index] += 1
        poll: dict[str, Any] = {
            "id": self.id,
            "question": self.question,
            "options": [
                {"text": text, "voter_count": counts[index], "persistent_id": str(index)}
                for index, text in enumerate(self.options)
            ],
            "total_voter_count": sum(1 for chosen in self.votes.values() if chosen),
            "is_closed": self.is_closed,
            "is_anonymous": self.is_anonymous,
            "type": self.type,
            "allows_multiple_answers": self.allows_multiple_answers,
            "allows_revoting": self.type != "quiz",
            "members_only": False,
        }
        if self.type == "quiz":
            poll["correct_option_ids"] = list(self.correct_option_ids)
            if self.explanation:
                poll["explanation"] = self.explanation
                if self.explanation_entities:
                    poll["explanation_entities"] = list(self.explanation_entities)
        return poll


@dataclass
class PendingCallback:
    id: str
    bot_id: int
    user_id: int
    data: str
    answer: dict[str, Any] | None = None


class World:
    """Everything the emulated Telegram knows; chat lookups raise the errors Telegram would answer."""

    def __init__(self, *, strict_chats: bool) -> None:
        self.strict_chats = strict_chats
        self.bots: dict[str, BotAccount] = {}
        self.users: dict[int, TelegramUser] = {}
        self.chats: dict[int, Chat] = {}
        self.dialogs: dict[tuple[int, int], Dialog] = {}
        self.polls: dict[str, StoredPoll] = {}
        self.callbacks: dict[str, PendingCallback] = {}
        self.commands: dict[tuple[int, str, str], list[dict[str, str]]] = {}
        """(bot id, scope key, language code) -> commands, as setMyCommands stored them."""
        self._poll_ids = itertools.count(5_370_891_547_838_218_241)
        self._callback_ids = itertools.count(4_382_104_837_561_920_001)
        self._media_group_ids = itertools.count(13_579_246_800_000_001)

    def add_bot(self, token: str, username: str, first_name: str) -> BotAccount:
        bot_id = bot_id_of(token)
        if bot_id is None:
            raise ValueError(f"malformed bot token {token!r}: expected '<digits>:<20+ characters>'")
        bot = BotAccount(token=token, id=bot_id, username=username, first_name=first_name)
        self.bots[token] = bot
        return bot

    def authenticate(self, token: str, accept_any_token: bool) -> BotAccount:
        """The bot a token belongs to: 404 for a malformed token, 401 for an unknown or logged-out one."""
        bot = self.bots.get(token)
        if bot is None:
            bot_id = bot_id_of(token)
            if bot_id is None:
                raise not_found()
            if not accept_any_token:
                raise unauthorized()
            bot = self.add_bot(token, f"bot{bot_id}_bot", f"Bot {bot_id}")
        if bot.logged_out:
            raise unauthorized()
        return bot

    def add_user(self, user: TelegramUser) -> Chat:
        self.users[user.id] = user
        chat = self.chats.get(user.id)
        if chat is None or chat.user != user:
            chat = Chat(id=user.id, type="private", user=user)
            self.chats[user.id] = chat
        return chat

    def add_group(self, chat: Chat) -> Chat:
        self.chats[chat.id] = chat
        return chat

    def dialog(self, bot_id: int, chat_id: int) -> Dialog:
        key = (bot_id, chat_id)
        dialog = self.dialogs.get(key)
        if dialog is None:
            dialog = self.dialogs[key] = Dialog()
        return dialog

    def find_chat(self, chat_id: int | str) -> Chat | None:
        if isinstance(chat_id, str):
            name = chat_id.removeprefix("@").lower()
            return next(
                (
                    chat
                    for chat in self.chats.values()
                    if not chat.is_private and (chat.username or "").lower() == name
                ),
                None,
            )
        chat = self.chats.get(chat_id)
        if chat is None and not self.strict_chats and chat_id != 0:
            chat = self._implicit_chat(chat_id)
        return chat

    def _implicit_chat(self, chat_id: int) -> Chat:
        """Without strict chats, any positive id is a user who started the bot and any negative a group."""
        if chat_id > 0:
            return self.add_user(TelegramUser(id=chat_id, first_name=f"User {chat_id}", language_code=None))
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        return self.add_group(Chat(id=chat_id, type=kind, title=f"Group {chat_id}"))

    def target_chat(self, bot: BotAccount, chat_id: int | str) -> Chat:
        """The chat a bot addresses, or the 400/403 Telegram answers (not found, migrated, blocked)."""
        chat = self.find_chat(chat_id)
        if chat is None:
            raise bad_request("chat not found")
        if chat.migrated_to is not None:
            raise chat_migrated(chat.migrated_to)
        if chat.is_private and self.dialog(bot.id, chat.id).blocked:
            raise forbidden("bot was blocked by the user")
        return chat

    def next_poll_id(self) -> str:
        return str(next(self._poll_ids))

    def next_callback_id(self) -> str:
        return str(next(self._callback_ids))

    def next_media_group_id(self) -> str:
        return str(next(self._media_group_ids))
