"""The outbox sender: drains due deliveries to the chat platforms, paced, in order, crash-safe.

Deliveries are claimed in small batches under a lease (committed before anything is sent), then sent
outside any transaction. After each part the platform accepts, `parts_sent` is committed, so a crash
resends at most the part that was in flight, and at most `in_flight` deliveries are held at once.
Only one delivery per learner is in flight, so the parts of a lesson arrive in order and never
interleave with another lesson to the same chat.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import functools
import inspect
import logging
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from bot.clock import Clock
from bot.content import Course, Lesson
from bot.db import Database
from bot.i18n import lesson_language
from bot.logs import SecretScrubber
from bot.markup import BLOCK_SEPARATOR, render_markdown
from bot.models import DeliveryStatus
from bot.ports import (
    AlbumPart,
    AmbiguousError,
    Capabilities,
    ChatAdapter,
    ChatMigrated,
    MediaPart,
    OutboundPart,
    PermanentError,
    PlatformError,
    RetryAfter,
    SentMessage,
    TransientError,
)
from bot.progression import gate_for
from bot.render import lesson_body, render_lesson, render_text_reply
from bot.settings import SenderSettings
from scheduler import outbox
from scheduler.metrics import DeliveryMetrics
from scheduler.outbox import Claim, PartRecord
from scheduler.pacer import Pacer
from scheduler.planner import CourseSource
from scheduler.review_planner import FOLLOWUP_KINDS, render_followup

log = logging.getLogger(__name__)

DiscussUrl = Callable[[str, Course, Lesson, int], "str | Awaitable[str | None] | None"]
"""(platform, course, lesson, enrollment id) -> the lesson's discussion link, or None."""

POLL_SECONDS = 1.0
"""Longest idle wait between looks at the outbox (retries come due; wake() usually comes first)."""
MAINTENANCE_SECONDS = 3.0
"""How often leases are renewed, expired leases reclaimed, the worker heartbeat and queue depth updated."""
WORKER_LIVE_SECONDS = 10.0
"""A worker whose heartbeat is older than this no longer counts towards the send budget's split."""
WORKER_FORGET = dt.timedelta(hours=1)
RETRY_AFTER_FREE = 5
"""RetryAfter answers per delivery (in this process) that do not count as failed attempts."""
MAX_CHAT_MIGRATIONS = 3
GLOBAL_FLOOD_CHATS = 3
"""This many different chats told to wait within `GLOBAL_FLOOD_WINDOW` means the whole bot is limited."""
GLOBAL_FLOOD_WINDOW = 1.0
MIN_RETRY_DELAY = dt.timedelta(milliseconds=1)
MAX_KEPT_LESSON_BODIES = 1024
"""Rendered lesson bodies kept (per platform, course, lesson and language) before the memo starts over."""


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:96]


