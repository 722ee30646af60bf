"""The follow-up planner: due reviews, nudges and certificates into the outbox, in batches.

Like the release planner it is one batched job over indexed columns, never one job per learner:
reviews are claimed by `next_review_at`, nudges by (`status`, `next_nudge_at`), certificates by
(`status`, `finished_at`). Every claim happens in a write transaction (BEGIN IMMEDIATE on SQLite,
FOR UPDATE SKIP LOCKED on PostgreSQL), so no follow-up is queued twice however many processes run it.
Follow-ups go through the same outbox and pacer as lessons. The heartbeat runs this right after
releasing lessons, so a lesson released in the same tick is queued, and sent, first.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine, and_, exists, or_
from sqlmodel import Session, col, select

from bot import certificates, nudges, review
from bot.cadence import parse_time_of_day
from bot.content import Course
from bot.followups import learner_zone, review_check_at
from bot.i18n import _, lesson_language
from bot.models import (
    Certificate,
    Delivery,
    DeliveryKind,
    Enrollment,
    EnrollmentStatus,
    Learner,
    Nudge,
    ReviewCard,
)
from bot.pacing import local_date, slot_instant
from bot.ports import Capabilities, FilePart, OutboundPart
from bot.render import render_plain_text
from bot.windows import next_window_instant
from scheduler.outbox import Claim
from scheduler.planner import UNPLANNABLE_RETRY, CourseSource, write_transaction

log = logging.getLogger(__name__)

FOLLOWUP_KINDS = (DeliveryKind.REVIEW, DeliveryKind.NUDGE, DeliveryKind.CERTIFICATE)
CERTIFICATE_LOOKBACK = dt.timedelta(days=30)
"""A course finished longer ago than this without a certificate (before they existed) gets none."""
ONE_DAY = dt.timedelta(days=1)


@dataclass
class FollowupReport:
    reviews: int = 0
    """Review deliveries queued."""
    review_cards: int = 0
    nudges: int = 0
    certificates: int = 0
    looked_at: int = 0

    @property
    def queued(self) -> int:
        return self.reviews + self.nudges + self.certificates

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "queued": self.queued}


def plan_followups(
    engine: Engine, catalog: CourseSource, now: dt.datetime, *, batch_size: int = 500, max_batches: int = 8
) -> FollowupReport:
    """Queue the follow-ups due at `now`: reviews, nudges, certificates. Blocking: run it off the loop.

    At most `max_batches` batches per kind: a burst (every learner of a big zone at 08:00, or arming
    every enrollment after an upgrade) is spread over the next runs instead of holding up releases.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    report = FollowupReport()
    for phase in (_review_batch, _nudge_batch, _certificate_batch):
        for _batch in range(max_batches):
            with write_transaction(engine) as connection, Session(bind=connection) as session:
                claimed = phase(session, catalog, now, batch_size, report)
                session.flush()
            report.looked_at += claimed
            if claimed < batch_size:
                break
    return report


