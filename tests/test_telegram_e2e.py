"""The real `dripcourse run` process against the Bot API emulator: one learner's journey across restarts.

The bot runs as a separate process configured only by environment variables, receiving updates by long
polling or by webhook. Time moves by stopping it (SIGTERM) and starting it again with a larger
`time_offset_seconds`, which also shows that a restart loses nothing and repeats nothing: every message
the learner receives is checked, in order, and nothing else arrives.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlmodel import Session, col, select

from bot.db import create_db_engine
from bot.models import Delivery, DeliveryKind, DeliveryStatus, Enrollment, EnrollmentStatus, QuizAnswer
from tests.conftest import SAMPLE_COURSES, free_port
from tests.e2e.telegram_chat import TelegramChat, location_keyboard
from tests.emulators.telegram_bot_api import SentRecord, TelegramEmulator, TelegramLimits, TelegramUser

TOKYO = ZoneInfo("Asia/Tokyo")  # no daylight saving time: one day between slots is always 24 hours
LEARNER = TelegramUser(7001, "Keiko", username="keiko", language_code="en")
COURSE = "“Learning on your own clock”"
WEBHOOK_SECRET = "e2e-hook_secret-0123456789"
STOP_TIMEOUT = 20.0
LEAD_SECONDS = 1.0
"""How far past a release the restarted bot's clock starts."""


def bot_command() -> list[str]:
    """The installed `dripcourse` console script, or the same entry point through this interpreter."""
    script = Path(sys.executable).with_name("dripcourse")
    if script.exists():
        return [str(script), "run"]
    return [sys.executable, "-c", "from dripcourse.cli import main; main()", "run"]


@dataclass
class BotRuns:
    """Starts and stops `dripcourse run`; each start gets the environment plus a clock offset."""

    env: dict[str, str]
    cwd: Path
    log_path: Path
    exit_codes: list[int | None] = field(default_factory=list)
    _process: asyncio.subprocess.Process | None = None
    _log: IO[bytes] | None = None

    async def start(self, offset_seconds: float) -> None:
        assert self._process is None, "the bot is already running"
        env = {**self.env, "DRIPCOURSE_SCHEDULER_TIME_OFFSET_SECONDS": f"{offset_seconds:.3f}"}
        self._log = self.log_path.open("ab")
        self._log.write(f"--- dripcourse run, clock offset {offset_seconds:.0f}s ---\n".encode())
        self._log.flush()
        self._process = await asyncio.create_subprocess_exec(
            *bot_command(), env=env, cwd=self.cwd, stdout=self._log, stderr=asyncio.subprocess.STDOUT
        )

    async def stop(self) -> None:
        """SIGTERM, as a service manager would send, and wait for a graceful exit."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            self.exit_codes.append(await asyncio.wait_for(process.wait(), STOP_TIMEOUT))
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
                self.exit_codes.append(None)
            if self._log is not None:
                self._log.close()
                self._log = None

    async def restart(self, offset_seconds: float) -> None:
        await self.stop()
        await self.start(offset_seconds)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
async def emu() -> AsyncIterator[TelegramEmulator]:
    # Telegram lets a private chat take short bursts of replies; the flood limits are tested elsewhere.
    async with TelegramEmulator(limits=TelegramLimits(enabled=False)) as emulator:
        yield emulator


@pytest.fixture
async def runs(
    request: pytest.FixtureRequest, emu: TelegramEmulator, tmp_path: Path
) -> AsyncIterator[BotRuns]:
    mode: str = request.param
    env = {name: value for name, value in os.environ.items() if not name.startswith("DRIPCOURSE_")}
    env |= {
        "DRIPCOURSE_TELEGRAM_TOKEN": emu.token,
        "DRIPCOURSE_TELEGRAM_API_BASE_URL": emu.base_url,
        "DRIPCOURSE_TELEGRAM_FILE_BASE_URL": emu.file_base_url,
        "DRIPCOURSE_DATABASE_URL": f"sqlite:///{tmp_path / 'dripcourse.db'}",
        "DRIPCOURSE_COURSES_PATH": str(SAMPLE_COURSES),
        "DRIPCOURSE_SCHEDULER_HEARTBEAT_SECONDS": "0.5",
    }
    if mode == "webhook":
        port = free_port()
        env |= {
            "DRIPCOURSE_TELEGRAM_MODE": "webhook",
            "DRIPCOURSE_TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram/updates",
            "DRIPCOURSE_TELEGRAM_WEBHOOK_LISTEN": "127.0.0.1",
            "DRIPCOURSE_TELEGRAM_WEBHOOK_PORT": str(port),
            "DRIPCOURSE_TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
    bot_runs = BotRuns(env, tmp_path, tmp_path / "dripcourse-run.log")
    try:
        yield bot_runs
    finally:
        await bot_runs.stop()
        if bot_runs.log_path.exists():
            print(bot_runs.log()[-20_000:])  # shown when the test fails


# --- reading the bot's database between runs ------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    enrollment: Enrollment
    deliveries: list[Delivery]
    answers: list[QuizAnswer]


def stored(runs: BotRuns) -> Stored:
    """The learner's rows, read while the bot is stopped."""
    engine = create_db_engine(runs.env["DRIPCOURSE_DATABASE_URL"])
    try:
        with Session(engine) as session:
            return Stored(
                session.exec(select(Enrollment)).one(),
                list(session.exec(select(Delivery).order_by(col(Delivery.id))).all()),
                list(session.exec(select(QuizAnswer)).all()),
            )
    finally:
        engine.dispose()


