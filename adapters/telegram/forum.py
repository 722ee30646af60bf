"""Lesson threads as topics of a Telegram forum supergroup (the `ThreadHost` side of the adapter).

The Bot API has no message count for a topic, so `thread_stats` answers None. A closed topic still
takes the bot's own posts when the bot holds can_manage_topics.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from telegram import Bot, ChatFullInfo, ChatMemberAdministrator, LinkPreviewOptions
from telegram.constants import ChatMemberStatus, ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError

from adapters.telegram.group_budget import GroupBudget
from adapters.telegram.translate import chat_ref
from bot.discussion import CreatedThread
from bot.ports import PlatformError

log = logging.getLogger(__name__)

MAX_TOPIC_NAME = 128
NOT_MODIFIED = "topic_not_modified"
_GONE = ("chat not found", "bot was kicked", "bot is not a member", "chat_id is empty")

BotSource = Callable[[], Awaitable[Bot]]
Classify = Callable[[TelegramError, str], PlatformError]


def topic_url(chat_id: int, username: str | None, thread_id: int) -> str:
    """A t.me link to the topic: by the public @name, or the members-only /c/ form of a private group."""
    if username:
        return f"https://t.me/{username}/{thread_id}"
    internal = str(chat_id).removeprefix("-100")
    return f"https://t.me/c/{internal}/{thread_id}"


def missing_rights(chat: ChatFullInfo, status: str, admin: ChatMemberAdministrator | None) -> list[str]:
    """What the bot lacks to keep lesson topics in `chat`, each phrase completing "the bot needs ..."."""
    missing: list[str] = []
    if not chat.is_forum:
        missing.append("the chat to be a forum supergroup (turn Topics on in the group's settings)")
    if status == ChatMemberStatus.OWNER:
        return missing
    if admin is None:
        missing.append("to be an admin with can_manage_topics to create lesson topics (and can_pin_messages)")
        return missing
    if not admin.can_manage_topics:
        missing.append("the can_manage_topics admin right to create lesson topics")
    if not admin.can_pin_messages:
        missing.append("the can_pin_messages admin right to pin each topic's prompt")
    return missing


class ForumTopics:
    """Creates, posts in, closes and reopens lesson topics; failures raise the core's `PlatformError`s."""

    def __init__(self, bot: BotSource, classify: Classify, budget: GroupBudget) -> None:
        self._bot = bot
        self._classify = classify
        self._budget = budget
        self._identities: dict[str, tuple[int, str | None]] = {}

    async def create(self, chat_id: str, title: str) -> CreatedThread:
        bot = await self._bot()
        try:
            numeric_id, username = await self._identity(bot, chat_id)
            topic = await bot.create_forum_topic(chat_ref(chat_id), title[:MAX_TOPIC_NAME])
        except TelegramError as error:
            raise self._classify(error, chat_id) from error
        thread_id = topic.message_thread_id
        return CreatedThread(str(thread_id), topic_url(numeric_id, username, thread_id))

    async def post(self, chat_id: str, thread_id: str, text: str, *, pin: bool) -> str:
        bot = await self._bot()
        await self._budget.take(chat_id)
        try:
            message = await bot.send_message(
                chat_ref(chat_id),
                text,
                message_thread_id=int(thread_id),
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        except TelegramError as error:
            raise self._classify(error, chat_id) from error
        if pin:
            try:
                await bot.pin_chat_message(chat_ref(chat_id), message.message_id, disable_notification=True)
            except TelegramError as error:
                reason = self._classify(error, chat_id).reason
                log.warning("could not pin the prompt in topic %s of chat %s: %s", thread_id, chat_id, reason)
        return str(message.message_id)

    async def set_closed(self, chat_id: str, thread_id: str, closed: bool) -> None:
        bot = await self._bot()
        try:
            if closed:
                await bot.close_forum_topic(chat_ref(chat_id), int(thread_id))
            else:
                await bot.reopen_forum_topic(chat_ref(chat_id), int(thread_id))
        except BadRequest as error:
            if NOT_MODIFIED not in error.message.lower():
                raise self._classify(error, chat_id) from error
        except TelegramError as error:
            raise self._classify(error, chat_id) from error

    async def check_rights(self, chat_id: str) -> list[str]:
        bot = await self._bot()
        try:
            chat = await bot.get_chat(chat_ref(chat_id))
            member = await bot.get_chat_member(chat_ref(chat_id), bot.id)
        except (BadRequest, Forbidden) as error:
            if any(phrase in error.message.lower() for phrase in _GONE):
                return [f"to be added to the chat as an admin with can_manage_topics ({error.message})"]
            raise self._classify(error, chat_id) from error
        except TelegramError as error:
            raise self._classify(error, chat_id) from error
        self._identities[chat_id] = (chat.id, chat.username)
        admin = member if isinstance(member, ChatMemberAdministrator) else None
        return missing_rights(chat, member.status, admin)

    async def _identity(self, bot: Bot, chat_id: str) -> tuple[int, str | None]:
        """The chat's numeric id and public @name (None for a private group), asked once."""
        if chat_id not in self._identities:
            chat = await bot.get_chat(chat_ref(chat_id))
            self._identities[chat_id] = (chat.id, chat.username)
        return self._identities[chat_id]
