"""Slot maths: when a learner's next lesson is due, as an instant in UTC.

A slot falls on each qualifying local date at the learner's wall time: exactly one per qualifying date.
A wall time inside a DST gap moves forward by the gap's length; an ambiguous wall time takes its first
occurrence. Where a gap ends at midnight (Greenland springs forward from 23:00 to 00:00), a 23:30 slot
moves to 00:30 on the next local date: it still belongs to the date it was due on (see `slot_date`).

All functions are pure and take hashable arguments, so callers may memoize them. A naive datetime is
taken to be UTC, as SQLite hands them back.
"""

from __future__ import annotations

import datetime as dt

from bot.cadence import Cadence
from bot.clock import ensure_utc

ONE_DAY = dt.timedelta(days=1)


def local_date(moment: dt.datetime, zone: dt.tzinfo) -> dt.date:
    """The calendar date on the local clock of `zone` at `moment`."""
    return ensure_utc(moment).astimezone(zone).date()


def slot_instant(zone: dt.tzinfo, day: dt.date, wall: dt.time) -> dt.datetime:
    """The aware-UTC instant of local `day` at `wall`: gaps move forward by their length, folds take
    the first occurrence."""
    # PEP 495: with fold=0 a wall time is read with the offset in force before a transition. Inside a
    # gap that lands `gap length` after the wall time on the new clock; inside a fold it is the first
    # occurrence. zoneinfo and datetime.timezone both follow it (verified for every IANA zone by tests).
    local = dt.datetime(
        day.year, day.month, day.day, wall.hour, wall.minute, wall.second, wall.microsecond, tzinfo=zone
    )
    return local.astimezone(dt.UTC)


def slot_date(slot: dt.datetime, zone: dt.tzinfo, wall: dt.time) -> dt.date:
    """The local date a slot at `wall` belongs to (the day before when a gap pushed it past midnight)."""
    local = ensure_utc(slot).astimezone(zone)
    if (local.hour, local.minute, local.second) < (wall.hour, wall.minute, wall.second):
        return local.date() - ONE_DAY
    return local.date()


def _first_slot(
    zone: dt.tzinfo,
    wall: dt.time,
    cadence: Cadence,
    after: dt.datetime,
    anchor: dt.date | None,
    earliest_date: dt.date | None,
) -> tuple[dt.date, dt.datetime]:
    """The first (date, slot) strictly after aware-UTC `after` on a qualifying date >= `earliest_date`."""
    # Start a day early: a slot pushed past midnight by a gap is due after the start of the next date.
    day = after.astimezone(zone).date() - ONE_DAY
    if earliest_date is not None and earliest_date > day:
        day = earliest_date
    day = cadence.first_on_or_after(day, anchor)
    while True:
        slot = slot_instant(zone, day, wall)
        if slot > after:
            return day, slot
        day = cadence.first_on_or_after(day + ONE_DAY, anchor)


def next_slot(
    zone: dt.tzinfo,
    wall: dt.time,
    cadence: Cadence,
    after: dt.datetime,
    anchor: dt.date | None = None,
    earliest_date: dt.date | None = None,
) -> dt.datetime:
    """The first slot strictly after `after` on a qualifying local date on or after `earliest_date`.

    For every-N-days the qualifying dates are `anchor + k*N`; without an anchor the first slot found
    starts the run (any date qualifies).
    """
    return _first_slot(zone, wall, cadence, ensure_utc(after), anchor, earliest_date)[1]


def upcoming_slots(
    zone: dt.tzinfo,
    wall: dt.time,
    cadence: Cadence,
    after: dt.datetime,
    count: int,
    anchor: dt.date | None = None,
) -> list[dt.datetime]:
    """The next `count` slots strictly after `after`, increasing; for every-N-days without an anchor
    the first slot is the anchor."""
    if count < 0:
        raise ValueError(f"count must not be negative, got {count}")
    slots: list[dt.datetime] = []
    moment = ensure_utc(after)
    earliest: dt.date | None = None
    for _ in range(count):
        day, slot = _first_slot(zone, wall, cadence, moment, anchor, earliest)
        if anchor is None and cadence.every_n_days:
            anchor = day
        slots.append(slot)
        moment, earliest = slot, day + ONE_DAY
    return slots
