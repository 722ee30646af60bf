"""What every Bot API method handler shares: the world, files, updates, flood limits and the journal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tests.emulators.telegram_api_errors import ApiError, bad_request, too_many_requests
from tests.emulators.telegram_files import FileStore, UrlFetcher
from tests.emulators.telegram_limits import SendBudget
from tests.emulators.telegram_markup import EntityParseError, FormattedText, UnsupportedParseMode, format_text
from tests.emulators.telegram_params import Params
from tests.emulators.telegram_records import ActionRecord, Journal, PollRecord, SentRecord
from tests.emulators.telegram_updates import UpdateQueue
from tests.emulators.telegram_world import GENERAL_TOPIC_ID, BotAccount, Chat, World


@dataclass(frozen=True)
class Answer:
    """A method result with the optional `description` Telegram adds to some successes."""

    result: Any
    description: str | None = None


Handler = Callable[[BotAccount, Params], Awaitable[Any]]


class Backend:
    def __init__(
        self,
        *,
        world: World,
        files: FileStore,
        journal: Journal,
        budget: SendBudget,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
        fetch_url: UrlFetcher,
        on_webhook_change: Callable[[BotAccount], None],
    ) -> None:
        self.world = world
        self.files = files
        self.journal = journal
        self.budget = budget
        self.clock = clock
        self.wall_clock = wall_clock
        self.fetch_url = fetch_url
        self.on_webhook_change = on_webhook_change
        self.queues: dict[int, UpdateQueue] = {}

    def queue(self, bot_id: int) -> UpdateQueue:
        queue = self.queues.get(bot_id)
        if queue is None:
            queue = self.queues[bot_id] = UpdateQueue()
        return queue

    def unix_now(self) -> int:
        return int(self.wall_clock())

    def admit(self, bot: BotAccount, chat: Chat, params: Params) -> bool:
        """Take the flood budget for one send or raise 429; True when it drew on paid broadcasts."""
        paid = params.flag("allow_paid_broadcast")
        retry_after = self.budget.admit(bot.id, chat.id, paid=paid)
        if retry_after is not None:
            raise too_many_requests(retry_after)
        return paid

    def formatted(
        self,
        text: str,
        parse_mode: str | None,
        entities: Any,
        *,
        limit: int,
        too_long: str,
        field: str = "text",
    ) -> FormattedText:
        """Parse text in its parse_mode and check its length in code points, as Telegram does."""
        try:
            formatted = format_text(text, parse_mode, entities if isinstance(entities, list) else None)
        except UnsupportedParseMode:
            raise bad_request("unsupported parse_mode") from None
        except EntityParseError as error:
            where = "" if field == "text" else f" in {field}"
            raise bad_request(f"can't parse entities{where}: {error}") from None
        if len(formatted.text) > limit:
            raise bad_request(too_long)
        return formatted

    def thread_id(self, chat: Chat, params: Params, bot: BotAccount) -> int | None:
        """The topic a send goes to; unknown topics are refused, closed ones unless the bot manages topics."""
        thread_id = params.integer("message_thread_id")
        if thread_id is None:
            return None
        if not chat.is_forum:
            raise bad_request("message thread not found")
        if thread_id == GENERAL_TOPIC_ID:
            return thread_id
        topic = chat.topics.get(thread_id)
        if topic is None:
            raise bad_request("message thread not found")
        rights = chat.bot_rights.get(bot.id)
        if topic.closed and not (rights and rights.can_manage_topics):
            raise bad_request("TOPIC_CLOSED")
        return thread_id

    def reply_to(self, bot: BotAccount, chat: Chat, params: Params) -> dict[str, Any] | None:
        reply = params.structured("reply_parameters")
        message_id = params.integer("reply_to_message_id")
        allow_missing = params.flag("allow_sending_without_reply")
        if isinstance(reply, dict):
            message_id = reply.get("message_id", message_id)
            allow_missing = bool(reply.get("allow_sending_without_reply", allow_missing))
        if message_id is None:
            return None
        original = self.world.dialog(bot.id, chat.id).messages.get(int(message_id))
        if original is None and not allow_missing:
            raise bad_request("message to be replied not found")
        return original

    def bot_message(
        self,
        bot: BotAccount,
        chat: Chat,
        *,
        thread_id: int | None,
        reply_to: dict[str, Any] | None,
        content: dict[str, Any],
        message_id: int | None = None,
    ) -> dict[str, Any]:
        """A new message from the bot, stored in its dialog with the chat."""
        dialog = self.world.dialog(bot.id, chat.id)
        message_id = message_id if message_id is not None else dialog.allocate_message_id()
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": bot.user_json(),
            "chat": chat.to_json(),
            "date": self.unix_now(),
        }
        if thread_id is not None and thread_id != GENERAL_TOPIC_ID:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        if reply_to is not None:
            message["reply_to_message"] = {
                key: value for key, value in reply_to.items() if key != "reply_to_message"
            }
        message.update(content)
        dialog.messages[message_id] = message
        return message

    async def record_sent(
        self,
        method: str,
        bot: BotAccount,
        chat: Chat,
        message: dict[str, Any],
        params: Params,
        *,
        paid: bool,
        media_kind: str | None = None,
        file_ids: tuple[str, ...] = (),
    ) -> SentRecord:
        poll_json = message.get("poll")
        poll = None
        if poll_json is not None:
            correct = tuple(poll_json.get("correct_option_ids", ()))
            poll = PollRecord(
                id=poll_json["id"],
                question=poll_json["question"],
                options=tuple(option["text"] for option in poll_json["options"]),
                type=poll_json["type"],
                correct_option_id=correct[0] if correct else None,
                correct_option_ids=correct,
                explanation=poll_json.get("explanation"),
                is_anonymous=poll_json["is_anonymous"],
                allows_multiple_answers=poll_json["allows_multiple_answers"],
            )
        record = SentRecord(
            method=method,
            bot_id=bot.id,
            chat_id=chat.id,
            message_id=message["message_id"],
            message_thread_id=message.get("message_thread_id"),
            text=message.get("text"),
            caption=message.get("caption"),
            parse_mode=params.text("parse_mode"),
            entities=tuple(message.get("entities") or message.get("caption_entities") or ()),
            reply_markup=message.get("reply_markup") or _non_inline_markup(params),
            poll=poll,
            file_ids=file_ids,
            media_kind=media_kind,
            media_group_id=message.get("media_group_id"),
            paid_broadcast=paid,
            received_at=self.clock(),
            received_at_wall=self.wall_clock(),
            params=params.raw,
            message=message,
        )
        self.journal.sent.append(record)
        await self.journal.notify()
        return record

    async def record_action(
        self,
        method: str,
        bot: BotAccount,
        params: Params,
        result: Any,
        *,
        chat_id: int | str | None = None,
        message_id: int | None = None,
    ) -> ActionRecord:
        record = ActionRecord(
            method=method,
            bot_id=bot.id,
            chat_id=chat_id,
            message_id=message_id,
            params=params.raw,
            result=result,
            received_at=self.clock(),
            received_at_wall=self.wall_clock(),
        )
        self.journal.actions.append(record)
        await self.journal.notify()
        return record


def _non_inline_markup(params: Params) -> dict[str, Any] | None:
    """Reply keyboards are not echoed in the Message, but the record keeps what the bot sent."""
    try:
        markup = params.structured("reply_markup")
    except ApiError:
        return None
    return markup if isinstance(markup, dict) else None
