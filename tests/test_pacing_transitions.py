"""Slots at known DST transitions, and a walk over every transition of every zone in 2020-2037."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict

import pytest

from bot.cadence import Cadence, parse_cadence
from bot.pacing import local_date, next_slot, slot_date, slot_instant, upcoming_slots
from bot.timezones import load_zone
from tests.zone_oracle import Transition, all_transitions

UTC = dt.UTC
DAILY = Cadence()
ONE_DAY = dt.timedelta(days=1)
ONE_MINUTE = dt.timedelta(minutes=1)


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize(
    ("zone_name", "day", "wall", "expected_utc", "expected_local"),
    [
        # New York springs forward at 02:00 -> 03:00: 02:30 moves to 03:30 EDT
        ("America/New_York", "2026-03-08", "02:30", "2026-03-08T07:30:00Z", "03:30-04:00"),
        ("America/New_York", "2026-03-08", "01:59", "2026-03-08T06:59:00Z", "01:59-05:00"),
        ("America/New_York", "2026-03-08", "03:00", "2026-03-08T07:00:00Z", "03:00-04:00"),
        # and falls back 02:00 -> 01:00: 01:30 happens twice, the first (EDT) counts
        ("America/New_York", "2026-11-01", "01:30", "2026-11-01T05:30:00Z", "01:30-04:00"),
        ("America/New_York", "2026-11-01", "01:00", "2026-11-01T05:00:00Z", "01:00-04:00"),
        ("America/New_York", "2026-11-01", "02:00", "2026-11-01T07:00:00Z", "02:00-05:00"),
        ("Europe/Berlin", "2026-03-29", "02:30", "2026-03-29T01:30:00Z", "03:30+02:00"),
        ("Europe/Berlin", "2026-10-25", "02:30", "2026-10-25T00:30:00Z", "02:30+02:00"),
        ("Europe/Berlin", "2026-10-25", "03:00", "2026-10-25T02:00:00Z", "03:00+01:00"),
        # Lord Howe shifts by 30 minutes: 02:15 in the gap moves to 02:45
        ("Australia/Lord_Howe", "2026-10-04", "02:15", "2026-10-03T15:45:00Z", "02:45+11:00"),
        ("Australia/Lord_Howe", "2026-04-05", "01:45", "2026-04-04T14:45:00Z", "01:45+11:00"),
        ("Australia/Lord_Howe", "2026-04-05", "02:00", "2026-04-04T15:30:00Z", "02:00+10:30"),
        # Santiago changes at midnight: the fold is Saturday 23:00-24:00, the gap Sunday 00:00-01:00
        ("America/Santiago", "2026-04-04", "23:30", "2026-04-05T02:30:00Z", "23:30-03:00"),
        ("America/Santiago", "2026-04-05", "00:30", "2026-04-05T04:30:00Z", "00:30-04:00"),
        ("America/Santiago", "2026-09-05", "23:30", "2026-09-06T03:30:00Z", "23:30-04:00"),
        ("America/Santiago", "2026-09-06", "00:30", "2026-09-06T04:30:00Z", "01:30-03:00"),
        ("America/Santiago", "2026-09-06", "01:00", "2026-09-06T04:00:00Z", "01:00-03:00"),
        # Kolkata: +05:30 all year
        ("Asia/Kolkata", "2026-01-15", "08:00", "2026-01-15T02:30:00Z", "08:00+05:30"),
        ("Asia/Kolkata", "2026-07-15", "08:00", "2026-07-15T02:30:00Z", "08:00+05:30"),
        # Chatham: +12:45 in winter, +13:45 in summer, changing at 02:45 standard time
        ("Pacific/Chatham", "2026-07-01", "08:00", "2026-06-30T19:15:00Z", "08:00+12:45"),
        ("Pacific/Chatham", "2026-09-27", "03:00", "2026-09-26T14:15:00Z", "04:00+13:45"),
        ("Pacific/Chatham", "2026-04-05", "03:00", "2026-04-04T13:15:00Z", "03:00+13:45"),
        # Greenland springs forward from 23:00 Saturday to 00:00 Sunday: 23:30 moves past midnight
        ("America/Nuuk", "2026-03-28", "23:30", "2026-03-29T01:30:00Z", "00:30-01:00"),
        # fixed offsets never move
        ("UTC+05:30", "2026-03-08", "08:00", "2026-03-08T02:30:00Z", "08:00+05:30"),
        ("UTC-03:00", "2026-11-01", "01:30", "2026-11-01T04:30:00Z", "01:30-03:00"),
    ],
)
def test_slot_at_known_transitions(
    zone_name: str, day: str, wall: str, expected_utc: str, expected_local: str
) -> None:
    zone = load_zone(zone_name)
    slot = slot_instant(zone, dt.date.fromisoformat(day), dt.time.fromisoformat(wall))
    assert slot == utc(expected_utc)
    assert slot.tzinfo is UTC
    assert slot.astimezone(zone).isoformat(timespec="minutes")[11:] == expected_local
    assert slot_date(slot, zone, dt.time.fromisoformat(wall)) == dt.date.fromisoformat(day)


@pytest.mark.parametrize(
    ("zone_name", "wall", "after", "expected"),
    [
        (
            "America/New_York",
            "02:30",
            "2026-03-07T00:00:00Z",
            ["2026-03-07T07:30:00Z", "2026-03-08T07:30:00Z", "2026-03-09T06:30:00Z"],
        ),
        # exactly one slot on the fall-back night, unlike a cron trigger that fires twice
        (
            "America/New_York",
            "01:30",
            "2026-10-31T00:00:00Z",
            ["2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"],
        ),
        (
            "America/Santiago",
            "23:30",
            "2026-04-03T12:00:00Z",
            ["2026-04-04T02:30:00Z", "2026-04-05T02:30:00Z", "2026-04-06T03:30:00Z"],
        ),
        (
            "America/Nuuk",
            "23:30",
            "2026-03-27T00:00:00Z",
            ["2026-03-27T01:30:00Z", "2026-03-28T01:30:00Z", "2026-03-29T01:30:00Z", "2026-03-30T00:30:00Z"],
        ),
    ],
)
def test_daily_slots_across_transitions(zone_name: str, wall: str, after: str, expected: list[str]) -> None:
    zone = load_zone(zone_name)
    slots = upcoming_slots(zone, dt.time.fromisoformat(wall), DAILY, utc(after), len(expected))
    assert slots == [utc(text) for text in expected]


def test_greenland_saturday_slot_moves_past_midnight_but_still_counts_for_saturday() -> None:
    zone = load_zone("America/Nuuk")
    wall = dt.time(23, 30)
    saturdays = parse_cadence("sat")
    slots = upcoming_slots(zone, wall, saturdays, utc("2026-03-20T00:00:00Z"), 3)
    assert [slot_date(slot, zone, wall) for slot in slots] == [
        dt.date(2026, 3, 21),
        dt.date(2026, 3, 28),
        dt.date(2026, 4, 4),
    ]
    assert slots[1] == utc("2026-03-29T01:30:00Z")
    assert local_date(slots[1], zone) == dt.date(2026, 3, 29)
    # asked at Sunday 00:10 local, Saturday's moved slot (00:30) is still ahead
    assert next_slot(zone, wall, saturdays, utc("2026-03-29T01:10:00Z")) == slots[1]


def test_slots_strictly_after_and_naive_means_utc() -> None:
    zone = load_zone("Europe/Berlin")
    slot = utc("2026-06-01T06:00:00Z")
    assert next_slot(zone, dt.time(8, 0), DAILY, slot) == utc("2026-06-02T06:00:00Z")
    assert next_slot(zone, dt.time(8, 0), DAILY, slot - dt.timedelta(microseconds=1)) == slot
    assert next_slot(zone, dt.time(8, 0), DAILY, slot.replace(tzinfo=None)) == utc("2026-06-02T06:00:00Z")
    assert upcoming_slots(zone, dt.time(8, 0), DAILY, slot, 0) == []
    with pytest.raises(ValueError, match="count"):
        upcoming_slots(zone, dt.time(8, 0), DAILY, slot, -1)


def test_earliest_date_and_every_n_anchor() -> None:
    zone = load_zone("Asia/Tokyo")
    wall = dt.time(9, 0)
    after = utc("2026-05-01T12:00:00Z")  # 21:00 on Friday 1 May in Tokyo
    assert next_slot(zone, wall, DAILY, after, earliest_date=dt.date(2026, 5, 10)) == utc(
        "2026-05-10T00:00:00Z"
    )
    every_3 = parse_cadence("every-3-days")
    assert next_slot(zone, wall, every_3, after, anchor=dt.date(2026, 4, 30)) == utc("2026-05-03T00:00:00Z")
    assert next_slot(zone, wall, every_3, after) == utc("2026-05-02T00:00:00Z")
    assert upcoming_slots(zone, wall, every_3, after, 3) == [
        utc("2026-05-02T00:00:00Z"),
        utc("2026-05-05T00:00:00Z"),
        utc("2026-05-08T00:00:00Z"),
    ]
    weekdays = parse_cadence("weekdays")
    assert next_slot(zone, wall, weekdays, after) == utc("2026-05-04T00:00:00Z")  # Saturday -> Monday


# --- every transition of every zone -----------------------------------------------------------------


def walls_around(transition: Transition) -> list[dt.datetime]:
    """Local wall times just before, at the edges of, inside and just after a gap or fold."""
    start, end = sorted([transition.wall_before, transition.wall_after])
    middle = (start + (end - start) / 2).replace(second=0, microsecond=0)
    return [start - ONE_MINUTE, start, middle, end - ONE_MINUTE, end, end + ONE_MINUTE]


def isolated_transitions() -> tuple[list[Transition], int]:
    """Transitions with no other offset change of the same zone within two days (the rule's premise)."""
    by_zone: dict[str, list[Transition]] = defaultdict(list)
    for transition in all_transitions():
        by_zone[transition.zone_name].append(transition)
    isolated: list[Transition] = []
    crowded = 0
    for transitions in by_zone.values():
        for index, transition in enumerate(transitions):
            neighbours = transitions[max(0, index - 1) : index] + transitions[index + 1 : index + 2]
            if any(abs(other.at - transition.at) < 2 * ONE_DAY for other in neighbours):
                crowded += 1
            else:
                isolated.append(transition)
    return isolated, crowded


def test_every_transition_of_every_zone_2020_to_2037() -> None:
    transitions, crowded = isolated_transitions()
    assert len(transitions) > 5000, "the scan should find thousands of transitions"
    assert crowded == 0
    gaps = folds = 0
    for transition in transitions:
        zone = zoneinfo.ZoneInfo(transition.zone_name)
        gaps, folds = gaps + transition.is_gap, folds + (not transition.is_gap)
        for local in walls_around(transition):
            day, wall = local.date(), local.time()
            expected = [transition.slot_by_rule(day + shift * ONE_DAY, wall) for shift in (-1, 0, 1)]
            slots = upcoming_slots(zone, wall, DAILY, expected[0] - dt.timedelta(seconds=1), 3)
            context = f"{transition.zone_name} {transition.at:%Y-%m-%dT%H:%M:%SZ} wall {local}"
            assert slots == expected, context
            assert slot_date(slots[1], zone, wall) == day, context
    assert gaps > 1000 and folds > 1000
