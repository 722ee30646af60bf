"""Test doubles: a chat adapter that records and can fail, and a clock moved by assignment."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field

from bot.ports import (
    Capabilities,
    InboundEvent,
    InboundHandler,
    Markup,
    MediaPart,
    OutboundPart,
    PermanentError,
    PlatformError,
    QuizPart,
    Reply,
    Sender,
    SentMessage,
    TextPart,
)

FAKE_CAPABILITIES = Capabilities(
    platform="fake",
    max_text_length=4096,
    max_caption_length=1024,
    markup=Markup.PLAIN,
    native_quiz=True,
    threads=False,
    max_upload_bytes=50_000_000,
    max_photo_bytes=10_000_000,
    max_button_data=64,
)


def reply_text(reply: Reply) -> str:
    """The text parts of `reply`, one after another."""
    return "\n".join(part.text for part in reply.parts if isinstance(part, TextPart))


def reply_actions(reply: Reply) -> list[str]:
    """The actions of `reply`'s action buttons, in order; link buttons carry none."""
    return [
        button.action
        for part in reply.parts
        if isinstance(part, TextPart)
        for button in part.buttons
        if hasattr(button, "action")
    ]


class FakeClock:
    """`clock.at = moment` moves time; `now()` answers it. Always aware UTC."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def now(self) -> dt.datetime:
        assert self.at.tzinfo is not None, "FakeClock holds aware datetimes only"
        return self.at.astimezone(dt.UTC)


class RecordingSender:
    """Stands in for the outbox sender where only its wake-ups matter: counts them."""

    def __init__(self) -> None:
        self.wakes = 0

    async def wake(self) -> None:
        self.wakes += 1


@dataclass
class SentRecord:
    chat_id: str
    part: OutboundPart
    idempotency_key: str
    at: dt.datetime | None
    message_ids: tuple[str, ...]


@dataclass
class EditRecord:
    chat_id: str
    message_id: str
    part: TextPart
    at: dt.datetime | None


@dataclass
class PlannedFailure:
    error: PlatformError
    chat_id: str | None
    remaining: int


def _raise_planned(failures: list[PlannedFailure], chat_id: str) -> None:
    for failure in failures:
        if failure.remaining > 0 and failure.chat_id in (None, chat_id):
            failure.remaining -= 1
            raise failure.error


@dataclass
class FakeChat:
    """A `ChatAdapter` that records every part it is asked to send or edit, and fails on request."""

    capabilities: Capabilities = FAKE_CAPABILITIES
    clock: FakeClock | None = None
    sent: list[SentRecord] = field(default_factory=list)
    replies: list[tuple[Sender, Reply]] = field(default_factory=list)
    edits: list[EditRecord] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)
    """Ids of sent messages the user deleted: editing one fails as Telegram's would."""
    attempts: int = 0
    blocked_chats: set[str] = field(default_factory=set)
    _failures: list[PlannedFailure] = field(default_factory=list)
    _edit_failures: list[PlannedFailure] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _on_event: InboundHandler | None = None

    # --- ChatAdapter -------------------------------------------------------------------------------
    async def start(self, on_event: InboundHandler) -> None:
        self._on_event = on_event

    async def stop(self) -> None:
        self._on_event = None

    async def send(self, chat_id: str, part: OutboundPart, *, idempotency_key: str = "") -> SentMessage:
        self.attempts += 1
        if chat_id in self.blocked_chats:
            raise PermanentError("Forbidden: bot was blocked by the user", unreachable=True)
        _raise_planned(self._failures, chat_id)
        message_id = str(next(self._ids))
        uploaded: dict[str, str] = {}
        if isinstance(part, MediaPart) and not part.file_id and part.file_key:
            uploaded[part.file_key] = f"file-{message_id}"
        poll_id = f"poll-{message_id}" if isinstance(part, QuizPart) and part.native else None
        now = self.clock.now() if self.clock else None
        self.sent.append(SentRecord(chat_id, part, idempotency_key, now, (message_id,)))
        return SentMessage((message_id,), poll_id=poll_id, uploaded_file_ids=uploaded)

    async def send_reply(self, sender: Sender, reply: Reply) -> None:
        self.replies.append((sender, reply))

    async def edit(self, chat_id: str, message_id: str, part: TextPart) -> None:
        _raise_planned(self._edit_failures, chat_id)
        sent_here = any(
            record.chat_id == chat_id and message_id in record.message_ids for record in self.sent
        )
        if not sent_here or message_id in self.deleted:
            raise PermanentError("Bad Request: message to edit not found")
        self.edits.append(EditRecord(chat_id, message_id, part, self.clock.now() if self.clock else None))

    # --- test controls -----------------------------------------------------------------------------
    def fail_next(self, error: PlatformError, *, times: int = 1, chat_id: str | None = None) -> None:
        """The next `times` sends (to `chat_id`, or to anyone) raise `error`."""
        self._failures.append(PlannedFailure(error, chat_id, times))

    def fail_next_edit(self, error: PlatformError, *, times: int = 1, chat_id: str | None = None) -> None:
        """The next `times` edits (in `chat_id`, or anywhere) raise `error`; sends are not affected."""
        self._edit_failures.append(PlannedFailure(error, chat_id, times))

    def text_of(self, chat_id: str, message_id: str) -> str:
        """A sent text message as it reads now, after its edits."""
        for edit in reversed(self.edits):
            if (edit.chat_id, edit.message_id) == (chat_id, message_id):
                return edit.part.text
        for record in self.sent:
            if (
                record.chat_id == chat_id
                and message_id in record.message_ids
                and isinstance(record.part, TextPart)
            ):
                return record.part.text
        raise KeyError(f"no text message {message_id} in chat {chat_id}")

    async def event(self, event: InboundEvent) -> Reply:
        """Hand `event` to the core as the platform would, and record the reply."""
        assert self._on_event is not None, "adapter not started"
        reply = await self._on_event(event)
        await self.send_reply(event.sender, reply)
        return reply

    def parts_to(self, chat_id: str) -> list[OutboundPart]:
        return [record.part for record in self.sent if record.chat_id == chat_id]
