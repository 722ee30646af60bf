"""The console adapter and the demo: a learner takes the whole sample course in a terminal."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from pydantic import SecretStr

from adapters.console import ConsoleAdapter, console_sender, parse_line
from bot.ports import Button, ButtonPressed, Command, TextPart, TextReceived
from bot.settings import CoursesSettings, DatabaseSettings, Settings
from dripcourse.app import App
from dripcourse.commands.demo import LEARNERS, run_demo
from tests.conftest import SAMPLE_COURSES
from tests.fakes import FakeClock

LEARNER = console_sender("ada", "Ada")


def test_typed_lines_become_neutral_events() -> None:
    choices = ["enrol:async-learning", "time:1:0800"]
    assert parse_line("/pause 3", LEARNER, choices) == Command(LEARNER, "pause", "3")
    assert parse_line("/START", LEARNER, choices) == Command(LEARNER, "start", "")
    assert parse_line("2", LEARNER, choices) == ButtonPressed(LEARNER, "time:1:0800")
    assert parse_line("3", LEARNER, choices) == TextReceived(LEARNER, "3")
    assert parse_line("  Berlin ", LEARNER, choices) == TextReceived(LEARNER, "Berlin")
    assert parse_line("   ", LEARNER, choices) is None


async def test_an_edited_message_is_printed_again_as_an_update() -> None:
    output = io.StringIO()
    console = ConsoleAdapter(output, prefix=lambda chat_id: f"[{chat_id}] ")
    (message_id,) = (await console.send("ines", TextPart("Broadcast #1: 0 of 2 sent"))).message_ids
    await console.edit(
        "ines", message_id, TextPart("Broadcast #1 finished: 2 of 2 sent", (Button("OK", "ok"),))
    )
    assert output.getvalue().splitlines() == [
        "[ines] Broadcast #1: 0 of 2 sent",
        "[ines] (message 1 updated)",
        "[ines] Broadcast #1 finished: 2 of 2 sent",
        "[ines]   [1] OK",
    ]
    assert console.choices["ines"] == ["ok"]


def demo_settings(tmp_path: Path) -> Settings:
    return Settings(
        database=DatabaseSettings(url=SecretStr(f"sqlite:///{tmp_path / 'demo.db'}")),
        courses=CoursesSettings(path=SAMPLE_COURSES),
    )


async def test_demo_learners_take_the_whole_sample_course_on_their_own_clocks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_demo(demo_settings(tmp_path), "async-learning")
    output = capsys.readouterr().out
    for learner in LEARNERS:
        arrivals = [
            line for line in output.splitlines() if f" {learner.name} " in line and "<- lesson" in line
        ]
        assert len(arrivals) == 8, output
        # after lesson 1 (at enrolment), every lesson arrives at the learner's chosen local wall time
        assert all(f" {learner.local_time} " in line for line in arrivals[1:]), arrivals
    # New York crosses its spring-forward night (8 March 2026) and keeps 06:45 local
    assert "06:45 EST" in output
    assert "06:45 EDT" in output
    assert "3 of 3 learners finished" in output


async def test_a_console_learner_chats_through_enrolment(tmp_path: Path) -> None:
    output = io.StringIO()
    console = ConsoleAdapter(output)
    clock = FakeClock(dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC))
    app = await App.open(
        demo_settings(tmp_path), clock=clock, adapters={"console": console}, background=False
    )
    await app.start()
    try:
        await console.type_line(LEARNER, "/start")
        assert "[1] Learning on your own clock" in output.getvalue()
        await console.type_line(LEARNER, "1")
        await console.type_line(LEARNER, "sao paulo")
        await console.type_line(LEARNER, "8am")
        await console.type_line(LEARNER, "mon, wed, fri")
        transcript = output.getvalue()
        assert "America/Sao_Paulo" in transcript
        assert "You're all set: mon,wed,fri at 08:00 (America/Sao_Paulo)" in transcript
        await app.heartbeat.tick()
        assert await app.sender.drain_once() == 1
        assert "Lesson 1 of 8" in output.getvalue()
    finally:
        await app.stop()
