"""Announcements: stored, restored as dated jobs, fired once into the outbox for reachable learners."""

from __future__ import annotations

import datetime as dt

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Engine, select
from sqlmodel import Session

from bot.db import Database
from bot.models import Announcement, Broadcast, Delivery, DeliveryKind, DeliveryStatus, EnrollmentStatus
from scheduler.announcements import Announcements, add_announcement, fire_announcement
from tests.fakes import FakeClock, RecordingSender
from tests.release_helpers import add_enrollment, make_course

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def broadcast_deliveries(engine: Engine) -> list[Delivery]:
    with Session(engine) as session:
        rows = list(session.execute(select(Delivery).order_by(Delivery.enrollment_id)).scalars())  # type: ignore[arg-type]
        for row in rows:
            session.expunge(row)
        return rows


def announcement(engine: Engine, announcement_id: int) -> Announcement:
    with Session(engine) as session:
        found = session.get(Announcement, announcement_id)
        assert found is not None
        session.expunge(found)
        return found


def test_firing_reaches_every_active_or_paused_reachable_learner_once(engine: Engine) -> None:
    course, other = make_course("course"), make_course("other")
    _, active = add_enrollment(engine, course, due=None)
    _, paused = add_enrollment(engine, course, due=None, status=EnrollmentStatus.PAUSED)
    add_enrollment(engine, course, due=None, status=EnrollmentStatus.FINISHED)
    add_enrollment(engine, course, due=None, status=EnrollmentStatus.ONBOARDING)
    add_enrollment(engine, course, due=None, reachable=False)
    add_enrollment(engine, other, due=None)
    announcement_id = add_announcement(engine, "course", "Live Q&A on Friday", NOW, "teacher", NOW)

    fired = fire_announcement(engine, announcement_id, NOW, batch_size=1)
    again = fire_announcement(engine, announcement_id, NOW)

    assert fired is not None
    assert fired.deliveries == 2
    assert again is None
    rows = broadcast_deliveries(engine)
    assert [row.enrollment_id for row in rows] == [active, paused]
    assert {(row.kind, row.status, row.lesson_slug, row.broadcast_id) for row in rows} == {
        (DeliveryKind.BROADCAST, DeliveryStatus.PENDING, None, fired.broadcast_id)
    }
    assert all(row.due_at == NOW and row.next_attempt_at == NOW for row in rows)
    assert announcement(engine, announcement_id).broadcast_id == fired.broadcast_id
    with Session(engine) as session:
        broadcast = session.get(Broadcast, fired.broadcast_id)
    assert broadcast is not None
    assert (broadcast.course_slug, broadcast.text, broadcast.created_by) == (
        "course",
        "Live Q&A on Friday",
        "teacher",
    )
    assert broadcast.skipped_unreachable == 1


def test_an_announcement_needs_an_aware_time_and_some_text(sqlite_engine: Engine) -> None:
    with pytest.raises(ValueError, match="aware"):
        add_announcement(sqlite_engine, "course", "Hi", NOW.replace(tzinfo=None), "teacher", NOW)
    with pytest.raises(ValueError, match="text"):
        add_announcement(sqlite_engine, "course", "   ", NOW, "teacher", NOW)


async def test_scheduling_adds_the_row_and_one_dated_job(database: Database) -> None:
    clock = FakeClock(NOW)
    scheduler = AsyncIOScheduler(timezone=UTC)
    announcements = Announcements(database, clock, RecordingSender())
    await announcements.start(scheduler)

    announcement_id = await announcements.schedule_announcement(
        "course", "Welcome week", NOW + dt.timedelta(hours=2), "teacher"
    )

    assert announcement(database.engine, announcement_id).broadcast_id is None
    job = scheduler.get_job(f"announcement-{announcement_id}")
    assert job is not None
    assert job.misfire_grace_time is None
    expected = dt.datetime.now(UTC) + dt.timedelta(hours=2)
    assert abs((job.trigger.run_date - expected).total_seconds()) < 5


async def test_start_fires_missed_announcements_and_restores_the_rest(database: Database) -> None:
    course = make_course("course")
    add_enrollment(database.engine, course, due=None)
    missed = add_announcement(
        database.engine, "course", "Sent while down", NOW - dt.timedelta(hours=1), "t", NOW
    )
    ahead = add_announcement(database.engine, "course", "Tomorrow", NOW + dt.timedelta(days=1), "t", NOW)
    done = add_announcement(database.engine, "course", "Old news", NOW - dt.timedelta(days=3), "t", NOW)
    fire_announcement(database.engine, done, NOW - dt.timedelta(days=3))
    sender = RecordingSender()
    scheduler = AsyncIOScheduler(timezone=UTC)
    announcements = Announcements(database, FakeClock(NOW), sender)

    fired = await announcements.start(scheduler)

    assert [result.announcement_id for result in fired] == [missed]
    assert sender.wakes == 1
    assert announcements.job_ids() == [f"announcement-{ahead}"]
    assert announcement(database.engine, missed).broadcast_id is not None
    assert announcement(database.engine, ahead).broadcast_id is None
    assert len(broadcast_deliveries(database.engine)) == 2


async def test_the_job_fires_the_announcement_it_was_made_for(database: Database) -> None:
    course = make_course("course")
    add_enrollment(database.engine, course, due=None)
    clock = FakeClock(NOW)
    sender = RecordingSender()
    scheduler = AsyncIOScheduler(timezone=UTC)
    announcements = Announcements(database, clock, sender)
    await announcements.start(scheduler)
    announcement_id = await announcements.schedule_announcement(
        "course", "Now", NOW + dt.timedelta(minutes=5), "t"
    )
    job = scheduler.get_job(f"announcement-{announcement_id}")
    assert job is not None

    clock.at = NOW + dt.timedelta(minutes=5)
    result = await job.func(*job.args)

    assert result is not None
    assert result.deliveries == 1
    assert sender.wakes == 1
