"""Spaced review: every answered quiz becomes an FSRS card that comes back just before it is forgotten.

The learner's first answer to a lesson's quiz is the card's first review. A card is due on the local
date of its FSRS due instant; the follow-up planner sends due cards in the learner's window, at most
`per_day` on one date, and `/review` pulls them at once. Right or wrong, and how quickly a right answer
came, become the FSRS rating.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass

import fsrs
from sqlalchemy import Integer, cast, func
from sqlalchemy import select as select_columns
from sqlmodel import Session, col, select

from bot import followups
from bot.actions import encode
from bot.clock import ensure_utc
from bot.content import Course, Lesson, Quiz
from bot.models import Enrollment, Learner, ReviewAnswer, ReviewCard
from bot.pacing import local_date, slot_instant
from bot.ports import Capabilities, QuizPart
from bot.render import render_quiz
from bot.usecases import UserError

EASY_SECONDS = 8.0
"""A right answer within this many seconds of the card appearing is rated Easy."""
HARD_SECONDS = 60.0
"""A right answer that took longer than this (but was timed, see `TIMED_WITHIN`) is rated Hard."""
TIMED_WITHIN = 600.0
"""Beyond this the time says when the learner opened the chat, not how hard the card was: not used."""


@functools.lru_cache(maxsize=1)
def scheduler() -> fsrs.Scheduler:
    """FSRS with day-sized steps only: a drip course sends reviews at most once a day, in a window."""
    return fsrs.Scheduler(learning_steps=(), relearning_steps=(), enable_fuzzing=False)


def rating_for(correct: bool, seconds: float | None) -> fsrs.Rating:
    """Wrong is Again; right is Good, Easy when quick, Hard when slow (only when the time is telling)."""
    if not correct:
        return fsrs.Rating.Again
    if seconds is None or seconds > TIMED_WITHIN:
        return fsrs.Rating.Good
    if seconds <= EASY_SECONDS:
        return fsrs.Rating.Easy
    if seconds > HARD_SECONDS:
        return fsrs.Rating.Hard
    return fsrs.Rating.Good


def to_fsrs(card: ReviewCard) -> fsrs.Card:
    return fsrs.Card(
        card_id=card.id,
        state=fsrs.State(card.state),
        step=card.step,
        stability=card.stability,
        difficulty=card.difficulty,
        due=card.due,
        last_review=card.last_review,
    )


def _store(card: ReviewCard, scheduled: fsrs.Card) -> None:
    card.state = int(scheduled.state)
    card.step = scheduled.step
    card.stability = scheduled.stability
    card.difficulty = scheduled.difficulty
    card.due = scheduled.due
    card.last_review = scheduled.last_review


def refresh_enrollment(
    session: Session, course: Course | None, enrollment: Enrollment, learner: Learner, now: dt.datetime
) -> None:
    """Store the earliest due date of the enrollment's cards and when the planner next looks at them."""
    session.flush()
    earliest = session.execute(
        select_columns(func.min(col(ReviewCard.due))).where(col(ReviewCard.enrollment_id) == enrollment.id)
    ).scalar()
    if isinstance(earliest, str):  # min() loses the column type on SQLite
        earliest = dt.datetime.fromisoformat(earliest)
    enrollment.review_due_at = ensure_utc(earliest) if isinstance(earliest, dt.datetime) else earliest
    enrollment.next_review_at = followups.review_check_at(course, enrollment, learner, now)
    session.add(enrollment)


def start_card(
    session: Session,
    course: Course,
    enrollment: Enrollment,
    learner: Learner,
    lesson_slug: str,
    correct: bool,
    now: dt.datetime,
) -> ReviewCard | None:
    """Turn a first quiz answer into a review card (its first review); None when review is off."""
    if not course.review.enabled:
        return None
    existing = session.exec(
        select(ReviewCard).where(
            col(ReviewCard.enrollment_id) == enrollment.id, col(ReviewCard.lesson_slug) == lesson_slug
        )
    ).first()
    if existing is not None:
        return existing
    scheduled, _log = scheduler().review_card(fsrs.Card(due=now), rating_for(correct, None), now)
    card = ReviewCard(
        enrollment_id=enrollment.id or 0,
        learner_id=learner.id or 0,
        course_slug=course.slug,
        lesson_slug=lesson_slug,
        due=now,
        reps=1,
        lapses=0 if correct else 1,
        created_at=now,
    )
    _store(card, scheduled)
    session.add(card)
    refresh_enrollment(session, course, enrollment, learner, now)
    return card