def offset_to(moment: dt.datetime) -> float:
    """The clock offset that puts a process started now just past `moment`."""
    return (moment - dt.datetime.now(dt.UTC)).total_seconds() + LEAD_SECONDS


def local(moment: dt.datetime) -> str:
    """How the bot writes a moment in the learner's zone."""
    at = moment.astimezone(TOKYO)
    return f"{at:%a %d %b} at {at:%H:%M} (Asia/Tokyo)"


# --- what the learner must see --------------------------------------------------------------------


def heading(number: int, title: str) -> str:
    return f"Learning on your own clock\n\nLesson {number} of 8 · {title}\n\n"


def check_lesson(records: list[SentRecord], *expected: tuple[str, Callable[[SentRecord], bool]]) -> None:
    assert [record.method for record in records] == [method for method, _ in expected]
    for record, (method, check) in zip(records, expected, strict=True):
        assert check(record), f"{method}: {record.body!r} {record.callback_data}"


def body_starts(prefix: str, buttons: tuple[str, ...] = ()) -> Callable[[SentRecord], bool]:
    return lambda record: (record.body or "").startswith(prefix) and record.callback_data == buttons


# --- the journey ----------------------------------------------------------------------------------


@pytest.mark.parametrize("runs", ["polling", "webhook"], indirect=True)
async def test_a_learner_takes_the_course_from_a_real_bot_process_across_restarts(
    runs: BotRuns, emu: TelegramEmulator
) -> None:
    chat = TelegramChat(emu, LEARNER, timeout=20.0)
    webhook = "DRIPCOURSE_TELEGRAM_MODE" in runs.env

    # Run 1, the real time: enrol by a button, type the zone and the time, pick the pace by a button.
    await runs.start(0.0)
    (greeting,) = await chat.command("start")
    assert (greeting.body or "").startswith(
        "Hello! I deliver short courses one lesson at a time, at your own local time.\nPick a course:\n"
        "• Learning on your own clock (8 lessons) – "
    )
    assert greeting.callback_data == ("enrol:async-learning",)
    question, location = await chat.press("enrol:async-learning", replies=2)
    assert (question.body or "").startswith(
        f"Welcome to {COURSE}! Lessons arrive at your own local time.\n\nFirst, which time zone are you in?"
    )
    assert question.callback_data[0] == "zone:1:Europe/London"
    assert location_keyboard(location) == ["📍 Send my location"]
    (time_question,) = await chat.send("Tokyo")
    told = re.fullmatch(
        r"Time zone set: Asia/Tokyo \(it is (\d\d):(\d\d) there now\)\.\n\n"
        r"What time of day should lessons arrive\? Type a time like 08:00, 7:30, 18:45 or 8am\.",
        time_question.body or "",
    )
    assert told is not None, time_question.body
    tokyo_now = dt.datetime.now(TOKYO)
    said = tokyo_now.replace(hour=int(told[1]), minute=int(told[2]))
    assert abs((tokyo_now - said).total_seconds()) < 120 or abs((tokyo_now - said).total_seconds()) > 86_280
    (pace_question,) = await chat.send("7:30")
    assert (pace_question.body or "").startswith("Lessons will arrive at 07:30, your time.\n\nHow often?")
    assert "pace:1:daily" in pace_question.callback_data
    (plan,) = await chat.press("pace:1:daily")
    lesson_1 = await chat.expect(2)
    check_lesson(
        lesson_1,
        ("sendMessage", body_starts(heading(1, "Welcome, and a routine built around your own clock"))),
        ("sendAudio", body_starts("A three-second chime.", ("done:1", "next:1"))),
    )

    await runs.stop()
    first = stored(runs)
    released_on = first.enrollment.last_release_at
    assert released_on is not None
    # Lesson 1 used up its local date; lesson 2 comes at 07:30 Tokyo time on the next one.
    slot_2 = dt.datetime.combine(
        released_on.astimezone(TOKYO).date() + dt.timedelta(days=1), dt.time(7, 30), TOKYO
    ).astimezone(dt.UTC)
    assert first.enrollment.next_release_at == slot_2
    assert plan.body == (
        f"You're all set: daily at 07:30 (Asia/Tokyo).\nLesson 1: right now\nLesson 2: {local(slot_2)}\n"
        "Send /help any time to see what I can do."
    )

    # Run 2, just past lesson 2's slot: it is released at start, with its native quiz.
    await runs.start(offset_to(slot_2))
    lesson_2 = await chat.expect(3)
    check_lesson(
        lesson_2,
        ("sendMessage", body_starts(heading(2, "Choosing your time and your cadence"))),
        ("sendPoll", lambda record: record.poll is not None and record.poll.question.startswith("You study")),
        ("sendMessage", body_starts("When you are ready:", ("done:2", "next:1"))),
    )
    poll = lesson_2[1].poll
    assert poll is not None

    # The learner answers while the bot is down; the next process matches the answer by the stored poll id.
    await runs.stop()
    emu.user_answers_poll(LEARNER, poll.id, [1])
    await runs.start(offset_to(slot_2) + 60)
    assert [record.body for record in await chat.expect(1)] == [
        "✅ Right!\n\n"
        "A fixed slot at a time that suits you, plus slack built in, beats willpower and cramming."
    ]
    assert [record.body for record in await chat.command("pause")] == [
        f"Paused {COURSE} until you send /resume. Nothing is lost."
    ]
    (welcome_back,) = await chat.command("resume")

    await runs.stop()
    third = stored(runs)
    slot_3 = slot_2 + dt.timedelta(days=1)
    assert third.enrollment.next_release_at == slot_3
    assert welcome_back.body == f"Welcome back! Next lesson: {local(slot_3)}."
    assert [(answer.lesson_slug, answer.option_index, answer.correct) for answer in third.answers] == [
        ("time-and-cadence", 1, True)
    ]

    # Run 4, a day later: lesson 3, then the learner leaves the course.
    await runs.start(offset_to(slot_3))
    check_lesson(
        await chat.expect(1),
        (
            "sendMessage",
            body_starts(heading(3, "Staying motivated without a live class"), ("done:3", "next:1")),
        ),
    )
    (confirm,) = await chat.command("stop")
    assert confirm.body == f"Leave {COURSE}? Your progress will be kept for a while, but lessons stop."
    assert confirm.callback_data == ("stop:1", "keep:1")
    assert [record.body for record in await chat.press("stop:1")] == [
        f"You have left {COURSE}. Send /courses to join again."
    ]
    if webhook:
        url = runs.env["DRIPCOURSE_TELEGRAM_WEBHOOK_URL"]
        async with httpx.AsyncClient() as client:
            forged = await client.post(url, json={"update_id": 10**6, "message": {"text": "/start"}})
        assert forged.status_code == 403

    await runs.stop()
    assert runs.exit_codes == [0, 0, 0, 0]

    # Every message, once, in order: 6 replies and lesson 1's 2 parts in run 1, lesson 2's 3 parts, 3
    # replies after the restart, lesson 3 and 2 replies on the last run.
    chat.assert_quiet()
    assert {record.chat_id for record in emu.sent} == {LEARNER.id}
    assert chat.seen == 17
    assert len({record.message_id for record in chat.messages()}) == 17
    final = stored(runs)
    lessons = [delivery for delivery in final.deliveries if delivery.kind is DeliveryKind.LESSON]
    assert [(delivery.lesson_slug, delivery.status) for delivery in lessons] == [
        ("your-own-clock", DeliveryStatus.SENT),
        ("time-and-cadence", DeliveryStatus.SENT),
        ("motivation", DeliveryStatus.SENT),
    ]
    assert (final.enrollment.status, final.enrollment.next_release_at) == (EnrollmentStatus.STOPPED, None)

    log = runs.log()
    assert not re.findall(
        r"^.* (?:ERROR|CRITICAL) (?:bot|scheduler|adapters|dripcourse)\b.*$", log, re.MULTILINE
    )
    assert emu.token not in log and emu.token.split(":")[1] not in log
    assert log.count("telegram adapter started") == 4
    updates_by_polling = any(request.method == "getUpdates" for request in emu.requests)
    assert updates_by_polling is not webhook
    if webhook:
        assert emu.webhook_attempts
        assert all(attempt.secret_token_sent for attempt in emu.webhook_attempts)
        assert {attempt.url for attempt in emu.webhook_attempts} == {
            runs.env["DRIPCOURSE_TELEGRAM_WEBHOOK_URL"]
        }
    else:
        assert emu.webhook_attempts == []
