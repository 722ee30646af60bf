"""The heartbeat: one APScheduler job that releases due lessons, queues follow-ups, wakes the sender.

It wakes at the earliest `next_release_at` in the database (one indexed MIN query) and at least every
`heartbeat_seconds`, so the schedule's truth stays in the table and the scheduler holds a single job
whatever the number of learners. Follow-ups (reviews, nudges, certificates) run after a tick's
releases, and on idle beats once every `followup_seconds`. Times come from a `Clock`; tests move a
fake clock and call `tick()`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Engine, func, select

from bot.clock import UTC, Clock
from bot.db import Database
from bot.models import Enrollment
from scheduler.planner import CourseSource, ReleaseReport, release_due
from scheduler.review_planner import FollowupReport, plan_followups

log = logging.getLogger(__name__)

RELEASES_PER_CALL = 100_000
"""About what one planner call in a tick releases at most (two seconds of the database, at least two
batches so the planner can plan one beside the writing of the other)."""

HEARTBEAT_JOB_ID = "dripcourse-heartbeat"


class SenderWaker(Protocol):
    """The outbox sender, as far as the heartbeat needs it."""

    async def wake(self) -> None: ...


@dataclass(frozen=True)
class TickReport:
    """One heartbeat: what the planner did, when it ran (clock time), how long it took, when it wakes next."""

    at: dt.datetime
    releases: ReleaseReport
    seconds: float
    next_wake: dt.datetime
    followups: FollowupReport | None = None
    """Reviews, nudges and certificates queued after the releases."""


def earliest_due(engine: Engine) -> dt.datetime | None:
    """The earliest scheduled release of any enrollment (an index lookup), or None when nothing waits."""
    column = Enrollment.__table__.c.next_release_at  # type: ignore[attr-defined]
    with engine.connect() as connection:
        value = connection.execute(select(func.min(column))).scalar()
    assert value is None or isinstance(value, dt.datetime)
    return value


def next_wake(
    earliest: dt.datetime | None, now: dt.datetime, tick_at: dt.datetime, every: dt.timedelta
) -> dt.datetime:
    """When to tick again: at the earliest release, but at least every `every`.

    A release still due at or before the tick that just ran (`tick_at`) is held by another process or
    cannot be planned yet, so it waits for the regular beat instead of spinning.
    """
    regular = now + every
    if earliest is None or earliest <= tick_at:
        return regular
    return min(max(earliest, now), regular)


class Heartbeat:
    """Releases due lessons on time and wakes the sender; `poke()` after an enrollment changes."""

    def __init__(
        self,
        database: Database,
        catalog: CourseSource,
        clock: Clock,
        sender: SenderWaker,
        *,
        heartbeat_seconds: float = 5.0,
        batch_size: int = 20_000,
        followup_seconds: float = 60.0,
        on_released: Callable[[int], None] | None = None,
    ) -> None:
        self._database = database
        self._catalog = catalog
        self._clock = clock
        self._sender = sender
        self._every = dt.timedelta(seconds=heartbeat_seconds)
        self._batch_size = batch_size
        self._followup_every = dt.timedelta(seconds=followup_seconds)
        self._followups_at: dt.datetime | None = None
        self._scheduler: AsyncIOScheduler | None = None
        self._lock = asyncio.Lock()
        self._poked = False
        self._on_released = on_released
        self._stopped = False
        self.last_tick: TickReport | None = None

    async def earliest_due(self) -> dt.datetime | None:
        """The earliest scheduled release in the database, read on the database thread."""
        return await self._database.call(functools.partial(earliest_due, self._database.engine))

    async def tick(self) -> TickReport:
        """Release everything due now, wake the sender if anything was released, and plan the next wake."""
        async with self._lock:
            started = time.perf_counter()
            poked, self._poked = self._poked, False
            tick_at = self._clock.now()
            total = ReleaseReport()
            while True:
                # A bounded number of batches per call: a large burst is released with the planner's
                # overlapped path (planning beside the writer), and other database work (the sender's
                # records, learners' commands) still gets its turn every couple of seconds.
                report = await self._database.call(
                    functools.partial(
                        release_due,
                        self._database.engine,
                        self._catalog,
                        tick_at,
                        batch_size=self._batch_size,
                        max_batches=max(2, RELEASES_PER_CALL // self._batch_size),
                    )
                )
                total.add(report)
                if report.drained:
                    break
            # After the releases: a lesson released in this tick is queued (and sent) before any follow-up.
            # Follow-ups (reviews, nudges, certificates) are day-scale, so an idle beat skips them until
            # `followup_seconds` have passed; a release or a poke runs them at once.
            followups = None
            if self._followups_due(tick_at, total, poked):
                self._followups_at = tick_at
                followups = await self._database.call(
                    functools.partial(plan_followups, self._database.engine, self._catalog, tick_at)
                )
            if total.released and self._on_released is not None:
                self._on_released(total.released)
            if total.released or (followups is not None and followups.queued):
                await self._sender.wake()
            earliest = await self.earliest_due()
            now = self._clock.now()
            # A poke during this tick is served by `_run` ticking again at once, not by rescheduling
            # the job while it still runs (APScheduler would skip that run as a second instance).
            wake = next_wake(earliest, now, tick_at, self._every)
            tick = TickReport(tick_at, total, time.perf_counter() - started, wake, followups)
            self.last_tick = tick
            if total.released or total.postponed or total.held:
                log.info(
                    "heartbeat: released %d (finished %d, missed slots %d, max lateness %.1fs) in %.3fs",
                    total.released,
                    total.finished,
                    total.missed_slots,
                    total.max_lateness_s,
                    tick.seconds,
                )
            self._plan_next_run(wake)
            return tick

    def _followups_due(self, tick_at: dt.datetime, releases: ReleaseReport, poked: bool) -> bool:
        last = self._followups_at
        return poked or releases.released > 0 or last is None or tick_at - last >= self._followup_every

    def start(self, scheduler: AsyncIOScheduler) -> None:
        """Add the heartbeat job to `scheduler` (started or not); the first tick runs at once."""
        self._scheduler = scheduler
        # misfire_grace_time=None: a tick that starts late (event loop busy, machine suspended, a long
        # previous tick) still runs; APScheduler's default grace of one second would silently skip it,
        # which is how one-job-per-learner schedulers lose whole bursts. coalesce=True: several missed
        # beats become one, since a single tick releases everything due anyway. max_instances=1: two
        # ticks never overlap and fight over the same rows; a poke during a tick is remembered instead.
        scheduler.add_job(
            self._run,
            "interval",
            seconds=self._every.total_seconds(),
            id=HEARTBEAT_JOB_ID,
            replace_existing=True,
            next_run_time=dt.datetime.now(UTC),
            misfire_grace_time=None,
            coalesce=True,
            max_instances=1,
        )

    def poke(self) -> None:
        """Something changed (enrolment, resume, new time): look for due releases right away."""
        self._poked = True
        if not self._lock.locked():
            self._plan_next_run(self._clock.now())

    async def stop(self) -> None:
        """Start no more ticks and return once none is running (its database work is never cut off)."""
        self._stopped = True
        async with self._lock:
            return

    async def _run(self) -> None:
        try:
            if not self._stopped:
                await self.tick()
            while self._poked and not self._stopped:
                await self.tick()
        except Exception:
            log.exception("heartbeat tick failed; trying again in %s", self._every)
            self._plan_next_run(self._clock.now() + self._every)

    def _plan_next_run(self, wake: dt.datetime) -> None:
        """Move the job's next run to `wake` (clock time), translated into the scheduler's real time."""
        scheduler = self._scheduler
        if scheduler is None or scheduler.get_job(HEARTBEAT_JOB_ID) is None:
            return
        delay = max((wake - self._clock.now()).total_seconds(), 0.0)
        scheduler.modify_job(
            HEARTBEAT_JOB_ID, next_run_time=dt.datetime.now(UTC) + dt.timedelta(seconds=delay)
        )
