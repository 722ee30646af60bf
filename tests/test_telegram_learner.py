"""The learner's side on Telegram: every command and every platform fault, through the Bot API emulator.

The real App (conversation, planner, outbox sender, pacer) runs in-process with the real Telegram
adapter talking HTTP to the emulator; a fake clock moves time and each test ticks the heartbeat and
drains the outbox itself. Every assertion is on what a Telegram user would see in their chat.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select
from telegram import Bot, BotCommandScopeDefault

from bot.conversation import HELP, LEARNER_COMMANDS
from bot.models import Delivery, DeliveryStatus, Enrollment, EnrollmentStatus, Learner
from dripcourse.app import App
from tests.e2e.telegram_app import emulator_settings, running_app
from tests.e2e.telegram_chat import TelegramChat, location_keyboard
from tests.emulators.telegram_bot_api import (
    Fault,
    FaultKind,
    SentRecord,
    TelegramEmulator,
    TelegramLimits,
    TelegramUser,
)
from tests.fakes import FakeClock

ADA = TelegramUser(42, "Ada", username="ada", language_code="en", last_name="Lovelace")
BOB = TelegramUser(43, "Bob", username="bob", language_code="en")
BERLIN = ZoneInfo("Europe/Berlin")
COURSE = "“Learning on your own clock”"


def berlin(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A moment of March 2026 on Berlin's wall clock (CET, UTC+1, all month before the 29th)."""
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=BERLIN).astimezone(dt.UTC)


@dataclass
class Running:
    """The wired app on the emulator, driven by hand: `deliver()` is one heartbeat and one drain."""

    app: App
    emu: TelegramEmulator
    clock: FakeClock

    async def deliver(self) -> int:
        """Release what is due now and send it; returns how many deliveries the sender processed."""
        await self.app.heartbeat.tick()
        return await self.app.sender.drain_once()

    async def deliver_at(self, moment: dt.datetime) -> int:
        self.clock.at = moment
        return await self.deliver()

    def session(self) -> Session:
        return Session(self.app.database.engine)

    def enrollment(self, user: TelegramUser = ADA) -> Enrollment:
        with self.session() as session:
            return session.exec(
                select(Enrollment).join(Learner).where(Learner.platform_user_id == str(user.id))
            ).one()

    def learner(self, user: TelegramUser = ADA) -> Learner:
        with self.session() as session:
            return session.exec(select(Learner).where(Learner.platform_user_id == str(user.id))).one()

    def deliveries(self, user: TelegramUser = ADA) -> list[Delivery]:
        learner_id = self.learner(user).id
        with self.session() as session:
            statement = select(Delivery).where(Delivery.learner_id == learner_id).order_by(col(Delivery.id))
            return list(session.exec(statement).all())


@pytest.fixture
async def emu() -> AsyncIterator[TelegramEmulator]:
    # Replies are not paced by the outbox (they answer the learner at once), as on Telegram, where a
    # private chat takes short bursts: flood limits would only get in the way here.
    async with TelegramEmulator(limits=TelegramLimits(enabled=False)) as emulator:
        yield emulator


@pytest.fixture
async def running(emu: TelegramEmulator, clock: FakeClock, tmp_path: Path) -> AsyncIterator[Running]:
    # The pacer's own rates are tested elsewhere; here they would only slow multi-part lessons.
    settings = emulator_settings(
        emu, tmp_path / "dripcourse.db", per_chat_per_second=30, per_group_per_minute=600
    )
    async with running_app(settings, clock) as app:
        yield Running(app, emu, clock)


@pytest.fixture
def ada(emu: TelegramEmulator) -> TelegramChat:
    return TelegramChat(emu, ADA)


async def onboard(chat: TelegramChat, zone: str = "Berlin", wall: str = "7:30", pace: str = "daily") -> None:
    """Enrol by deep link, typing every answer; the clock fixture's Monday 06:00 UTC is 07:00 in Berlin."""
    await chat.command("start", "async-learning", replies=2)
    await chat.send(zone)
    await chat.send(wall)
    (plan,) = await chat.send(pace)
    assert (plan.body or "").startswith("You're all set"), plan.body


async def first_lesson(running: Running, chat: TelegramChat) -> list[SentRecord]:
    assert await running.deliver() == 1
    return await chat.expect(2)


