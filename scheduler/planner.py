"""The release planner: moves every due lesson into the outbox, one transaction per batch.

A release inserts the lesson's `Delivery` row (INSERT ... ON CONFLICT DO NOTHING on the unique
(enrollment, lesson) key) and advances the enrollment with an UPDATE guarded by the lesson and slot it
was claimed with, so no lesson is released twice however many planners race. PostgreSQL processes split
the due set with FOR UPDATE SKIP LOCKED; SQLite claims inside a BEGIN IMMEDIATE write transaction.

This is the hot path: driver-level SQL, each distinct value converted once, and the drip maths
memoised per (course, lesson rules, learner clock, slot), since many learners share all four. On
PostgreSQL a batch is written with executemany; on SQLite each kind of write is one statement over a
JSON array of the batch's rows (`json_each`), and the deliveries are inserted from the advanced rows.

On SQLite a large due set is released through a window (`_DueWindow`): the ids of the earliest-due
enrollments, read up to `RELEASE_WINDOW` at a time and released in id order, one batch per transaction.
Due order scatters a batch over the whole table, so every release would dirty pages of its own (the
enrollment row, the delivery's index entries) and each commit would write and checkpoint thousands of
pages; in id order a batch covers a narrow band of every B-tree that shares the enrollment's or the
learner's id order, and the same pages serve many releases.

A full SQLite release (`max_batches` unset) overlaps the two halves of the work (`_release_overlapped`):
a writer thread writes and commits batch N while the calling thread reads and plans batch N+1 on a
second connection. SQLite releases the GIL while a statement runs, so they use both cores. Batch N+1
is written only if `PRAGMA data_version` shows that no other connection committed since its read;
otherwise it is claimed and planned again inside the write transaction. WAL checkpoints run on a third
thread beside the writer instead of in its commits.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, Dialect, Engine

from bot.cadence import Cadence, parse_cadence, parse_time_of_day
from bot.content import Course, DripRules, Lesson
from bot.models import Enrollment, EnrollmentStatus
from bot.pacing import next_slot, slot_date
from bot.progression import Advance, LearnerClock, advance_after_release, gate_for, release_date
from bot.timezones import load_zone

log = logging.getLogger(__name__)

UNPLANNABLE_RETRY = dt.timedelta(hours=1)
"""How long an enrollment that cannot be planned (course not loaded, bad settings) waits to be tried again."""

SURELY_ONE_SLOT = dt.timedelta(hours=20)
"""A release later than its slot by less than this cannot have missed the next slot: slots fall on
distinct local dates at one wall time, so consecutive ones are ~24 h apart less a DST shift (at most 2 h)."""

RELEASE_WINDOW = 500_000
"""How many due enrollment ids the SQLite planner reads at once (at most about 20 MB of them) to release
them in id order."""

WAL_RESTART_BATCHES = 20
"""How many batches an overlapped release writes between checkpoints that let the WAL file start over."""

_MEMO_LIMIT = 100_000
_ONE_DAY = dt.timedelta(days=1)
_ACTIVE = EnrollmentStatus.ACTIVE.value
_PAUSED = EnrollmentStatus.PAUSED.value
_FINISHED = EnrollmentStatus.FINISHED.value


class CourseSource(Protocol):
    """Where the planner finds a course by slug (the running catalog)."""

    def get(self, slug: str) -> Course | None: ...


@dataclass
class ReleaseReport:
    """What one `release_due` call did; lateness is measured from each release's slot to `now`."""

    released: int = 0
    finished: int = 0
    skipped_missing_lesson: int = 0
    batches: int = 0
    claimed: int = 0
    postponed: int = 0
    """Due enrollments that could not be planned (course not loaded, unreadable settings): retried later."""
    held: int = 0
    """Due enrollments taken off the due set without a release (still paused, or no longer active)."""
    missed_slots: int = 0
    """Releases late by more than one slot: the missed slots collapsed into one overdue lesson."""
    max_lateness_s: float = 0.0
    total_lateness_s: float = 0.0
    drained: bool = True
    """False when `max_batches` stopped the call while more enrollments may still be due; calling again
    right away is then worthwhile."""

    @property
    def mean_lateness_s(self) -> float:
        return self.total_lateness_s / self.released if self.released else 0.0

    def add(self, other: ReleaseReport) -> None:
        """Fold a later call's report into this one."""
        self.released += other.released
        self.finished += other.finished
        self.skipped_missing_lesson += other.skipped_missing_lesson
        self.batches += other.batches
        self.claimed += other.claimed
        self.postponed += other.postponed
        self.held += other.held
        self.missed_slots += other.missed_slots
        self.max_lateness_s = max(self.max_lateness_s, other.max_lateness_s)
        self.total_lateness_s += other.total_lateness_s
        self.drained = other.drained

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mean_lateness_s": self.mean_lateness_s}


