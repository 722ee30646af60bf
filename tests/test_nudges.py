"""Nudges with a moved clock: after the quiet days, in the learner's window, never in quiet hours, limited."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, available_timezones

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.content import NudgeRules, ReviewRules
from bot.db import Database
from bot.models import DeliveryKind
from bot.ports import Sender
from bot.render import DONE_LABEL
from bot.windows import WINDOW_LENGTH, QuietHours, next_window_instant
from tests.fakes import FakeClock, reply_text
from tests.learning_world import BERLIN, World, berlin, make_course, texts

ALICE = Sender("fake", "1001", "1001", "Alice Liddell", "en")
NO_REVIEW = ReviewRules(enabled=False)


def nudge_times(sent: list) -> list[dt.datetime]:  # type: ignore[type-arg]
    return [item.at for item in sent if item.kind is DeliveryKind.NUDGE]


def lesson_times(sent: list) -> list[dt.datetime]:  # type: ignore[type-arg]
    return sorted({item.at for item in sent if item.kind is DeliveryKind.LESSON})


async def test_a_quiet_learner_gets_at_most_max_nudges_and_every_lesson_still_comes(
    database: Database, clock: FakeClock
) -> None:
    course = make_course(lessons=8, review=NO_REVIEW, nudges=NudgeRules(after_days=2, max=2))
    world = World(database, clock, course)
    clock.at = berlin(3, 2, 7)  # Monday
    await world.onboard(ALICE)  # 08:00 daily; lesson 1 comes at once
    sent = await world.run_days(berlin(3, 10, 23))
    # Quiet since Monday: a nudge on Wednesday at the window's opening, another two days later, then none.
    assert nudge_times(sent) == [berlin(3, 4, 8), berlin(3, 6, 8)]
    assert lesson_times(sent) == [berlin(3, day, 8) for day in range(2, 10)]
    [first, *_rest] = texts(sent, DeliveryKind.NUDGE)
    assert first.startswith("Hi Alice!") and "“Lesson 3”" in first and "Done" in first


async def test_acting_again_starts_a_new_quiet_stretch(database: Database, clock: FakeClock) -> None:
    course = make_course(lessons=12, review=NO_REVIEW, nudges=NudgeRules(after_days=2, max=1))
    world = World(database, clock, course)
    clock.at = berlin(3, 2, 7)
    await world.onboard(ALICE)
    sent = await world.run_days(berlin(3, 7, 9))
    assert nudge_times(sent) == [berlin(3, 4, 8)]  # then the limit holds
    clock.at = berlin(3, 7, 12)  # Saturday: Alice answers lesson 6's quiz
    await world.answer_lesson_quiz(ALICE, "lesson-6", 1)
    sent = await world.run_days(berlin(3, 12, 23))
    assert nudge_times(sent) == [berlin(3, 9, 8)]  # two quiet days after Saturday, one nudge again


async def test_no_nudge_during_a_pause_and_none_for_a_learner_who_keeps_up(
    database: Database, clock: FakeClock
) -> None:
    course = make_course(lessons=8, review=NO_REVIEW, nudges=NudgeRules(after_days=2, max=3))
    world = World(database, clock, course)
    bob = Sender("fake", "2002", "2002", "Bob", "en")
    clock.at = berlin(3, 2, 7)
    await world.onboard(ALICE)
    await world.onboard(bob)
    await world.tick()
    clock.at = berlin(3, 2, 9)
    assert "Paused" in reply_text(await world.command(ALICE, "pause"))
    sent: list = []  # type: ignore[type-arg]
    for day in range(2, 9):
        sent += await world.run_days(berlin(3, day, 8, 30))
        clock.at = berlin(3, day, 9)
        slug = f"lesson-{day - 1}"
        await world.answer_lesson_quiz(bob, slug, 1)  # Bob answers every day
    assert nudge_times(sent) == []
    assert {item.part.text for item in sent if item.kind is DeliveryKind.NUDGE} == set()


async def test_quiet_hours_move_a_nudge_out_of_the_early_window(database: Database, clock: FakeClock) -> None:
    rules = NudgeRules(after_days=2, max=1, quiet_start=dt.time(21, 0), quiet_end=dt.time(8, 0))
    world = World(database, clock, make_course(lessons=6, review=NO_REVIEW, nudges=rules))
    clock.at = berlin(3, 2, 6)
    await world.onboard(ALICE, time="07:00")
    sent = await world.run_days(berlin(3, 6, 23))
    # Lessons at 07:00 as chosen; the nudge waits for the quiet hours to end, still inside the window.
    assert berlin(3, 4, 7) in lesson_times(sent)
    assert nudge_times(sent) == [berlin(3, 4, 8)]


async def test_a_window_inside_the_quiet_hours_nudges_when_they_end(
    database: Database, clock: FakeClock
) -> None:
    world = World(database, clock, make_course(lessons=6, review=NO_REVIEW, nudges=NudgeRules(2, 1)))
    clock.at = berlin(3, 2, 21)
    await world.onboard(ALICE, time="22:00")
    sent = await world.run_days(berlin(3, 6, 23))
    [nudge] = nudge_times(sent)
    assert nudge == berlin(3, 5, 8)  # Wednesday's 22:00 window is quiet: Thursday 08:00
    assert DONE_LABEL  # the nudge asks for the button the lessons carry


ZONES = sorted(
    zone for zone in available_timezones() if "/" in zone and not zone.startswith(("Etc", "SystemV"))
)


@settings(max_examples=300, deadline=None)
@given(
    zone_name=st.sampled_from(ZONES),
    wall=st.times(),
    quiet_start=st.times(),
    quiet_end=st.times(),
    after=st.datetimes(min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2030, 12, 31)),
    days_ahead=st.integers(min_value=0, max_value=5),
)
def test_a_nudge_instant_is_never_in_quiet_hours_and_in_the_window_when_the_window_allows(
    zone_name: str,
    wall: dt.time,
    quiet_start: dt.time,
    quiet_end: dt.time,
    after: dt.datetime,
    days_ahead: int,
) -> None:
    zone = ZoneInfo(zone_name)
    wall = wall.replace(second=0, microsecond=0)
    quiet = QuietHours(
        quiet_start.replace(second=0, microsecond=0), quiet_end.replace(second=0, microsecond=0)
    )
    moment = after.replace(tzinfo=dt.UTC)
    earliest = moment.astimezone(zone).date() + dt.timedelta(days=days_ahead)
    instant = next_window_instant(zone, wall, after=moment, earliest_day=earliest, quiet=quiet)
    local = instant.astimezone(zone)
    assert instant >= moment
    assert local.date() >= earliest - dt.timedelta(days=1)
    assert not quiet.contains(local.time().replace(tzinfo=None))
    assert instant - moment < dt.timedelta(days=days_ahead + 3)


@settings(max_examples=200, deadline=None)
@given(
    wall=st.times(),
    after=st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2026, 12, 31)),
)
def test_without_quiet_hours_the_instant_lies_in_the_learners_window(
    wall: dt.time, after: dt.datetime
) -> None:
    wall = wall.replace(second=0, microsecond=0)
    moment = after.replace(tzinfo=dt.UTC)
    instant = next_window_instant(BERLIN, wall, after=moment)
    local = instant.astimezone(BERLIN)
    for day in (local.date(), local.date() - dt.timedelta(days=1)):
        opens = dt.datetime.combine(day, wall, tzinfo=BERLIN).astimezone(dt.UTC)
        if opens <= instant < opens + WINDOW_LENGTH:
            break
    else:
        raise AssertionError(f"{local} is outside the window opening at {wall}")
