"""Each bot's pending updates, handed out by long polling (getUpdates) or pushed to its webhook."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from tests.emulators.telegram_api_errors import conflict

UPDATE_TYPES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "message_reaction",
        "message_reaction_count",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)
DEFAULT_UPDATE_TYPES = UPDATE_TYPES - {"chat_member", "message_reaction", "message_reaction_count"}
"""What a bot receives when it never named allowed_updates, or named an empty list."""


@dataclass
class WebhookConfig:
    url: str
    secret_token: str | None
    max_connections: int
    last_error_date: int | None = None
    last_error_message: str | None = None


class Signal:
    """Wakes every waiter at once; fired from synchronous code, awaited for at most some seconds."""

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None

    def fire(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = None

    async def wait(self, at_most: float | None) -> None:
        if self._event is None:
            self._event = asyncio.Event()
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), at_most)


class UpdateQueue:
    """Updates for one bot, kept until a getUpdates offset confirms them or the webhook accepts them."""

    def __init__(self) -> None:
        self.pending: list[dict[str, Any]] = []
        self.allowed: frozenset[str] = DEFAULT_UPDATE_TYPES
        self.allowed_named: list[str] | None = None
        self.webhook: WebhookConfig | None = None
        self.closed = False
        self._next_update_id = 1
        self._poll_generation = 0
        self._changed = Signal()

    def push(self, kind: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Queue an update of `kind`; None when the bot's allowed_updates exclude it (it is never created)."""
        if kind not in self.allowed:
            return None
        update = {"update_id": self._next_update_id, kind: payload}
        self._next_update_id += 1
        self.pending.append(update)
        self._changed.fire()
        return update

    def wake(self) -> None:
        self._changed.fire()

    def set_allowed(self, allowed_updates: Any) -> None:
        """A list replaces the stored filter (empty means the default set); None keeps it."""
        if allowed_updates is None:
            return
        names = [str(name) for name in allowed_updates] if isinstance(allowed_updates, list) else []
        self.allowed_named = names
        self.allowed = frozenset(names) & UPDATE_TYPES if names else DEFAULT_UPDATE_TYPES

    def confirm(self, offset: int) -> None:
        """Forget updates below `offset`; a negative offset keeps only the last -offset updates."""
        if offset < 0:
            self.pending = self.pending[offset:]
        else:
            self.pending = [update for update in self.pending if update["update_id"] >= offset]

    def drop_pending(self) -> None:
        self.pending.clear()

    async def poll(self, offset: int | None, limit: int, wait_seconds: float) -> list[dict[str, Any]]:
        """getUpdates: wait up to `wait_seconds` for updates; a newer poll ends this one with 409."""
        if self.webhook is not None:
            raise conflict(
                "can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first"
            )
        self._poll_generation += 1
        generation = self._poll_generation
        self._changed.fire()
        if offset is not None:
            self.confirm(offset)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, wait_seconds)
        while True:
            if generation != self._poll_generation:
                raise conflict(
                    "terminated by other getUpdates request; make sure that only one bot instance is running"
                )
            remaining = deadline - loop.time()
            if self.pending or remaining <= 0 or self.closed:
                return self.pending[:limit]
            await self._changed.wait(remaining)

    async def next_for_webhook(self) -> dict[str, Any] | None:
        """The oldest pending update once there is one; None once the webhook is gone or the queue closed."""
        while True:
            if self.webhook is None or self.closed:
                return None
            if self.pending:
                return self.pending[0]
            await self._changed.wait(None)

    async def pause(self, seconds: float) -> None:
        """Wait before a webhook retry, ending early if the webhook changes or the queue closes."""
        webhook = self.webhook
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while self.webhook is webhook and not self.closed:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            await self._changed.wait(remaining)

    def delivered(self, update: dict[str, Any]) -> None:
        if self.pending and self.pending[0] is update:
            self.pending.pop(0)

    def close(self) -> None:
        self.closed = True
        self._changed.fire()
