"""Instructor announcements: one dated APScheduler job per pending `Announcement` row.

The rows are the truth: jobs are restored from them at start, and an announcement whose time passed
while the bot was down fires at start. Firing is one transaction: the `Broadcast` row, one `Delivery`
per reachable learner with an active or paused enrollment in the course (inserted in batches), and the
announcement marked fired; so a crash never leaves a half-sent announcement, and a second firing (a
restart, another process) finds it already fired and does nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Connection, Engine, func, insert, literal, select

from bot.clock import UTC, Clock
from bot.db import Database, insert_ignoring_duplicates
from bot.models import (
    Announcement,
    Broadcast,
    BroadcastStatus,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Enrollment,
    EnrollmentStatus,
    Learner,
    UTCDateTime,
)
from scheduler.heartbeat import SenderWaker
from scheduler.planner import write_transaction

log = logging.getLogger(__name__)

MAX_TEXT_LENGTH = 4000
FIRE_RETRY = dt.timedelta(minutes=1)
_JOB_PREFIX = "announcement-"

_announcement = Announcement.__table__  # type: ignore[attr-defined]
_broadcast = Broadcast.__table__  # type: ignore[attr-defined]
_delivery = Delivery.__table__  # type: ignore[attr-defined]
_enrollment = Enrollment.__table__  # type: ignore[attr-defined]
_learner = Learner.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class FiredAnnouncement:
    announcement_id: int
    broadcast_id: int
    deliveries: int


def add_announcement(
    engine: Engine, course_slug: str, text: str, run_at: dt.datetime, created_by: str, now: dt.datetime
) -> int:
    """Store a pending announcement; returns its id."""
    if run_at.tzinfo is None:
        raise ValueError("run_at must be an aware datetime")
    if not text.strip():
        raise ValueError("an announcement needs some text")
    if len(text) > MAX_TEXT_LENGTH:
        raise ValueError(f"an announcement is at most {MAX_TEXT_LENGTH} characters")
    with engine.begin() as connection:
        result = connection.execute(
            insert(_announcement).values(
                course_slug=course_slug, text=text, run_at=run_at, created_by=created_by, created_at=now
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])


def pending_announcements(engine: Engine) -> list[tuple[int, dt.datetime]]:
    """(id, run_at) of every announcement not fired yet, earliest first."""
    query = (
        select(_announcement.c.id, _announcement.c.run_at)
        .where(_announcement.c.broadcast_id.is_(None))
        .order_by(_announcement.c.run_at, _announcement.c.id)
    )
    with engine.connect() as connection:
        return [(int(row.id), row.run_at) for row in connection.execute(query)]


def fire_announcement(
    engine: Engine, announcement_id: int, now: dt.datetime, *, batch_size: int = 5000
) -> FiredAnnouncement | None:
    """Fire one announcement in one transaction; None when it is gone or was already fired."""
    with write_transaction(engine) as connection:
        claim = select(
            _announcement.c.course_slug,
            _announcement.c.text,
            _announcement.c.created_by,
            _announcement.c.broadcast_id,
        ).where(_announcement.c.id == announcement_id)
        if engine.dialect.name == "postgresql":
            claim = claim.with_for_update()
        row = connection.execute(claim).first()
        if row is None or row.broadcast_id is not None:
            return None
        created = connection.execute(
            insert(_broadcast).values(
                course_slug=row.course_slug,
                cohort_id=None,
                text=row.text,
                at_local_time=False,
                created_by=row.created_by,
                created_at=now,
                status=BroadcastStatus.QUEUED,
                confirmed_at=now,
            )
        ).inserted_primary_key
        assert created is not None
        broadcast_id = int(created[0])
        deliveries = _insert_deliveries(connection, row.course_slug, broadcast_id, now, batch_size)
        connection.execute(
            _broadcast.update()
            .where(_broadcast.c.id == broadcast_id)
            .values(skipped_unreachable=_unreachable_audience(connection, row.course_slug))
        )
        connection.execute(
            _announcement.update()
            .where(_announcement.c.id == announcement_id)
            .values(broadcast_id=broadcast_id)
        )
    log.info(
        "announcement %d to course %r fired: broadcast %d, %d deliveries",
        announcement_id,
        row.course_slug,
        broadcast_id,
        deliveries,
    )
    return FiredAnnouncement(announcement_id, broadcast_id, deliveries)


def _audience(course_slug: str) -> Any:
    """Active or paused enrollments of the course (joined to their learner)."""
    return (_enrollment.c.course_slug == course_slug) & _enrollment.c.status.in_(
        [EnrollmentStatus.ACTIVE, EnrollmentStatus.PAUSED]
    )


def _unreachable_audience(connection: Connection, course_slug: str) -> int:
    joined = _enrollment.join(_learner, _learner.c.id == _enrollment.c.learner_id)
    query = (
        select(func.count())
        .select_from(joined)
        .where(_audience(course_slug), _learner.c.reachable.is_(False))
    )
    return int(connection.execute(query).scalar_one())


def _insert_deliveries(
    connection: Connection, course_slug: str, broadcast_id: int, now: dt.datetime, batch_size: int
) -> int:
    """One broadcast delivery per eligible enrollment, `batch_size` enrollments per statement (by id)."""
    eligible = _audience(course_slug) & _learner.c.reachable.is_(True)
    joined = _enrollment.join(_learner, _learner.c.id == _enrollment.c.learner_id)
    moment = literal(now, UTCDateTime())
    columns = [
        "enrollment_id",
        "learner_id",
        "course_slug",
        "kind",
        "broadcast_id",
        "status",
        "due_at",
        "created_at",
        "next_attempt_at",
        "attempts",
        "parts_sent",
        "message_ids",
    ]
    inserted = 0
    after = 0
    while True:
        window = (
            select(_enrollment.c.id)
            .select_from(joined)
            .where(eligible, _enrollment.c.id > after)
            .order_by(_enrollment.c.id)
            .limit(batch_size)
            .subquery()
        )
        last = connection.execute(select(func.max(window.c.id))).scalar()
        if last is None:
            return inserted
        source = (
            select(
                _enrollment.c.id,
                _enrollment.c.learner_id,
                _enrollment.c.course_slug,
                literal(DeliveryKind.BROADCAST.value),
                literal(broadcast_id),
                literal(DeliveryStatus.PENDING.value),
                moment,
                moment,
                moment,
                literal(0),
                literal(0),
                literal(""),
            )
            .select_from(joined)
            .where(eligible, _enrollment.c.id > after, _enrollment.c.id <= last)
        )
        statement = (
            insert_ignoring_duplicates(_delivery, connection.dialect)
            .from_select(columns, source)
            .execution_options(preserve_rowcount=True)
        )
        inserted += max(connection.execute(statement).rowcount, 0)
        after = int(last)


class StoredAnnouncements:
    """Stores announcements in the database only; a running bot picks them up within its request poll
    (the command line's scheduler, which has no jobs of its own)."""

    def __init__(self, database: Database, clock: Clock) -> None:
        self._database = database
        self._clock = clock

    async def schedule_announcement(
        self, course_slug: str, text: str, run_at: dt.datetime, created_by: str
    ) -> int:
        """Store an announcement for `run_at`; returns the announcement's id."""
        return await self._database.call(
            functools.partial(
                add_announcement,
                self._database.engine,
                course_slug,
                text,
                run_at,
                created_by,
                self._clock.now(),
            )
        )


class Announcements(StoredAnnouncements):
    """Schedules, restores and fires announcements; fired ones wake the sender."""

    def __init__(
        self, database: Database, clock: Clock, sender: SenderWaker, *, batch_size: int = 5000
    ) -> None:
        super().__init__(database, clock)
        self._sender = sender
        self._batch_size = batch_size
        self._scheduler: AsyncIOScheduler | None = None

    async def start(self, scheduler: AsyncIOScheduler) -> list[FiredAnnouncement]:
        """Fire the announcements missed while down, and add one job for each one still ahead."""
        self._scheduler = scheduler
        fired: list[FiredAnnouncement] = []
        pending = await self._database.call(functools.partial(pending_announcements, self._database.engine))
        now = self._clock.now()
        for announcement_id, run_at in pending:
            if run_at <= now:
                log.info(
                    "announcement %d was due at %s while the bot was down: firing it now",
                    announcement_id,
                    run_at,
                )
                result = await self.fire(announcement_id)
                if result is not None:
                    fired.append(result)
            else:
                self._add_job(announcement_id, run_at)
        return fired

    async def schedule_announcement(
        self, course_slug: str, text: str, run_at: dt.datetime, created_by: str
    ) -> int:
        """Store an announcement for `run_at` and add its job; returns the announcement's id."""
        announcement_id = await super().schedule_announcement(course_slug, text, run_at, created_by)
        self._add_job(announcement_id, run_at)
        return announcement_id

    async def fire(self, announcement_id: int) -> FiredAnnouncement | None:
        """Fire one announcement now (idempotent) and wake the sender if it produced deliveries."""
        fired = await self._database.call(
            functools.partial(
                fire_announcement,
                self._database.engine,
                announcement_id,
                self._clock.now(),
                batch_size=self._batch_size,
            )
        )
        if fired is not None and fired.deliveries:
            await self._sender.wake()
        return fired

    def job_ids(self) -> list[str]:
        """The scheduler jobs this object holds (one per pending announcement)."""
        if self._scheduler is None:
            return []
        return [job.id for job in self._scheduler.get_jobs() if job.id.startswith(_JOB_PREFIX)]

    def _add_job(self, announcement_id: int, run_at: dt.datetime) -> None:
        scheduler = self._scheduler
        if scheduler is None:
            return
        delay = max((run_at - self._clock.now()).total_seconds(), 0.0)
        # misfire_grace_time=None: an announcement whose moment passed while the loop was busy still goes
        # out late rather than being dropped as "missed".
        scheduler.add_job(
            self._fire_job,
            "date",
            run_date=dt.datetime.now(UTC) + dt.timedelta(seconds=delay),
            args=[announcement_id],
            id=f"{_JOB_PREFIX}{announcement_id}",
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
            max_instances=1,
        )

    async def _fire_job(self, announcement_id: int) -> Any:
        try:
            return await self.fire(announcement_id)
        except Exception:
            log.exception("announcement %d failed to fire; trying again in %s", announcement_id, FIRE_RETRY)
            self._add_job(announcement_id, self._clock.now() + FIRE_RETRY)
            return None
