"""An independent reference for slot maths: everything here reads zones only from the UTC side.

`brute_force_slot` scans UTC minute by minute and keeps the instants whose local wall clock shows the
wanted date and time; `find_transitions` finds offset changes by scanning UTC. Nothing here calls
bot.pacing.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from dataclasses import dataclass

UTC = dt.UTC
ONE_MINUTE = dt.timedelta(minutes=1)
ONE_SECOND = dt.timedelta(seconds=1)
ONE_DAY = dt.timedelta(days=1)
SCAN_RADIUS = dt.timedelta(hours=17)
"""Every offset lies within -12h..+14h, and no gap is longer than 3 hours."""
FIRST_YEAR, LAST_YEAR = 2020, 2037


def all_zone_names() -> list[str]:
    return sorted(zoneinfo.available_timezones())


def _utc_fields(instant: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """`instant`'s UTC date and time carried by `zone`, the form `zone.fromutc` reads."""
    return instant.astimezone(UTC).replace(tzinfo=zone)


def offset_at(zone: dt.tzinfo, instant: dt.datetime) -> dt.timedelta:
    """The UTC offset of `zone` at aware instant `instant`."""
    probe = _utc_fields(instant, zone)
    # both carry `zone`, so subtracting compares their fields: local wall minus UTC wall
    return zone.fromutc(probe) - probe


def wall_at(zone: dt.tzinfo, instant: dt.datetime) -> dt.datetime:
    """The naive local date and time the clocks of `zone` show at `instant`."""
    return zone.fromutc(_utc_fields(instant, zone)).replace(tzinfo=None, fold=0)


def _instants_showing(zone: dt.tzinfo, target: dt.datetime) -> list[dt.datetime]:
    """Every UTC minute (within reach of any offset) at which the clocks of `zone` show `target`."""
    # A datetime carrying `zone` compares with another carrying `zone` by its fields alone.
    wanted = target.replace(tzinfo=zone)
    probe = (target - SCAN_RADIUS).replace(tzinfo=zone)
    hits = []
    for _ in range(int(2 * SCAN_RADIUS / ONE_MINUTE)):
        if zone.fromutc(probe) == wanted:
            hits.append(probe.replace(tzinfo=UTC))
        probe += ONE_MINUTE
    return hits


def brute_force_slot(zone: dt.tzinfo, day: dt.date, wall: dt.time) -> dt.datetime:
    """The slot for local `day` at `wall`, found by scanning UTC minutes.

    If the wall time shows up, its first UTC instant; if the clock jumps over it, the instant that shows
    the wall time moved forward by the jump's length.
    """
    target = dt.datetime.combine(day, wall)
    hits = _instants_showing(zone, target)
    if hits:
        return hits[0]
    wanted = target.replace(tzinfo=zone)
    probe = (target - SCAN_RADIUS).replace(tzinfo=zone)
    for _ in range(int(2 * SCAN_RADIUS / ONE_MINUTE)):
        probe += ONE_MINUTE
        if zone.fromutc(probe) > wanted:
            instant = probe.replace(tzinfo=UTC)
            jump = offset_at(zone, instant) - offset_at(zone, instant - ONE_MINUTE)
            moved = _instants_showing(zone, target + jump)
            assert moved, f"no instant shows {target + jump} after the clock jumped over {target}"
            return moved[0]
    raise AssertionError(f"the clock never passes {target}")


@dataclass(frozen=True)
class Transition:
    """An offset change: at UTC instant `at` the offset goes from `before` to `after`."""

    zone_name: str
    at: dt.datetime
    before: dt.timedelta
    after: dt.timedelta

    @property
    def is_gap(self) -> bool:
        return self.after > self.before

    @property
    def wall_before(self) -> dt.datetime:
        """The local wall time the old clock would have shown at `at` (start of a gap, end of a fold)."""
        return (self.at + self.before).replace(tzinfo=None)

    @property
    def wall_after(self) -> dt.datetime:
        """The local wall time the new clock shows at `at` (end of a gap, start of a fold)."""
        return (self.at + self.after).replace(tzinfo=None)

    def slot_by_rule(self, day: dt.date, wall: dt.time) -> dt.datetime:
        """The slot for `day` at `wall` near this transition, from its offsets alone.

        Valid while no other transition lies within two days of this one.
        """
        target = dt.datetime.combine(day, wall)
        on_old_clock = (target - self.before).replace(tzinfo=UTC)
        on_new_clock = (target - self.after).replace(tzinfo=UTC)
        shown = [
            instant
            for instant, valid in (
                (on_old_clock, on_old_clock < self.at),
                (on_new_clock, on_new_clock >= self.at),
            )
            if valid
        ]
        if shown:
            return min(shown)
        # in the gap: forward by the gap's length, on the new clock
        return (target + (self.after - self.before) - self.after).replace(tzinfo=UTC)


def find_transitions(
    zone_name: str, first_year: int = FIRST_YEAR, last_year: int = LAST_YEAR
) -> list[Transition]:
    """Offset changes of `zone_name` in the given years, found by stepping through UTC a day at a time
    and bisecting each change down to the second."""
    zone = zoneinfo.ZoneInfo(zone_name)
    start = dt.datetime(first_year - 1, 12, 31, 12, tzinfo=UTC)
    days = (dt.date(last_year + 1, 1, 1) - start.date()).days
    found: list[Transition] = []
    probe = start.replace(tzinfo=zone)
    previous_instant, previous = start, zone.fromutc(probe) - probe
    for day in range(1, days + 1):
        probe += ONE_DAY
        offset = zone.fromutc(probe) - probe
        instant = start + day * ONE_DAY
        if offset != previous:
            low, high = previous_instant, instant
            while high - low > ONE_SECOND:
                middle = low + (high - low) / 2
                middle = middle.replace(microsecond=0)
                if offset_at(zone, middle) == previous:
                    low = middle
                else:
                    high = middle
            found.append(Transition(zone_name, high, previous, offset_at(zone, high)))
        previous_instant, previous = instant, offset
    return found


@functools.cache
def all_transitions() -> tuple[Transition, ...]:
    """Every offset change of every IANA zone in 2020-2037."""
    return tuple(transition for name in all_zone_names() for transition in find_transitions(name))
