"""Slot maths held against a brute-force oracle across every IANA zone, 2020-2037.

The oracle (tests/zone_oracle.py) finds each slot by scanning UTC minutes and reading the local wall
clock; the qualifying dates are worked out here from the cadence's plain meaning. Neither calls the
code under test.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.cadence import Cadence
from bot.pacing import local_date, next_slot, slot_date, slot_instant, upcoming_slots
from bot.timezones import load_zone
from tests.zone_oracle import (
    LAST_YEAR,
    Transition,
    all_transitions,
    all_zone_names,
    brute_force_slot,
    wall_at,
)

UTC = dt.UTC
ONE_DAY = dt.timedelta(days=1)
FIXED_OFFSETS = ["UTC+05:30", "UTC-03:00", "UTC+14:00", "UTC-12:00", "UTC+12:45"]
ZONE_NAMES = all_zone_names()
PROPERTY_SETTINGS = settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)


def zone_of(name: str) -> dt.tzinfo:
    return load_zone(name) if name.startswith("UTC") and len(name) > 3 else zoneinfo.ZoneInfo(name)


# --- strategies -----------------------------------------------------------------------------------

zone_names = st.sampled_from(ZONE_NAMES + FIXED_OFFSETS)
days = st.dates(min_value=dt.date(2020, 1, 1), max_value=dt.date(LAST_YEAR, 12, 24))
# transitions happen around midnight and in the small hours: weight those walls
walls = st.one_of(
    st.builds(dt.time, st.integers(0, 23), st.integers(0, 59)),
    st.builds(dt.time, st.sampled_from([0, 1, 2, 3, 23]), st.sampled_from([0, 1, 15, 30, 45, 59])),
)
weekday_cadences = st.frozensets(st.integers(0, 6), min_size=1).map(Cadence)
every_n_cadences = st.integers(1, 14).map(Cadence.every)
cadences = st.one_of(st.just(Cadence()), weekday_cadences, every_n_cadences)


@st.composite
def moments_on(draw: st.DrawFn, day: dt.date) -> dt.datetime:
    """An instant within a day or so of `day` (UTC), to the second."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=UTC) - dt.timedelta(hours=14)
    return start + dt.timedelta(seconds=draw(st.integers(0, 40 * 3600)))


# --- the reference --------------------------------------------------------------------------------


def qualifies(cadence: Cadence, day: dt.date, anchor: dt.date | None) -> bool:
    if cadence.every_n_days:
        return anchor is None or (day - anchor).days % cadence.every_n_days == 0
    return day.weekday() in cadence.weekdays


def reference_slots(
    zone: dt.tzinfo,
    wall: dt.time,
    cadence: Cadence,
    after: dt.datetime,
    count: int,
    anchor: dt.date | None = None,
    earliest: dt.date | None = None,
) -> list[tuple[dt.date, dt.datetime]]:
    """(date, slot) for the next `count` qualifying local dates whose slot is strictly after `after`."""
    found: list[tuple[dt.date, dt.datetime]] = []
    day = wall_at(zone, after).date() - 2 * ONE_DAY
    while len(found) < count:
        if (earliest is None or day >= earliest) and qualifies(cadence, day, anchor):
            slot = brute_force_slot(zone, day, wall)
            if slot > after:
                found.append((day, slot))
                if anchor is None and cadence.every_n_days:
                    anchor = day
        day += ONE_DAY
    return found


def assert_one_slot_per_qualifying_date(
    zone: dt.tzinfo, wall: dt.time, slots: list[dt.datetime], expected: list[tuple[dt.date, dt.datetime]]
) -> None:
    assert slots == [slot for _, slot in expected]
    assert slots == sorted(slots) and len(set(slots)) == len(slots), "slots must strictly increase"
    assert [slot_date(slot, zone, wall) for slot in slots] == [day for day, _ in expected]
    for day, slot in expected:
        # a slot sits on its own date, unless a gap ending at midnight pushed it into the next one
        shown = wall_at(zone, slot)
        assert shown.date() == day or (shown.date() == day + ONE_DAY and shown.time() < wall)


