"""Course statistics and CSV exports agree with the rows in the database, for any seeded course."""

from __future__ import annotations

import csv
import datetime as dt
import io
import statistics
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matplotlib import image
from sqlalchemy import Engine, delete
from sqlmodel import Session, SQLModel

from bot.catalog import Catalog
from bot.charts import funnel_png
from bot.content import Course, Lesson, Quiz
from bot.db import create_db_engine, upgrade
from bot.export import FORMULA_STARTS, export_courses, safe_cell
from bot.models import (
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Enrollment,
    EnrollmentStatus,
    Learner,
    QuizAnswer,
)
from bot.stats import CourseStats, LessonStats, course_stats

START = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)
QUIZ_LESSONS = (1, 3)


def make_lesson(index: int) -> Lesson:
    quiz = Quiz("Pick one", ("a", "b", "c"), 2, "c it is") if index in QUIZ_LESSONS else None
    return Lesson(f"l{index + 1}", index + 1, f"Lesson {index + 1}", "Body.", quiz=quiz)


COURSE = Course("habits", "Good habits", "", "en", "daily", "08:00", tuple(make_lesson(i) for i in range(4)))
OTHER = Course("other", "Other", "", "en", "daily", "08:00", (make_lesson(0), make_lesson(1)))
CATALOG = Catalog([COURSE, OTHER])


@dataclass(frozen=True)
class Seed:
    """One learner with one enrollment in the course, as the test inserts it."""

    name: str
    platform: str
    zone: str | None
    reachable: bool
    status: EnrollmentStatus
    deliveries: tuple[DeliveryStatus, ...]
    """The status of the delivery of lesson i, for the lessons released."""
    done: tuple[bool, ...]
    answers: tuple[int | None, ...]
    """The chosen option of each released lesson's quiz, None when not answered (or no quiz)."""
    days_to_finish: float


names = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)


@st.composite
def seeds(draw: st.DrawFn) -> Seed:
    released = draw(st.integers(0, len(COURSE.lessons)))
    answers = tuple(
        draw(st.one_of(st.none(), st.integers(0, 2))) if index in QUIZ_LESSONS else None
        for index in range(released)
    )
    return Seed(
        name=draw(st.one_of(names, st.sampled_from(["=cmd()", "+1", "-2", "@SUM(A1)", "\tx", "Zoë"]))),
        platform=draw(st.sampled_from(["telegram", "discord"])),
        zone=draw(st.sampled_from([None, "Europe/Berlin", "Asia/Tokyo", "UTC+05:30"])),
        reachable=draw(st.booleans()),
        status=draw(st.sampled_from(list(EnrollmentStatus))),
        deliveries=tuple(
            draw(st.sampled_from([DeliveryStatus.SENT, DeliveryStatus.PENDING, DeliveryStatus.FAILED]))
            for _ in range(released)
        ),
        done=tuple(draw(st.booleans()) for _ in range(released)),
        answers=answers,
        days_to_finish=draw(st.floats(0.5, 60.0, allow_nan=False).map(lambda days: round(days, 3))),
    )


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    db_engine = create_db_engine(f"sqlite:///{tmp_path_factory.mktemp('stats') / 'stats.db'}")
    upgrade(db_engine)
    yield db_engine
    db_engine.dispose()


def clear(engine: Engine) -> None:
    with Session(engine) as session:
        for table in reversed(SQLModel.metadata.sorted_tables):
            session.execute(delete(table))
        session.commit()


