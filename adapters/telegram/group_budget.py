"""Telegram's 20 messages a minute per group, kept by spacing the bot's own group messages evenly."""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Awaitable, Callable

_GROUP = re.compile(r"^(-\d+|@\w+)$")
TOLERANCE_SECONDS = 0.05


def is_group(chat_id: str) -> bool:
    """Groups, supergroups and channels have negative ids (or a public @name); users positive ones."""
    return bool(_GROUP.match(chat_id))


class GroupBudget:
    """One message per `60 / per_minute` seconds to each group; private chats are not limited here."""

    def __init__(
        self,
        per_minute: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.interval = 60.0 / per_minute
        self._monotonic = monotonic
        self._sleep = sleep
        self._next: dict[str, float] = {}

    async def try_take(self, chat_id: str, within: float) -> bool:
        """Take the group's next slot if it comes within `within` seconds (waiting for it); False, taking
        nothing, if the group's queue is longer than that."""
        if not is_group(chat_id):
            return True
        now = self._monotonic()
        slot = max(now, self._next.get(chat_id, now))
        if slot - now > within + TOLERANCE_SECONDS:
            return False
        self._next[chat_id] = slot + self.interval
        if slot > now:
            await self._sleep(slot - now)
        return True

    async def take(self, chat_id: str) -> None:
        """Wait for the group's next slot (reserved at once, so waiting senders are served in order)."""
        await self.try_take(chat_id, within=math.inf)
