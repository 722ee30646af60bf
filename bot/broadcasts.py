"""Instructor broadcasts through the outbox: a previewed draft, then one delivery per learner.

The audience is every open enrollment (onboarding, active, paused) of a course or of one cohort whose
learner can still be reached. Queuing is idempotent twice over: only a draft can be queued (a
conditional update), and a delivery is unique per enrollment and broadcast. Each function runs in the
caller's transaction and raises `UserError` with a plain message when it cannot do what was asked.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from sqlalchemy import func, update
from sqlalchemy import select as select_columns
from sqlmodel import Session, col, select

from bot.cadence import Cadence, parse_cadence, parse_time_of_day
from bot.catalog import Catalog
from bot.content import Course
from bot.db import insert_ignoring_duplicates
from bot.models import (
    Broadcast,
    BroadcastStatus,
    Cohort,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Enrollment,
    Learner,
)
from bot.pacing import next_slot
from bot.stats import count_where
from bot.timezones import load_zone
from bot.usecases import OPEN_STATUSES, UserError

MAX_TEXT = 4000
INSERT_CHUNK = 1000
UNREACHABLE_PREFIX = "unreachable"
"""How the sender starts the error of a delivery that failed because the learner is unreachable."""


@dataclass(frozen=True)
class Audience:
    course_slug: str | None
    cohort_name: str | None = None


def parse_audience(target: str) -> Audience:
    """`<course>`, `cohort:<name>` or `cohort:<course>/<name>`."""
    typed = target.strip().lower()
    if typed.startswith("cohort:"):
        course, _, name = typed.removeprefix("cohort:").rpartition("/")
        if not name:
            raise UserError("Name the cohort: cohort:<name> or cohort:<course>/<name>.")
        return Audience(course or None, name)
    if not typed:
        raise UserError("Name a course or a cohort (cohort:<name>).")
    return Audience(typed)


@dataclass(frozen=True)
class BroadcastDraft:
    broadcast_id: int
    course_slug: str
    course_title: str
    cohort_name: str | None
    text: str
    reachable: int
    """Open enrollments in the audience whose learner can be reached: the deliveries it will make."""
    unreachable: int


@dataclass(frozen=True)
class BroadcastProgress:
    broadcast_id: int
    course_slug: str
    cohort_name: str | None
    status: BroadcastStatus
    at_local_time: bool
    total: int
    """Deliveries made for it."""
    sent: int
    waiting: int
    """Due now and not sent yet (pending, being sent, or fate unknown after a timeout)."""
    scheduled: int
    """Waiting for each learner's own delivery time."""
    failed: int
    unreachable: int
    """Deliveries that failed because the learner can no longer be reached."""
    cancelled: int
    skipped: int
    """Learners of the audience already unreachable when it was queued (no delivery was made)."""

    @property
    def settled(self) -> int:
        """Deliveries that will not change any more."""
        return self.sent + self.failed + self.unreachable + self.cancelled

    @property
    def finished(self) -> bool:
        return self.status is not BroadcastStatus.DRAFT and self.waiting == 0 and self.scheduled == 0


def create_draft(
    session: Session, catalog: Catalog, target: str, text: str, created_by: str, now: dt.datetime
) -> BroadcastDraft:
    """Store a draft for `target` and count its audience; nothing is sent until it is queued."""
    body = text.strip()
    if not body:
        raise UserError("The broadcast needs some text: broadcast <course|cohort:name> <text>.")
    if len(body) > MAX_TEXT:
        raise UserError(f"A broadcast is at most {MAX_TEXT} characters; this one has {len(body)}.")
    course, cohort = resolve_audience(session, catalog, parse_audience(target))
    broadcast = Broadcast(
        course_slug=course.slug,
        cohort_id=cohort.id if cohort else None,
        text=body,
        created_by=created_by[:96],
        created_at=now,
        status=BroadcastStatus.DRAFT,
    )
    session.add(broadcast)
    session.flush()
    rows = _recipients(session, course.slug, broadcast.cohort_id)
    reachable = sum(1 for row in rows if row.reachable)
    return BroadcastDraft(
        broadcast_id=broadcast.id or 0,
        course_slug=course.slug,
        course_title=course.title,
        cohort_name=cohort.name if cohort else None,
        text=body,
        reachable=reachable,
        unreachable=len(rows) - reachable,
    )


