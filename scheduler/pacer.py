"""Proactive send pacing per platform: a global rate, a per-chat rate and pauses that honour retry_after.

Each `acquire` reserves the next free slot (a virtual-time schedule, like GCRA), so waiting senders
are served in order and never burst above the rate. A window of the latest grants backs that up: when
the process stalls (a busy CPU, a long garbage collection), senders whose slots passed meanwhile would
all wake at once, so no grant is made while a full rate's worth already went out within the last
second. The monotonic clock and the sleep are injected, so tests drive time without sleeping. Several
processes share one budget: each takes `rate / live_workers` (see `set_live_workers`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

from bot.settings import DiscordSettings, TelegramSettings

Monotonic = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
ChatInterval = Callable[[str], float]

MAX_TRACKED_CHATS = 10_000
"""Above this many remembered chats, chats whose next slot is already in the past are forgotten."""


def no_chat_limit(_chat_id: str) -> float:
    return 0.0


class Pacer:
    """Waits for a send slot: no more than `rate` per second overall, one per `chat_interval` per chat."""

    def __init__(
        self,
        platform: str,
        rate_per_second: float,
        chat_interval: ChatInterval = no_chat_limit,
        *,
        allow_paid_broadcast: bool = False,
        monotonic: Monotonic = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        max_tracked_chats: int = MAX_TRACKED_CHATS,
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        self.platform = platform
        self.rate_per_second = rate_per_second
        self._chat_interval = chat_interval
        self._allow_paid_broadcast = allow_paid_broadcast
        self._monotonic = monotonic
        self._sleep = sleep
        self._max_tracked_chats = max_tracked_chats
        self._live_workers = 1
        self._next_global = 0.0
        self._paused_until = 0.0
        self._chat_next: dict[str, float] = {}
        self._recent_grants: deque[float] = deque()

    @property
    def allow_paid_broadcast(self) -> bool:
        """True when the budget is Telegram's paid broadcast rate: sends must ask for paid broadcast."""
        return self._allow_paid_broadcast

    @property
    def live_workers(self) -> int:
        return self._live_workers

    @property
    def effective_rate(self) -> float:
        """This process's share of the platform's budget, in sends per second."""
        return self.rate_per_second / self._live_workers

    @property
    def tracked_chats(self) -> int:
        return len(self._chat_next)

    def set_live_workers(self, count: int) -> None:
        """Share the budget among `count` live processes (at least one: this one)."""
        self._live_workers = max(1, count)

    def pause(self, seconds: float, chat_id: str | None = None) -> None:
        """Send nothing to `chat_id` (or to anyone, when None) for `seconds` from now."""
        until = self._monotonic() + max(0.0, seconds)
        if chat_id is None:
            self._paused_until = max(self._paused_until, until)
            # Slots reserved before the pause are void: their holders re-reserve after it.
            self._next_global = max(self._next_global, self._paused_until)
        else:
            self._chat_next[chat_id] = max(self._chat_next.get(chat_id, 0.0), until)

    def paused_for(self, chat_id: str | None = None) -> float:
        """Seconds left before a send to `chat_id` (or any chat) may start, ignoring the rate."""
        now = self._monotonic()
        ready = self._paused_until
        if chat_id is not None:
            ready = max(ready, self._chat_next.get(chat_id, 0.0))
        return max(0.0, ready - now)

    def free_now(self, chat_id: str) -> bool:
        """Whether `acquire(chat_id)` would take its slot at once, without waiting."""
        now = self._monotonic()
        ready = max(self._paused_until, self._chat_next.get(chat_id, 0.0), self._next_global)
        return max(ready, self._window_ready()) <= now

    def _window(self) -> tuple[int, float]:
        """(grants, seconds): at most that many grants in any span of that length; one second unless
        this process's share is below one send a second."""
        rate = self.effective_rate
        if rate >= 1.0:
            return math.floor(rate), 1.0
        return 1, 1.0 / rate

    def _window_ready(self) -> float:
        """When the window of recent grants lets the next one through."""
        grants, seconds = self._window()
        recent = self._recent_grants
        while len(recent) > grants:
            recent.popleft()
        if len(recent) < grants:
            return 0.0
        return recent[0] + seconds * (1.0 + 1e-9)

    async def acquire(self, chat_id: str) -> None:
        """Wait until a send to `chat_id` fits both the global and the chat's rate, and take that slot."""
        while True:
            now = self._monotonic()
            ready = max(self._paused_until, self._chat_next.get(chat_id, 0.0), self._window_ready())
            if ready > now:
                await self._sleep(ready - now)
                continue
            slot = max(now, self._next_global)
            # The tiny stretch keeps float rounding from ever fitting rate + 1 slots into one second.
            self._next_global = slot + (1.0 + 1e-9) / self.effective_rate
            if slot > now:
                await self._sleep(slot - now)
            granted_at = await self._window_opening()
            if granted_at is None:
                continue  # a global pause arrived while waiting for the slot
            self._recent_grants.append(granted_at)
            self._chat_next[chat_id] = max(slot, granted_at) + self._chat_interval(chat_id) * (1.0 + 1e-9)
            self._evict_idle()
            return

    async def _window_opening(self) -> float | None:
        """The moment the slot in hand may be used: now, or (after a stall, behind senders who already
        used this second) when the window lets it through; None if a global pause came first."""
        while True:
            now = self._monotonic()
            if now < self._paused_until:
                return None
            opens = self._window_ready()
            if now >= opens:
                return now
            await self._sleep(opens - now)

    def _evict_idle(self) -> None:
        if len(self._chat_next) <= self._max_tracked_chats:
            return
        now = self._monotonic()
        for chat_id in [chat for chat, ready in self._chat_next.items() if ready <= now]:
            del self._chat_next[chat_id]


def telegram_chat_interval(settings: TelegramSettings) -> ChatInterval:
    """Private chats (positive ids) get `per_chat_per_second`; groups (negative) `per_group_per_minute`."""
    private = 1.0 / settings.per_chat_per_second
    group = 60.0 / settings.per_group_per_minute

    def interval(chat_id: str) -> float:
        return group if chat_id.startswith("-") else private

    return interval


def telegram_pacer(
    settings: TelegramSettings, *, monotonic: Monotonic = time.monotonic, sleep: Sleep = asyncio.sleep
) -> Pacer:
    """Telegram: `messages_per_second` overall, or the paid broadcast rate when `allow_paid_broadcast`."""
    paid = settings.allow_paid_broadcast
    rate = settings.paid_broadcast_per_second if paid else settings.messages_per_second
    return Pacer(
        "telegram",
        rate,
        telegram_chat_interval(settings),
        allow_paid_broadcast=paid,
        monotonic=monotonic,
        sleep=sleep,
    )


def discord_pacer(
    settings: DiscordSettings, *, monotonic: Monotonic = time.monotonic, sleep: Sleep = asyncio.sleep
) -> Pacer:
    """Discord: a global request rate below its 50/s limit; discord.py keeps the per-route buckets."""
    return Pacer("discord", settings.requests_per_second, monotonic=monotonic, sleep=sleep)
