"""Discrete time for pacing tests that do real I/O: the clock moves only when every task is asleep.

A clock that jumps after a few idle loop rounds would move while an HTTP request is still in flight and
stamp it late; this one jumps to the earliest wake-up only once every task started with `gather` is
sleeping (or done), so the fake server's timestamps are exactly the times the requests were made.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Coroutine
from typing import Any


class DiscreteTime:
    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._live = 0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._order), future))
        self._advance()
        await future

    async def gather(self, *work: Coroutine[Any, Any, Any]) -> list[Any]:
        """Run `work` concurrently; time moves only while all of it is asleep."""
        self._live += len(work)

        async def tracked(coroutine: Coroutine[Any, Any, Any]) -> Any:
            try:
                return await coroutine
            finally:
                self._live -= 1
                self._advance()

        return list(await asyncio.gather(*(tracked(coroutine) for coroutine in work)))

    def _advance(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        if not self._sleepers or len(self._sleepers) < self._live:
            return
        wake_at, _, future = heapq.heappop(self._sleepers)
        self.now = max(self.now, wake_at)
        future.set_result(None)