def day_end(now: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """The start of the learner's next local date: cards due before it are due today."""
    tomorrow = local_date(now, zone) + dt.timedelta(days=1)
    return slot_instant(zone, tomorrow, dt.time(0, 0))


def reviewable(course: Course, card: ReviewCard) -> Lesson | None:
    """The card's lesson when it still has a quiz to ask."""
    lesson = course.lesson(card.lesson_slug)
    return lesson if lesson is not None and lesson.quiz is not None else None


def due_cards(
    session: Session, course: Course, enrollment: Enrollment, zone: dt.tzinfo, now: dt.datetime, limit: int
) -> list[tuple[ReviewCard, Lesson]]:
    """Up to `limit` cards due by the end of the learner's local today, most overdue first."""
    cards = session.exec(
        select(ReviewCard)
        .where(col(ReviewCard.enrollment_id) == enrollment.id, col(ReviewCard.due) < day_end(now, zone))
        .order_by(col(ReviewCard.due), col(ReviewCard.id))
    ).all()
    found: list[tuple[ReviewCard, Lesson]] = []
    for card in cards:
        lesson = reviewable(course, card)
        if lesson is not None:
            found.append((card, lesson))
        if len(found) >= limit:
            break
    return found


def review_action_prefix(card_id: int) -> str:
    return encode("rev", card_id) + ":"


def render_card(
    lesson: Lesson, card: ReviewCard, capabilities: Capabilities, *, number: int = 0, of: int = 0
) -> QuizPart:
    """The card's quiz as question and buttons (answers come back as `rev:<card>:<option>`)."""
    quiz = lesson.quiz
    assert quiz is not None
    header = f"🔁 {number}/{of} · " if of > 1 else "🔁 "
    part = render_quiz(
        dataclasses.replace(quiz, question=f"{header}{lesson.title}\n\n{quiz.question}"),
        dataclasses.replace(capabilities, native_quiz=False),
        delivery_id=0,
    )
    return dataclasses.replace(part, answer_action_prefix=review_action_prefix(card.id or 0))


def show(cards: Sequence[ReviewCard], now: dt.datetime, delivery_id: int | None = None) -> None:
    """Mark cards as put before the learner now (their answer's time is measured from here)."""
    for card in cards:
        card.shown_at = now
        if delivery_id is not None:
            card.delivery_id = delivery_id


@dataclass(frozen=True)
class ReviewResult:
    quiz: Quiz
    chosen_index: int
    correct: bool
    rating: fsrs.Rating
    next_due: dt.datetime
    counted: bool
    """False when the card had already been answered since it was shown: nothing changed."""


def answer(
    session: Session,
    course: Course,
    enrollment: Enrollment,
    learner: Learner,
    card_id: int,
    option_index: int,
    now: dt.datetime,
) -> ReviewResult:
    """Record the answer to a shown card and reschedule it with FSRS; a repeated press changes nothing."""
    card = session.get(ReviewCard, card_id)
    if card is None or card.learner_id != learner.id or card.enrollment_id != enrollment.id:
        raise UserError("That review is not for you, or it has expired. Send /review for your due cards.")
    lesson = reviewable(course, card)
    if lesson is None or lesson.quiz is None:
        raise UserError("That quiz is no longer part of the course.")
    quiz = lesson.quiz
    if not 0 <= option_index < len(quiz.options):
        raise UserError(f"Please pick one of the {len(quiz.options)} options.")
    correct = option_index == quiz.correct_index
    if card.shown_at is None:
        return ReviewResult(quiz, option_index, correct, fsrs.Rating.Good, card.due, counted=False)
    seconds = max((now - card.shown_at).total_seconds(), 0.0)
    rating = rating_for(correct, seconds)
    duration_ms = int(seconds * 1000) if seconds <= TIMED_WITHIN else None
    scheduled, _log = scheduler().review_card(to_fsrs(card), rating, now, review_duration=duration_ms)
    _store(card, scheduled)
    card.reps += 1
    if not correct:
        card.lapses += 1
    card.shown_at = None
    session.add(card)
    session.add(
        ReviewAnswer(
            card_id=card.id or 0,
            enrollment_id=enrollment.id or 0,
            course_slug=course.slug,
            lesson_slug=card.lesson_slug,
            correct=correct,
            rating=int(rating),
            seconds=seconds if seconds <= TIMED_WITHIN else None,
            answered_at=now,
        )
    )
    enrollment.last_activity_at = now
    refresh_enrollment(session, course, enrollment, learner, now)
    return ReviewResult(quiz, option_index, correct, rating, card.due, counted=True)


@dataclass(frozen=True)
class Retention:
    """Review answers of one lesson: how much of it stayed with the learners."""

    answered: int = 0
    correct: int = 0

    @property
    def rate(self) -> float | None:
        return self.correct / self.answered if self.answered else None


def retention_by_lesson(session: Session, course_slug: str) -> dict[str, Retention]:
    """Per lesson slug, the review answers given and how many were right (the first quiz answer excluded)."""
    rows = session.execute(
        select_columns(
            col(ReviewAnswer.lesson_slug),
            func.count(),
            func.sum(cast(col(ReviewAnswer.correct), Integer)),
        )
        .where(col(ReviewAnswer.course_slug) == course_slug)
        .group_by(col(ReviewAnswer.lesson_slug))
    ).all()
    return {str(slug): Retention(int(count), int(right or 0)) for slug, count, right in rows}
