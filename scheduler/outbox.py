"""The outbox's SQL: claiming deliveries under a lease, recording each sent part, finishing, reclaiming.

Every function runs inside the caller's transaction (a SQLModel `Session`) and is short: the sender
commits a claim before sending anything and commits again after each part the platform accepted.
Writes to a claimed row check the lease (`lease_owner` and status `sending`), so a worker whose lease
was taken over can never overwrite the new owner's progress.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, Update, and_, bindparam, delete, exists, func, or_, select, text, update
from sqlmodel import Session, col

from bot.db import insert_ignoring_duplicates
from bot.models import (
    Broadcast,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Enrollment,
    Learner,
    MediaUpload,
    QuizPoll,
    SenderWorker,
)
from bot.usecases import OPEN_STATUSES

ERROR_LENGTH = 500
MESSAGE_IDS_LENGTH = 2000


@dataclass(frozen=True)
class Claim:
    """A delivery this worker holds under a lease, with what it needs to render and send it."""

    delivery_id: int
    learner_id: int
    enrollment_id: int
    platform: str
    chat_id: str
    kind: DeliveryKind
    course_slug: str
    lesson_slug: str | None
    broadcast_text: str | None
    due_at: dt.datetime
    attempts: int
    parts_sent: int
    message_ids: str
    sent_at: dt.datetime | None
    language: str | None = None
    """The learner's language: which translation of a lesson to send."""


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def claim_due(
    session: Session,
    *,
    worker_id: str,
    now: dt.datetime,
    lease_seconds: float,
    limit: int,
    platforms: Collection[str],
    busy_chats: Collection[str] = (),
) -> list[Claim]:
    """Lease up to `limit` due deliveries, the longest due first, at most one per learner.

    A delivery is eligible only when it is its learner's oldest unfinished one already due and none
    of the learner's deliveries is being sent, so a learner's lessons go out one at a time, in order,
    across every worker. On PostgreSQL rows locked by another worker's claim are skipped, not waited for.
    """
    if limit <= 0 or not platforms:
        return []
    postgres = _is_postgres(session)
    connection = session.connection()
    if postgres:
        # Without statistics the planner would AND the status index into the per-learner lookup of
        # `_due_statement` and read every pending row for every candidate; the learner index alone is a
        # few rows.
        connection.execute(text("SET LOCAL enable_bitmapscan = off"))
    candidates = {"now": now, "limit": limit, "platforms": list(platforms), "busy_chats": list(busy_chats)}
    ids = list(connection.execute(_due_statement(postgres, bool(busy_chats)), candidates).scalars())
    if not ids:
        return []
    until = now + dt.timedelta(seconds=lease_seconds)
    connection.execute(_lease_statement(), {"ids": ids, "worker_id": worker_id, "until": until})
    rows = connection.execute(_claimed_statement(), {"ids": ids}).all()
    return [Claim(*row) for row in rows]


# The claim's statements are built once (per dialect): at full speed building them cost more than
# running them.


@functools.cache
def _due_statement(postgres: bool, skip_busy_chats: bool) -> Select[tuple[int]]:
    delivery = Delivery.__table__  # type: ignore[attr-defined]
    learner = Learner.__table__  # type: ignore[attr-defined]
    other = delivery.alias("other")
    blocking = exists().where(
        other.c.learner_id == delivery.c.learner_id,
        other.c.id != delivery.c.id,
        or_(
            other.c.status == DeliveryStatus.SENDING,
            # A delivery whose time has not come (a broadcast at the learner's own hour) holds back
            # nothing; one already due, even if waiting to be retried, keeps its place in the order.
            and_(
                other.c.status == DeliveryStatus.PENDING,
                other.c.id < delivery.c.id,
                other.c.due_at <= bindparam("now"),
            ),
        ),
    )
    # The learner's columns are read by primary key per candidate row, not joined: without fresh
    # statistics (a table just filled by a big release) PostgreSQL plans such a join as a nested loop
    # over every learner for every delivery; a scalar subquery is always a key lookup.
    platform = select(learner.c.platform).where(learner.c.id == delivery.c.learner_id)
    statement = (
        select(delivery.c.id)
        .where(
            delivery.c.status == DeliveryStatus.PENDING,
            delivery.c.next_attempt_at <= bindparam("now"),
            platform.scalar_subquery().in_(bindparam("platforms", expanding=True)),
            ~blocking,
        )
        # Oldest due first, ties (a release batch) by id: both walk the (status, next_attempt_at) index,
        # whose entries SQLite keeps in rowid order within equal keys, and stop after `limit` rows.
        .order_by(delivery.c.next_attempt_at, delivery.c.id)
        .limit(bindparam("limit"))
    )
    if skip_busy_chats:
        chat = select(learner.c.chat_id).where(learner.c.id == delivery.c.learner_id)
        statement = statement.where(chat.scalar_subquery().not_in(bindparam("busy_chats", expanding=True)))
    if postgres:
        statement = statement.with_for_update(skip_locked=True)
    return statement


