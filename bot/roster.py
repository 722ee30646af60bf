"""Who is taking which course: the instructor's paged learner list and one learner's full record."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func
from sqlmodel import Session, col, select

from bot.catalog import Catalog
from bot.models import Delivery, Enrollment, EnrollmentStatus, Learner, QuizAnswer
from bot.usecases import OPEN_STATUSES

PAGE_SIZE = 20
STATUS_FILTERS = {status.value: status for status in EnrollmentStatus}
UNREACHABLE = "unreachable"
MAX_FRAGMENT = 64


@dataclass(frozen=True)
class RosterRow:
    learner_id: int
    enrollment_id: int
    display_name: str
    platform: str
    course_slug: str
    status: EnrollmentStatus
    lessons_released: int
    lessons_total: int | None
    reachable: bool
    next_release_at: dt.datetime | None


@dataclass(frozen=True)
class RosterPage:
    rows: tuple[RosterRow, ...]
    page: int
    pages: int
    total: int


def roster_page(
    session: Session, catalog: Catalog, course_slug: str | None, filter_text: str, page: int
) -> RosterPage:
    """Enrollments (one row each) matching the filter, 20 a page, by learner id.

    `filter_text` is a status (active, paused, finished, onboarding, stopped), "unreachable" (open
    enrollments of learners the platform no longer reaches), a display-name fragment, or empty.
    """
    conditions: list[ColumnElement[bool]] = []
    if course_slug is not None:
        conditions.append(col(Enrollment.course_slug) == course_slug)
    wanted = filter_text.strip().lower()
    if wanted in STATUS_FILTERS:
        conditions.append(col(Enrollment.status) == STATUS_FILTERS[wanted])
    elif wanted == UNREACHABLE:
        conditions.append(col(Learner.reachable).is_(False))
        conditions.append(col(Enrollment.status).in_(OPEN_STATUSES))
    elif wanted:
        fragment = wanted[:MAX_FRAGMENT]
        conditions.append(func.lower(col(Learner.display_name)).contains(fragment, autoescape=True))
    joined = select(Enrollment, Learner).join(Learner, col(Learner.id) == col(Enrollment.learner_id))
    total = int(
        session.execute(
            select(func.count())
            .select_from(Enrollment)
            .join(Learner, col(Learner.id) == col(Enrollment.learner_id))
            .where(*conditions)
        ).scalar_one()
    )
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages)
    found = session.execute(
        joined.where(*conditions)
        .order_by(col(Learner.id), col(Enrollment.id))
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    rows = []
    for enrollment, learner in found:
        course = catalog.get(enrollment.course_slug)
        rows.append(
            RosterRow(
                learner_id=learner.id or 0,
                enrollment_id=enrollment.id or 0,
                display_name=learner.display_name,
                platform=learner.platform,
                course_slug=enrollment.course_slug,
                status=enrollment.status,
                lessons_released=enrollment.lessons_released,
                lessons_total=len(course.lessons) if course else None,
                reachable=learner.reachable,
                next_release_at=enrollment.next_release_at,
            )
        )
    return RosterPage(tuple(rows), page, pages, total)


@dataclass(frozen=True)
class LearnerRecord:
    learner: Learner
    enrollments: tuple[Enrollment, ...]
    deliveries: tuple[Delivery, ...]
    """Every delivery to the learner, oldest first."""
    quiz_answers: tuple[QuizAnswer, ...]


def learner_record(session: Session, learner_id: int) -> LearnerRecord | None:
    learner = session.get(Learner, learner_id)
    if learner is None:
        return None
    enrollments = session.exec(
        select(Enrollment).where(col(Enrollment.learner_id) == learner_id).order_by(col(Enrollment.id))
    ).all()
    deliveries = session.exec(
        select(Delivery).where(col(Delivery.learner_id) == learner_id).order_by(col(Delivery.id))
    ).all()
    answers = session.exec(
        select(QuizAnswer).where(col(QuizAnswer.learner_id) == learner_id).order_by(col(QuizAnswer.id))
    ).all()
    return LearnerRecord(learner, tuple(enrollments), tuple(deliveries), tuple(answers))
