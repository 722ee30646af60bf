"""Opening DM channels, spaced out: Discord answers "opening direct messages too fast" (40003) to bursts.

Only sends that must open a DM wait here; sends to a known channel never do. Each learner's DM is
opened once and then remembered in `Learner.chat_id`, so this is paid once per learner.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

Monotonic = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class DmOpenPacer:
    """At most `per_minute` DM opens a minute, evenly spaced; `hold` backs off after a 40003."""

    def __init__(
        self, per_minute: float, *, monotonic: Monotonic = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.interval = 60.0 / per_minute
        self._monotonic = monotonic
        self._sleep = sleep
        self._next = float("-inf")

    async def wait(self) -> None:
        """Wait for the next free slot and take it; callers are served in the order they arrive."""
        now = self._monotonic()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await self._sleep(slot - now)

    def hold(self, seconds: float) -> None:
        """Open no new DM for `seconds` from now (callers already waiting keep their slot)."""
        self._next = max(self._next, self._monotonic() + seconds)