@functools.cache
def _lease_statement() -> Update:
    delivery = Delivery.__table__  # type: ignore[attr-defined]
    return (
        update(delivery)
        .where(delivery.c.id.in_(bindparam("ids", expanding=True)))
        .values(
            status=DeliveryStatus.SENDING,
            lease_owner=bindparam("worker_id"),
            lease_expires_at=bindparam("until", type_=delivery.c.lease_expires_at.type),
        )
    )


@functools.cache
def _claimed_statement() -> Select[Any]:
    delivery = Delivery.__table__  # type: ignore[attr-defined]
    learner = Learner.__table__  # type: ignore[attr-defined]
    broadcast = Broadcast.__table__  # type: ignore[attr-defined]
    return (
        select(
            delivery.c.id,
            delivery.c.learner_id,
            delivery.c.enrollment_id,
            learner.c.platform,
            learner.c.chat_id,
            delivery.c.kind,
            delivery.c.course_slug,
            delivery.c.lesson_slug,
            broadcast.c.text,
            delivery.c.due_at,
            delivery.c.attempts,
            delivery.c.parts_sent,
            delivery.c.message_ids,
            delivery.c.sent_at,
            learner.c.language,
        )
        .join(learner, learner.c.id == delivery.c.learner_id)
        .outerjoin(broadcast, broadcast.c.id == delivery.c.broadcast_id)
        .where(delivery.c.id.in_(bindparam("ids", expanding=True)))
        .order_by(delivery.c.id)
    )


def renew_leases(
    session: Session, *, worker_id: str, delivery_ids: Collection[int], until: dt.datetime
) -> None:
    """Extend this worker's leases on the deliveries it is still sending."""
    if not delivery_ids:
        return
    session.execute(
        update(Delivery)
        .where(
            col(Delivery.id).in_(list(delivery_ids)),
            col(Delivery.lease_owner) == worker_id,
            col(Delivery.status) == DeliveryStatus.SENDING,
        )
        .values(lease_expires_at=until)
    )


def reclaim_leases(session: Session, *, now: dt.datetime, every_lease: bool = False) -> int:
    """Put `sending` rows whose lease ran out (or all of them, for a lone SQLite process) back to pending."""
    condition = [col(Delivery.status) == DeliveryStatus.SENDING]
    if not every_lease:
        condition.append(col(Delivery.lease_expires_at) < now)
    return _back_to_pending(session, condition)


def release_leases(session: Session, *, worker_id: str, delivery_ids: Collection[int] | None = None) -> int:
    """Hand this worker's claimed rows (all, or `delivery_ids`) back to the queue, progress kept."""
    condition = [col(Delivery.lease_owner) == worker_id, col(Delivery.status) == DeliveryStatus.SENDING]
    if delivery_ids is not None:
        condition.append(col(Delivery.id).in_(list(delivery_ids)))
    return _back_to_pending(session, condition)


