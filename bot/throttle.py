"""Per-user rate limiting of inbound events: a small token bucket per user, in bounded memory.

A user who sends faster than `rate_per_second` (after a `burst`) is refused: the first refused event
gets one notice, the rest of the flood is dropped silently (tokens that trickle back in meanwhile are
still answered) and only a user who was quiet long enough for the bucket to fill up again can earn
another notice. Other users are unaffected. At most `max_users` buckets are kept; the least recently
active one is forgotten first.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

log = logging.getLogger(__name__)

THROTTLE_NOTICE = "You are sending messages faster than I can answer. Please wait a few seconds, then go on."


class Verdict(StrEnum):
    ALLOW = "allow"
    NOTICE = "notice"
    """Refused, and this is the first refusal of the run: tell the user once."""
    DROP = "drop"
    """Refused again: say nothing."""


@dataclass
class _Bucket:
    tokens: float
    updated_at: float
    noticed: bool = False
    refused: int = 0


class Throttle:
    """Token buckets keyed by (platform, user id); `check` answers whether one more event may pass."""

    def __init__(
        self,
        *,
        rate_per_second: float = 2.0,
        burst: int = 30,
        max_users: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_second <= 0 or burst < 1 or max_users < 1:
            raise ValueError("rate_per_second, burst and max_users must be positive")
        self._rate = rate_per_second
        self._burst = float(burst)
        self._max_users = max_users
        self._monotonic = monotonic
        self._buckets: OrderedDict[tuple[str, str], _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def check(self, platform: str, user_id: str) -> Verdict:
        """Take a token for this user's event, or say how to refuse it."""
        now = self._monotonic()
        key = (platform, user_id)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=self._burst, updated_at=now)
            self._buckets[key] = bucket
            while len(self._buckets) > self._max_users:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            elapsed = max(0.0, now - bucket.updated_at)
            bucket.tokens = min(self._burst, bucket.tokens + elapsed * self._rate)
            bucket.updated_at = now
            if bucket.noticed and bucket.tokens >= self._burst:
                log.info("user %s:%s calmed down after %d refused event(s)", *key, bucket.refused)
                bucket.noticed, bucket.refused = False, 0
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return Verdict.ALLOW
        bucket.refused += 1
        if bucket.noticed:
            return Verdict.DROP
        bucket.noticed = True
        log.warning("throttling user %s:%s: more than %g events a second", *key, self._rate)
        return Verdict.NOTICE