# --- properties -----------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(name=zone_names, day=days, wall=walls, cadence=cadences, data=st.data())
def test_upcoming_slots_match_the_brute_force_oracle_in_every_zone(
    name: str, day: dt.date, wall: dt.time, cadence: Cadence, data: st.DataObject
) -> None:
    zone = zone_of(name)
    after = data.draw(moments_on(day))
    anchor = data.draw(st.one_of(st.none(), st.just(day - dt.timedelta(days=data.draw(st.integers(0, 20))))))
    expected = reference_slots(zone, wall, cadence, after, 4, anchor)
    slots = upcoming_slots(zone, wall, cadence, after, 4, anchor)
    assert_one_slot_per_qualifying_date(zone, wall, slots, expected)
    assert next_slot(zone, wall, cadence, after, anchor) == expected[0][1]


@st.composite
def near_transitions(draw: st.DrawFn) -> tuple[Transition, dt.time, dt.datetime]:
    """A transition, a wall time within 90 minutes of its gap or fold, and an instant up to 3 days before."""
    transition = draw(st.sampled_from(all_transitions()))
    edge = draw(st.sampled_from([transition.wall_before, transition.wall_after]))
    wall = (edge + dt.timedelta(minutes=draw(st.integers(-90, 90)))).time()
    after = transition.at - dt.timedelta(minutes=draw(st.integers(0, 3 * 24 * 60)))
    return transition, wall, after


@PROPERTY_SETTINGS
@given(case=near_transitions(), cadence=st.one_of(st.just(Cadence()), cadences))
def test_slots_around_transitions_match_the_brute_force_oracle(
    case: tuple[Transition, dt.time, dt.datetime], cadence: Cadence
) -> None:
    transition, wall, after = case
    zone = zoneinfo.ZoneInfo(transition.zone_name)
    expected = reference_slots(zone, wall, cadence, after, 3)
    slots = upcoming_slots(zone, wall, cadence, after, 3)
    assert_one_slot_per_qualifying_date(zone, wall, slots, expected)


@PROPERTY_SETTINGS
@given(name=zone_names, day=days, wall=walls)
def test_slot_instant_is_the_first_showing_or_moved_forward_by_the_gap(
    name: str, day: dt.date, wall: dt.time
) -> None:
    zone = zone_of(name)
    assert slot_instant(zone, day, wall) == brute_force_slot(zone, day, wall)


@PROPERTY_SETTINGS
@given(name=zone_names, day=days, wall=walls, every=st.integers(2, 14), data=st.data())
def test_every_n_days_counts_local_dates_from_the_first_slot(
    name: str, day: dt.date, wall: dt.time, every: int, data: st.DataObject
) -> None:
    zone = zone_of(name)
    after = data.draw(moments_on(day))
    slots = upcoming_slots(zone, wall, Cadence.every(every), after, 4)
    first = reference_slots(zone, wall, Cadence(), after, 1)[0]
    assert slots[0] == first[1], "the first slot after `after` starts the run"
    dates = [slot_date(slot, zone, wall) for slot in slots]
    assert dates == [first[0] + k * dt.timedelta(days=every) for k in range(4)]
    # the run continues from the stored anchor exactly as it began
    assert next_slot(zone, wall, Cadence.every(every), slots[1], anchor=first[0]) == slots[2]


@PROPERTY_SETTINGS
@given(name=zone_names, day=days, wall=walls, cadence=cadences, wait=st.integers(0, 30), data=st.data())
def test_next_slot_respects_the_earliest_date(
    name: str, day: dt.date, wall: dt.time, cadence: Cadence, wait: int, data: st.DataObject
) -> None:
    zone = zone_of(name)
    after = data.draw(moments_on(day))
    anchor = day if cadence.every_n_days else None
    earliest = local_date(after, zone) + dt.timedelta(days=wait)
    expected = reference_slots(zone, wall, cadence, after, 1, anchor, earliest)[0][1]
    assert next_slot(zone, wall, cadence, after, anchor, earliest) == expected