def _claim(session: Session, *conditions: Any, order_by: Any, limit: int) -> list[tuple[Enrollment, Learner]]:
    """Up to `limit` enrollments matching `conditions`, with their learners, in `order_by` order."""
    statement = (
        select(Enrollment, Learner)
        .join(Learner, col(Learner.id) == col(Enrollment.learner_id))
        .where(*conditions)
        .order_by(order_by)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update(of=Enrollment, skip_locked=True)
    return [(enrollment, learner) for enrollment, learner in session.exec(statement).all()]


def _queue(session: Session, enrollment: Enrollment, kind: DeliveryKind, now: dt.datetime) -> Delivery:
    delivery = Delivery(
        enrollment_id=enrollment.id or 0,
        learner_id=enrollment.learner_id,
        course_slug=enrollment.course_slug,
        kind=kind,
        due_at=now,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(delivery)
    session.flush()
    return delivery


# --- reviews -------------------------------------------------------------------------------------


def _review_batch(
    session: Session, catalog: CourseSource, now: dt.datetime, limit: int, report: FollowupReport
) -> int:
    rows = _claim(
        session,
        col(Enrollment.next_review_at) <= now,
        order_by=col(Enrollment.next_review_at),
        limit=limit,
    )
    for enrollment, learner in rows:
        course = catalog.get(enrollment.course_slug)
        if course is None:
            enrollment.next_review_at = now + UNPLANNABLE_RETRY
        else:
            _plan_reviews(session, course, enrollment, learner, now, report)
        session.add(enrollment)
    return len(rows)


def _plan_reviews(
    session: Session,
    course: Course,
    enrollment: Enrollment,
    learner: Learner,
    now: dt.datetime,
    report: FollowupReport,
) -> None:
    check_at = review_check_at(course, enrollment, learner, now)
    if check_at is None or check_at > now:
        enrollment.next_review_at = check_at
        return
    zone = learner_zone(learner)
    today = local_date(now, zone)
    if not _reviewed_on(session, enrollment, slot_instant(zone, today, dt.time(0, 0))):
        cards = review.due_cards(session, course, enrollment, zone, now, course.review.per_day)
        if cards:
            delivery = _queue(session, enrollment, DeliveryKind.REVIEW, now)
            review.show([card for card, _lesson in cards], now, delivery.id)
            session.add_all([card for card, _lesson in cards])
            report.reviews += 1
            report.review_cards += len(cards)
    earliest = today + ONE_DAY
    if enrollment.review_due_at is not None:
        earliest = max(earliest, local_date(enrollment.review_due_at, zone))
    enrollment.next_review_at = next_window_instant(
        zone, parse_time_of_day(enrollment.local_time), after=now, earliest_day=earliest
    )


def _reviewed_on(session: Session, enrollment: Enrollment, day_start: dt.datetime) -> bool:
    """Whether a review delivery was already queued for this enrollment since `day_start`: one a day."""
    return (
        session.exec(
            select(col(Delivery.id)).where(
                col(Delivery.enrollment_id) == enrollment.id,
                col(Delivery.kind) == DeliveryKind.REVIEW,
                col(Delivery.created_at) >= day_start,
            )
        ).first()
        is not None
    )


# --- nudges --------------------------------------------------------------------------------------


def _nudge_batch(
    session: Session, catalog: CourseSource, now: dt.datetime, limit: int, report: FollowupReport
) -> int:
    rows = _claim(
        session,
        col(Enrollment.status) == EnrollmentStatus.ACTIVE,
        or_(col(Enrollment.next_nudge_at).is_(None), col(Enrollment.next_nudge_at) <= now),
        order_by=col(Enrollment.next_nudge_at),
        limit=limit,
    )
    for enrollment, learner in rows:
        course = catalog.get(enrollment.course_slug)
        if course is None:
            enrollment.next_nudge_at = now + UNPLANNABLE_RETRY
            session.add(enrollment)
            continue
        decision = nudges.decide(course.nudges, enrollment, learner, now)
        if decision.send:
            delivery = _queue(session, enrollment, DeliveryKind.NUDGE, now)
            session.add(
                Nudge(
                    enrollment_id=enrollment.id or 0,
                    learner_id=learner.id or 0,
                    course_slug=course.slug,
                    delivery_id=delivery.id,
                    sent_at=now,
                    quiet_since=decision.quiet_since,
                )
            )
            enrollment.nudges_sent = decision.sent_in_stretch + 1
            enrollment.last_nudge_at = now
            report.nudges += 1
        enrollment.next_nudge_at = decision.check_at
        session.add(enrollment)
    return len(rows)


# --- certificates --------------------------------------------------------------------------------


def _certificate_batch(
    session: Session, catalog: CourseSource, now: dt.datetime, limit: int, report: FollowupReport
) -> int:
    issued = exists().where(
        and_(
            col(Certificate.enrollment_id) == col(Enrollment.id),
            col(Certificate.finished_at) == col(Enrollment.finished_at),
        )
    )
    rows = _claim(
        session,
        col(Enrollment.status) == EnrollmentStatus.FINISHED,
        col(Enrollment.finished_at) >= now - CERTIFICATE_LOOKBACK,
        ~issued,
        order_by=col(Enrollment.finished_at),
        limit=limit,
    )
    missing = 0
    for enrollment, learner in rows:
        course = catalog.get(enrollment.course_slug)
        if course is None:
            missing += 1
            continue
        certificates.issue(session, course, enrollment, learner, now)
        _queue(session, enrollment, DeliveryKind.CERTIFICATE, now)
        report.certificates += 1
    # Rows whose course is not loaded stay unclaimed; they must not count as a full batch forever.
    return len(rows) - missing


# --- rendering, for the sender -------------------------------------------------------------------


def render_followup(
    session: Session, catalog: CourseSource, claim: Claim, capabilities: Capabilities
) -> list[OutboundPart] | str:
    """The parts of a review, nudge or certificate delivery, or why there is nothing to send any more."""
    course = catalog.get(claim.course_slug)
    learner = session.get(Learner, claim.learner_id)
    enrollment = session.get(Enrollment, claim.enrollment_id)
    if course is None or learner is None or enrollment is None:
        return f"course {claim.course_slug} or its learner is gone"
    language = learner.language
    if claim.kind is DeliveryKind.REVIEW:
        return _review_parts(session, course, learner, claim, capabilities)
    if claim.kind is DeliveryKind.NUDGE:
        if enrollment.status is not EnrollmentStatus.ACTIVE:
            return "the learner paused or left the course before the nudge went out"
        last = course.lesson(enrollment.last_lesson_slug or "")
        title = last.in_language(lesson_language(course, language)).title if last else None
        text = nudges.nudge_text(course, title, language, learner.display_name.split(" ")[0])
        return list(render_plain_text(text, capabilities))
    if claim.kind is DeliveryKind.CERTIFICATE:
        certificate = session.exec(
            select(Certificate)
            .where(col(Certificate.enrollment_id) == enrollment.id)
            .order_by(col(Certificate.issued_at).desc())
        ).first()
        if certificate is None:
            return "no certificate was issued for this enrollment"
        text = _(
            language,
            "🎓 Congratulations on finishing {course}! Here is your certificate. "
            "Its code {code} lets anyone check it.",
            course=course.title,
            code=certificate.code,
        )
        parts: list[OutboundPart] = list(render_plain_text(text, capabilities))
        pdf = certificates.certificate_pdf(certificate)
        if len(pdf) <= capabilities.max_upload_bytes:
            parts.append(FilePart(certificates.certificate_filename(certificate), pdf))
        return parts
    return f"{claim.kind} is not a follow-up"


def _review_parts(
    session: Session, course: Course, learner: Learner, claim: Claim, capabilities: Capabilities
) -> list[OutboundPart] | str:
    cards = session.exec(
        select(ReviewCard)
        .where(col(ReviewCard.delivery_id) == claim.delivery_id, col(ReviewCard.shown_at).is_not(None))
        .order_by(col(ReviewCard.due), col(ReviewCard.id))
    ).all()
    language = lesson_language(course, learner.language)
    shown = [(card, lesson) for card in cards if (lesson := review.reviewable(course, card)) is not None]
    if not shown:
        return "every card of this review was answered already"
    intro = _(
        learner.language,
        "Time for a quick review from {course}: answer from memory, it takes a minute.",
        course=course.title,
    )
    parts: list[OutboundPart] = list(render_plain_text(intro, capabilities))
    for number, (card, lesson) in enumerate(shown, start=1):
        parts.append(
            review.render_card(lesson.in_language(language), card, capabilities, number=number, of=len(shown))
        )
    return parts