def texts(records: list[SentRecord]) -> list[str]:
    return [record.body or "" for record in records]


def lesson_heading(number: int, title: str) -> str:
    return f"Learning on your own clock\n\nLesson {number} of 8 · {title}"


LESSON_2 = "Choosing your time and your cadence"
QUIZ_2 = "You study best in the evening but some weeks are packed. Which setup is most likely to last?"
EXPLANATION_2 = "A fixed slot at a time that suits you, plus slack built in, beats willpower and cramming."


def assert_lesson_2(records: list[SentRecord], done_buttons: tuple[str, ...]) -> str:
    """Lesson 2 as Telegram shows it: the text, a native quiz, then its buttons; returns the poll id."""
    text, poll, buttons = records
    assert (text.method, poll.method, buttons.method) == ("sendMessage", "sendPoll", "sendMessage")
    assert (text.body or "").startswith(
        lesson_heading(2, LESSON_2) + "\n\nTwo settings that shape everything"
    )
    assert poll.poll is not None
    assert (poll.poll.question, poll.poll.type, poll.poll.is_anonymous) == (QUIZ_2, "quiz", False)
    assert poll.poll.correct_option_ids == (1,)
    assert (buttons.body, buttons.callback_data) == ("When you are ready:", done_buttons)
    return poll.poll.id


# --- starting ------------------------------------------------------------------------------------


async def test_start_lists_the_courses_and_help_lists_every_command(
    running: Running, ada: TelegramChat, emu: TelegramEmulator
) -> None:
    (greeting,) = await ada.command("start")
    assert (greeting.body or "").startswith(
        "Hello! I deliver short courses one lesson at a time, at your own local time.\nPick a course:\n"
        "• Learning on your own clock (8 lessons) – Eight short lessons on learning asynchronously"
    )
    assert greeting.callback_data == ("enrol:async-learning",)
    (courses,) = await ada.command("courses")
    assert (courses.body or "").startswith("Pick a course:\n• Learning on your own clock (8 lessons) – ")
    assert courses.callback_data == ("enrol:async-learning",)
    assert texts(await ada.command("help")) == [HELP]
    async with Bot(emu.token, base_url=emu.base_url, base_file_url=emu.file_base_url) as bot:
        menu = await bot.get_my_commands(scope=BotCommandScopeDefault())
    assert [(command.command, command.description) for command in menu] == list(LEARNER_COMMANDS)

    question, location = await ada.press("enrol:async-learning", replies=2)
    assert (question.body or "").startswith(f"Welcome to {COURSE}! Lessons arrive at your own local time.")
    assert location_keyboard(location) == ["📍 Send my location"]
    ada.assert_quiet()


async def test_a_deep_link_enrols_and_buttons_answer_every_question(
    running: Running, ada: TelegramChat
) -> None:
    question, location = await ada.command("start", "async-learning", replies=2)
    assert question.body == (
        f"Welcome to {COURSE}! Lessons arrive at your own local time.\n\nFirst, which time zone are you in?\n"
        "Tap one, share your location, or type a city or zone (for example Berlin, Sao Paulo, Asia/Tokyo "
        "or +5:30)."
    )
    assert question.callback_data == (
        "zone:1:Europe/London",
        "zone:1:America/New_York",
        "zone:1:America/Chicago",
        "zone:1:America/Los_Angeles",
    )
    assert location.body == "Or tap “📍 Send my location” below."
    assert location_keyboard(location) == ["📍 Send my location"]

    (time_question,) = await ada.press("zone:1:Europe/London")
    assert time_question.body == (
        "Time zone set: Europe/London (it is 06:00 there now).\n\n"
        "What time of day should lessons arrive? Type a time like 08:00, 7:30, 18:45 or 8am."
    )
    assert time_question.callback_data == (
        "time:1:0800",
        "time:1:0700",
        "time:1:1230",
        "time:1:1800",
        "time:1:2100",
    )
    (pace_question,) = await ada.press("time:1:0700")
    assert pace_question.body == (
        "Lessons will arrive at 07:00, your time.\n\nHow often? Type one of: daily, weekdays, mon,wed,fri "
        "(any three-letter days), every-2-days (2 to 14)."
    )
    assert pace_question.callback_data == (
        "pace:1:daily",
        "pace:1:weekdays",
        "pace:1:mon,wed,fri",
        "pace:1:every-2-days",
    )
    (plan,) = await ada.press("pace:1:weekdays")
    assert plan.body == (
        "You're all set: weekdays at 07:00 (Europe/London).\nLesson 1: right now\n"
        "Lesson 2: Tue 03 Mar at 07:00 (Europe/London)\nSend /help any time to see what I can do."
    )

    text, audio = await first_lesson(running, ada)
    assert (text.body or "").startswith(
        lesson_heading(1, "Welcome, and a routine built around your own clock") + "\n\nWelcome\n\n"
    )
    assert (audio.method, audio.media_kind) == ("sendAudio", "audio")
    assert audio.caption == (
        "A three-second chime. Play it when you sit down to study, and let it become your cue."
    )
    assert audio.callback_data == ("done:1", "next:1")
    enrollment = running.enrollment()
    assert (enrollment.status, enrollment.cadence, enrollment.local_time) == (
        EnrollmentStatus.ACTIVE,
        "weekdays",
        "07:00",
    )
    assert enrollment.next_release_at == dt.datetime(2026, 3, 3, 7, 0, tzinfo=dt.UTC)  # London is on UTC
    ada.assert_quiet()


