"""A learner's delivery window: when follow-ups (reviews, nudges) may reach them on their own clock.

The window opens each local day at the learner's chosen time of day and stays open for
`WINDOW_LENGTH`. Quiet hours, when given, are never used, even when they overlap the whole window:
then the follow-up waits for the end of the quiet hours instead.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from bot.pacing import local_date, slot_instant

WINDOW_LENGTH = dt.timedelta(hours=2)
ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class QuietHours:
    """Local times with no follow-ups, from `start` up to `end`; wraps past midnight when end <= start."""

    start: dt.time
    end: dt.time

    def contains(self, wall: dt.time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= wall < self.end
        return wall >= self.start or wall < self.end

    def first_allowed(self, moment: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
        """`moment` if it is outside the quiet hours, else the instant they end (aware UTC)."""
        local = moment.astimezone(zone)
        if not self.contains(local.time().replace(tzinfo=None)):
            return moment
        day = local.date()
        if self.start >= self.end and local.time().replace(tzinfo=None) >= self.start:
            day += ONE_DAY
        end = slot_instant(zone, day, self.end)
        # A DST gap may move the end before a moment that is still "quiet" on the wall clock.
        return max(end, moment)


def next_window_instant(
    zone: dt.tzinfo,
    wall: dt.time,
    *,
    after: dt.datetime,
    earliest_day: dt.date | None = None,
    quiet: QuietHours | None = None,
    length: dt.timedelta = WINDOW_LENGTH,
) -> dt.datetime:
    """The first instant at or after `after`, on a local date on or after `earliest_day`, inside the
    learner's window (opening at `wall` for `length`) and outside `quiet`.

    When the quiet hours cover a day's whole window, that day's follow-up comes when they end.
    """
    first_day = local_date(after, zone) - ONE_DAY
    day = max(first_day, earliest_day) if earliest_day is not None else first_day
    for _ in range(4):
        opens = slot_instant(zone, day, wall)
        closes = opens + length
        candidate = max(opens, after)
        if quiet is not None:
            candidate = quiet.first_allowed(candidate, zone)
            if quiet.first_allowed(opens, zone) >= closes:
                # The whole window is quiet: it moves to the end of the quiet hours.
                opens = quiet.first_allowed(opens, zone)
                closes = opens + length
                candidate = max(opens, after)
        if candidate < closes:
            return candidate
        day += ONE_DAY
    # Unreachable for windows shorter than a day; a safe answer rather than a loop without end.
    return quiet.first_allowed(after, zone) if quiet is not None else after