def release_due(
    engine: Engine,
    catalog: CourseSource,
    now: dt.datetime,
    *,
    batch_size: int = 20_000,
    max_batches: int | None = None,
) -> ReleaseReport:
    """Release every enrollment whose `next_release_at <= now`, `batch_size` per transaction.

    Blocking: call it off the event loop. A learner whose slots were missed (downtime) gets one
    overdue lesson and the cadence resumes from the first slot after `now`.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    planner = _Planner(engine.dialect, catalog, now)
    report = planner.report
    window = None
    if engine.dialect.name == "sqlite":
        size = RELEASE_WINDOW if max_batches is None else min(RELEASE_WINDOW, batch_size * max_batches)
        window = _DueWindow(engine, planner.due_ids, planner.now_db, max(size, batch_size))
        if (max_batches is None or max_batches > 1) and engine.url.database not in (None, "", ":memory:"):
            _release_overlapped(engine, planner, window, batch_size, max_batches)
            return report
    while max_batches is None or report.batches < max_batches:
        ids = None
        if window is not None:
            ids = window.next_batch(batch_size)
            if not ids:
                report.drained = True
                break
        with write_transaction(engine) as connection:
            claimed, changed = planner.release_batch(connection, batch_size, ids)
        if window is None and claimed == 0:
            report.drained = True
            break
        report.batches += 1
        report.drained = window.drained if window is not None else claimed < batch_size
        if report.drained:
            break
        # Claiming in due order would claim the same rows again; a window hands each id out once, and
        # finds none of a batch still due when another planner released them meanwhile.
        if window is None and changed == 0:
            log.warning("release planner made no progress on %d claimed enrollments; stopping", claimed)
            report.drained = True
            break
    return report


def _release_overlapped(
    engine: Engine, planner: _Planner, window: _DueWindow, batch_size: int, max_batches: int | None
) -> None:
    """Release the window's batches, planning the next batch while a writer thread writes the last.

    SQLite runs a statement without the GIL, so the planning (Python) and the writing (SQLite) use both
    cores. A batch is read and planned on a second connection while the writing connection holds its
    own transaction for the batch before, and it is written in the writing connection's next
    transaction. SQLite's `data_version` tells whether any other connection committed in between
    (from the start of the transaction the read overlapped to the start of the one that writes): if
    none did, the rows are exactly as read; if one did, the batch is claimed and planned again inside
    the write transaction, the ordinary way.
    """
    report = planner.report
    handed_out = 0

    def more_ids() -> list[int]:
        nonlocal handed_out
        if max_batches is not None and handed_out >= max_batches:
            return []
        ids = window.next_batch(batch_size)
        handed_out += 1 if ids else 0
        return ids

    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="release-writer") as writer,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="release-checkpointer") as checkpointer,
        engine.connect() as reader_connection,
        engine.connect() as writer_connection,
        engine.connect() as checkpoint_connection,
    ):
        reader = reader_connection.connection.cursor()
        database = writer_connection.connection
        cursor = database.cursor()

        def begin() -> int:
            # BEGIN IMMEDIATE: the write lock first, so no other connection commits until this one does.
            cursor.execute("BEGIN IMMEDIATE")
            return int(cursor.execute("PRAGMA data_version").fetchone()[0])

        checkpointing = checkpoint_connection.connection.cursor()

        def checkpoint() -> None:
            checkpointing.execute("PRAGMA wal_checkpoint(PASSIVE)")

        checkpointed: Future[None] = Future()
        checkpointed.set_result(None)

        def write_and_commit(batch: _Batch) -> None:
            batch.write(cursor)
            database.commit()

        autocheckpoint = int(cursor.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
        # Checkpoints move to the planning thread (below), off the writer's commits.
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        try:
            # Ids are read ahead, outside the write lock where possible.
            ids = more_ids()
            next_ids = more_ids() if ids else []
            version = begin()
            # The first batch is read while the write lock is held: nothing can change it before its write.
            # Ids another planner released meanwhile are no longer due: such a batch may be empty (None).
            batch = planner.plan_batch(reader, batch_size, ids) if ids else None
            while ids:
                report.batches += 1
                written = writer.submit(write_and_commit, batch) if batch is not None else None
                upcoming = planner.plan_batch(reader, batch_size, next_ids) if next_ids else None
                if checkpointed.done():
                    checkpointed = checkpointer.submit(checkpoint)
                version_now = version
                if written is not None and batch is not None:
                    written.result()
                    planner.fold(batch)
                    if report.batches % WAL_RESTART_BATCHES == 0:
                        # Caught up between two write transactions, so the next write starts the WAL
                        # file over; checkpoints beside the writer alone would let it grow all call long.
                        checkpointed.result()
                        checkpoint()
                ids, next_ids = next_ids, (more_ids() if next_ids else [])
                if written is not None:
                    version_now = begin()
                if upcoming is not None and version_now != version:
                    log.info("another connection wrote while a batch was planned; claiming it again")
                    upcoming = planner.plan_batch(cursor, batch_size, ids)
                    if upcoming is not None:
                        upcoming.write(cursor)
                        planner.fold(upcoming)
                        upcoming = None
                    database.commit()
                    version_now = begin()
                batch, version = upcoming, version_now
        finally:
            database.rollback()
            cursor.execute(f"PRAGMA wal_autocheckpoint={autocheckpoint}")
            checkpointed.result()
            checkpointing.close()
            reader.close()
            cursor.close()
    report.drained = window.drained


class _DueWindow:
    """The ids of the earliest-due enrollments, read `size` at a time, handed out in id order.

    Reading ids only walks the `next_release_at` index; each batch's rows are claimed afresh (still
    due?) inside its own write transaction, so ids another planner released meanwhile are skipped.
    """

    def __init__(self, engine: Engine, statement: str, now_db: Any, size: int) -> None:
        self._engine = engine
        self._statement = statement
        self._now_db = now_db
        self._size = size
        self._ids: list[int] = []
        """Not yet handed out, highest id first: a batch is cut off the end."""
        self._exhausted = False

    @property
    def drained(self) -> bool:
        """True once every enrollment due at the planner's `now` has been handed out."""
        return self._exhausted and not self._ids

    def next_batch(self, batch_size: int) -> list[int]:
        """Up to `batch_size` due ids, lowest first; empty when nothing more is due."""
        if not self._ids and not self._exhausted:
            with self._engine.connect() as connection:
                rows = connection.exec_driver_sql(self._statement, (self._now_db, self._size))
                ids = [row[0] for row in rows]
            self._exhausted = len(ids) < self._size
            self._ids = sorted(ids, reverse=True)
        batch = self._ids[-batch_size:]
        del self._ids[-batch_size:]
        batch.reverse()
        return batch


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that commits on success; on SQLite it holds the write lock from its first statement."""
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            # pysqlite would BEGIN (deferred) only at the first write: the claiming SELECT must already
            # hold the write lock, or another process could claim the same rows in between.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        yield connection


# --- SQL per dialect -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Statements:
    claim: str
    claim_ids: str
    due_ids: str
    insert_delivery: str
    advance: str
    advance_with_status: str
    reschedule: str
    finish: str
    delivered_slugs: str
    set_based: bool
    """True on SQLite: each write statement takes its whole batch as one JSON array of parameter rows,
    so a batch is one statement per kind (one GIL release for its whole run) instead of one per row."""

    @classmethod
    def for_dialect(cls, dialect: Dialect) -> _Statements:
        postgres = dialect.name == "postgresql"
        lock = " FOR UPDATE OF e SKIP LOCKED" if postgres else ""
        same = "IS NOT DISTINCT FROM" if postgres else "IS"
        claimed = (
            "SELECT e.id, e.learner_id, e.course_slug, e.status, e.cadence, e.local_time, e.anchor_date,"
            " e.last_lesson_slug, e.next_lesson_slug, e.next_release_at, e.paused_until, l.time_zone"
            " FROM enrollment AS e JOIN learner AS l ON l.id = e.learner_id"
        )
        if postgres:
            p = "%s"
            values = _Placeholders(lambda _index: "%s", "", "")
        else:
            p = "?"
            values = _Placeholders(
                lambda index: f"json_extract(j.value, '$[{index}]')", " FROM json_each(?) AS j", " WHERE true"
            )
        v = values.next
        # An UPDATE ... FROM json_each has json_each's own `id` column in scope: enrollment's are qualified.
        guard = " WHERE enrollment.id = {} AND enrollment.next_release_at = {}"
        same_lesson = f" AND enrollment.next_lesson_slug {same} {{}}"

        def advance(extra: int) -> str:
            values.reset()
            head = f"UPDATE enrollment SET last_lesson_slug = {v()}, next_lesson_slug = {v()}"
            released_at = v()
            if not postgres:
                # The guard below holds the slot there already: one JSON field fewer to extract per row.
                released_at = "enrollment.next_release_at"
            sets = (
                f"{head}, lessons_released = enrollment.lessons_released + 1,"
                f" last_release_at = {released_at}, next_release_at = {v()},"
                f" waiting_for = {v()}, anchor_date = {v()}"
            )
            if extra:
                sets += f", status = {v()}, paused_until = NULL, finished_at = {v()}"
            where = (guard + same_lesson).format(v(), v(), v())
            return f"{sets}{values.source}{where}"

        values.reset()
        reschedule = f"UPDATE enrollment SET next_release_at = {v()}{values.source}" + guard.format(v(), v())
        values.reset()
        finish = (
            "UPDATE enrollment SET status = 'finished', next_lesson_slug = NULL, next_release_at = NULL,"
            f" waiting_for = NULL, paused_until = NULL, finished_at = {v()}{values.source}"
        ) + guard.format(v(), v())
        insert_delivery = (
            "INSERT INTO delivery (enrollment_id, learner_id, course_slug, kind, lesson_slug, status,"
            " due_at, created_at, next_attempt_at, attempts, parts_sent, message_ids)"
        )
        if postgres:
            insert_delivery += " VALUES (%s, %s, %s, 'lesson', %s, 'pending', %s, %s, %s, 0, 0, '')"
        else:
            # Run after the advances, from the advanced rows: the lesson just released and its slot.
            insert_delivery += (
                " SELECT e.id, e.learner_id, e.course_slug, 'lesson', e.last_lesson_slug, 'pending',"
                " e.last_release_at, ?, ?, 0, 0, '' FROM json_each(?) AS j JOIN enrollment AS e"
                " ON e.id = j.value WHERE true"
            )
        insert_delivery += " ON CONFLICT DO NOTHING"
        return cls(
            claim=f"{claimed} WHERE e.next_release_at <= {p} ORDER BY e.next_release_at LIMIT {p}{lock}",
            claim_ids=f"{claimed} WHERE e.id IN (SELECT value FROM json_each(?)) AND e.next_release_at <= ?",
            due_ids=(
                f"SELECT id FROM enrollment WHERE next_release_at <= {p} ORDER BY next_release_at LIMIT {p}"
            ),
            insert_delivery=insert_delivery,
            advance=advance(0),
            advance_with_status=advance(2),
            reschedule=reschedule,
            finish=finish,
            delivered_slugs=(
                f"SELECT lesson_slug FROM delivery WHERE enrollment_id = {p} AND lesson_slug IS NOT NULL"
            ),
            set_based=not postgres,
        )


class _Placeholders:
    """Numbers a statement's parameters: driver placeholders, or the fields of a JSON parameter row."""

    def __init__(self, placeholder: Callable[[int], str], source: str, where_all: str) -> None:
        self._placeholder = placeholder
        self.source = source
        """What the set-based form selects its rows from ("" for driver placeholders)."""
        self.where_all = where_all
        """SQLite needs a WHERE before an INSERT ... SELECT's ON CONFLICT clause."""
        self._index = 0

    def reset(self) -> None:
        self._index = 0

    def next(self) -> str:
        text = self._placeholder(self._index)
        self._index += 1
        return text