async def test_typed_answers_complete_onboarding(running: Running, ada: TelegramChat) -> None:
    await ada.command("start", "async-learning", replies=2)
    assert texts(await ada.send("sao paulo")) == [
        "Time zone set: America/Sao_Paulo (it is 03:00 there now).\n\n"
        "What time of day should lessons arrive? Type a time like 08:00, 7:30, 18:45 or 8am."
    ]
    (pace_question,) = await ada.send("8am")
    assert (pace_question.body or "").startswith("Lessons will arrive at 08:00, your time.\n\nHow often?")
    # Lesson 1 comes at once on Monday; that uses up Monday, so lesson 2 waits for Wednesday.
    assert texts(await ada.send("mon, wed, fri")) == [
        "You're all set: mon,wed,fri at 08:00 (America/Sao_Paulo).\nLesson 1: right now\n"
        "Lesson 2: Wed 04 Mar at 08:00 (America/Sao_Paulo)\nSend /help any time to see what I can do."
    ]
    await first_lesson(running, ada)
    assert running.learner().time_zone == "America/Sao_Paulo"


async def test_a_shared_location_sets_the_time_zone(running: Running, ada: TelegramChat) -> None:
    await ada.command("start", "async-learning", replies=2)
    (time_question,) = await ada.share_location(35.68, 139.69)
    assert (time_question.body or "").startswith(
        "Time zone set: 35.680, 139.690 → Asia/Tokyo (it is 15:00 there now).\n\nWhat time of day"
    )
    await ada.send("21:00")
    await ada.send("daily")
    await first_lesson(running, ada)

    # Travelling: /timezone offers the same choices, and a location answers it again.
    question, location = await ada.command("timezone", replies=2)
    assert (question.body or "").startswith("Which time zone are you in?\nTap one, share your location")
    assert location_keyboard(location) == ["📍 Send my location"]
    assert texts(await ada.share_location(52.52, 13.40)) == [
        "Time zone set: 52.520, 13.400 → Europe/Berlin (it is 07:00 there now). "
        "Next lesson: Tue 03 Mar at 21:00 (Europe/Berlin)."
    ]
    assert running.learner().time_zone == "Europe/Berlin"


# --- reports -------------------------------------------------------------------------------------


async def test_progress_schedule_and_settings_speak_local_time(running: Running, ada: TelegramChat) -> None:
    assert texts(await ada.command("progress")) == [
        "You are not taking a course yet. Send /courses to pick one."
    ]
    await onboard(ada)
    await first_lesson(running, ada)
    assert texts(await ada.command("progress")) == [
        "Learning on your own clock: lesson 1 of 8. Next lesson: Tue 03 Mar at 07:30 (Europe/Berlin)."
    ]
    assert texts(await ada.command("schedule")) == [
        "Learning on your own clock (daily at 07:30, Europe/Berlin):\n"
        "  2. Choosing your time and your cadence – Tue 03 Mar at 07:30 (Europe/Berlin)\n"
        "  3. Staying motivated without a live class – Wed 04 Mar at 07:30 (Europe/Berlin)\n"
        "  4. Taking notes that last – Thu 05 Mar at 07:30 (Europe/Berlin)\n"
        "  5. Using discussion threads well – Fri 06 Mar at 07:30 (Europe/Berlin)\n"
        "  6. Why spaced review works – Sat 07 Mar at 07:30 (Europe/Berlin)"
    ]
    (settings,) = texts(await ada.command("settings"))
    assert settings.startswith(f"Time zone: Europe/Berlin\n{COURSE}: daily at 07:30 (active)\n")
    assert "/timezone, /time" in settings
    # What /schedule promised is what the heartbeat does.
    assert await running.deliver_at(berlin(3, 7, 29)) == 0
    assert await running.deliver_at(berlin(3, 7, 30)) == 1
    assert_lesson_2(await ada.expect(3), ("done:2", "next:1"))
    ada.assert_quiet()


