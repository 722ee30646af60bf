"""CSV exports for instructors: one row per enrollment, and one row per quiz answer.

Every text cell that a spreadsheet would run as a formula (starting with = + - @, a tab or a carriage
return) gets a leading apostrophe, since display names and answers are typed by learners. Files are
UTF-8 with a byte-order mark, which spreadsheet programs need to show non-ASCII names correctly.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Integer, cast, func, select
from sqlalchemy.orm import Mapped
from sqlmodel import Session, col

from bot.catalog import Catalog
from bot.clock import ensure_utc
from bot.models import Cohort, Enrollment, Learner, QuizAnswer

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PROGRESS_EVERY = 500

ENROLLMENT_COLUMNS = (
    "enrollment_id",
    "learner_id",
    "platform",
    "platform_user_id",
    "display_name",
    "course",
    "cohort",
    "time_zone",
    "cadence",
    "local_time",
    "status",
    "reachable",
    "lessons_released",
    "lessons_total",
    "enrolled_at",
    "finished_at",
    "quiz_right",
    "quiz_answered",
    "quiz_score_percent",
)
QUIZ_COLUMNS = (
    "enrollment_id",
    "learner_id",
    "platform",
    "display_name",
    "course",
    "lesson",
    "lesson_title",
    "question",
    "chosen_option",
    "chosen_text",
    "correct",
    "answered_at",
)

Cell = str | int
Progress = Callable[[int, int], None]
"""(rows written, rows in all) -> None."""


@dataclass(frozen=True)
class CsvFile:
    filename: str
    content: bytes
    rows: int


@dataclass(frozen=True)
class Export:
    enrollments: CsvFile
    quiz_answers: CsvFile


def safe_cell(value: Cell | None) -> Cell:
    """The value as a CSV cell; text a spreadsheet would evaluate is prefixed with an apostrophe."""
    if value is None:
        return ""
    if isinstance(value, int):
        return value
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def export_courses(
    session: Session,
    catalog: Catalog,
    course_slug: str | None,
    now: dt.datetime,
    progress: Progress | None = None,
) -> Export:
    """Both CSV files for one course, or for every course when `course_slug` is None."""
    enrollment_rows = _enrollment_rows(session, catalog, course_slug)
    quiz_rows = _quiz_rows(session, catalog, course_slug)
    total = len(enrollment_rows) + len(quiz_rows)
    written = [0]

    def tick() -> None:
        written[0] += 1
        if progress is not None and (written[0] % PROGRESS_EVERY == 0 or written[0] == total):
            progress(written[0], total)

    stem = f"{course_slug or 'all-courses'}-{ensure_utc(now):%Y%m%d-%H%M}"
    if progress is not None and total == 0:
        progress(0, 0)
    return Export(
        enrollments=CsvFile(
            f"enrollments-{stem}.csv", _csv(ENROLLMENT_COLUMNS, enrollment_rows, tick), len(enrollment_rows)
        ),
        quiz_answers=CsvFile(f"quiz-answers-{stem}.csv", _csv(QUIZ_COLUMNS, quiz_rows, tick), len(quiz_rows)),
    )


def _csv(header: Sequence[str], rows: Sequence[Sequence[Cell | None]], tick: Callable[[], None]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
        tick()
    return buffer.getvalue().encode("utf-8-sig")


def _iso(moment: dt.datetime | None) -> str:
    return "" if moment is None else ensure_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def _enrollment_rows(session: Session, catalog: Catalog, course_slug: str | None) -> list[list[Cell | None]]:
    scores: dict[int, tuple[int, int]] = {
        int(enrollment_id): (int(right or 0), int(answered))
        for enrollment_id, right, answered in session.execute(
            select(
                col(QuizAnswer.enrollment_id),
                func.sum(cast(col(QuizAnswer.correct), Integer)),
                func.count(),
            )
            .where(*_in_course(col(QuizAnswer.course_slug), course_slug))
            .group_by(col(QuizAnswer.enrollment_id))
        ).all()
    }
    statement = (
        select(
            col(Enrollment.id),
            col(Learner.id),
            col(Learner.platform),
            col(Learner.platform_user_id),
            col(Learner.display_name),
            col(Enrollment.course_slug),
            col(Cohort.name),
            col(Learner.time_zone),
            col(Enrollment.cadence),
            col(Enrollment.local_time),
            col(Enrollment.status),
            col(Learner.reachable),
            col(Enrollment.lessons_released),
            col(Enrollment.enrolled_at),
            col(Enrollment.finished_at),
        )
        .join(Learner, col(Learner.id) == col(Enrollment.learner_id))
        .outerjoin(Cohort, col(Cohort.id) == col(Enrollment.cohort_id))
        .where(*_in_course(col(Enrollment.course_slug), course_slug))
        .order_by(col(Enrollment.course_slug), col(Enrollment.id))
    )
    lesson_counts = {course.slug: len(course.lessons) for course in catalog.courses()}
    rows: list[list[Cell | None]] = []
    for (
        enrollment_id,
        learner_id,
        platform,
        platform_user_id,
        display_name,
        slug,
        cohort_name,
        time_zone,
        cadence,
        local_time,
        status,
        reachable,
        released,
        enrolled_at,
        finished_at,
    ) in session.execute(statement):
        right, answered = scores.get(enrollment_id, (0, 0))
        rows.append(
            [
                enrollment_id,
                learner_id,
                platform,
                platform_user_id,
                display_name,
                slug,
                cohort_name,
                time_zone,
                cadence,
                local_time,
                str(status),
                "yes" if reachable else "no",
                released,
                lesson_counts.get(slug),
                _iso(enrolled_at),
                _iso(finished_at),
                right,
                answered,
                f"{100 * right / answered:.1f}" if answered else None,
            ]
        )
    return rows


def _quiz_rows(session: Session, catalog: Catalog, course_slug: str | None) -> list[list[Cell | None]]:
    statement = (
        select(
            col(QuizAnswer.enrollment_id),
            col(Learner.id),
            col(Learner.platform),
            col(Learner.display_name),
            col(QuizAnswer.course_slug),
            col(QuizAnswer.lesson_slug),
            col(QuizAnswer.option_index),
            col(QuizAnswer.correct),
            col(QuizAnswer.answered_at),
        )
        .join(Learner, col(Learner.id) == col(QuizAnswer.learner_id))
        .where(*_in_course(col(QuizAnswer.course_slug), course_slug))
        .order_by(col(QuizAnswer.course_slug), col(QuizAnswer.enrollment_id), col(QuizAnswer.id))
    )
    rows: list[list[Cell | None]] = []
    for (
        enrollment_id,
        learner_id,
        platform,
        display_name,
        slug,
        lesson_slug,
        option_index,
        correct,
        answered_at,
    ) in session.execute(statement):
        course = catalog.get(slug)
        lesson = course.lesson(lesson_slug) if course else None
        quiz = lesson.quiz if lesson else None
        chosen_text = quiz.options[option_index] if quiz and 0 <= option_index < len(quiz.options) else None
        rows.append(
            [
                enrollment_id,
                learner_id,
                platform,
                display_name,
                slug,
                lesson_slug,
                lesson.title if lesson else None,
                quiz.question if quiz else None,
                option_index + 1,
                chosen_text,
                "yes" if correct else "no",
                _iso(answered_at),
            ]
        )
    return rows


def _in_course(column: Mapped[str], course_slug: str | None) -> list[ColumnElement[bool]]:
    return [] if course_slug is None else [column == course_slug]