class _Codec:
    """Converts datetimes and dates to and from the driver's values, once per distinct value."""

    def __init__(self, dialect: Dialect) -> None:
        columns = Enrollment.__table__.c  # type: ignore[attr-defined]
        moment = columns.next_release_at.type.dialect_impl(dialect)
        day = columns.anchor_date.type.dialect_impl(dialect)
        self._moment_in = _or_identity(moment.bind_processor(dialect))
        self._moment_out = _or_identity(moment.result_processor(dialect, None))
        self._day_in = _or_identity(day.bind_processor(dialect))
        self._day_out = _or_identity(day.result_processor(dialect, None))
        self._moments_in: dict[dt.datetime, Any] = {}
        self._moments_out: dict[Any, dt.datetime] = {}

    def moment_to_db(self, value: dt.datetime | None) -> Any:
        if value is None:
            return None
        stored = self._moments_in.get(value)
        if stored is None:
            if len(self._moments_in) > _MEMO_LIMIT:
                self._moments_in.clear()
            stored = self._moments_in[value] = self._moment_in(value)
        return stored

    def moment_from_db(self, raw: Any) -> dt.datetime | None:
        if raw is None:
            return None
        value = self._moments_out.get(raw)
        if value is None:
            if len(self._moments_out) > _MEMO_LIMIT:
                self._moments_out.clear()
            value = self._moment_out(raw)
            assert isinstance(value, dt.datetime)
            self._moments_out[raw] = value
        return value

    def day_to_db(self, value: dt.date | None) -> Any:
        return None if value is None else self._day_in(value)

    def day_from_db(self, raw: Any) -> dt.date | None:
        if raw is None:
            return None
        value = self._day_out(raw)
        assert isinstance(value, dt.date)
        return value


