"""What the emulator saw: accepted messages, other bot actions, every request and webhook attempt."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class PollRecord:
    id: str
    question: str
    options: tuple[str, ...]
    type: str
    correct_option_id: int | None
    correct_option_ids: tuple[int, ...]
    explanation: str | None
    is_anonymous: bool
    allows_multiple_answers: bool


@dataclass(frozen=True)
class SentRecord:
    """One message the emulator accepted from a bot (a media group gives one record per item)."""

    method: str
    bot_id: int
    chat_id: int | str
    message_id: int
    message_thread_id: int | None
    text: str | None
    caption: str | None
    parse_mode: str | None
    entities: tuple[dict[str, Any], ...]
    reply_markup: dict[str, Any] | None
    poll: PollRecord | None
    file_ids: tuple[str, ...]
    media_kind: str | None
    media_group_id: str | None
    paid_broadcast: bool
    received_at: float
    """The emulator's monotonic clock when the message was accepted."""
    received_at_wall: float
    params: dict[str, Any]
    message: dict[str, Any]
    """The Message object answered to the bot."""

    @property
    def body(self) -> str | None:
        return self.text if self.text is not None else self.caption

    @property
    def callback_data(self) -> tuple[str, ...]:
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return tuple(button["callback_data"] for row in rows for button in row if "callback_data" in button)


@dataclass(frozen=True)
class ActionRecord:
    """An accepted call that is not a new message: edits, deletes, answers, commands, topics, pins."""

    method: str
    bot_id: int
    chat_id: int | str | None
    message_id: int | None
    params: dict[str, Any]
    result: Any
    received_at: float
    received_at_wall: float


@dataclass
class RequestRecord:
    """Every call that reached the emulator, refused or not; `status` None means no answer was sent."""

    method: str
    bot_id: int | None
    chat_id: int | str | None
    params: dict[str, Any]
    received_at: float
    received_at_wall: float
    status: int | None = None
    description: str = ""
    fault: str | None = None


@dataclass(frozen=True)
class WebhookAttempt:
    bot_id: int
    update_id: int
    url: str
    status: int | None
    """The HTTP status the webhook answered, None when the connection failed."""
    error: str | None
    secret_token_sent: bool
    at: float


@dataclass
class Journal:
    """The records, and a condition signalled whenever one is added."""

    sent: list[SentRecord] = field(default_factory=list)
    actions: list[ActionRecord] = field(default_factory=list)
    requests: list[RequestRecord] = field(default_factory=list)
    webhook_attempts: list[WebhookAttempt] = field(default_factory=list)
    count_429: int = 0
    _condition: asyncio.Condition | None = None

    def _changed(self) -> asyncio.Condition:
        if self._condition is None:
            self._condition = asyncio.Condition()
        return self._condition

    async def notify(self) -> None:
        condition = self._changed()
        async with condition:
            condition.notify_all()

    async def wait_for(self, predicate: Callable[[], T], *, within: float) -> T:
        """The first truthy value of `predicate()`, re-checked whenever something is recorded."""
        condition = self._changed()
        async with condition:
            return await asyncio.wait_for(condition.wait_for(predicate), within)

    def clear(self) -> None:
        self.sent.clear()
        self.actions.clear()
        self.requests.clear()
        self.webhook_attempts.clear()
        self.count_429 = 0