def full_jitter_backoff(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds before retry number `attempt` (1-based): uniform in [0, min(cap, base * 2**(attempt-1))]."""
    ceiling = min(cap, base * 2.0 ** max(0, attempt - 1))
    return rng.uniform(0.0, ceiling)


@dataclass(frozen=True)
class Outcome:
    """How one claimed delivery ended in this process: `kind` is a metrics outcome label."""

    kind: str
    reason: str = ""
    parts: int = 0


class PartCommitter:
    """Commits accepted parts in groups: every part waiting when a transaction starts joins it.

    Each caller still waits for its own part's commit before sending the next part, so the crash
    guarantee is unchanged; the group only saves the hand-offs to the database thread under load.
    """

    def __init__(self, database: Database, worker_id: str) -> None:
        self._database = database
        self._worker_id = worker_id
        self._waiting: list[tuple[Claim, PartRecord, dt.datetime, asyncio.Future[bool]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def commit(self, claim: Claim, part: PartRecord, now: dt.datetime) -> bool:
        """Commit `part`; False when this worker no longer holds the delivery's lease."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((claim, part, now, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        # Parts accepted in this turn of the event loop (answers often arrive together) join the group.
        await asyncio.sleep(0)
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                results = await self._database.run(functools.partial(self._record_all, group=group))
            except Exception as error:
                for *_, future in group:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (*_, future), held in zip(group, results, strict=True):
                if not future.done():
                    future.set_result(held)

    def _record_all(
        self, session: Session, *, group: list[tuple[Claim, PartRecord, dt.datetime, asyncio.Future[bool]]]
    ) -> list[bool]:
        return [
            outbox.record_part(session, claim, worker_id=self._worker_id, part=part, now=now)
            for claim, part, now, _future in group
        ]


class Sender:
    """Drains the outbox through the adapters, paced per platform; see the module docstring."""

    def __init__(
        self,
        database: Database,
        catalog: CourseSource,
        adapters: Mapping[str, ChatAdapter],
        pacers: Mapping[str, Pacer],
        clock: Clock,
        settings: SenderSettings,
        *,
        worker_id: str = "",
        discuss_url: DiscussUrl | None = None,
        metrics: DeliveryMetrics | None = None,
        secrets: Iterable[str] = (),
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self._catalog = catalog
        self._adapters = dict(adapters)
        self._pacers = dict(pacers)
        self._clock = clock
        self._settings = settings
        self.worker_id = worker_id or settings.worker_id or default_worker_id()
        self._discuss_url = discuss_url
        self._metrics = metrics
        self._scrubber = SecretScrubber(secrets)
        self._rng = rng or random.Random()
        self._monotonic = monotonic
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._busy_chats: dict[int, str] = {}
        self._file_ids: dict[tuple[str, str], str] = {}
        self._retry_afters: dict[int, int] = {}
        self._recent_floods: dict[str, list[tuple[float, str]]] = {}
        self._lesson_bodies: dict[tuple[str, str, str, str], tuple[Course, tuple[OutboundPart, ...]]] = {}
        self._parts = PartCommitter(database, self.worker_id)
        self._changed = asyncio.Event()
        self._hard_stop = asyncio.Event()
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._last_maintenance = float("-inf")
        self.max_in_flight_seen = 0

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Reclaim what a dead process left (a lone SQLite process: all of it), then drain in background."""
        now = self._clock.now()
        every = self._database.is_sqlite
        reclaimed = await self._database.run(lambda s: outbox.reclaim_leases(s, now=now, every_lease=every))
        if reclaimed:
            log.info("sender %s: reclaimed %d deliveries left in flight", self.worker_id, reclaimed)
        await self._maintain(force=True)
        self._loop_task = asyncio.create_task(self._run(), name=f"sender {self.worker_id}")

    async def wake(self) -> None:
        """New deliveries are waiting: look at the outbox now instead of at the next poll."""
        self._changed.set()

    async def stop(self, drain: bool = True, grace_seconds: float = 10.0) -> None:
        """Claim nothing new; finish in-flight deliveries (up to `grace_seconds` when `drain`), then stop
        after the part in flight and hand every unfinished delivery back to the queue, progress kept."""
        self._stopping = True
        self._changed.set()
        if self._loop_task is not None:
            await self._loop_task
            self._loop_task = None
        if drain and self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=grace_seconds)
        self._hard_stop.set()
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()))
        worker = self.worker_id
        released = await self._database.run(lambda s: outbox.release_leases(s, worker_id=worker))
        await self._database.run(lambda s: outbox.retire(s, worker))
        log.info("sender %s stopped; %d unfinished deliveries back in the queue", worker, released)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    # --- draining --------------------------------------------------------------------------------

    async def drain_once(self) -> int:
        """Claim and send everything due now (retries scheduled during the call wait); returns how many
        deliveries were processed."""
        now = self._clock.now()
        await self._database.run(lambda s: outbox.reclaim_leases(s, now=now))
        processed = 0
        while True:
            claims = await self._claim(self._settings.in_flight - len(self._tasks), now)
            for claim in claims:
                self._spawn(claim)
            processed += len(claims)
            if not self._tasks:
                return processed
            await asyncio.wait(list(self._tasks.values()), return_when=asyncio.FIRST_COMPLETED)

    async def _run(self) -> None:
        refill_at = max(1, self._settings.in_flight // 4)
        while not self._stopping:
            try:
                self._changed.clear()
                await self._maintain()
                free = self._settings.in_flight - len(self._tasks)
                if free >= refill_at or not self._tasks:
                    for claim in await self._claim(free, self._clock.now()):
                        self._spawn(claim)
            except OperationalError as error:
                log.warning("sender %s: database unavailable (%s); retrying", self.worker_id, _cause(error))
            except Exception:
                log.exception("sender %s: outbox query failed; trying again", self.worker_id)
            if self._stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=POLL_SECONDS)

    async def _claim(self, limit: int, now: dt.datetime) -> list[Claim]:
        if limit <= 0 or self._stopping:
            return []
        worker = self.worker_id
        lease = self._settings.lease_seconds
        platforms = list(self._adapters)
        busy = list(self._busy_chats.values())
        return await self._database.run(
            lambda s: outbox.claim_due(
                s,
                worker_id=worker,
                now=now,
                lease_seconds=lease,
                limit=limit,
                platforms=platforms,
                busy_chats=busy,
            )
        )

    def _spawn(self, claim: Claim) -> None:
        task = asyncio.create_task(self._process(claim), name=f"delivery {claim.delivery_id}")
        self._tasks[claim.delivery_id] = task
        self._busy_chats[claim.delivery_id] = claim.chat_id
        self.max_in_flight_seen = max(self.max_in_flight_seen, len(self._tasks))

    async def _maintain(self, force: bool = False) -> None:
        """Renew this worker's leases, reclaim expired ones, heartbeat, split the budgets, refresh metrics."""
        if not force and self._monotonic() - self._last_maintenance < MAINTENANCE_SECONDS:
            return
        self._last_maintenance = self._monotonic()
        now = self._clock.now()
        worker = self.worker_id
        held = list(self._tasks)
        until = now + dt.timedelta(seconds=self._settings.lease_seconds)
        metrics = self._metrics

        def work(session: Session) -> tuple[int, int | None]:
            outbox.renew_leases(session, worker_id=worker, delivery_ids=held, until=until)
            outbox.reclaim_leases(session, now=now)
            live = outbox.heartbeat(
                session,
                worker_id=worker,
                now=now,
                live_within=dt.timedelta(seconds=WORKER_LIVE_SECONDS),
                forget_after=WORKER_FORGET,
            )
            return live, outbox.pending_count(session) if metrics is not None else None

        live, pending = await self._database.run(work)
        for pacer in self._pacers.values():
            if pacer.live_workers != live:
                log.info("sender %s: %d live workers share the %s budget", worker, live, pacer.platform)
                pacer.set_live_workers(live)
        if metrics is not None and pending is not None:
            metrics.queue_depth.set(pending)

    # --- one delivery ----------------------------------------------------------------------------

    async def _process(self, claim: Claim) -> None:
        started = time.perf_counter()
        try:
            outcome = await self._send(claim)
        except OperationalError as error:  # the database restarted or dropped the connection
            log.warning("delivery %d: database unavailable (%s)", claim.delivery_id, _cause(error))
            outcome = await self._retry(claim, "database unavailable", transient=True)
        except Exception as error:  # a bug, not a platform answer: retry later rather than lose it
            log.exception("delivery %d: unexpected error", claim.delivery_id)
            outcome = await self._retry(claim, f"internal error: {type(error).__name__}", transient=True)
        finally:
            self._tasks.pop(claim.delivery_id, None)
            self._busy_chats.pop(claim.delivery_id, None)
            self._changed.set()
        self._report(claim, outcome, time.perf_counter() - started)

    def _report(self, claim: Claim, outcome: Outcome, seconds: float) -> None:
        if self._metrics is not None:
            self._metrics.observe_send(claim.platform, outcome.kind)
        level = logging.INFO if outcome.kind in ("sent", "released") else logging.WARNING
        if not log.isEnabledFor(level):
            return
        log.log(
            level,
            "send delivery=%d learner=%d course=%s lesson=%s platform=%s parts=%d latency_ms=%.0f"
            " outcome=%s%s",
            claim.delivery_id,
            claim.learner_id,
            claim.course_slug,
            claim.lesson_slug or f"({claim.kind})",
            claim.platform,
            outcome.parts,
            seconds * 1000,
            outcome.kind,
            f" reason={outcome.reason!r}" if outcome.reason else "",
            extra={
                "delivery_id": claim.delivery_id,
                "learner_id": claim.learner_id,
                "lesson": claim.lesson_slug,
                "platform": claim.platform,
                "latency_ms": round(seconds * 1000, 1),
                "outcome": outcome.kind,
            },
        )

    async def _render(self, claim: Claim, capabilities: Capabilities) -> list[OutboundPart] | str:
        """The delivery's parts for this platform, or why there is nothing to send any more."""
        if claim.broadcast_text is not None:
            text = BLOCK_SEPARATOR.join(render_markdown(claim.broadcast_text, capabilities.markup))
            return list(render_text_reply(text, capabilities))
        if claim.kind in FOLLOWUP_KINDS:
            catalog = self._catalog
            return await self._database.run(lambda s: render_followup(s, catalog, claim, capabilities))
        course = self._catalog.get(claim.course_slug)
        if course is None:
            return f"course {claim.course_slug} is no longer loaded"
        if claim.lesson_slug is None:
            return f"{claim.kind} delivery has neither a lesson nor a broadcast"
        lesson = course.lesson(claim.lesson_slug)
        if lesson is None:
            return f"lesson {claim.lesson_slug} is no longer in course {course.slug}"
        discuss = None
        if self._discuss_url is not None:
            answer = self._discuss_url(claim.platform, course, lesson, claim.enrollment_id)
            discuss = await answer if inspect.isawaitable(answer) else answer
        language = lesson_language(course, claim.language)
        translated = lesson.in_language(language)
        return list(
            render_lesson(
                translated,
                capabilities,
                delivery_id=claim.delivery_id,
                enrollment_id=claim.enrollment_id,
                lesson_count=len(course.lessons),
                next_allowed=_may_pull_next_early(course, lesson, self._clock.now().date()),
                discuss_url=discuss,
                course_title=course.title,
                language=language,
                body=self._lesson_body(claim.platform, course, translated, language, capabilities),
            )
        )

    def _lesson_body(
        self, platform: str, course: Course, lesson: Lesson, language: str, capabilities: Capabilities
    ) -> tuple[OutboundPart, ...]:
        """The lesson's learner-independent parts, rendered once per loaded course (a reload renders anew)."""
        key = (platform, course.slug, lesson.slug, language)
        kept = self._lesson_bodies.get(key)
        if kept is not None and kept[0] is course:
            return kept[1]
        if len(self._lesson_bodies) >= MAX_KEPT_LESSON_BODIES:
            self._lesson_bodies.clear()
        body = lesson_body(
            lesson,
            capabilities,
            lesson_count=len(course.lessons),
            course_title=course.title,
            language=language,
        )
        self._lesson_bodies[key] = (course, body)
        return body

    async def _send(self, claim: Claim) -> Outcome:
        adapter = self._adapters[claim.platform]
        pacer = self._pacers.get(claim.platform)
        rendered = await self._render(claim, adapter.capabilities)
        if isinstance(rendered, str):
            await self._finish(claim, DeliveryStatus.CANCELLED, rendered)
            return Outcome("cancelled", rendered)
        parts = rendered
        chat_id = claim.chat_id
        message_ids = claim.message_ids
        index = claim.parts_sent
        migrations = 0
        first_part_late = claim.sent_at is None
        while index < len(parts):
            if self._hard_stop.is_set() or (pacer is not None and not await self._acquire(pacer, chat_id)):
                await self._database.run(
                    lambda s: outbox.release_leases(
                        s, worker_id=self.worker_id, delivery_ids=[claim.delivery_id]
                    )
                )
                return Outcome("released", "stopping", index - claim.parts_sent)
            part = await self._with_file_ids(claim.platform, parts[index])
            try:
                sent = await adapter.send(chat_id, part, idempotency_key=f"{claim.delivery_id}.{index}")
            except ChatMigrated as error:
                migrations += 1
                if migrations > MAX_CHAT_MIGRATIONS:
                    reason = self._scrub(f"chat keeps migrating: {error.reason}")
                    await self._finish(claim, DeliveryStatus.FAILED, reason)
                    return Outcome("failed", reason, index - claim.parts_sent)
                chat_id = error.new_chat_id
                await self._database.run(
                    functools.partial(outbox.move_chat, learner_id=claim.learner_id, new_chat_id=chat_id)
                )
                self._busy_chats[claim.delivery_id] = chat_id
                log.warning(
                    "delivery %d: learner %d chat migrated to %s; resending",
                    claim.delivery_id,
                    claim.learner_id,
                    chat_id,
                )
                continue
            except PlatformError as error:
                return await self._handle_failure(claim, error, parts, index, pacer, chat_id)
            now = self._clock.now()
            if self._metrics is not None:
                self._metrics.parts_sent.labels(platform=claim.platform).inc(len(sent.message_ids) or 1)
                if first_part_late:
                    self._metrics.lateness.labels(platform=claim.platform).observe(
                        max(0.0, (now - claim.due_at).total_seconds())
                    )
            first_part_late = False
            message_ids = " ".join(filter(None, [message_ids, *sent.message_ids]))
            self._remember_uploads(claim.platform, sent)
            record = PartRecord(
                index=index,
                message_ids=message_ids,
                last=index + 1 == len(parts),
                uploads=dict(sent.uploaded_file_ids),
                poll_id=sent.poll_id,
            )
            held = await self._parts.commit(claim, record, now)
            if not held:
                return Outcome(
                    "lease_lost", "another worker took this delivery over", index + 1 - claim.parts_sent
                )
            index += 1
        if claim.parts_sent >= len(parts):  # nothing left to send (the lesson shrank, or it was empty)
            await self._finish(claim, DeliveryStatus.SENT, None)
        self._retry_afters.pop(claim.delivery_id, None)
        return Outcome("sent", "", index - claim.parts_sent)

    async def _acquire(self, pacer: Pacer, chat_id: str) -> bool:
        """Wait for the pacer's slot; False if the sender is told to stop meanwhile."""
        if pacer.free_now(chat_id):  # at full speed most slots are free: skip the two tasks below
            await pacer.acquire(chat_id)
            return True
        acquire = asyncio.ensure_future(pacer.acquire(chat_id))
        stop = asyncio.ensure_future(self._hard_stop.wait())
        try:
            await asyncio.wait({acquire, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if acquire.done() and not acquire.cancelled():
            acquire.result()
            return True
        acquire.cancel()
        return False

    async def _with_file_ids(self, platform: str, part: OutboundPart) -> OutboundPart:
        """`part` with the platform file ids of media uploaded before, so nothing is uploaded twice."""
        if isinstance(part, MediaPart):
            known = await self._lookup_file_ids(platform, [part.file_key])
            return dataclasses.replace(part, file_id=known[part.file_key]) if part.file_key in known else part
        if isinstance(part, AlbumPart):
            known = await self._lookup_file_ids(platform, [item.file_key for item in part.items])
            items = tuple(
                dataclasses.replace(item, file_id=known[item.file_key]) if item.file_key in known else item
                for item in part.items
            )
            return dataclasses.replace(part, items=items)
        return part

    async def _lookup_file_ids(self, platform: str, keys: list[str]) -> dict[str, str]:
        wanted = [key for key in keys if key]
        known = {key: self._file_ids[(platform, key)] for key in wanted if (platform, key) in self._file_ids}
        missing = [key for key in wanted if key not in known]
        if missing:
            stored = await self._database.run(lambda s: outbox.known_file_ids(s, platform, missing))
            for key, file_id in stored.items():
                self._file_ids[(platform, key)] = file_id
            known.update(stored)
        return known

    def _remember_uploads(self, platform: str, sent: SentMessage) -> None:
        for key, file_id in sent.uploaded_file_ids.items():
            self._file_ids[(platform, key)] = file_id

    # --- failures --------------------------------------------------------------------------------

    async def _handle_failure(
        self,
        claim: Claim,
        error: PlatformError,
        parts: list[OutboundPart],
        index: int,
        pacer: Pacer | None,
        chat_id: str,
    ) -> Outcome:
        reason = self._scrub(error.reason)
        sent_here = index - claim.parts_sent
        if isinstance(error, RetryAfter):
            return await self._retry_after(claim, error, reason, pacer, sent_here)
        if isinstance(error, PermanentError) and error.unreachable:
            full = f"unreachable: {reason}"
            learner = claim.learner_id
            await self._database.run(lambda s: outbox.mark_unreachable(s, learner, reason))
            await self._finish(claim, DeliveryStatus.FAILED, full)
            return Outcome("unreachable", full, sent_here)
        if isinstance(error, PermanentError):
            full = f"{reason} ({_where(claim, parts, index)})"
            await self._finish(claim, DeliveryStatus.FAILED, full)
            return Outcome("failed", full, sent_here)
        if isinstance(error, AmbiguousError):
            attempts = claim.attempts + 1
            if self._settings.resend_ambiguous and attempts < self._settings.max_attempts:
                outcome = await self._retry(claim, f"ambiguous, resending: {reason}", transient=False)
                return dataclasses.replace(outcome, parts=sent_here)
            await self._finish(claim, DeliveryStatus.AMBIGUOUS, f"ambiguous: {reason}", attempts=attempts)
            return Outcome("ambiguous", reason, sent_here)
        # TransientError, or a PlatformError the adapter did not classify: retrying is the safe bet.
        kind = "" if isinstance(error, TransientError) else "unclassified: "
        outcome = await self._retry(claim, f"{kind}{reason}", transient=True)
        return dataclasses.replace(outcome, parts=sent_here)

    async def _retry(self, claim: Claim, reason: str, *, transient: bool) -> Outcome:
        """Count a failed attempt: retry after a full-jitter backoff, or fail after `max_attempts`."""
        attempts = claim.attempts + 1
        if attempts >= self._settings.max_attempts:
            return await self._give_up(claim, attempts, reason)
        delay = full_jitter_backoff(
            attempts, self._settings.backoff_base_seconds, self._settings.backoff_max_seconds, self._rng
        )
        at = self._clock.now() + max(dt.timedelta(seconds=delay), MIN_RETRY_DELAY)
        await self._reschedule(claim, at, attempts, reason)
        return Outcome("transient" if transient else "ambiguous", f"{reason}; retry in {delay:.1f}s")

    async def _retry_after(
        self, claim: Claim, error: RetryAfter, reason: str, pacer: Pacer | None, sent_here: int
    ) -> Outcome:
        if self._metrics is not None:
            self._metrics.rate_limited.labels(platform=claim.platform).inc()
        whole_bot = error.chat_id is None or self._looks_global(claim.platform, error.chat_id)
        if pacer is not None:
            pacer.pause(error.seconds, None if whole_bot else error.chat_id)
        count = self._retry_afters.get(claim.delivery_id, 0) + 1
        self._retry_afters[claim.delivery_id] = count
        attempts = claim.attempts + (1 if count > RETRY_AFTER_FREE else 0)
        if attempts >= self._settings.max_attempts:
            self._retry_afters.pop(claim.delivery_id, None)
            return await self._give_up(claim, attempts, reason, sent_here)
        at = self._clock.now() + max(dt.timedelta(seconds=error.seconds), MIN_RETRY_DELAY)
        await self._reschedule(claim, at, attempts, f"retry after {error.seconds:g}s: {reason}")
        scope = "the whole bot" if whole_bot else f"chat {error.chat_id}"
        return Outcome("retry_after", f"{scope} waits {error.seconds:g}s: {reason}", sent_here)

    async def _give_up(self, claim: Claim, attempts: int, reason: str, sent_here: int = 0) -> Outcome:
        """Fail the delivery for good: `attempts` reached `max_attempts`."""
        full = f"gave up after {attempts} attempts: {reason}"
        await self._finish(claim, DeliveryStatus.FAILED, full, attempts=attempts)
        return Outcome("failed", full, sent_here)

    def _looks_global(self, platform: str, chat_id: str) -> bool:
        """Several chats told to wait at once: the limit is the bot's, not one chat's."""
        now = self._monotonic()
        recent = [
            (at, chat)
            for at, chat in self._recent_floods.get(platform, [])
            if now - at <= GLOBAL_FLOOD_WINDOW
        ]
        recent.append((now, chat_id))
        self._recent_floods[platform] = recent
        return len({chat for _, chat in recent}) >= GLOBAL_FLOOD_CHATS

    async def _reschedule(self, claim: Claim, at: dt.datetime, attempts: int, reason: str) -> None:
        worker = self.worker_id
        await self._database.run(
            lambda s: outbox.reschedule(
                s, claim, worker_id=worker, next_attempt_at=at, attempts=attempts, error=reason
            )
        )

    async def _finish(
        self, claim: Claim, status: DeliveryStatus, error: str | None, *, attempts: int | None = None
    ) -> None:
        now = self._clock.now()
        worker = self.worker_id
        await self._database.run(
            lambda s: outbox.finish(
                s, claim, worker_id=worker, status=status, now=now, error=error, attempts=attempts
            )
        )

    def _scrub(self, text: str) -> str:
        return self._scrubber.scrub(text)


def _cause(error: OperationalError) -> str:
    """The driver's own first line (SQLAlchemy's message adds the statement and a link)."""
    lines = str(error.orig or error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _where(claim: Claim, parts: list[OutboundPart], index: int) -> str:
    """Which lesson, part and file a permanent failure concerns, for the operator who must fix it."""
    where = f"lesson {claim.lesson_slug or claim.kind}, part {index + 1} of {len(parts)}"
    part = parts[index]
    if isinstance(part, MediaPart):
        where += f", file {part.path.name}"
    elif isinstance(part, AlbumPart):
        where += ", files " + ", ".join(item.path.name for item in part.items)
    return where


def _may_pull_next_early(course: Course, lesson: Lesson, today: dt.date) -> bool:
    """Whether the lesson's "next" button may be offered: a next lesson exists and no rule holds it back."""
    upcoming = course.lesson_after(lesson.slug)
    if upcoming is None or gate_for(course, lesson, upcoming) is not None:
        return False
    if upcoming.drip.min_days_after_previous > 0:
        return False
    return upcoming.drip.not_before is None or upcoming.drip.not_before <= today