def insert(
    engine: Engine, course: Course, all_seeds: list[Seed], first_user: int = 1
) -> list[tuple[int, int]]:
    """The seeds as rows; returns (learner id, enrollment id) of each."""
    ids = []
    with Session(engine) as session:
        for number, seed in enumerate(all_seeds, start=first_user):
            enrolled_at = START + dt.timedelta(hours=number)
            learner = Learner(
                platform=seed.platform,
                platform_user_id=str(number),
                chat_id=str(number),
                display_name=seed.name,
                time_zone=seed.zone,
                reachable=seed.reachable,
                created_at=enrolled_at,
            )
            session.add(learner)
            session.flush()
            finished = seed.status is EnrollmentStatus.FINISHED
            enrollment = Enrollment(
                learner_id=learner.id or 0,
                course_slug=course.slug,
                status=seed.status,
                cadence="weekdays",
                local_time="07:30",
                lessons_released=len(seed.deliveries),
                enrolled_at=enrolled_at,
                finished_at=enrolled_at + dt.timedelta(days=seed.days_to_finish) if finished else None,
            )
            session.add(enrollment)
            session.flush()
            for index, status in enumerate(seed.deliveries):
                lesson = course.lessons[index]
                at = enrolled_at + dt.timedelta(days=index)
                session.add(
                    Delivery(
                        enrollment_id=enrollment.id or 0,
                        learner_id=learner.id or 0,
                        course_slug=course.slug,
                        kind=DeliveryKind.LESSON,
                        lesson_slug=lesson.slug,
                        status=status,
                        due_at=at,
                        next_attempt_at=at,
                        done_at=at + dt.timedelta(hours=2) if seed.done[index] else None,
                    )
                )
                chosen = seed.answers[index]
                if chosen is not None and lesson.quiz is not None:
                    session.add(
                        QuizAnswer(
                            enrollment_id=enrollment.id or 0,
                            learner_id=learner.id or 0,
                            course_slug=course.slug,
                            lesson_slug=lesson.slug,
                            option_index=chosen,
                            correct=chosen == lesson.quiz.correct_index,
                            answered_at=at + dt.timedelta(hours=1),
                        )
                    )
            ids.append((learner.id or 0, enrollment.id or 0))
        session.commit()
    return ids


def expected_stats(all_seeds: list[Seed]) -> CourseStats:
    """The numbers, worked out from the seeds alone."""
    open_statuses = {EnrollmentStatus.ONBOARDING, EnrollmentStatus.ACTIVE, EnrollmentStatus.PAUSED}

    def with_status(status: EnrollmentStatus) -> int:
        return sum(1 for seed in all_seeds if seed.status is status)

    lessons = []
    for index, lesson in enumerate(COURSE.lessons):
        got_it = [seed for seed in all_seeds if len(seed.deliveries) > index]
        answers = [seed.answers[index] for seed in got_it if seed.answers[index] is not None]
        lessons.append(
            LessonStats(
                slug=lesson.slug,
                number=lesson.number,
                title=lesson.title,
                delivered=sum(1 for seed in got_it if seed.deliveries[index] is DeliveryStatus.SENT),
                done=sum(1 for seed in got_it if seed.done[index]),
                has_quiz=lesson.quiz is not None,
                quiz_answered=len(answers),
                quiz_correct=sum(1 for chosen in answers if chosen == 2),
            )
        )
    finish_days = [seed.days_to_finish for seed in all_seeds if seed.status is EnrollmentStatus.FINISHED]
    return CourseStats(
        slug="habits",
        title="Good habits",
        enrolled=len(all_seeds),
        onboarding=with_status(EnrollmentStatus.ONBOARDING),
        active=with_status(EnrollmentStatus.ACTIVE),
        paused=with_status(EnrollmentStatus.PAUSED),
        finished=with_status(EnrollmentStatus.FINISHED),
        stopped=with_status(EnrollmentStatus.STOPPED),
        unreachable=sum(1 for seed in all_seeds if not seed.reachable and seed.status in open_statuses),
        lessons=tuple(lessons),
        median_days_to_finish=statistics.median(finish_days) if finish_days else None,
    )


def noise() -> list[Seed]:
    """Rows of another course, which must never leak into the numbers or the export."""
    return [
        Seed(
            "Other",
            "telegram",
            "UTC",
            False,
            EnrollmentStatus.ACTIVE,
            (DeliveryStatus.SENT,) * 2,
            (True, True),
            (None, 2),
            1.0,
        )
    ]


def read_csv(content: bytes) -> list[list[str]]:
    assert content.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))


