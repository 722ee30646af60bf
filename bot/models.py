"""Learner state: every table, in one module. All datetimes are aware UTC.

Invariant for the planner: `Enrollment.next_release_at` is set exactly when the enrollment waits for
a scheduled release; it is NULL while onboarding, paused indefinitely, gated on "done"/quiz,
finished or stopped. So the heartbeat's query needs only the index on that one column.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, Dialect, Index, UniqueConstraint, text
from sqlalchemy import Enum as SAEnum
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from bot.clock import UTC, ensure_utc


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Stores aware datetimes as UTC and always hands back aware UTC datetimes.

    SQLite has no time zone type, so values are stored there as naive UTC text; PostgreSQL gets
    `timestamptz`. Naive values are rejected on the way in: they are a bug, not a convention.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return ensure_utc(value)


def _stored_by_value(enum: type[StrEnum]) -> SAEnum:
    """A portable string column holding the enum's values (no native PostgreSQL enum type to migrate)."""
    return SAEnum(
        enum,
        native_enum=False,
        length=16,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


def utc_now() -> dt.datetime:
    return dt.datetime.now(UTC)


class EnrollmentStatus(StrEnum):
    ONBOARDING = "onboarding"
    """Enrolled, still choosing zone, time or cadence."""
    ACTIVE = "active"
    PAUSED = "paused"
    FINISHED = "finished"
    STOPPED = "stopped"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    """Claimed by a sender under a lease; a crash leaves it here until the lease runs out."""
    SENT = "sent"
    FAILED = "failed"
    AMBIGUOUS = "ambiguous"
    """The platform may or may not have it (timeout after the request left); see `resend_ambiguous`."""
    CANCELLED = "cancelled"


class BroadcastStatus(StrEnum):
    DRAFT = "draft"
    """Previewed, waiting for the instructor to confirm."""
    QUEUED = "queued"
    """Confirmed: its deliveries are in the outbox."""
    CANCELLED = "cancelled"


class DeliveryKind(StrEnum):
    LESSON = "lesson"
    BROADCAST = "broadcast"
    ANNOUNCEMENT = "announcement"
    NOTICE = "notice"
    REVIEW = "review"
    """Due review cards of one enrollment; the cards point at it (`ReviewCard.delivery_id`)."""
    NUDGE = "nudge"
    CERTIFICATE = "certificate"


class Learner(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("platform", "platform_user_id", name="uq_learner_platform_user"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    platform_user_id: str = Field(max_length=64)
    chat_id: str = Field(max_length=64)
    """Where lessons go: the private chat (Telegram) or DM / fallback thread channel (Discord)."""
    display_name: str = Field(default="", max_length=128)
    time_zone: str | None = Field(default=None, max_length=64)
    """IANA name, or a fixed offset written "UTC+05:30"."""
    language: str | None = Field(default=None, max_length=16)
    reachable: bool = True
    unreachable_reason: str | None = Field(default=None, max_length=200)
    awaiting: str | None = Field(default=None, max_length=64)
    """The typed answer the bot waits for next, e.g. "zone:12" (enrollment 12's time zone)."""
    created_at: dt.datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    last_seen_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    calendar_sent_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    """When the learner last got their `.ics` calendar; a settings change then sends a fresh one."""


class Cohort(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("course_slug", "name", name="uq_cohort_course_name"),)

    id: int | None = Field(default=None, primary_key=True)
    course_slug: str = Field(max_length=64)
    name: str = Field(max_length=64)
    code: str = Field(max_length=32, unique=True)
    start_date: dt.date | None = None
    cadence: str | None = Field(default=None, max_length=64)
    local_time: str | None = Field(default=None, max_length=5)
    created_at: dt.datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class Enrollment(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("learner_id", "course_slug", name="uq_enrollment_learner_course"),
        Index("ix_enrollment_next_release_at", "next_release_at"),
        Index("ix_enrollment_course_status", "course_slug", "status"),
        Index("ix_enrollment_next_review_at", "next_review_at"),
        Index("ix_enrollment_status_next_nudge_at", "status", "next_nudge_at"),
        Index("ix_enrollment_status_finished_at", "status", "finished_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    learner_id: int = Field(foreign_key="learner.id", index=True)
    course_slug: str = Field(max_length=64)
    cohort_id: int | None = Field(default=None, foreign_key="cohort.id")
    status: EnrollmentStatus = Field(
        default=EnrollmentStatus.ONBOARDING, sa_type=_stored_by_value(EnrollmentStatus)
    )
    cadence: str = Field(default="daily", max_length=64)
    local_time: str = Field(default="08:00", max_length=5)
    anchor_date: dt.date | None = None
    """First slot's local date: `every-N-days` counts from it."""
    last_lesson_slug: str | None = Field(default=None, max_length=128)
    next_lesson_slug: str | None = Field(default=None, max_length=128)
    lessons_released: int = 0
    next_release_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    waiting_for: str | None = Field(default=None, max_length=16)
    """"done" or "quiz": the next lesson is gated until the learner acts on the last one."""
    paused_until: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    enrolled_at: dt.datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    last_release_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_activity_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    review_due_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    """The earliest FSRS due date of this enrollment's review cards."""
    next_review_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    """When the follow-up planner next looks at this enrollment's due reviews (in the learner's window)."""
    next_nudge_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    """When the follow-up planner next considers a nudge; NULL on an active enrollment means "not armed"."""
    nudges_sent: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    """Nudges sent since the learner last acted."""
    last_nudge_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class Delivery(SQLModel, table=True):
    """The outbox: one row per released lesson (or broadcast) per enrollment."""

    __table_args__ = (
        UniqueConstraint("enrollment_id", "lesson_slug", name="uq_delivery_enrollment_lesson"),
        # Partial: lesson deliveries (no broadcast) would only add index entries that never conflict.
        Index(
            "uq_delivery_enrollment_broadcast",
            "enrollment_id",
            "broadcast_id",
            unique=True,
            sqlite_where=text("broadcast_id IS NOT NULL"),
            postgresql_where=text("broadcast_id IS NOT NULL"),
        ),
        Index("ix_delivery_status_next_attempt", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    enrollment_id: int = Field(foreign_key="enrollment.id")
    learner_id: int = Field(foreign_key="learner.id", index=True)
    course_slug: str = Field(max_length=64)
    kind: DeliveryKind = Field(default=DeliveryKind.LESSON, sa_type=_stored_by_value(DeliveryKind))
    lesson_slug: str | None = Field(default=None, max_length=128)
    broadcast_id: int | None = Field(default=None, foreign_key="broadcast.id")
    status: DeliveryStatus = Field(default=DeliveryStatus.PENDING, sa_type=_stored_by_value(DeliveryStatus))
    due_at: dt.datetime = Field(sa_type=UTCDateTime)
    """The slot this release belongs to; lateness is measured from it."""
    created_at: dt.datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    next_attempt_at: dt.datetime = Field(sa_type=UTCDateTime)
    attempts: int = 0
    parts_sent: int = 0
    """Parts of a multi-part lesson already accepted by the platform: a resend starts after them."""
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_expires_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    message_ids: str = Field(default="", max_length=2000)
    """Space-separated platform message ids of the parts sent so far."""
    error: str | None = Field(default=None, max_length=500)
    done_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    """When the learner pressed "Done" on this lesson."""


class QuizAnswer(SQLModel, table=True):
    """A learner's first answer to a lesson's quiz; the first answer is the one that counts."""

    __table_args__ = (
        UniqueConstraint("enrollment_id", "lesson_slug", name="uq_quiz_answer_enrollment_lesson"),
    )

    id: int | None = Field(default=None, primary_key=True)
    enrollment_id: int = Field(foreign_key="enrollment.id")
    learner_id: int = Field(foreign_key="learner.id", index=True)
    course_slug: str = Field(max_length=64)
    lesson_slug: str = Field(max_length=128)
    option_index: int
    correct: bool
    answered_at: dt.datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class QuizPoll(SQLModel, table=True):
    """A native quiz poll sent to a learner, so its answer can be matched after a restart."""

    poll_key: str = Field(primary_key=True, max_length=96)
    """"<platform>:<poll id>"."""
    delivery_id: int = Field(foreign_key="delivery.id")
    enrollment_id: int = Field(foreign_key="enrollment.id")
    lesson_slug: str = Field(max_length=128)


class MediaUpload(SQLModel, table=True):
    """A file uploaded once to a platform, and the file id it returned for reuse."""

    __table_args__ = (UniqueConstraint("platform", "file_key", name="uq_media_upload_platform_key"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    file_key: str = Field(max_length=64)
    file_id: str = Field(max_length=256)
    uploaded_at: dt.datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class Broadcast(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    course_slug: str = Field(max_length=64)
    cohort_id: int | None = Field(default=None, foreign_key="cohort.id")
    text: str = Field(max_length=4000)
    at_local_time: bool = False
    """True: each learner gets it at their own next delivery time; False: now."""
    created_by: str = Field(max_length=96)
    created_at: dt.datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    status: BroadcastStatus = Field(
        default=BroadcastStatus.QUEUED,
        sa_type=_stored_by_value(BroadcastStatus),
        sa_column_kwargs={"server_default": BroadcastStatus.QUEUED.value},
    )
    confirmed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    skipped_unreachable: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    """Learners of the audience who could not be reached when it was queued (no delivery was made)."""


class Announcement(SQLModel, table=True):
    """An instructor's dated message to a course; a scheduler job fires it and survives restarts."""

    id: int | None = Field(default=None, primary_key=True)
    course_slug: str = Field(max_length=64)
    text: str = Field(max_length=4000)
    run_at: dt.datetime = Field(sa_type=UTCDateTime, index=True)
    broadcast_id: int | None = Field(default=None, foreign_key="broadcast.id")
    """Set once fired: the broadcast that carried it."""
    created_by: str = Field(max_length=96)
    created_at: dt.datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class DiscussionThread(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint(
            "platform", "course_slug", "lesson_slug", "cohort_key", name="uq_discussion_thread_lesson"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    course_slug: str = Field(max_length=64)
    lesson_slug: str = Field(max_length=128)
    cohort_key: str = Field(default="", max_length=32)
    chat_id: str = Field(max_length=64)
    thread_id: str = Field(max_length=64)
    url: str = Field(default="", max_length=300)
    created_at: dt.datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class SenderWorker(SQLModel, table=True):
    """A live `dripcourse run` process; workers split the platforms' send budgets among the live ones."""

    id: str = Field(primary_key=True, max_length=96)
    started_at: dt.datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    last_seen_at: dt.datetime = Field(default_factory=utc_now, sa_type=UTCDateTime, index=True)


class AdminAction(SQLModel, table=True):
    """The audit trail: every admin operation attempted, allowed or refused."""

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    user_id: str = Field(max_length=64)
    action: str = Field(max_length=64)
    arguments: str = Field(default="", max_length=4000)
    allowed: bool = True
    at: dt.datetime = Field(default_factory=utc_now, sa_type=UTCDateTime, index=True)
    outcome: str = Field(default="", max_length=300, sa_column_kwargs={"server_default": ""})
    """"ok", "refused" or "failed: <why>"."""


class ReviewCard(SQLModel, table=True):
    """An answered quiz as a spaced-review card: the FSRS memory state of one learner for one lesson."""

    __table_args__ = (
        UniqueConstraint("enrollment_id", "lesson_slug", name="uq_review_card_enrollment_lesson"),
        Index("ix_review_card_enrollment_due", "enrollment_id", "due"),
    )

    id: int | None = Field(default=None, primary_key=True)
    enrollment_id: int = Field(foreign_key="enrollment.id")
    learner_id: int = Field(foreign_key="learner.id", index=True)
    course_slug: str = Field(max_length=64)
    lesson_slug: str = Field(max_length=128)
    state: int = 2
    """FSRS state: 1 learning, 2 review, 3 relearning."""
    step: int | None = None
    stability: float | None = None
    difficulty: float | None = None
    due: dt.datetime = Field(sa_type=UTCDateTime)
    last_review: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    reps: int = 0
    lapses: int = 0
    shown_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    """When the card was last put before the learner and not yet answered."""
    delivery_id: int | None = Field(default=None, index=True)
    """The review delivery that carries it (no foreign key: resetting a course drops lesson deliveries)."""
    created_at: dt.datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class ReviewAnswer(SQLModel, table=True):
    """One answer to a review card: what retention per lesson is measured from."""

    __table_args__ = (Index("ix_review_answer_course_lesson", "course_slug", "lesson_slug"),)

    id: int | None = Field(default=None, primary_key=True)
    card_id: int = Field(foreign_key="reviewcard.id", index=True)
    enrollment_id: int = Field(foreign_key="enrollment.id")
    course_slug: str = Field(max_length=64)
    lesson_slug: str = Field(max_length=128)
    correct: bool
    rating: int
    """FSRS rating given: 1 again, 2 hard, 3 good, 4 easy."""
    seconds: float | None = None
    """Time from the card being shown to the answer, when known."""
    answered_at: dt.datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class Nudge(SQLModel, table=True):
    """A reminder sent to a learner who went quiet."""

    id: int | None = Field(default=None, primary_key=True)
    enrollment_id: int = Field(foreign_key="enrollment.id", index=True)
    learner_id: int = Field(foreign_key="learner.id")
    course_slug: str = Field(max_length=64)
    delivery_id: int | None = None
    sent_at: dt.datetime = Field(sa_type=UTCDateTime)
    quiet_since: dt.datetime = Field(sa_type=UTCDateTime)
    """The learner's last action (or enrolment) the nudge counted from."""


class Certificate(SQLModel, table=True):
    """A course completion certificate; the code lets anyone check it with `dripcourse verify`.

    Kept when an enrollment is restarted or deleted, so it refers to it by plain id.
    """

    __table_args__ = (
        UniqueConstraint("enrollment_id", "finished_at", name="uq_certificate_enrollment_finished"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    enrollment_id: int = Field(index=True)
    learner_id: int
    course_slug: str = Field(max_length=64)
    learner_name: str = Field(max_length=128)
    course_title: str = Field(max_length=256)
    instructor: str = Field(default="", max_length=256)
    language: str = Field(default="en", max_length=16)
    finished_on: dt.date
    """The learner's local date of finishing, printed on the certificate."""
    finished_at: dt.datetime = Field(sa_type=UTCDateTime)
    issued_at: dt.datetime = Field(sa_type=UTCDateTime)