def queue(
    session: Session, broadcast_id: int, *, at_local_time: bool, now: dt.datetime
) -> tuple[BroadcastProgress, bool]:
    """Queue a draft's deliveries, now or at each learner's own next delivery time.

    Returns the progress and whether this call queued it (False: it was queued before).
    """
    broadcast = _broadcast(session, broadcast_id)
    if broadcast.status is BroadcastStatus.CANCELLED:
        raise UserError(f"Broadcast #{broadcast_id} was cancelled.")
    claimed = session.execute(
        update(Broadcast)
        .where(col(Broadcast.id) == broadcast_id, col(Broadcast.status) == BroadcastStatus.DRAFT)
        .values(status=BroadcastStatus.QUEUED, at_local_time=at_local_time, confirmed_at=now)
        .execution_options(synchronize_session=False)
    )
    if int(claimed.rowcount) != 1:  # type: ignore[attr-defined]
        return broadcast_progress(session, broadcast_id, now), False
    skipped = _insert_deliveries(session, broadcast, at_local_time, now)
    session.execute(
        update(Broadcast)
        .where(col(Broadcast.id) == broadcast_id)
        .values(skipped_unreachable=skipped)
        .execution_options(synchronize_session=False)
    )
    session.expire(broadcast)
    return broadcast_progress(session, broadcast_id, now), True


def cancel(session: Session, broadcast_id: int, now: dt.datetime) -> BroadcastProgress:
    """Cancel a draft, or those deliveries of a queued broadcast that have not gone out yet."""
    broadcast = _broadcast(session, broadcast_id)
    session.execute(
        update(Delivery)
        .where(col(Delivery.broadcast_id) == broadcast_id, col(Delivery.status) == DeliveryStatus.PENDING)
        .values(status=DeliveryStatus.CANCELLED, error="broadcast cancelled")
        .execution_options(synchronize_session=False)
    )
    broadcast.status = BroadcastStatus.CANCELLED
    session.add(broadcast)
    session.flush()
    return broadcast_progress(session, broadcast_id, now)


def resolve_audience(session: Session, catalog: Catalog, audience: Audience) -> tuple[Course, Cohort | None]:
    if audience.cohort_name is None:
        return _course(catalog, audience.course_slug or ""), None
    statement = select(Cohort).where(col(Cohort.name) == audience.cohort_name)
    if audience.course_slug:
        statement = statement.where(col(Cohort.course_slug) == audience.course_slug)
    found = list(session.exec(statement).all())
    if not found:
        raise UserError(f"There is no cohort “{audience.cohort_name[:64]}”.")
    if len(found) > 1:
        forms = ", ".join(f"cohort:{cohort.course_slug}/{cohort.name}" for cohort in found)
        raise UserError(f"Several courses have a cohort by that name: use one of {forms}.")
    return _course(catalog, found[0].course_slug), found[0]


@dataclass(frozen=True)
class Recipient:
    """What queuing needs to know about one open enrollment of the audience."""

    enrollment_id: int
    learner_id: int
    reachable: bool
    time_zone: str | None
    local_time: str
    cadence: str
    anchor: dt.date | None
    next_release_at: dt.datetime | None
    paused_until: dt.datetime | None


@functools.lru_cache(maxsize=4096)
def _clock(zone_name: str, local_time: str, cadence: str) -> tuple[dt.tzinfo, dt.time, Cadence]:
    return load_zone(zone_name), parse_time_of_day(local_time), parse_cadence(cadence)


def personal_delivery_time(recipient: Recipient, now: dt.datetime) -> dt.datetime:
    """When this learner next hears from the course: the next release, else their next slot after
    any pause; now when they have no clock yet."""
    if recipient.next_release_at is not None:
        return max(recipient.next_release_at, now)
    if recipient.time_zone is None:
        return now
    try:
        zone, wall, cadence = _clock(recipient.time_zone, recipient.local_time, recipient.cadence)
    except ValueError:
        return now
    after = now
    if recipient.paused_until is not None and recipient.paused_until > now:
        after = recipient.paused_until
    return next_slot(zone, wall, cadence, after, recipient.anchor)