def guarded(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def iso(moment: dt.datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(all_seeds=st.lists(seeds(), max_size=10))
def test_stats_and_export_match_the_rows_inserted(engine: Engine, all_seeds: list[Seed]) -> None:
    clear(engine)
    ids = insert(engine, COURSE, all_seeds)
    insert(engine, OTHER, noise(), first_user=1000)
    with Session(engine) as session:
        stats = course_stats(session, COURSE)
        export = export_courses(session, CATALOG, "habits", NOW)
    expected = expected_stats(all_seeds)
    # Stored datetimes keep microseconds, so the median is equal up to rounding only.
    assert replace(stats, median_days_to_finish=None) == replace(expected, median_days_to_finish=None)
    if expected.median_days_to_finish is None:
        assert stats.median_days_to_finish is None
    else:
        assert stats.median_days_to_finish == pytest.approx(expected.median_days_to_finish, abs=1e-6)

    header, *rows = read_csv(export.enrollments.content)
    assert header[:3] == ["enrollment_id", "learner_id", "platform"]
    assert export.enrollments.rows == len(all_seeds) == len(rows)
    for number, (row, seed, (learner_id, enrollment_id)) in enumerate(
        zip(rows, all_seeds, ids, strict=True), 1
    ):
        record = dict(zip(header, row, strict=True))
        enrolled_at = START + dt.timedelta(hours=number)
        answered = [chosen for chosen in seed.answers if chosen is not None]
        right = sum(1 for chosen in answered if chosen == 2)
        finished = enrolled_at + dt.timedelta(days=seed.days_to_finish)
        assert record == {
            "enrollment_id": str(enrollment_id),
            "learner_id": str(learner_id),
            "platform": seed.platform,
            "platform_user_id": str(number),
            "display_name": guarded(seed.name),
            "course": "habits",
            "cohort": "",
            "time_zone": seed.zone or "",
            "cadence": "weekdays",
            "local_time": "07:30",
            "status": seed.status.value,
            "reachable": "yes" if seed.reachable else "no",
            "lessons_released": str(len(seed.deliveries)),
            "lessons_total": "4",
            "enrolled_at": iso(enrolled_at),
            "finished_at": iso(finished) if seed.status is EnrollmentStatus.FINISHED else "",
            "quiz_right": str(right),
            "quiz_answered": str(len(answered)),
            "quiz_score_percent": f"{100 * right / len(answered):.1f}" if answered else "",
        }

    header, *answers = read_csv(export.quiz_answers.content)
    expected_answers = [
        (
            str(learner_id),
            COURSE.lessons[index].slug,
            str(chosen + 1),
            "abc"[chosen],
            "yes" if chosen == 2 else "no",
        )
        for seed, (learner_id, _) in zip(all_seeds, ids, strict=True)
        for index, chosen in enumerate(seed.answers)
        if chosen is not None
    ]
    got = [
        (
            record["learner_id"],
            record["lesson"],
            record["chosen_option"],
            record["chosen_text"],
            record["correct"],
        )
        for record in (dict(zip(header, row, strict=True)) for row in answers)
    ]
    assert got == expected_answers
    assert export.quiz_answers.rows == len(expected_answers)


@given(st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00")))
def test_no_exported_text_cell_starts_a_formula(text: str) -> None:
    cell = safe_cell(text)
    assert isinstance(cell, str)
    assert not cell.startswith(FORMULA_STARTS)
    assert cell == text or cell == "'" + text
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerow([cell, 7])
    [[read_back, number]] = list(csv.reader(io.StringIO(buffer.getvalue(), newline="")))
    assert (read_back, number) == (cell, "7")


def test_the_funnel_chart_is_a_png_matplotlib_can_read(engine: Engine, tmp_path: Path) -> None:
    clear(engine)
    insert(
        engine,
        COURSE,
        [
            Seed(
                "A",
                "telegram",
                "UTC",
                True,
                EnrollmentStatus.ACTIVE,
                (DeliveryStatus.SENT,) * 3,
                (True, True, False),
                (None, 2, None),
                1.0,
            ),
            Seed(
                "B",
                "discord",
                "UTC",
                True,
                EnrollmentStatus.FINISHED,
                (DeliveryStatus.SENT,) * 4,
                (True,) * 4,
                (None, 0, None, 2),
                9.0,
            ),
        ],
    )
    with Session(engine) as session:
        stats = course_stats(session, COURSE)
    png = funnel_png(stats)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    pixels = image.imread(io.BytesIO(png), format="png")
    height, width, channels = pixels.shape
    assert width > 600 and height > 200 and channels in (3, 4)
    assert pixels.std() > 0  # not a blank canvas
    empty = funnel_png(CourseStats("x", "Empty $ course", 0, 0, 0, 0, 0, 0, 0, (), None))
    assert image.imread(io.BytesIO(empty), format="png").ndim == 3
