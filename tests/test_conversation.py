"""The learner's conversation, platform-neutral: transcripts through FakeChat with a moved clock."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import Session, select

from bot.actions import encode
from bot.catalog import Catalog
from bot.content import Course, DripRules, Lesson, Quiz, Unlock
from bot.conversation import Conversation
from bot.db import Database
from bot.models import Delivery, Enrollment, EnrollmentStatus, Learner, QuizAnswer
from bot.ports import ButtonPressed, Command, QuizAnswered, Sender, TextReceived
from bot.render import quiz_action
from tests.fakes import FAKE_CAPABILITIES, FakeChat, FakeClock, reply_actions, reply_text

ALICE = Sender("fake", "1001", "1001", "Alice", "en")
BOB = Sender("fake", "2002", "2002", "Bob", "en")


def lesson(number: int, **drip: object) -> Lesson:
    return Lesson(
        slug=f"lesson-{number}",
        number=number,
        title=f"Lesson {number}",
        body_markdown=f"Body of lesson {number}.",
        quiz=Quiz("2 + 2?", ("3", "4", "5"), 1, "Four.") if number == 2 else None,
        drip=DripRules(**drip),  # type: ignore[arg-type]
    )


COURSE = Course(
    slug="habits",
    title="Good habits",
    description="A tiny course.",
    language="en",
    default_cadence="daily",
    default_time="08:00",
    lessons=(lesson(1), lesson(2), lesson(3, unlock=Unlock.AFTER_QUIZ), lesson(4)),
)


@pytest.fixture
def conversation(database: Database, clock: FakeClock, fake_chat: FakeChat) -> Conversation:
    return Conversation(database, Catalog([COURSE]), clock, {"fake": FAKE_CAPABILITIES})


def enrollment(database: Database) -> Enrollment:
    with Session(database.engine) as session:
        found = session.exec(select(Enrollment)).one()
        session.expunge(found)
        return found


async def onboard(conversation: Conversation, sender: Sender = ALICE) -> None:
    await conversation.handle(Command(sender, "start", "habits"))
    await conversation.handle(TextReceived(sender, "berlin"))
    await conversation.handle(TextReceived(sender, "07:30"))
    await conversation.handle(TextReceived(sender, "weekdays"))


async def test_onboarding_by_typed_answers_confirms_lessons_in_local_time(
    conversation: Conversation, database: Database
) -> None:
    reply = await conversation.handle(Command(ALICE, "start", "habits"))
    assert "which time zone" in reply_text(reply).lower()
    assert any(action.startswith("zone:") for action in reply_actions(reply))

    reply = await conversation.handle(TextReceived(ALICE, "berlin"))
    assert "Europe/Berlin" in reply_text(reply)
    assert "time of day" in reply_text(reply)

    reply = await conversation.handle(TextReceived(ALICE, "7:30"))
    assert "07:30" in reply_text(reply)

    reply = await conversation.handle(TextReceived(ALICE, "weekdays"))
    text = reply_text(reply)
    # 2026-03-02 06:00Z is a Monday, 07:00 in Berlin: lesson 1 now, lesson 2 Tuesday 07:30 local.
    assert "Lesson 1: right now" in text
    assert "Lesson 2: Tue 03 Mar at 07:30 (Europe/Berlin)" in text
    row = enrollment(database)
    assert row.status is EnrollmentStatus.ACTIVE
    assert row.cadence == "weekdays"
    assert row.next_release_at == dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)


async def test_onboarding_by_buttons(conversation: Conversation, database: Database) -> None:
    reply = await conversation.handle(Command(ALICE, "start"))
    assert encode("enrol", "habits") in reply_actions(reply)
    reply = await conversation.handle(ButtonPressed(ALICE, encode("enrol", "habits")))
    zone_button = next(action for action in reply_actions(reply) if action.startswith("zone:"))
    reply = await conversation.handle(ButtonPressed(ALICE, zone_button))
    time_button = next(action for action in reply_actions(reply) if action.startswith("time:"))
    reply = await conversation.handle(ButtonPressed(ALICE, time_button))
    pace_button = next(action for action in reply_actions(reply) if action.startswith("pace:"))
    reply = await conversation.handle(ButtonPressed(ALICE, pace_button))
    assert "You're all set" in reply_text(reply)
    assert enrollment(database).status is EnrollmentStatus.ACTIVE


@pytest.mark.parametrize(
    ("step", "bad_input", "expected"),
    [
        ("zone", "Qwxzvb Plorn", "time zone"),
        ("zone", "x" * 10_000, "time zone"),
        ("time", "25:99", "8:30 pm"),
        ("time", "'; DROP TABLE learner; --", "8:30 pm"),
        ("pace", "sometimes", "every-N-days"),
        ("pace", "every-99-days", "every-N-days"),
    ],
)
async def test_bad_typed_answers_get_the_valid_forms_and_change_nothing(
    conversation: Conversation, database: Database, step: str, bad_input: str, expected: str
) -> None:
    await conversation.handle(Command(ALICE, "start", "habits"))
    if step in ("time", "pace"):
        await conversation.handle(TextReceived(ALICE, "Europe/Berlin"))
    if step == "pace":
        await conversation.handle(TextReceived(ALICE, "08:00"))
    before = enrollment(database)
    reply = await conversation.handle(TextReceived(ALICE, bad_input))
    assert expected in reply_text(reply)
    after = enrollment(database)
    assert (after.local_time, after.cadence, after.status) == (
        before.local_time,
        before.cadence,
        before.status,
    )


async def test_pause_resume_next_and_stop(
    conversation: Conversation, database: Database, clock: FakeClock
) -> None:
    await onboard(conversation)
    reply = await conversation.handle(Command(ALICE, "pause", "3"))
    assert "Paused" in reply_text(reply)
    paused = enrollment(database)
    assert paused.status is EnrollmentStatus.PAUSED
    # Back on Thursday 5 March, 07:30 Berlin is 06:30Z: the first weekday slot after the pause.
    assert paused.next_release_at == dt.datetime(2026, 3, 5, 6, 30, tzinfo=dt.UTC)

    reply = await conversation.handle(Command(ALICE, "resume"))
    assert "Welcome back" in reply_text(reply)
    assert enrollment(database).next_release_at == dt.datetime(2026, 3, 2, 6, 30, tzinfo=dt.UTC)

    reply = await conversation.handle(Command(ALICE, "pause", "soon-ish"))
    assert "/pause 3" in reply_text(reply)

    reply = await conversation.handle(Command(ALICE, "next"))
    assert "next lesson" in reply_text(reply).lower()
    assert enrollment(database).lessons_released == 1

    reply = await conversation.handle(Command(ALICE, "stop"))
    assert encode("stop", enrollment(database).id or 0) in reply_actions(reply)
    await conversation.handle(ButtonPressed(ALICE, encode("stop", enrollment(database).id or 0)))
    assert enrollment(database).status is EnrollmentStatus.STOPPED
    assert enrollment(database).next_release_at is None


async def test_quiz_gate_unlocks_on_answer_and_first_answer_counts(
    conversation: Conversation, database: Database
) -> None:
    await onboard(conversation)
    await conversation.handle(Command(ALICE, "next"))  # lesson 1
    await conversation.handle(Command(ALICE, "next"))  # lesson 2, with the quiz
    row = enrollment(database)
    assert row.last_lesson_slug == "lesson-2"
    assert row.waiting_for == "quiz"
    reply = await conversation.handle(Command(ALICE, "next"))
    assert "answer the last lesson's quiz" in reply_text(reply)

    with Session(database.engine) as session:
        delivery = session.exec(select(Delivery).where(Delivery.lesson_slug == "lesson-2")).one()
    reply = await conversation.handle(ButtonPressed(ALICE, quiz_action(delivery.id or 0, 0)))
    assert "Not quite" in reply_text(reply)
    await conversation.handle(ButtonPressed(ALICE, quiz_action(delivery.id or 0, 1)))
    with Session(database.engine) as session:
        answers = session.exec(select(QuizAnswer)).all()
    assert [(answer.option_index, answer.correct) for answer in answers] == [(0, False)]
    row = enrollment(database)
    assert row.waiting_for is None
    assert row.next_release_at is not None


async def test_forged_buttons_of_another_learner_are_refused(
    conversation: Conversation, database: Database
) -> None:
    await onboard(conversation, ALICE)
    await conversation.handle(Command(ALICE, "next"))
    with Session(database.engine) as session:
        delivery = session.exec(select(Delivery)).one()
        alice_enrollment = session.exec(select(Enrollment)).one()
    for action in (
        encode("done", delivery.id or 0),
        quiz_action(delivery.id or 0, 0),
        encode("stop", alice_enrollment.id or 0),
        encode("time", alice_enrollment.id or 0, "2300"),
        "done:../../etc",
        "quiz:1:2:3:4",
        "",
    ):
        reply = await conversation.handle(ButtonPressed(BOB, action))
        assert "not for you" in reply_text(reply) or "expired" in reply_text(reply)
    reply = await conversation.handle(QuizAnswered(BOB, "poll-that-does-not-exist", 0))
    assert "could not match" in reply_text(reply)
    row = enrollment(database)
    assert row.status is EnrollmentStatus.ACTIVE and row.local_time == "07:30"
    with Session(database.engine) as session:
        assert session.exec(select(Delivery)).one().done_at is None


async def test_a_learner_who_writes_again_is_reachable_again(
    conversation: Conversation, database: Database
) -> None:
    await onboard(conversation)
    with Session(database.engine) as session:
        learner = session.exec(select(Learner)).one()
        learner.reachable = False
        row = session.exec(select(Enrollment)).one()
        row.next_release_at = None
        session.add(learner)
        session.add(row)
        session.commit()
    await conversation.handle(Command(ALICE, "progress"))
    with Session(database.engine) as session:
        assert session.exec(select(Learner)).one().reachable
    assert enrollment(database).next_release_at is not None


async def test_help_progress_schedule_settings_and_unknown(conversation: Conversation) -> None:
    await onboard(conversation)
    assert "/pause" in reply_text(await conversation.handle(Command(ALICE, "help")))
    assert "lesson 0 of 4" in reply_text(await conversation.handle(Command(ALICE, "progress")))
    schedule = reply_text(await conversation.handle(Command(ALICE, "schedule")))
    assert "Europe/Berlin" in schedule and "1. Lesson 1" in schedule
    assert "weekdays at 07:30" in reply_text(await conversation.handle(Command(ALICE, "settings")))
    assert "/help" in reply_text(await conversation.handle(Command(ALICE, "frobnicate")))
    assert "only understand commands" in reply_text(await conversation.handle(TextReceived(ALICE, "hello?")))