# --- changing the clock --------------------------------------------------------------------------


async def test_timezone_time_and_pace_move_the_next_lesson(running: Running, ada: TelegramChat) -> None:
    await onboard(ada)
    await first_lesson(running, ada)  # Monday 07:00 in Berlin, 15:00 in Tokyo

    await ada.command("timezone", replies=2)
    assert texts(await ada.send("Tokyo")) == [
        "Time zone set: Asia/Tokyo (it is 15:00 there now). Next lesson: Tue 03 Mar at 07:30 (Asia/Tokyo)."
    ]
    (time_question,) = await ada.command("time")
    assert (time_question.body or "").startswith("What time of day should lessons arrive?")
    assert time_question.callback_data[0] == "time:1:0730"  # the current time comes first
    # 21:00 is still ahead on Monday in Tokyo, but Monday already had its lesson.
    assert texts(await ada.press("time:1:2100")) == [
        "Lessons will arrive at 21:00, your time. Next lesson: Tue 03 Mar at 21:00 (Asia/Tokyo)."
    ]
    assert texts(await ada.command("pace", "every-3-days")) == [
        "Pace set to every-3-days. Next lesson: Tue 03 Mar at 21:00 (Asia/Tokyo)."
    ]
    (pace_question,) = await ada.command("pace")
    assert (pace_question.body or "").startswith("How often?")
    assert texts(await ada.press("pace:1:mon,wed,fri")) == [
        "Pace set to mon,wed,fri. Next lesson: Wed 04 Mar at 21:00 (Asia/Tokyo)."
    ]
    assert texts(await ada.command("time", "7pm")) == [
        "Lessons will arrive at 19:00, your time. Next lesson: Wed 04 Mar at 19:00 (Asia/Tokyo)."
    ]
    wednesday_7pm_tokyo = dt.datetime(2026, 3, 4, 10, 0, tzinfo=dt.UTC)
    assert running.enrollment().next_release_at == wednesday_7pm_tokyo
    assert await running.deliver_at(wednesday_7pm_tokyo - dt.timedelta(seconds=1)) == 0
    assert await running.deliver_at(wednesday_7pm_tokyo) == 1
    assert_lesson_2(await ada.expect(3), ("done:2", "next:1"))
    ada.assert_quiet()


# --- pausing -------------------------------------------------------------------------------------


async def test_pause_for_days_until_a_date_or_until_resume(running: Running, ada: TelegramChat) -> None:
    await onboard(ada)
    await first_lesson(running, ada)
    assert texts(await ada.command("pause", "3")) == [
        f"Paused {COURSE} until Thu 05 Mar at 07:00 (Europe/Berlin). Nothing is lost."
    ]
    assert await running.deliver_at(berlin(3, 7, 30)) == 0  # Tuesday's lesson waits
    assert await running.deliver_at(berlin(5, 7, 29)) == 0
    assert await running.deliver_at(berlin(5, 7, 30)) == 1  # the pause ran out by itself
    assert_lesson_2(await ada.expect(3), ("done:2", "next:1"))
    assert running.enrollment().status is EnrollmentStatus.ACTIVE

    assert texts(await ada.command("pause", "2026-12-24")) == [
        f"Paused {COURSE} until Thu 24 Dec at 00:00 (Europe/Berlin). Nothing is lost."
    ]
    assert texts(await ada.command("resume")) == [
        "Welcome back! Next lesson: Fri 06 Mar at 07:30 (Europe/Berlin)."
    ]
    assert texts(await ada.command("resume")) == ["This course is not paused."]

    assert texts(await ada.command("pause")) == [f"Paused {COURSE} until you send /resume. Nothing is lost."]
    assert await running.deliver_at(berlin(12, 13)) == 0  # a week later: still paused
    assert running.enrollment().next_release_at is None
    assert texts(await ada.command("resume")) == [
        "Welcome back! Next lesson: Fri 13 Mar at 07:30 (Europe/Berlin)."
    ]
    assert await running.deliver_at(berlin(13, 7, 30)) == 1
    (lesson_3,) = await ada.expect(1)
    assert (lesson_3.body or "").startswith(lesson_heading(3, "Staying motivated without a live class"))
    ada.assert_quiet()