def broadcast_progress(session: Session, broadcast_id: int, now: dt.datetime) -> BroadcastProgress:
    """How far a broadcast has got, counted from its delivery rows."""
    broadcast = _broadcast(session, broadcast_id)
    cohort = session.get(Cohort, broadcast.cohort_id) if broadcast.cohort_id is not None else None
    # One pass over the broadcast's deliveries: delivery has no index that starts with broadcast_id.
    tallies = {
        str(status): (int(total), int(unreachable_ones), int(later_ones))
        for status, total, unreachable_ones, later_ones in session.execute(
            select(
                col(Delivery.status),
                func.count(),
                count_where(col(Delivery.error).startswith(UNREACHABLE_PREFIX)),
                count_where(col(Delivery.next_attempt_at) > now),
            )
            .where(col(Delivery.broadcast_id) == broadcast_id)
            .group_by(col(Delivery.status))
        ).all()
    }

    def count(status: DeliveryStatus) -> int:
        return tallies.get(status.value, (0, 0, 0))[0]

    unreachable = tallies.get(DeliveryStatus.FAILED.value, (0, 0, 0))[1]
    scheduled = tallies.get(DeliveryStatus.PENDING.value, (0, 0, 0))[2]
    open_ones = (
        count(DeliveryStatus.PENDING) + count(DeliveryStatus.SENDING) + count(DeliveryStatus.AMBIGUOUS)
    )
    return BroadcastProgress(
        broadcast_id=broadcast_id,
        course_slug=broadcast.course_slug,
        cohort_name=cohort.name if cohort else None,
        status=broadcast.status,
        at_local_time=broadcast.at_local_time,
        total=sum(total for total, _unreachable, _later in tallies.values()),
        sent=count(DeliveryStatus.SENT),
        waiting=open_ones - scheduled,
        scheduled=scheduled,
        failed=count(DeliveryStatus.FAILED) - unreachable,
        unreachable=unreachable,
        cancelled=count(DeliveryStatus.CANCELLED),
        skipped=broadcast.skipped_unreachable,
    )


def _broadcast(session: Session, broadcast_id: int) -> Broadcast:
    broadcast = session.get(Broadcast, broadcast_id)
    if broadcast is None:
        raise UserError(f"There is no broadcast #{broadcast_id}.")
    return broadcast


def _course(catalog: Catalog, slug: str) -> Course:
    course = catalog.get(slug)
    if course is None:
        known = ", ".join(course.slug for course in catalog.courses()) or "none loaded"
        raise UserError(f"There is no course “{slug[:64]}”. Courses: {known}.")
    return course


def _recipients(session: Session, course_slug: str, cohort_id: int | None) -> list[Recipient]:
    statement = (
        select_columns(
            col(Enrollment.id),
            col(Enrollment.learner_id),
            col(Learner.reachable),
            col(Learner.time_zone),
            col(Enrollment.local_time),
            col(Enrollment.cadence),
            col(Enrollment.anchor_date),
            col(Enrollment.next_release_at),
            col(Enrollment.paused_until),
        )
        .join(Learner, col(Learner.id) == col(Enrollment.learner_id))
        .where(col(Enrollment.course_slug) == course_slug, col(Enrollment.status).in_(OPEN_STATUSES))
        .order_by(col(Enrollment.id))
    )
    if cohort_id is not None:
        statement = statement.where(col(Enrollment.cohort_id) == cohort_id)
    return [Recipient(*row) for row in session.execute(statement).all()]


def _insert_deliveries(session: Session, broadcast: Broadcast, at_local_time: bool, now: dt.datetime) -> int:
    """One delivery per reachable learner of the audience (a repeat inserts nothing); returns the skipped."""
    values = []
    skipped = 0
    for recipient in _recipients(session, broadcast.course_slug, broadcast.cohort_id):
        if not recipient.reachable:
            skipped += 1
            continue
        due = personal_delivery_time(recipient, now) if at_local_time else now
        values.append(
            {
                "enrollment_id": recipient.enrollment_id,
                "learner_id": recipient.learner_id,
                "course_slug": broadcast.course_slug,
                "kind": DeliveryKind.BROADCAST,
                "broadcast_id": broadcast.id,
                "status": DeliveryStatus.PENDING,
                "due_at": due,
                "next_attempt_at": due,
                "created_at": now,
                "attempts": 0,
                "parts_sent": 0,
                "message_ids": "",
            }
        )
    connection = session.connection()
    new_deliveries = insert_ignoring_duplicates(Delivery, connection.dialect)
    for start in range(0, len(values), INSERT_CHUNK):
        connection.execute(new_deliveries, values[start : start + INSERT_CHUNK])
    return skipped
