"""The heartbeat: its wake-up maths, ticks moved by a fake clock, and its one APScheduler job."""

from __future__ import annotations

import datetime as dt

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select, update
from sqlmodel import Session

from benchmarks.seed import generated_course, seed_learners
from bot.catalog import Catalog
from bot.db import Database
from bot.models import Delivery, Enrollment
from scheduler.heartbeat import HEARTBEAT_JOB_ID, Heartbeat, earliest_due, next_wake
from tests.fakes import FakeClock, RecordingSender
from tests.release_helpers import add_enrollment, berlin, make_course

UTC = dt.UTC
EVERY = dt.timedelta(seconds=5)


# --- when to wake ----------------------------------------------------------------------------------


def test_with_nothing_scheduled_the_heartbeat_wakes_after_one_beat() -> None:
    now = dt.datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    assert next_wake(None, now, now, EVERY) == now + EVERY


def test_a_release_within_the_beat_is_the_next_wake() -> None:
    now = dt.datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    assert next_wake(now + dt.timedelta(seconds=2), now, now, EVERY) == now + dt.timedelta(seconds=2)


def test_a_release_due_during_the_tick_wakes_at_once() -> None:
    tick_at = dt.datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    now = tick_at + dt.timedelta(seconds=1)
    assert next_wake(tick_at + dt.timedelta(milliseconds=500), now, tick_at, EVERY) == now


def test_a_release_left_due_by_the_tick_waits_for_the_next_beat() -> None:
    tick_at = dt.datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    assert next_wake(tick_at - dt.timedelta(hours=1), tick_at, tick_at, EVERY) == tick_at + EVERY


@given(
    earliest_offset=st.one_of(st.none(), st.integers(min_value=-86_400_000, max_value=86_400_000)),
    tick_lag_ms=st.integers(min_value=0, max_value=60_000),
    every_ms=st.integers(min_value=1, max_value=60_000),
)
def test_the_next_wake_is_never_in_the_past_nor_beyond_one_beat(
    earliest_offset: int | None, tick_lag_ms: int, every_ms: int
) -> None:
    tick_at = dt.datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    now = tick_at + dt.timedelta(milliseconds=tick_lag_ms)
    every = dt.timedelta(milliseconds=every_ms)
    earliest = None if earliest_offset is None else now + dt.timedelta(milliseconds=earliest_offset)

    wake = next_wake(earliest, now, tick_at, every)

    assert now <= wake <= now + every
    if earliest is not None and tick_at < earliest <= now + every:
        assert wake == max(earliest, now)


# --- ticks ------------------------------------------------------------------------------------------


def test_earliest_due_is_the_smallest_scheduled_release(sqlite_engine: Engine) -> None:
    course = make_course()
    assert earliest_due(sqlite_engine) is None
    add_enrollment(sqlite_engine, course, due=berlin(2026, 3, 3, 8, 0))
    add_enrollment(sqlite_engine, course, due=berlin(2026, 3, 2, 9, 30))
    add_enrollment(sqlite_engine, course, due=None)

    assert earliest_due(sqlite_engine) == berlin(2026, 3, 2, 9, 30)


async def test_a_tick_before_the_slot_releases_nothing_and_wakes_at_the_slot(database: Database) -> None:
    course = make_course()
    slot = berlin(2026, 3, 2, 8, 0)
    add_enrollment(database.engine, course, due=slot)
    clock = FakeClock(slot - dt.timedelta(seconds=3))
    sender = RecordingSender()
    heartbeat = Heartbeat(database, Catalog([course]), clock, sender, heartbeat_seconds=5)

    tick = await heartbeat.tick()

    assert tick.releases.released == 0
    assert sender.wakes == 0
    assert tick.next_wake == slot
    assert await heartbeat.earliest_due() == slot


async def test_a_tick_at_the_slot_releases_and_wakes_the_sender(database: Database) -> None:
    course = make_course()
    slot = berlin(2026, 3, 2, 8, 0)
    _, enrollment_id = add_enrollment(database.engine, course, due=slot)
    clock = FakeClock(slot)
    sender = RecordingSender()
    heartbeat = Heartbeat(database, Catalog([course]), clock, sender, heartbeat_seconds=5)

    tick = await heartbeat.tick()

    assert tick.releases.released == 1
    assert sender.wakes == 1
    assert tick.next_wake == slot + EVERY
    assert await heartbeat.earliest_due() == berlin(2026, 3, 3, 8, 0)
    with Session(database.engine) as session:
        [lesson] = session.execute(select(Delivery.lesson_slug)).scalars().all()  # type: ignore[call-overload]
    assert lesson == "lesson-1"

    clock.at = slot + dt.timedelta(minutes=1)
    again = await heartbeat.tick()
    assert again.releases.released == 0
    assert sender.wakes == 1
    del enrollment_id