# --- pulling and repeating lessons, quizzes ------------------------------------------------------


async def test_next_pulls_lessons_early_until_a_quiz_gate_and_repeat_resends_the_last(
    running: Running, ada: TelegramChat
) -> None:
    await onboard(ada)
    await first_lesson(running, ada)
    assert texts(await ada.command("next")) == ["Here comes your next lesson."]
    assert await running.app.sender.drain_once() == 1
    poll_id = assert_lesson_2(await ada.expect(3), ("done:2", "next:1"))
    assert texts(await ada.answer_poll(poll_id, 1)) == [f"✅ Right!\n\n{EXPLANATION_2}"]

    # /repeat shows the last lesson again, its quiz as buttons (a poll takes one vote per person).
    text, quiz, done = await ada.command("repeat", replies=3)
    assert (text.body or "").startswith(lesson_heading(2, LESSON_2))
    assert (quiz.body or "").startswith(f"❓ {QUIZ_2}\n\n1. Daily at 06:00")
    assert quiz.callback_data == ("quiz:2:0", "quiz:2:1", "quiz:2:2", "quiz:2:3")
    assert (done.body, done.callback_data) == ("When you are ready:", ("done:2",))
    assert texts(await ada.press("quiz:2:0", replies=2)) == [
        "❌ Not quite — the answer is Weekdays at 20:30, with the weekend free for catching up\n\n"
        + EXPLANATION_2,
        "(Your first answer is the one that counts for your score.)",
    ]
    assert texts(await ada.press("done:2")) == ["Marked as done. Well done!"]

    for number in (3, 4, 5, 6):
        assert texts(await ada.command("next")) == ["Here comes your next lesson."]
        assert await running.app.sender.drain_once() == 1
        lesson = ada.messages()[ada.seen :]
        assert (lesson[0].body or "").startswith(f"Learning on your own clock\n\nLesson {number} of 8 · ")
        await ada.expect(len(lesson))
    poll = next(record.poll for record in reversed(ada.messages()) if record.poll is not None)
    assert poll.question.startswith("You have 30 minutes this week to review lesson 4.")
    # Lesson 7 opens only once lesson 6's quiz is answered.
    assert texts(await ada.command("next")) == [
        "The next lesson unlocks once you answer the last lesson's quiz."
    ]
    feedback, unlocked = texts(await ada.answer_poll(poll.id, 0, replies=2))
    assert feedback.startswith("❌ Not quite — the answer is Three 10-minute sessions on different days")
    assert unlocked == "Next lesson: Tue 03 Mar at 07:30 (Europe/Berlin)."
    assert texts(await ada.command("progress")) == [
        "Learning on your own clock: lesson 6 of 8, quiz score 1/2. Next lesson: Tue 03 Mar at 07:30 "
        "(Europe/Berlin)."
    ]
    ada.assert_quiet()


# --- leaving -------------------------------------------------------------------------------------


async def test_stop_asks_first_and_then_no_lesson_comes(running: Running, ada: TelegramChat) -> None:
    await onboard(ada)
    await first_lesson(running, ada)
    (question,) = await ada.command("stop")
    assert question.body == (f"Leave {COURSE}? Your progress will be kept for a while, but lessons stop.")
    assert question.callback_data == ("stop:1", "keep:1")
    assert texts(await ada.press("keep:1")) == ["Great, you stay enrolled."]
    assert running.enrollment().status is EnrollmentStatus.ACTIVE

    await ada.command("stop")
    assert texts(await ada.press("stop:1")) == [f"You have left {COURSE}. Send /courses to join again."]
    assert running.enrollment().status is EnrollmentStatus.STOPPED
    assert await running.deliver_at(berlin(4, 12)) == 0
    assert texts(await ada.command("progress")) == [
        "You are not taking a course yet. Send /courses to pick one."
    ]

    # A deep link enrols again from the start, remembering the time zone.
    (again,) = await ada.command("start", "async-learning")
    assert (again.body or "").startswith(
        f"Welcome to {COURSE}! Lessons arrive at your own local time. Your time zone is Europe/Berlin.\n\n"
        "What time of day should lessons arrive?"
    )
    ada.assert_quiet()


