"""Time as a port: the core asks a `Clock` for now, so tests and previews can move time by assignment."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

UTC = dt.UTC


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current instant as an aware UTC datetime."""
        ...


class SystemClock:
    """The machine's clock, optionally shifted by a fixed offset (for end-to-end tests of a real process)."""

    def __init__(self, offset: dt.timedelta = dt.timedelta(0)) -> None:
        self.offset = offset

    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC) + self.offset


class ScaledClock:
    """A clock that runs `speed` times faster than real time from `start` (console previews)."""

    def __init__(self, start: dt.datetime, speed: float, monotonic: Clock | None = None) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._start = start.astimezone(UTC)
        self._speed = speed
        self._real = monotonic or SystemClock()
        self._real_start = self._real.now()

    def now(self) -> dt.datetime:
        elapsed = self._real.now() - self._real_start
        return self._start + elapsed * self._speed


def ensure_utc(moment: dt.datetime) -> dt.datetime:
    """Return `moment` as aware UTC; a naive value is taken to be UTC (as SQLite hands them back)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class ManualClock:
    """A clock that stands still until its owner moves it (`clock.at = ...`): demos and previews."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = ensure_utc(at)

    def now(self) -> dt.datetime:
        return self.at