def _or_identity(processor: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    return processor if processor is not None else _identity


def _identity(value: Any) -> Any:
    return value


def _enrollment_id(row: Any) -> int:
    return int(row[0])


# --- the per-row maths, memoised -----------------------------------------------------------------


ClockKey = tuple[str | None, str, str, Any]
"""(time zone name, local time "HH:MM", cadence text, stored anchor date)."""


@dataclass(frozen=True)
class _Step:
    """Where releasing a lesson leads in its course: the next lesson and what the rules depend on."""

    lesson: Lesson
    next_lesson_slug: str | None
    rules: int
    """Equal for two steps that `advance_after_release` treats alike besides the slugs: both end the
    course, or both lead to a lesson with equal drip rules behind an equal gate. Such steps share plans."""
    on_cadence: bool = False
    """The next lesson is due at the next slot of the cadence alone: no gate, no other drip rule."""


def advance_on_cadence(
    clock: LearnerClock, released_at: dt.datetime, now: dt.datetime
) -> tuple[dt.datetime, dt.date | None]:
    """The next slot and anchor `advance_after_release` gives when the next lesson has no drip rule
    beyond the cadence and no gate: the first slot after `now` and after the release's local date."""
    not_before = release_date(released_at, clock) + _ONE_DAY
    slot = next_slot(clock.zone, clock.wall, clock.cadence, max(now, released_at), clock.anchor, not_before)
    anchor = clock.anchor
    if anchor is None and clock.cadence.every_n_days > 1:
        anchor = slot_date(slot, clock.zone, clock.wall)
    return slot, anchor


class _CourseView:
    """A course's lessons by slug with each lesson's step to the next, built once per course per call."""

    def __init__(self, course: Course) -> None:
        self.course = course
        self.by_slug = {lesson.slug: lesson for lesson in course.lessons}
        self.steps: dict[str, _Step] = {}
        rule_ids: dict[tuple[Any, ...] | None, int] = {}
        for index, lesson in enumerate(course.lessons):
            upcoming = course.lessons[index + 1] if index + 1 < len(course.lessons) else None
            rules = None if upcoming is None else (upcoming.drip, gate_for(course, lesson, upcoming))
            rule_id = rule_ids.setdefault(rules, len(rule_ids))
            on_cadence = upcoming is not None and rules == (DripRules(), None)
            self.steps[lesson.slug] = _Step(
                lesson, None if upcoming is None else upcoming.slug, rule_id, on_cadence
            )


@dataclass(frozen=True)
class _Plan:
    """An enrollment's stored values after a release, shared by every learner with the same key."""

    next_release_at: Any
    waiting_for: str | None
    anchor: Any
    finished: bool
    missed_slots: bool


class _Planner:
    """The state of one `release_due` call: conversions, clocks and plans memoised across its batches."""

    def __init__(self, dialect: Dialect, catalog: CourseSource, now: dt.datetime) -> None:
        self.report = ReleaseReport()
        self._sql = _Statements.for_dialect(dialect)
        self._codec = _Codec(dialect)
        self._catalog = catalog
        self._now = now
        self._now_db = self._codec.moment_to_db(now)
        self._courses: dict[str, _CourseView | None] = {}
        self._zones: dict[str | None, dt.tzinfo] = {}
        self._walls: dict[str, dt.time] = {}
        self._cadences: dict[str, Cadence] = {}
        self._clocks: dict[ClockKey, LearnerClock] = {}
        self._plans: dict[tuple[str, int, ClockKey, Any], _Plan] = {}

    @property
    def due_ids(self) -> str:
        """The statement reading the ids of the earliest-due enrollments: parameters `now`, limit."""
        return self._sql.due_ids

    @property
    def now_db(self) -> Any:
        """`now` as the driver stores it."""
        return self._now_db

    def release_batch(
        self, connection: Connection, batch_size: int, ids: list[int] | None = None
    ) -> tuple[int, int]:
        """Claim and release one batch in `connection`'s transaction; returns (claimed, changed) rows.

        The batch is the given enrollment `ids` that are still due (SQLite's window), else the
        `batch_size` earliest-due enrollments.
        """
        cursor = connection.connection.cursor()
        try:
            batch = self.plan_batch(cursor, batch_size, ids)
            if batch is None:
                return 0, 0
            changed = batch.write(cursor)
        finally:
            cursor.close()
        self.fold(batch)
        return batch.report.claimed, changed

    def plan_batch(self, cursor: Any, batch_size: int, ids: list[int] | None = None) -> _Batch | None:
        """Claim one batch with `cursor` and plan its writes; None when none of it is due."""
        if ids is None:
            cursor.execute(self._sql.claim, (self._now_db, batch_size))
        else:
            cursor.execute(self._sql.claim_ids, (json.dumps(ids), self._now_db))
        rows = list(cursor.fetchall())
        if not rows:
            return None
        batch = _Batch(self, cursor)
        # Claimed in due order, written in id order: each B-tree page is then visited once, in sequence.
        rows.sort(key=_enrollment_id)
        for row in rows:
            try:
                batch.plan_row(row)
            except Exception:
                log.exception(
                    "cannot plan enrollment %s (learner %s); trying again in %s",
                    row[0],
                    row[1],
                    UNPLANNABLE_RETRY,
                )
                batch.postpone(row[0], row[9])
        batch.report.claimed = len(rows)
        return batch

    def fold(self, batch: _Batch) -> None:
        """Count a committed batch in the call's report and log what it did."""
        drained = self.report.drained
        self.report.add(batch.report)
        self.report.drained = drained
        batch.committed()

    def course(self, slug: str) -> _CourseView | None:
        if slug not in self._courses:
            course = self._catalog.get(slug)
            self._courses[slug] = _CourseView(course) if course is not None else None
        return self._courses[slug]

    def clock(self, key: ClockKey) -> LearnerClock:
        clock = self._clocks.get(key)
        if clock is None:
            if len(self._clocks) > _MEMO_LIMIT:
                self._clocks.clear()
            zone_name, local_time, cadence_text, anchor = key
            zone = self._zones.get(zone_name)
            if zone is None:
                zone = self._zones[zone_name] = load_zone(zone_name or "UTC")
            wall = self._walls.get(local_time)
            if wall is None:
                wall = self._walls[local_time] = parse_time_of_day(local_time)
            cadence = self._cadences.get(cadence_text)
            if cadence is None:
                cadence = self._cadences[cadence_text] = parse_cadence(cadence_text)
            clock = LearnerClock(zone, wall, cadence, self._codec.day_from_db(anchor))
            self._clocks[key] = clock
        return clock

    def plan(
        self, course: Course, step: _Step, clock_key: ClockKey, slot_raw: Any, slot: dt.datetime
    ) -> _Plan:
        key = (course.slug, step.rules, clock_key, slot_raw)
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        if len(self._plans) > _MEMO_LIMIT:
            self._plans.clear()
        clock = self.clock(clock_key)
        if step.on_cadence:
            next_at, anchor = advance_on_cadence(clock, slot, self._now)
            advance = Advance(step.next_lesson_slug, next_at, None, anchor)
        else:
            advance = advance_after_release(course, step.lesson, clock, released_at=slot, now=self._now)
        missed = False
        if self._now - slot >= SURELY_ONE_SLOT:
            missed = next_slot(clock.zone, clock.wall, clock.cadence, slot, clock.anchor) <= self._now
        plan = _Plan(
            next_release_at=self._codec.moment_to_db(advance.next_release_at),
            waiting_for=advance.waiting_for,
            anchor=self._codec.day_to_db(advance.anchor),
            finished=advance.finished,
            missed_slots=missed,
        )
        self._plans[key] = plan
        return plan

    def resume_slot(self, clock_key: ClockKey, paused_until: dt.datetime) -> dt.datetime:
        clock = self.clock(clock_key)
        return next_slot(clock.zone, clock.wall, clock.cadence, paused_until, clock.anchor)


class _Batch:
    """The rows of one claimed batch, planned into parameter lists and written with executemany."""

    def __init__(self, planner: _Planner, cursor: Any) -> None:
        self._planner = planner
        self._cursor = cursor
        self._sql = planner._sql
        self._codec = planner._codec
        self._now = planner._now
        self._now_db = planner._now_db
        self.report = ReleaseReport(drained=False)
        """This batch's figures, folded into the call's report once the batch is committed."""
        self._missed: list[tuple[int, str, str, dt.datetime]] = []
        self._deliveries: list[tuple[Any, ...]] = []
        self._advances: list[tuple[Any, ...]] = []
        self._status_advances: list[tuple[Any, ...]] = []
        self._reschedules: list[tuple[Any, ...]] = []
        self._finishes: list[tuple[Any, ...]] = []

    def write(self, cursor: Any) -> int:
        """Insert the deliveries and advance the enrollments; returns how many enrollments changed.

        Set-based (SQLite), the deliveries are inserted after the advances, from the advanced rows, and
        named by enrollment id alone: one JSON field per delivery instead of seven.
        """
        set_based = self._sql.set_based
        if not set_based:
            self.report.released += self._run(cursor, self._sql.insert_delivery, self._deliveries)
        changed = 0
        for statement, parameters in (
            (self._sql.advance, self._advances),
            (self._sql.advance_with_status, self._status_advances),
            (self._sql.reschedule, self._reschedules),
            (self._sql.finish, self._finishes),
        ):
            changed += self._run(cursor, statement, parameters)
        if set_based and self._deliveries:
            released = json.dumps([delivery[0] for delivery in self._deliveries])
            cursor.execute(self._sql.insert_delivery, (self._now_db, self._now_db, released))
            self.report.released += max(int(cursor.rowcount), 0)
        return changed

    def _run(self, cursor: Any, statement: str, parameters: list[tuple[Any, ...]]) -> int:
        if not parameters:
            return 0
        if self._sql.set_based:
            cursor.execute(statement, (json.dumps(parameters),))
        else:
            cursor.executemany(statement, parameters)
        return max(int(cursor.rowcount), 0)

    def committed(self) -> None:
        """Log what the committed batch did that a reader of the log must hear about."""
        for learner_id, course_slug, lesson_slug, slot in self._missed:
            log.info(
                "missed release for learner %s: %s/%s was due %s; delivering one overdue lesson",
                learner_id,
                course_slug,
                lesson_slug,
                slot.isoformat(),
            )

    def plan_row(self, row: Any) -> None:
        (
            enrollment_id,
            learner_id,
            course_slug,
            status,
            cadence,
            local_time,
            anchor_raw,
            last_slug,
            next_slug,
            slot_raw,
            paused_raw,
            zone_name,
        ) = row
        planner = self._planner
        view = planner.course(course_slug)
        if view is None:
            log.warning(
                "course %r is not loaded: learner %s's release of %r waits %s",
                course_slug,
                learner_id,
                next_slug,
                UNPLANNABLE_RETRY,
            )
            self.postpone(enrollment_id, slot_raw)
            return
        clock_key: ClockKey = (zone_name, local_time, cadence, anchor_raw)
        resumes = status == _PAUSED
        if resumes:
            paused_until = self._codec.moment_from_db(paused_raw)
            if paused_until is None or paused_until > self._now:
                self._hold_paused(enrollment_id, slot_raw, clock_key, paused_until)
                return
        elif status != _ACTIVE:
            log.warning("enrollment %s is %s but had a release scheduled; cleared", enrollment_id, status)
            self._hold(enrollment_id, slot_raw, None)
            return
        step = view.steps.get(next_slug) if next_slug is not None else None
        if step is None:
            step = self._replacement(view, enrollment_id, learner_id, last_slug, next_slug)
            if step is None:
                self.report.finished += 1
                self._finishes.append((self._now_db, enrollment_id, slot_raw))
                return
        slot = self._codec.moment_from_db(slot_raw)
        assert slot is not None
        plan = planner.plan(view.course, step, clock_key, slot_raw, slot)
        self._count(plan, slot, learner_id, course_slug, step.lesson.slug)
        self._deliveries.append(
            (enrollment_id, learner_id, course_slug, step.lesson.slug, slot_raw, self._now_db, self._now_db)
        )
        values = (
            step.lesson.slug,
            step.next_lesson_slug,
            slot_raw,
            plan.next_release_at,
            plan.waiting_for,
            plan.anchor,
        )
        guard = (enrollment_id, slot_raw, next_slug)
        if resumes or plan.finished:
            status_after = _FINISHED if plan.finished else _ACTIVE
            finished_at = self._now_db if plan.finished else None
            self._status_advances.append((*values, status_after, finished_at, *guard))
        else:
            # Most releases leave the status alone: keeping it out of the UPDATE spares its index.
            self._advances.append((*values, *guard))

    def _count(
        self, plan: _Plan, slot: dt.datetime, learner_id: int, course_slug: str, lesson_slug: str
    ) -> None:
        report = self.report
        lateness = (self._now - slot).total_seconds()
        report.total_lateness_s += lateness
        if lateness > report.max_lateness_s:
            report.max_lateness_s = lateness
        if plan.finished:
            report.finished += 1
        if plan.missed_slots:
            report.missed_slots += 1
            self._missed.append((learner_id, course_slug, lesson_slug, slot))

    def _replacement(
        self,
        view: _CourseView,
        enrollment_id: int,
        learner_id: int,
        last_slug: str | None,
        missing_slug: str | None,
    ) -> _Step | None:
        """The next lesson in course order this enrollment has not had, when its next one was removed."""
        self._cursor.execute(self._sql.delivered_slugs, (enrollment_id,))
        delivered = {slug for (slug,) in self._cursor.fetchall()}
        lessons = view.course.lessons
        start = 0
        if last_slug is not None and last_slug in view.by_slug:
            start = lessons.index(view.by_slug[last_slug]) + 1
        replacement = next((lesson for lesson in lessons[start:] if lesson.slug not in delivered), None)
        if missing_slug is not None:
            self.report.skipped_missing_lesson += 1
            log.warning(
                "lesson %r is no longer in course %r: learner %s gets %s instead",
                missing_slug,
                view.course.slug,
                learner_id,
                repr(replacement.slug) if replacement else "nothing more (course finished)",
            )
        return None if replacement is None else view.steps[replacement.slug]

    def _hold_paused(
        self, enrollment_id: int, slot_raw: Any, clock_key: ClockKey, paused_until: dt.datetime | None
    ) -> None:
        """A paused enrollment claimed early: due again at its first slot after the pause (never if open)."""
        resume_at = None if paused_until is None else self._planner.resume_slot(clock_key, paused_until)
        self._hold(enrollment_id, slot_raw, resume_at)

    def _hold(self, enrollment_id: int, slot_raw: Any, due_again: dt.datetime | None) -> None:
        self.report.held += 1
        self._reschedules.append((self._codec.moment_to_db(due_again), enrollment_id, slot_raw))

    def postpone(self, enrollment_id: int, slot_raw: Any) -> None:
        self.report.postponed += 1
        self._reschedules.append(
            (self._codec.moment_to_db(self._now + UNPLANNABLE_RETRY), enrollment_id, slot_raw)
        )
