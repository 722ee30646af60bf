"""Building courses and enrollments for release tests, and reading back what the planner wrote."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from bot.content import Course, DripRules, Lesson, Quiz, Unlock
from bot.models import Delivery, Enrollment, EnrollmentStatus, Learner

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")


def make_course(
    slug: str = "course",
    lessons: int = 5,
    *,
    unlock: dict[int, Unlock] | None = None,
    quiz_on: Iterable[int] = (),
) -> Course:
    """A course of `lessons` lessons named lesson-1..; `unlock` maps a lesson number to its unlock rule."""
    unlock = unlock or {}
    quizzes = set(quiz_on)
    return Course(
        slug=slug,
        title=slug.title(),
        description="",
        language="en",
        default_cadence="daily",
        default_time="08:00",
        lessons=tuple(
            Lesson(
                slug=f"lesson-{number}",
                number=number,
                title=f"Lesson {number}",
                body_markdown="Body.",
                quiz=Quiz("Q?", ("a", "b"), 0) if number in quizzes else None,
                drip=DripRules(unlock=unlock.get(number, Unlock.ON_SCHEDULE)),
            )
            for number in range(1, lessons + 1)
        ),
    )


_user_ids = itertools.count(1)


def berlin(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=BERLIN).astimezone(UTC)


def add_enrollment(
    engine: Engine,
    course: Course,
    *,
    due: dt.datetime | None,
    zone: str = "Europe/Berlin",
    local_time: str = "08:00",
    cadence: str = "daily",
    next_lesson: str | None = "lesson-1",
    last_lesson: str | None = None,
    released: int = 0,
    status: EnrollmentStatus = EnrollmentStatus.ACTIVE,
    paused_until: dt.datetime | None = None,
    anchor: dt.date | None = None,
    reachable: bool = True,
) -> tuple[int, int]:
    """A learner with one enrollment; returns (learner id, enrollment id)."""
    with Session(engine) as session:
        user = next(_user_ids)
        learner = Learner(
            platform="fake",
            platform_user_id=f"u{user}",
            chat_id=f"c{user}",
            time_zone=zone,
            reachable=reachable,
        )
        session.add(learner)
        session.flush()
        enrollment = Enrollment(
            learner_id=learner.id or 0,
            course_slug=course.slug,
            status=status,
            cadence=cadence,
            local_time=local_time,
            anchor_date=anchor,
            last_lesson_slug=last_lesson,
            next_lesson_slug=next_lesson,
            lessons_released=released,
            next_release_at=due,
            paused_until=paused_until,
        )
        session.add(enrollment)
        session.commit()
        return learner.id or 0, enrollment.id or 0


def enrollment(engine: Engine, enrollment_id: int) -> Enrollment:
    with Session(engine) as session:
        found = session.get(Enrollment, enrollment_id)
        assert found is not None
        session.expunge(found)
        return found


def deliveries(engine: Engine, enrollment_id: int | None = None) -> list[Delivery]:
    with Session(engine) as session:
        query = select(Delivery).order_by(Delivery.id)  # type: ignore[arg-type]
        if enrollment_id is not None:
            query = query.where(Delivery.enrollment_id == enrollment_id)  # type: ignore[arg-type]
        rows = [row[0] for row in session.execute(query)]
        for row in rows:
            session.expunge(row)
        return rows


def released_counts(engine: Engine) -> dict[int, int]:
    with Session(engine) as session:
        rows = session.execute(select(Enrollment.id, Enrollment.lessons_released)).all()  # type: ignore[call-overload]
        return {int(row[0]): int(row[1]) for row in rows}


def still_due(engine: Engine, now: dt.datetime) -> int:
    with Session(engine) as session:
        query = select(func.count()).select_from(Enrollment).where(Enrollment.next_release_at <= now)  # type: ignore[operator]
        return int(session.execute(query).scalar_one())
