"""Telegram's flood limits as token buckets: a sender pacing evenly at the limit is never refused.

Every bucket holds `burst` tokens and refills at its rate. A send takes one token from each bucket it
draws on (the bot's global or paid-broadcast budget, the chat's, and a group's per-minute budget) and is
refused, with the whole-second wait Telegram would name, when any of them is empty.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class TelegramLimits:
    global_per_second: float = 30.0
    global_burst: int = 30
    per_chat_per_second: float = 1.0
    per_chat_burst: int = 1
    per_group_per_minute: float = 20.0
    per_group_burst: int = 1
    paid_broadcast_per_second: float = 1000.0
    paid_broadcast_burst: int = 1000
    tolerance: float = 0.05
    """Seconds of early arrival forgiven (at most half a token), so jitter never refuses an even pace."""
    enabled: bool = True


class TokenBucket:
    """`capacity` tokens refilled at `rate` per second, read against an injected monotonic clock."""

    __slots__ = ("_tokens", "_updated", "capacity", "rate")

    def __init__(self, rate: float, capacity: int, now: float) -> None:
        self.rate = rate
        self.capacity = float(max(1, capacity))
        self._tokens = self.capacity
        self._updated = now

    def _refill(self, now: float) -> None:
        if now > self._updated:
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now

    def wait(self, now: float, tolerance: float) -> float:
        """Seconds until a token is available; 0 when one may be taken now."""
        self._refill(now)
        missing = 1.0 - self._tokens
        if missing <= min(tolerance * self.rate, 0.5):
            return 0.0
        return missing / self.rate

    def take(self, now: float) -> None:
        self._refill(now)
        self._tokens -= 1.0

    def is_full(self, now: float) -> bool:
        self._refill(now)
        return self._tokens >= self.capacity


class SendBudget:
    """The flood limits of every bot the emulator serves."""

    def __init__(self, limits: TelegramLimits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self._clock = clock
        self._global: dict[int, TokenBucket] = {}
        self._paid: dict[int, TokenBucket] = {}
        self._chats: dict[tuple[int, int | str], TokenBucket] = {}
        self._groups: dict[tuple[int, int | str], TokenBucket] = {}
        self._prune_above = 50_000

    def admit(self, bot_id: int, chat_id: int | str, *, paid: bool = False) -> int | None:
        """Take the tokens for one send and return None, or take nothing and return retry_after seconds."""
        if not self.limits.enabled:
            return None
        now = self._clock()
        buckets = self._buckets(bot_id, chat_id, paid, now)
        wait = max(bucket.wait(now, self.limits.tolerance) for bucket in buckets)
        if wait > 0:
            return max(1, math.ceil(wait - 1e-9))
        for bucket in buckets:
            bucket.take(now)
        if len(self._chats) > self._prune_above:
            self._forget_idle(now)
            self._prune_above = max(50_000, 2 * len(self._chats))
        return None

    def _buckets(self, bot_id: int, chat_id: int | str, paid: bool, now: float) -> list[TokenBucket]:
        limits = self.limits
        if paid:
            overall = self._paid.get(bot_id) or self._paid.setdefault(
                bot_id, TokenBucket(limits.paid_broadcast_per_second, limits.paid_broadcast_burst, now)
            )
        else:
            overall = self._global.get(bot_id) or self._global.setdefault(
                bot_id, TokenBucket(limits.global_per_second, limits.global_burst, now)
            )
        key = (bot_id, chat_id)
        chat = self._chats.get(key) or self._chats.setdefault(
            key, TokenBucket(limits.per_chat_per_second, limits.per_chat_burst, now)
        )
        buckets = [overall, chat]
        if _is_group(chat_id):
            group = self._groups.get(key) or self._groups.setdefault(
                key, TokenBucket(limits.per_group_per_minute / 60.0, limits.per_group_burst, now)
            )
            buckets.append(group)
        return buckets

    def _forget_idle(self, now: float) -> None:
        """A full bucket is the same as a new one; dropping them keeps memory flat in long benchmarks."""
        for buckets in (self._chats, self._groups):
            for key in [key for key, bucket in buckets.items() if bucket.is_full(now)]:
                del buckets[key]


def _is_group(chat_id: int | str) -> bool:
    """Negative ids are groups, supergroups and channels; `@name` addresses a public one."""
    return isinstance(chat_id, str) or chat_id < 0
