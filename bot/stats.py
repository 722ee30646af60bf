"""Course statistics for instructors, read straight from the tables.

Definitions: `enrolled` counts every enrollment ever made (stopped ones too); `active`, `paused`,
`onboarding`, `finished` and `stopped` count enrollments by status; `unreachable` counts open
enrollments (onboarding, active, paused) whose learner the platform no longer reaches. Per lesson,
`delivered` counts lesson deliveries the platform accepted, `done` the ones marked done, and the quiz
columns the first answers (the ones that count).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, select
from sqlmodel import Session, col

from bot.clock import ensure_utc
from bot.content import Course
from bot.models import (
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Enrollment,
    EnrollmentStatus,
    Learner,
    QuizAnswer,
)
from bot.review import Retention, retention_by_lesson
from bot.usecases import OPEN_STATUSES

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class LessonStats:
    slug: str
    number: int
    title: str
    delivered: int
    done: int
    has_quiz: bool
    quiz_answered: int
    quiz_correct: int
    retention: Retention = field(default_factory=Retention)
    """Spaced-review answers to this lesson's quiz after the first: how much of it stayed."""

    @property
    def quiz_accuracy(self) -> float | None:
        """Share of first answers that were right, 0..1; None when nobody answered."""
        return self.quiz_correct / self.quiz_answered if self.quiz_answered else None


@dataclass(frozen=True)
class CourseStats:
    slug: str
    title: str
    enrolled: int
    onboarding: int
    active: int
    paused: int
    finished: int
    stopped: int
    unreachable: int
    lessons: tuple[LessonStats, ...]
    median_days_to_finish: float | None
    """Median of (finished_at - enrolled_at) in days over finished enrollments; None when none finished."""


def course_stats(session: Session, course: Course) -> CourseStats:
    """The numbers of one course, as of the session's snapshot."""
    by_status: dict[str, int] = {
        str(status): int(count)
        for status, count in session.execute(
            select(col(Enrollment.status), func.count())
            .where(col(Enrollment.course_slug) == course.slug)
            .group_by(col(Enrollment.status))
        ).all()
    }
    unreachable = session.execute(
        select(func.count())
        .select_from(Enrollment)
        .join(Learner, col(Learner.id) == col(Enrollment.learner_id))
        .where(
            col(Enrollment.course_slug) == course.slug,
            col(Enrollment.status).in_(OPEN_STATUSES),
            col(Learner.reachable).is_(False),
        )
    ).scalar_one()
    lesson_deliveries = _per_lesson(
        session,
        select(
            col(Delivery.lesson_slug),
            count_where(col(Delivery.status) == DeliveryStatus.SENT),
            count_where(col(Delivery.done_at).is_not(None)),
        )
        .where(col(Delivery.course_slug) == course.slug, col(Delivery.kind) == DeliveryKind.LESSON)
        .group_by(col(Delivery.lesson_slug)),
    )
    first_answers = _per_lesson(
        session,
        select(col(QuizAnswer.lesson_slug), func.count(), count_where(col(QuizAnswer.correct).is_(True)))
        .where(col(QuizAnswer.course_slug) == course.slug)
        .group_by(col(QuizAnswer.lesson_slug)),
    )
    durations = [
        (ensure_utc(finished_at) - ensure_utc(enrolled_at)).total_seconds() / SECONDS_PER_DAY
        for enrolled_at, finished_at in session.execute(
            select(col(Enrollment.enrolled_at), col(Enrollment.finished_at)).where(
                col(Enrollment.course_slug) == course.slug,
                col(Enrollment.status) == EnrollmentStatus.FINISHED,
                col(Enrollment.finished_at).is_not(None),
            )
        ).all()
    ]
    retention = retention_by_lesson(session, course.slug)
    lessons: list[LessonStats] = []
    for lesson in course.lessons:
        delivered, done = lesson_deliveries.get(lesson.slug, (0, 0))
        answered, correct = first_answers.get(lesson.slug, (0, 0))
        lessons.append(
            LessonStats(
                slug=lesson.slug,
                number=lesson.number,
                title=lesson.title,
                delivered=delivered,
                done=done,
                has_quiz=lesson.quiz is not None,
                quiz_answered=answered,
                quiz_correct=correct,
                retention=retention.get(lesson.slug, Retention()),
            )
        )
    return CourseStats(
        slug=course.slug,
        title=course.title,
        enrolled=sum(by_status.values()),
        onboarding=by_status.get(EnrollmentStatus.ONBOARDING.value, 0),
        active=by_status.get(EnrollmentStatus.ACTIVE.value, 0),
        paused=by_status.get(EnrollmentStatus.PAUSED.value, 0),
        finished=by_status.get(EnrollmentStatus.FINISHED.value, 0),
        stopped=by_status.get(EnrollmentStatus.STOPPED.value, 0),
        unreachable=int(unreachable),
        lessons=tuple(lessons),
        median_days_to_finish=statistics.median(durations) if durations else None,
    )


def _per_lesson(session: Session, statement: Select[Any, int, int]) -> dict[str, tuple[int, int]]:
    """Two counts per lesson slug, from one grouped query."""
    rows = session.execute(statement).all()
    return {str(slug): (int(first), int(second)) for slug, first, second in rows if slug is not None}


def count_where(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """Within a grouped query: how many of the group's rows meet `condition`."""
    return func.sum(case((condition, 1), else_=0))


def summary_lines(stats: CourseStats) -> list[str]:
    """A short plain-text summary: the totals, the median, then one line per lesson."""
    lines = [
        f"{stats.title} ({stats.slug})",
        (
            f"enrolled {stats.enrolled} · active {stats.active} · paused {stats.paused} · "
            f"finished {stats.finished} · unreachable {stats.unreachable} · onboarding {stats.onboarding} · "
            f"left {stats.stopped}"
        ),
        f"median days to finish: {format_days(stats.median_days_to_finish)}",
    ]
    for lesson in stats.lessons:
        line = f"{lesson.number}. {lesson.title}: delivered {lesson.delivered}, done {lesson.done}"
        if lesson.has_quiz:
            line += f", quiz {format_accuracy(lesson)}"
        if lesson.retention.answered:
            line += f", retention {format_retention(lesson.retention)}"
        lines.append(line)
    return lines


def format_days(days: float | None) -> str:
    return "-" if days is None else f"{days:.1f}"


def format_accuracy(lesson: LessonStats) -> str:
    accuracy = lesson.quiz_accuracy
    if accuracy is None:
        return "no answers yet"
    return f"{lesson.quiz_correct}/{lesson.quiz_answered} right ({accuracy:.0%})"


def format_retention(retention: Retention) -> str:
    """Review answers that were right, e.g. "7/9 remembered (78%)"."""
    rate = retention.rate
    if rate is None:
        return "no reviews yet"
    return f"{retention.correct}/{retention.answered} remembered ({rate:.0%})"