# --- mistakes ------------------------------------------------------------------------------------

WRONG_ARGUMENTS = [
    (
        "time",
        "25:99",
        "unknown time of day '25:99' (hour 25 is not in 0-23). "
        "Use: 08:05, 8:05, 0805, 8am, 8:30 pm, 20h30 (hours 0-23, minutes 0-59)",
    ),
    (
        "pace",
        "sometimes",
        "unknown cadence 'sometimes'. Use: daily, weekdays, mon,wed,fri (any three-letter days), "
        "every-N-days (N 1-14)",
    ),
    (
        "pause",
        "soon",
        "I could not read “soon”. Use /pause (until you /resume), /pause 3 (days, 1 to 365) or "
        "/pause 2026-12-24 (a date).",
    ),
    (
        "pause",
        "0",
        "Use /pause (until you /resume), /pause 3 (days, 1 to 365) or /pause 2026-12-24 (a date).",
    ),
    (
        "pause",
        "2020-01-01",
        "Please pick a date in the coming year. Use /pause (until you /resume), /pause 3 (days, 1 to 365) "
        "or /pause 2026-12-24 (a date).",
    ),
    ("start", "no-such-course", "There is no course by that name. Send /courses to see the list."),
    ("frobnicate", None, "I don't know the command /frobnicate. Send /help for the list."),
]


async def test_wrong_arguments_are_answered_with_examples_and_change_nothing(
    running: Running, ada: TelegramChat
) -> None:
    await onboard(ada)
    await first_lesson(running, ada)
    (settings_before,) = texts(await ada.command("settings"))
    for name, payload, answer in WRONG_ARGUMENTS:
        assert texts(await ada.command(name, payload)) == [answer], f"/{name} {payload}"
    (zone_answer,) = texts(await ada.command("timezone", "Qwzxv"))
    assert zone_answer.startswith("no time zone matches 'Qwzxv'.")
    assert zone_answer.endswith(
        "Use a zone like Europe/Berlin, a city like Munich, or an offset like UTC+05:30."
    )
    assert texts(await ada.send("hello?")) == ["I only understand commands here. Send /help to see them."]
    assert texts(await ada.command("settings")) == [settings_before]
    assert running.enrollment().next_release_at == berlin(3, 7, 30)
    ada.assert_quiet()


# --- platform faults -----------------------------------------------------------------------------


async def test_a_learner_who_blocks_the_bot_is_not_written_to_until_they_write_again(
    running: Running, ada: TelegramChat, emu: TelegramEmulator
) -> None:
    await onboard(ada)
    await first_lesson(running, ada)
    assert texts(await ada.press("done:1")) == ["Marked as done. Well done!"]
    emu.block_bot(ADA.id)
    assert await running.deliver_at(berlin(3, 7, 30)) == 1
    (failed,) = running.deliveries()[1:]
    assert failed.status is DeliveryStatus.FAILED
    assert failed.error == "unreachable: Forbidden: bot was blocked by the user"
    assert not running.learner().reachable
    assert running.enrollment().next_release_at is None
    refused = [request for request in emu.requests if request.chat_id == ADA.id and request.status == 403]
    assert len(refused) == 1

    # A day passes: nothing is released for an unreachable learner and nothing is sent.
    requests_before = len(emu.requests)
    assert await running.deliver_at(berlin(4, 7, 30)) == 0
    assert [request.method for request in emu.requests[requests_before:] if request.chat_id == ADA.id] == []

    # Writing again unblocks the bot (Telegram does that) and the lesson that failed goes out.
    running.clock.at = berlin(4, 12)
    assert texts(await ada.send("hello again")) == [
        "I only understand commands here. Send /help to see them."
    ]
    assert running.learner().reachable
    assert await running.deliver() == 1
    assert_lesson_2(await ada.expect(3), ("done:2", "next:1"))
    assert running.deliveries()[1].status is DeliveryStatus.SENT
    assert running.enrollment().next_release_at == berlin(5, 7, 30)
    ada.assert_quiet()


