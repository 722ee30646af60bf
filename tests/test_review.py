"""Spaced review with a moved clock: cards come due on FSRS's schedule, in the learner's own window."""

from __future__ import annotations

import datetime as dt

import fsrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from bot import review
from bot.content import ReviewRules
from bot.db import Database
from bot.models import DeliveryKind, ReviewAnswer, ReviewCard
from bot.pacing import local_date
from bot.ports import Sender
from bot.stats import course_stats, summary_lines
from bot.windows import WINDOW_LENGTH
from tests.fakes import FakeClock, reply_text
from tests.learning_world import BERLIN, World, berlin, make_course, review_quizzes

ALICE = Sender("fake", "1001", "1001", "Alice", "en")


def expected_due(correct: bool, at: dt.datetime) -> dt.datetime:
    """What FSRS itself says about a first answer at `at`, independently of the bot's bookkeeping."""
    rating = fsrs.Rating.Good if correct else fsrs.Rating.Again
    card, _log = review.scheduler().review_card(fsrs.Card(due=at), rating, at)
    return card.due


async def first_lesson_answered(world: World, *, correct: bool = True) -> dt.datetime:
    """Alice enrols on Monday 2 March, 07:00 in Berlin, gets lesson 1 and answers its quiz at 07:05."""
    world.clock.at = berlin(3, 2, 7)
    await world.onboard(ALICE)
    await world.tick()
    world.clock.at = berlin(3, 2, 7, 5)
    await world.answer_lesson_quiz(ALICE, "lesson-1", 1 if correct else 0)
    answered_at = world.clock.now()
    world.clock.at = berlin(3, 2, 8)  # the hourly ticks of the tests fall on whole hours
    return answered_at


async def test_an_answered_quiz_comes_back_at_the_window_opening_of_the_day_fsrs_says(
    database: Database, clock: FakeClock
) -> None:
    world = World(database, clock, make_course(lessons=1))
    answered_at = await first_lesson_answered(world)
    [card] = world.cards(ALICE)
    due = expected_due(True, answered_at)
    assert card.due == due
    assert card.reps == 1

    sent = await world.run_days(berlin(3, 2, 7) + dt.timedelta(days=12))
    reviews = [item for item in sent if item.kind is DeliveryKind.REVIEW]
    assert reviews, "the card never came back"
    # The first review reaches the chat exactly when the window opens on FSRS's due date, not before.
    first = reviews[0].at
    assert local_date(first, BERLIN) == local_date(due, BERLIN)
    assert first == berlin(3, local_date(due, BERLIN).day, 8)
    [question] = review_quizzes(sent)[:1]
    assert "Question 1?" in question.question
    assert not question.native  # answered by button: the action carries the card


async def test_the_review_answer_feeds_fsrs_and_the_next_review_follows_its_new_due_date(
    database: Database, clock: FakeClock
) -> None:
    world = World(database, clock, make_course(lessons=1))
    await first_lesson_answered(world)
    [card] = world.cards(ALICE)
    window_opens = berlin(3, local_date(card.due, BERLIN).day, 8)
    sent = await world.run_days(window_opens)
    [question] = review_quizzes(sent)
    # Answered right three seconds after it arrived: an Easy review.
    world.clock.at = window_opens + dt.timedelta(seconds=3)
    before = world.cards(ALICE)[0]
    scheduled, _log = review.scheduler().review_card(
        review.to_fsrs(before), fsrs.Rating.Easy, world.clock.now()
    )
    reply = await world.press(ALICE, f"{question.answer_action_prefix}1")
    assert "Right" in reply_text(reply)
    [after] = world.cards(ALICE)
    assert after.due == scheduled.due
    assert after.due - world.clock.now() > dt.timedelta(days=4)
    assert after.shown_at is None
    with Session(database.engine) as session:
        [answer] = session.exec(select(ReviewAnswer)).all()
    assert (answer.correct, answer.rating, answer.seconds) == (True, int(fsrs.Rating.Easy), 3.0)

    # A second press of the same button changes nothing.
    world.clock.at = window_opens + dt.timedelta(minutes=10)
    again = await world.press(ALICE, f"{question.answer_action_prefix}0")
    assert "already answered" in reply_text(again)
    assert world.cards(ALICE)[0].due == after.due

    next_day = local_date(after.due, BERLIN)
    sent = await world.run_days(berlin(next_day.month, next_day.day, 10))
    times = [item.at for item in sent if item.kind is DeliveryKind.REVIEW]
    assert times, "no second review"
    assert local_date(times[0], BERLIN) == local_date(after.due, BERLIN)
    assert times[0].astimezone(BERLIN).time() == dt.time(8, 0)


async def test_a_wrong_answer_comes_back_the_next_day(database: Database, clock: FakeClock) -> None:
    world = World(database, clock, make_course(lessons=1))
    answered_at = await first_lesson_answered(world, correct=False)
    [card] = world.cards(ALICE)
    assert card.due == expected_due(False, answered_at)
    assert local_date(card.due, BERLIN) == dt.date(2026, 3, 3)
    sent = await world.run_days(berlin(3, 3, 10))
    assert [item.at for item in sent if item.kind is DeliveryKind.REVIEW][:1] == [berlin(3, 3, 8)]


