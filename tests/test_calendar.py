"""`/calendar`: an `.ics` of the learner's upcoming lessons, the same instants as `dripcourse schedule`."""

from __future__ import annotations

import datetime as dt
import json

import icalendar
import pytest
from typer.testing import CliRunner

from bot.calendar_ics import CalendarEntry, build_calendar
from bot.content import NudgeRules, ReviewRules
from bot.db import Database
from bot.ports import FilePart, Reply, Sender
from dripcourse.cli import app
from tests.fakes import FakeClock, reply_text
from tests.learning_world import World, berlin, make_course

ALICE = Sender("fake", "1001", "1001", "Alice", "en")
RUNNER = CliRunner()


def calendar_of(reply: Reply) -> icalendar.Calendar:
    [part] = [part for part in reply.parts if isinstance(part, FilePart)]
    assert part.filename.endswith(".ics")
    return icalendar.Calendar.from_ical(part.content)


def starts(calendar: icalendar.Calendar) -> list[dt.datetime]:
    return [event.decoded("dtstart").astimezone(dt.UTC) for event in calendar.walk("VEVENT")]


def schedule_json(*args: str) -> list[dt.datetime]:
    result = RUNNER.invoke(app, ["schedule", *args, "--json"])
    assert result.exit_code == 0, result.output
    return [dt.datetime.fromisoformat(text.replace("Z", "+00:00")) for text in json.loads(result.output)]


@pytest.fixture
def world(database: Database, clock: FakeClock) -> World:
    course = make_course(lessons=12, review=ReviewRules(enabled=False), nudges=NudgeRules(max=0))
    return World(database, clock, course)


async def test_the_calendar_lists_the_instants_dripcourse_schedule_prints_across_a_dst_change(
    world: World,
) -> None:
    world.clock.at = berlin(3, 24, 12)  # Tuesday; Berlin springs forward on Sunday 29 March
    await world.onboard(ALICE, time="07:30", pace="weekdays")
    await world.tick()  # lesson 1 now: it uses up today
    reply = await world.command(ALICE, "calendar")
    calendar = calendar_of(reply)
    events = list(calendar.walk("VEVENT"))
    assert len(events) == 11
    expected = schedule_json(
        "--tz", "Europe/Berlin", "--at", "07:30", "--cadence", "weekdays", "--from", "2026-03-24T23:00:00Z",
        "--count", "11",
    )  # fmt: skip
    assert starts(calendar) == expected
    # In the learner's zone, at their wall time on both sides of the change.
    assert {event.decoded("dtstart").strftime("%H:%M") for event in events} == {"07:30"}
    assert {str(event["dtstart"].params["TZID"]) for event in events} == {"Europe/Berlin"}
    assert [component.name for component in calendar.walk("VTIMEZONE")] == ["VTIMEZONE"]
    assert str(events[0]["summary"]) == "Lesson 2: Lesson 2"
    assert world.learner(ALICE).calendar_sent_at == world.clock.now()


async def test_a_settings_change_sends_a_fresh_calendar_that_moves_the_same_events(world: World) -> None:
    world.clock.at = berlin(3, 2, 7)
    await world.onboard(ALICE)
    await world.tick()
    before = calendar_of(await world.command(ALICE, "calendar"))
    world.clock.at = berlin(3, 2, 9)
    reply = await world.command(ALICE, "time", "18:15")
    assert "18:15" in reply_text(reply)
    after = calendar_of(reply)
    uids = [str(event["uid"]) for event in before.walk("VEVENT")]
    assert [str(event["uid"]) for event in after.walk("VEVENT")] == uids
    sequences = {int(event["sequence"]) for event in after.walk("VEVENT")}
    assert min(sequences) > max(int(event["sequence"]) for event in before.walk("VEVENT"))
    expected = schedule_json("--tz", "Berlin", "--at", "18:15", "--from", "2026-03-02T23:00:00Z", "-n", "11")
    assert starts(after) == expected


async def test_no_calendar_before_anything_is_scheduled(world: World) -> None:
    world.clock.at = berlin(3, 2, 7)
    reply = await world.command(ALICE, "calendar")
    assert "nothing to put in a calendar" in reply_text(reply)
    assert not [part for part in reply.parts if isinstance(part, FilePart)]
    reply = await world.command(ALICE, "time", "09:00")
    assert not [part for part in reply.parts if isinstance(part, FilePart)]


def test_a_fixed_offset_zone_is_written_in_utc() -> None:
    moment = dt.datetime(2026, 5, 1, 3, 0, tzinfo=dt.UTC)
    content = build_calendar([CalendarEntry("a@dripcourse", moment, "Lesson")], "UTC+05:30", moment)
    calendar = icalendar.Calendar.from_ical(content)
    [event] = calendar.walk("VEVENT")
    assert event.decoded("dtstart") == moment
    assert not list(calendar.walk("VTIMEZONE"))
