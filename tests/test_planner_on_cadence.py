"""The planner's shortcut for a next lesson due on the cadence alone equals `advance_after_release`.

Random IANA zones (and fixed offsets), wall times (weighted to the small hours and to the edges of DST
gaps and folds), cadences and anchors, releases on a slot or off it, 2020-2037.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from hypothesis import given
from hypothesis import strategies as st

from bot.cadence import Cadence
from bot.content import Course, DripRules, Lesson, Unlock
from bot.pacing import slot_instant
from bot.progression import LearnerClock, advance_after_release
from scheduler.planner import _CourseView, advance_on_cadence
from tests.test_pacing_properties import (
    PROPERTY_SETTINGS,
    Transition,
    cadences,
    days,
    moments_on,
    near_transitions,
    walls,
    zone_names,
    zone_of,
)

PLAIN = Course(
    slug="plain",
    title="Plain",
    description="Two lessons on the cadence alone.",
    language="en",
    default_cadence="daily",
    default_time="08:00",
    lessons=(
        Lesson(slug="one", number=1, title="One", body_markdown="Text."),
        Lesson(slug="two", number=2, title="Two", body_markdown="Text."),
    ),
)


def assert_shortcut_matches(clock: LearnerClock, released_at: dt.datetime, now: dt.datetime) -> None:
    general = advance_after_release(PLAIN, PLAIN.lessons[0], clock, released_at=released_at, now=now)
    assert general.next_release_at is not None
    assert advance_on_cadence(clock, released_at, now) == (general.next_release_at, general.anchor)


@PROPERTY_SETTINGS
@given(
    name=zone_names,
    day=days,
    wall=walls,
    cadence=cadences,
    on_slot=st.booleans(),
    late_s=st.integers(-3600, 10 * 24 * 3600),
    data=st.data(),
)
def test_the_on_cadence_shortcut_equals_the_general_advance(
    name: str,
    day: dt.date,
    wall: dt.time,
    cadence: Cadence,
    on_slot: bool,
    late_s: int,
    data: st.DataObject,
) -> None:
    zone = zone_of(name)
    anchor = data.draw(st.one_of(st.none(), st.just(day - dt.timedelta(days=data.draw(st.integers(0, 20))))))
    released_at = slot_instant(zone, day, wall) if on_slot else data.draw(moments_on(day))
    clock = LearnerClock(zone, wall, cadence, anchor)
    assert_shortcut_matches(clock, released_at, released_at + dt.timedelta(seconds=late_s))


@PROPERTY_SETTINGS
@given(case=near_transitions(), cadence=cadences, late_s=st.integers(0, 3 * 24 * 3600), data=st.data())
def test_the_on_cadence_shortcut_equals_the_general_advance_around_dst_transitions(
    case: tuple[Transition, dt.time, dt.datetime], cadence: Cadence, late_s: int, data: st.DataObject
) -> None:
    transition, wall, after = case
    zone = zoneinfo.ZoneInfo(transition.zone_name)
    day = after.astimezone(zone).date() + dt.timedelta(days=data.draw(st.integers(0, 3)))
    anchor = data.draw(st.one_of(st.none(), st.just(day - dt.timedelta(days=data.draw(st.integers(0, 20))))))
    released_at = slot_instant(zone, day, wall)
    clock = LearnerClock(zone, wall, cadence, anchor)
    assert_shortcut_matches(clock, released_at, released_at + dt.timedelta(seconds=late_s))


def test_only_a_next_lesson_without_drip_rules_or_gate_takes_the_shortcut() -> None:
    gated = Lesson(
        slug="three", number=3, title="Three", body_markdown="Text.", drip=DripRules(unlock=Unlock.AFTER_DONE)
    )
    spaced = Lesson(
        slug="four", number=4, title="Four", body_markdown="Text.", drip=DripRules(min_days_after_previous=2)
    )
    dated = Lesson(
        slug="five",
        number=5,
        title="Five",
        body_markdown="Text.",
        drip=DripRules(not_before=dt.date(2030, 1, 1)),
    )
    course = Course(
        slug="mixed",
        title="Mixed",
        description="Drip rules of every kind.",
        language="en",
        default_cadence="daily",
        default_time="08:00",
        lessons=(*PLAIN.lessons, gated, spaced, dated),
    )
    steps = _CourseView(course).steps
    assert [steps[slug].on_cadence for slug in ("one", "two", "three", "four", "five")] == [
        True,
        False,
        False,
        False,
        False,
    ]