async def test_reviews_never_delay_the_lesson_released_in_the_same_window(
    database: Database, clock: FakeClock
) -> None:
    world = World(database, clock, make_course(lessons=8))
    await first_lesson_answered(world, correct=False)  # due again on Tuesday, when lesson 2 comes too
    sent = await world.run_days(berlin(3, 3, 8))
    tuesday = [item for item in sent if item.at == berlin(3, 3, 8)]
    kinds = [item.kind for item in tuesday]
    assert DeliveryKind.REVIEW in kinds and DeliveryKind.LESSON in kinds
    # The lesson goes out first, on its slot; the review follows it.
    assert kinds.index(DeliveryKind.LESSON) < kinds.index(DeliveryKind.REVIEW)
    assert all(kind is DeliveryKind.LESSON for kind in kinds[: kinds.index(DeliveryKind.REVIEW)])
    assert world.delivery(ALICE, "lesson-2").sent_at == berlin(3, 3, 8)


async def test_at_most_per_day_cards_are_sent_on_one_local_date(database: Database, clock: FakeClock) -> None:
    world = World(database, clock, make_course(lessons=5, review=ReviewRules(per_day=2)))
    clock.at = berlin(3, 2, 7)
    await world.onboard(ALICE)
    for day, slug in enumerate(["lesson-1", "lesson-2", "lesson-3", "lesson-4"]):
        await world.tick_at(berlin(3, 2 + day, 8))
        clock.at = berlin(3, 2 + day, 8, 30)
        await world.answer_lesson_quiz(ALICE, slug, 0)  # wrong: each is due again the next day
    # Make all four due on the same date.
    with Session(database.engine) as session:
        for card in session.exec(select(ReviewCard)).all():
            card.due = berlin(3, 6, 6)
            session.add(card)
        enrollment = world.enrollment(ALICE)
        session.add(enrollment)
        session.commit()
    with database.session() as session:
        learner = world.learner(ALICE)
        enrollment = world.enrollment(ALICE)
        review.refresh_enrollment(session, world.catalog.get("memory"), enrollment, learner, berlin(3, 5, 23))
        session.merge(enrollment)
    sent = await world.run_days(berlin(3, 7, 23))
    per_day: dict[dt.date, int] = {}
    for item in sent:
        if item.kind is DeliveryKind.REVIEW and item.part in review_quizzes([item]):
            per_day[local_date(item.at, BERLIN)] = per_day.get(local_date(item.at, BERLIN), 0) + 1
    assert per_day == {dt.date(2026, 3, 6): 2, dt.date(2026, 3, 7): 2}


async def test_review_pulls_due_cards_now_and_records_the_answer(
    database: Database, clock: FakeClock
) -> None:
    world = World(database, clock, make_course(lessons=1))
    await first_lesson_answered(world, correct=False)
    world.clock.at = berlin(3, 2, 22)  # not due yet (due tomorrow), outside any window
    assert "Nothing to review right now" in reply_text(await world.command(ALICE, "review"))
    world.clock.at = berlin(3, 3, 23, 30)  # due today, the window is long closed: /review does not care
    reply = await world.command(ALICE, "review")
    [question] = [part for part in reply.parts if hasattr(part, "answer_action_prefix")]
    world.clock.at = berlin(3, 3, 23, 31)
    answer = await world.press(ALICE, f"{question.answer_action_prefix}0")  # wrong again
    assert "Next review of this lesson" in reply_text(answer)
    [card] = world.cards(ALICE)
    assert card.lapses == 2 and card.reps == 2
    with Session(database.engine) as session:
        stats = course_stats(session, world.catalog.get("memory"))  # type: ignore[arg-type]
    assert (stats.lessons[0].retention.answered, stats.lessons[0].retention.correct) == (1, 0)
    assert "retention 0/1 remembered (0%)" in "\n".join(summary_lines(stats))


async def test_review_turned_off_for_a_course_makes_no_cards(database: Database, clock: FakeClock) -> None:
    world = World(database, clock, make_course(lessons=2, review=ReviewRules(enabled=False)))
    await first_lesson_answered(world)
    assert world.cards(ALICE) == []
    sent = await world.run_days(berlin(3, 12, 8))
    assert not [item for item in sent if item.kind is DeliveryKind.REVIEW]


async def test_a_review_button_of_someone_else_is_refused(database: Database, clock: FakeClock) -> None:
    world = World(database, clock, make_course(lessons=1))
    await first_lesson_answered(world)
    [card] = world.cards(ALICE)
    mallory = Sender("fake", "666", "666", "Mallory", "en")
    await world.command(mallory, "courses")
    reply = await world.press(mallory, f"rev:{card.id}:1")
    assert "not for you" in reply_text(reply)
    assert world.cards(ALICE)[0].reps == 1


@settings(max_examples=60, deadline=None)
@given(
    correct=st.booleans(),
    seconds=st.one_of(st.none(), st.floats(min_value=0, max_value=5000, allow_nan=False)),
)
def test_a_wrong_answer_is_always_again_and_a_right_one_never_is(
    correct: bool, seconds: float | None
) -> None:
    rating = review.rating_for(correct, seconds)
    assert (rating is fsrs.Rating.Again) == (not correct)
    if seconds is None or seconds > review.TIMED_WITHIN:
        assert rating in (fsrs.Rating.Good, fsrs.Rating.Again)


@pytest.mark.parametrize("hour", [0, 7, 8, 9, 23])
def test_the_window_is_two_hours_from_the_learners_time(hour: int) -> None:
    from bot.windows import next_window_instant

    wall = dt.time(hour, 30)
    after = berlin(3, 2, 12)
    instant = next_window_instant(BERLIN, wall, after=after, earliest_day=dt.date(2026, 3, 4))
    opens = dt.datetime.combine(dt.date(2026, 3, 4), wall, tzinfo=BERLIN)
    assert instant == opens.astimezone(dt.UTC)
    assert dt.timedelta(hours=2) == WINDOW_LENGTH