async def test_a_group_upgraded_to_a_supergroup_gets_its_lessons_at_the_new_id(
    running: Running, ada: TelegramChat, emu: TelegramEmulator
) -> None:
    await onboard(ada)
    await first_lesson(running, ada)
    # This learner's lessons go to a basic group, which its owner then upgrades to a supergroup.
    emu.add_group(-4001, "Study group", supergroup=False, owner_id=ADA.id)
    with running.session() as session:
        session.execute(
            update(Learner).where(col(Learner.platform_user_id) == str(ADA.id)).values(chat_id="-4001")
        )
        session.commit()
    emu.migrate_group(-4001, -1004001)

    assert await running.deliver_at(berlin(3, 7, 30)) == 1
    assert running.learner().chat_id == "-1004001"
    assert emu.sent_to(-4001) == []
    assert_lesson_2(emu.sent_to(-1004001), ("done:2", "next:1"))
    assert await running.deliver_at(berlin(4, 7, 30)) == 1
    assert (emu.texts_to(-1004001)[-1]).startswith(
        lesson_heading(3, "Staying motivated without a live class")
    )
    assert [request.status for request in emu.requests if request.chat_id == -4001] == [400]
    assert running.deliveries()[1].status is DeliveryStatus.SENT


async def test_retry_after_is_waited_out_by_the_pacer_for_that_chat_only(
    running: Running, ada: TelegramChat, emu: TelegramEmulator
) -> None:
    bob = TelegramChat(emu, BOB)
    await onboard(ada)
    await onboard(bob)
    emu.faults.add(Fault(FaultKind.TOO_MANY_REQUESTS, method="sendMessage", chat_id=ADA.id, retry_after=1))
    assert await running.deliver() == 2
    assert emu.count_429 == 1
    await bob.expect(2)  # another chat is not held up
    assert ada.messages()[ada.seen :] == []
    (waiting,) = running.deliveries()
    assert (waiting.status, waiting.error) == (
        DeliveryStatus.PENDING,
        "retry after 1s: RetryAfter: Flood control exceeded. Retry in 1 seconds",
    )

    running.clock.at += dt.timedelta(seconds=1)
    assert await running.app.sender.drain_once() == 1
    await ada.expect(2)
    to_ada = [
        request for request in emu.requests if request.chat_id == ADA.id and request.method != "getUpdates"
    ]
    limited = next(request for request in to_ada if request.status == 429)
    after = [request for request in to_ada if request.received_at > limited.received_at]
    assert [request.status for request in after] == [200, 200]
    assert after[0].received_at - limited.received_at >= 1.0
    assert emu.count_429 == 1
    assert running.deliveries()[0].status is DeliveryStatus.SENT


async def test_a_bad_request_fails_the_delivery_once_naming_the_lesson_and_file(
    running: Running, ada: TelegramChat, emu: TelegramEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await onboard(ada)
    emu.faults.add(
        Fault(
            FaultKind.BAD_REQUEST,
            method="sendAudio",
            chat_id=ADA.id,
            description="Bad Request: wrong file identifier/HTTP URL specified",
            times=None,
        )
    )
    refusal = "Wrong file identifier/http url specified"  # as python-telegram-bot words it
    assert await running.deliver() == 1
    (text,) = await ada.expect(1)  # the text part went out; the audio was refused
    assert (text.body or "").startswith(
        lesson_heading(1, "Welcome, and a routine built around your own clock")
    )
    (delivery,) = running.deliveries()
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.error == (
        f"BadRequest: {refusal} (lesson your-own-clock, part 2 of 2, file session-chime.wav)"
    )
    logged = [record for record in caplog.records if refusal in record.getMessage()]
    assert len(logged) == 1
    assert logged[0].levelno == logging.WARNING
    assert "session-chime.wav" in logged[0].getMessage()

    # Never retried, and the learner stays reachable: the course continues with the next lesson.
    assert await running.deliver_at(berlin(2, 20)) == 0
    assert [request.method for request in emu.requests].count("sendAudio") == 1
    assert running.learner().reachable
    assert await running.deliver_at(berlin(3, 7, 30)) == 1
    assert_lesson_2(await ada.expect(3), ("done:2", "next:1"))
    ada.assert_quiet()