async def test_one_tick_releases_a_burst_larger_than_a_batch(database: Database) -> None:
    course = generated_course()
    minute = dt.datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    seed_learners(database.engine, course, 3000, minute - dt.timedelta(days=1))
    with database.engine.begin() as connection:
        connection.execute(update(Enrollment).values(next_release_at=minute))  # type: ignore[arg-type]
    clock = FakeClock(minute + dt.timedelta(seconds=20))
    sender = RecordingSender()
    heartbeat = Heartbeat(database, Catalog([course]), clock, sender, batch_size=700)

    tick = await heartbeat.tick()

    assert tick.releases.released == 3000
    assert tick.releases.batches == 5
    assert sender.wakes == 1
    with Session(database.engine) as session:
        due = session.execute(
            select(func.count()).select_from(Enrollment).where(Enrollment.next_release_at <= clock.at)  # type: ignore[operator]
        ).scalar_one()
    assert due == 0


# --- the scheduler job ----------------------------------------------------------------------------


async def test_the_heartbeat_is_one_job_that_never_misfires_or_overlaps(database: Database) -> None:
    clock = FakeClock(dt.datetime(2026, 3, 2, 6, 0, tzinfo=UTC))
    heartbeat = Heartbeat(database, Catalog([make_course()]), clock, RecordingSender(), heartbeat_seconds=5)
    scheduler = AsyncIOScheduler(timezone=UTC)

    heartbeat.start(scheduler)

    [job] = scheduler.get_jobs()
    assert job.id == HEARTBEAT_JOB_ID
    assert job.misfire_grace_time is None
    assert job.coalesce is True
    assert job.max_instances == 1


async def test_a_tick_moves_the_job_to_the_next_release_and_a_poke_to_now(database: Database) -> None:
    course = make_course()
    slot = berlin(2026, 3, 2, 8, 0)
    add_enrollment(database.engine, course, due=slot)
    clock = FakeClock(slot - dt.timedelta(seconds=2))
    heartbeat = Heartbeat(database, Catalog([course]), clock, RecordingSender(), heartbeat_seconds=60)
    scheduler = AsyncIOScheduler(timezone=UTC)
    heartbeat.start(scheduler)

    before = dt.datetime.now(UTC)
    await heartbeat.tick()
    after = dt.datetime.now(UTC)

    job = scheduler.get_job(HEARTBEAT_JOB_ID)
    assert job is not None
    # The slot is 2 s ahead on the heartbeat's clock: the job runs 2 s from now in real time.
    assert before + dt.timedelta(seconds=2) <= job.next_run_time <= after + dt.timedelta(seconds=2)

    heartbeat.poke()
    poked = scheduler.get_job(HEARTBEAT_JOB_ID)
    assert poked is not None
    assert poked.next_run_time <= dt.datetime.now(UTC)


async def test_the_job_runs_the_tick_on_a_started_scheduler(database: Database) -> None:
    course = make_course()
    slot = berlin(2026, 3, 2, 8, 0)
    add_enrollment(database.engine, course, due=slot)
    clock = FakeClock(slot)
    sender = RecordingSender()
    heartbeat = Heartbeat(database, Catalog([course]), clock, sender, heartbeat_seconds=60)
    scheduler = AsyncIOScheduler(timezone=UTC)
    heartbeat.start(scheduler)
    scheduler.start()
    try:
        job = scheduler.get_job(HEARTBEAT_JOB_ID)
        assert job is not None
        # Run exactly what the scheduler runs, awaited here instead of waiting for its timer.
        await job.func()
    finally:
        scheduler.shutdown(wait=False)

    assert sender.wakes == 1
    assert heartbeat.last_tick is not None
    assert heartbeat.last_tick.releases.released == 1


async def test_idle_beats_run_the_follow_ups_once_a_minute_and_a_release_at_once(database: Database) -> None:
    course = make_course()
    slot = berlin(2026, 3, 2, 8, 0)
    add_enrollment(database.engine, course, due=slot)
    clock = FakeClock(slot - dt.timedelta(minutes=5))
    heartbeat = Heartbeat(database, Catalog([course]), clock, RecordingSender(), followup_seconds=60)

    first = await heartbeat.tick()
    clock.at += dt.timedelta(seconds=5)
    idle = await heartbeat.tick()
    clock.at += dt.timedelta(seconds=60)
    a_minute_later = await heartbeat.tick()
    clock.at = slot
    releasing = await heartbeat.tick()

    assert first.followups is not None
    assert idle.followups is None
    assert a_minute_later.followups is not None
    assert releasing.releases.released == 1
    assert releasing.followups is not None