def _back_to_pending(session: Session, condition: list[Any]) -> int:
    """Unlease the `sending` rows matching `condition` (progress kept); returns how many."""
    result = session.execute(
        update(Delivery)
        .where(*condition)
        .values(status=DeliveryStatus.PENDING, lease_owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def _held(delivery_id: int, worker_id: str) -> list[object]:
    return [
        col(Delivery.id) == delivery_id,
        col(Delivery.lease_owner) == worker_id,
        col(Delivery.status) == DeliveryStatus.SENDING,
    ]


def known_file_ids(session: Session, platform: str, file_keys: Collection[str]) -> dict[str, str]:
    """file_key -> the platform's file id, for the keys already uploaded to `platform`."""
    if not file_keys:
        return {}
    rows = session.execute(
        select(col(MediaUpload.file_key), col(MediaUpload.file_id)).where(
            col(MediaUpload.platform) == platform, col(MediaUpload.file_key).in_(list(file_keys))
        )
    ).all()
    return {key: file_id for key, file_id in rows}


def _insert_ignoring_duplicates(session: Session, model: type[object], rows: list[dict[str, object]]) -> None:
    if not rows:
        return
    session.execute(insert_ignoring_duplicates(model, session.get_bind().dialect).values(rows))


@dataclass(frozen=True)
class PartRecord:
    """One part the platform accepted."""

    index: int
    message_ids: str
    """All message ids of the delivery so far, space-separated."""
    last: bool
    uploads: Mapping[str, str]
    poll_id: str | None = None


@functools.cache
def _record_part_statement(last: bool) -> Update:
    """The guarded UPDATE for one accepted part, built once: at full speed building it cost more than
    running it."""
    table = Delivery.__table__  # type: ignore[attr-defined]
    statement = (
        update(table)
        .where(
            table.c.id == bindparam("delivery_id"),
            table.c.lease_owner == bindparam("worker_id"),
            table.c.status == DeliveryStatus.SENDING,
            table.c.parts_sent == bindparam("index"),
        )
        .values(
            parts_sent=bindparam("index") + 1,
            message_ids=bindparam("new_message_ids"),
            sent_at=func.coalesce(table.c.sent_at, bindparam("now", type_=table.c.sent_at.type)),
        )
    )
    if last:
        statement = statement.values(
            status=DeliveryStatus.SENT, lease_owner=None, lease_expires_at=None, error=None
        )
    return statement


def record_part(
    session: Session,
    claim: Claim,
    *,
    worker_id: str,
    part: PartRecord,
    now: dt.datetime,
) -> bool:
    """Commit one accepted part: `parts_sent`, message ids, uploads, quiz poll; the last part marks it sent.

    Returns False when this worker no longer holds the lease (the row must not be touched further).
    """
    result = session.connection().execute(
        _record_part_statement(part.last),
        {
            "delivery_id": claim.delivery_id,
            "worker_id": worker_id,
            "index": part.index,
            "new_message_ids": part.message_ids[-MESSAGE_IDS_LENGTH:],
            "now": now,
        },
    )
    _insert_ignoring_duplicates(
        session,
        MediaUpload,
        [
            {"platform": claim.platform, "file_key": key, "file_id": file_id, "uploaded_at": now}
            for key, file_id in part.uploads.items()
        ],
    )
    if part.poll_id is not None and claim.lesson_slug is not None:
        _insert_ignoring_duplicates(
            session,
            QuizPoll,
            [
                {
                    "poll_key": f"{claim.platform}:{part.poll_id}",
                    "delivery_id": claim.delivery_id,
                    "enrollment_id": claim.enrollment_id,
                    "lesson_slug": claim.lesson_slug,
                }
            ],
        )
    return int(result.rowcount) == 1


def finish(
    session: Session,
    claim: Claim,
    *,
    worker_id: str,
    status: DeliveryStatus,
    now: dt.datetime,
    error: str | None = None,
    attempts: int | None = None,
) -> bool:
    """End a claimed delivery as sent, failed, ambiguous or cancelled; False if the lease was lost."""
    values: dict[str, object] = {
        "status": status,
        "lease_owner": None,
        "lease_expires_at": None,
        "error": error[:ERROR_LENGTH] if error else None,
    }
    if attempts is not None:
        values["attempts"] = attempts
    if status is DeliveryStatus.SENT:
        values["sent_at"] = func.coalesce(col(Delivery.sent_at), now)
    result = session.execute(
        update(Delivery)
        .where(*_held(claim.delivery_id, worker_id))  # type: ignore[arg-type]
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount) == 1  # type: ignore[attr-defined]


def reschedule(
    session: Session,
    claim: Claim,
    *,
    worker_id: str,
    next_attempt_at: dt.datetime,
    attempts: int,
    error: str | None,
) -> bool:
    """Back to pending for another try at `next_attempt_at`; parts already sent stay sent."""
    result = session.execute(
        update(Delivery)
        .where(*_held(claim.delivery_id, worker_id))  # type: ignore[arg-type]
        .values(
            status=DeliveryStatus.PENDING,
            lease_owner=None,
            lease_expires_at=None,
            next_attempt_at=next_attempt_at,
            attempts=attempts,
            error=error[:ERROR_LENGTH] if error else None,
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount) == 1  # type: ignore[attr-defined]


def mark_unreachable(session: Session, learner_id: int, reason: str) -> None:
    """The learner can no longer be reached: flag them and release nothing more until they write again."""
    session.execute(
        update(Learner)
        .where(col(Learner.id) == learner_id)
        .values(reachable=False, unreachable_reason=reason[:200])
    )
    session.execute(
        update(Enrollment)
        .where(col(Enrollment.learner_id) == learner_id, col(Enrollment.status).in_(OPEN_STATUSES))
        .values(next_release_at=None)
        .execution_options(synchronize_session=False)
    )


def move_chat(session: Session, learner_id: int, new_chat_id: str) -> None:
    """The learner's chat migrated (Telegram group to supergroup): send there from now on."""
    session.execute(update(Learner).where(col(Learner.id) == learner_id).values(chat_id=new_chat_id))


def pending_count(session: Session) -> int:
    return int(
        session.execute(
            select(func.count()).select_from(Delivery).where(col(Delivery.status) == DeliveryStatus.PENDING)
        ).scalar_one()
    )


def heartbeat(
    session: Session,
    *,
    worker_id: str,
    now: dt.datetime,
    live_within: dt.timedelta,
    forget_after: dt.timedelta,
) -> int:
    """Record this worker as alive; return how many workers (this one included) are alive now."""
    if session.get(SenderWorker, worker_id) is None:
        session.add(SenderWorker(id=worker_id, started_at=now, last_seen_at=now))
        session.flush()
    else:
        session.execute(
            update(SenderWorker).where(col(SenderWorker.id) == worker_id).values(last_seen_at=now)
        )
    session.execute(delete(SenderWorker).where(col(SenderWorker.last_seen_at) < now - forget_after))
    live = session.execute(
        select(func.count())
        .select_from(SenderWorker)
        .where(col(SenderWorker.last_seen_at) >= now - live_within)
    ).scalar_one()
    return max(1, int(live))


def retire(session: Session, worker_id: str) -> None:
    """This worker stops: it no longer takes a share of the send budget."""
    session.execute(delete(SenderWorker).where(col(SenderWorker.id) == worker_id))
