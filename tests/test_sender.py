"""The outbox sender with FakeChat, a fake clock and a real SQLite database."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import itertools
import logging
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.content import Course, Lesson, Media, MediaKind, Quiz
from bot.db import Database, create_db_engine, upgrade
from bot.models import (
    Broadcast,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Enrollment,
    EnrollmentStatus,
    Learner,
    MediaUpload,
    QuizPoll,
)
from bot.ports import (
    AmbiguousError,
    ChatMigrated,
    MediaPart,
    OutboundPart,
    PermanentError,
    QuizPart,
    RetryAfter,
    SentMessage,
    TextPart,
    TransientError,
)
from bot.render import render_lesson
from bot.settings import SenderSettings
from scheduler import outbox
from scheduler.metrics import create_metrics
from scheduler.pacer import Pacer
from scheduler.sender import Sender, full_jitter_backoff
from tests.fakes import FAKE_CAPABILITIES, FakeChat, FakeClock
from tests.test_pacer import VirtualTime

NOW = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)
_user_ids = itertools.count(1)


class Catalog:
    def __init__(self, *courses: Course) -> None:
        self.courses = {course.slug: course for course in courses}

    def get(self, slug: str) -> Course | None:
        return self.courses.get(slug)


@pytest.fixture
def media_file(tmp_path: Path) -> Path:
    path = tmp_path / "diagram.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 64)
    return path


def make_course(media_file: Path, slug: str = "course") -> Course:
    """Lesson 1: text only. Lesson 2: text, an image and a quiz (several parts). Lesson 3: text."""
    image = Media(MediaKind.IMAGE, media_file, caption="The diagram", size_bytes=72, sha256="abc123")
    return Course(
        slug=slug,
        title=f"Course {slug}",
        description="",
        language="en",
        default_cadence="daily",
        default_time="08:00",
        lessons=(
            Lesson(slug="intro", number=1, title="Intro", body_markdown="Welcome to the course."),
            Lesson(
                slug="diagram",
                number=2,
                title="Diagram",
                body_markdown="Look at this.",
                media=(image,),
                quiz=Quiz("Which shape?", ("circle", "square"), 1, "Squares."),
            ),
            Lesson(slug="outro", number=3, title="Outro", body_markdown="Goodbye."),
        ),
    )


def add_learner(engine: Engine, *, chat_id: str | None = None, course: str = "course") -> tuple[int, int]:
    """A reachable learner with an active enrollment; returns (learner id, enrollment id)."""
    user = next(_user_ids)
    with Session(engine) as session:
        learner = Learner(platform="fake", platform_user_id=str(user), chat_id=chat_id or "")
        session.add(learner)
        session.flush()
        learner.chat_id = chat_id or str(learner.id)  # the chat id is the learner id unless told otherwise
        enrollment = Enrollment(
            learner_id=learner.id or 0,
            course_slug=course,
            status=EnrollmentStatus.ACTIVE,
            next_release_at=NOW + dt.timedelta(days=1),
        )
        session.add(enrollment)
        session.commit()
        return learner.id or 0, enrollment.id or 0


def add_delivery(
    engine: Engine,
    learner_id: int,
    enrollment_id: int,
    lesson: str | None = "intro",
    *,
    course: str = "course",
    due_at: dt.datetime = NOW,
    broadcast_id: int | None = None,
) -> int:
    with Session(engine) as session:
        delivery = Delivery(
            enrollment_id=enrollment_id,
            learner_id=learner_id,
            course_slug=course,
            kind=DeliveryKind.BROADCAST if broadcast_id else DeliveryKind.LESSON,
            lesson_slug=lesson,
            broadcast_id=broadcast_id,
            due_at=due_at,
            next_attempt_at=due_at,
        )
        session.add(delivery)
        session.commit()
        return delivery.id or 0


def add_broadcast(engine: Engine, text: str) -> int:
    with Session(engine) as session:
        broadcast = Broadcast(course_slug="course", text=text, created_by="fake:1")
        session.add(broadcast)
        session.commit()
        return broadcast.id or 0


def delivery(engine: Engine, delivery_id: int) -> Delivery:
    with Session(engine) as session:
        row = session.get(Delivery, delivery_id)
        assert row is not None
        return row


def learner(engine: Engine, learner_id: int) -> Learner:
    with Session(engine) as session:
        row = session.get(Learner, learner_id)
        assert row is not None
        return row


def expected_parts(
    course: Course, lesson_slug: str, delivery_id: int, enrollment_id: int
) -> list[OutboundPart]:
    lesson = course.lesson(lesson_slug)
    assert lesson is not None
    return list(
        render_lesson(
            lesson,
            FAKE_CAPABILITIES,
            delivery_id=delivery_id,
            enrollment_id=enrollment_id,
            lesson_count=len(course.lessons),
            next_allowed=True,
            discuss_url=None,
            course_title=course.title,
        )
    )


def without_file_ids(part: OutboundPart) -> OutboundPart:
    return dataclasses.replace(part, file_id="") if isinstance(part, MediaPart) else part


class Harness:
    """A sender wired to FakeChat, a fake clock, a virtual-time pacer and a temp SQLite database."""

    def __init__(
        self, engine: Engine, course: Course, clock: FakeClock, chat: FakeChat, **sender_settings: object
    ) -> None:
        self.engine = engine
        self.course = course
        self.clock = clock
        self.chat = chat
        self.database = Database(engine)
        self.virtual = VirtualTime()
        self.pacer = Pacer(
            "fake", 1000.0, lambda _chat: 0.01, monotonic=self.virtual.monotonic, sleep=self.virtual.sleep
        )
        self.metrics = create_metrics()
        self.settings = SenderSettings.model_validate({"in_flight": 4, **sender_settings})
        self.sender = self.new_sender()

    def new_sender(self, worker_id: str = "worker-a", secrets: tuple[str, ...] = ()) -> Sender:
        return Sender(
            self.database,
            Catalog(self.course),
            {"fake": self.chat},
            {"fake": self.pacer},
            self.clock,
            self.settings,
            worker_id=worker_id,
            metrics=self.metrics,
            secrets=secrets,
            rng=random.Random(7),
        )

    def later(self, seconds: float) -> None:
        self.clock.at += dt.timedelta(seconds=seconds)

    def close(self) -> None:
        self.database._executor.shutdown(wait=True)


@pytest.fixture
def harness(
    sqlite_engine: Engine, media_file: Path, clock: FakeClock, fake_chat: FakeChat
) -> Iterator[Harness]:
    rig = Harness(sqlite_engine, make_course(media_file), clock, fake_chat)
    yield rig
    rig.close()


# --- the happy path ------------------------------------------------------------------------------


async def test_a_multi_part_lesson_goes_out_in_order_and_is_recorded(harness: Harness) -> None:
    learner_id, enrollment_id = add_learner(harness.engine)
    delivery_id = add_delivery(harness.engine, learner_id, enrollment_id, "diagram")

    assert await harness.sender.drain_once() == 1

    expected = expected_parts(harness.course, "diagram", delivery_id, enrollment_id)
    assert len(expected) >= 2
    sent = harness.chat.parts_to(str(learner_id))
    assert [without_file_ids(part) for part in sent] == expected
    row = delivery(harness.engine, delivery_id)
    assert row.status is DeliveryStatus.SENT
    assert row.parts_sent == len(expected)
    assert row.message_ids.split() == [record.message_ids[0] for record in harness.chat.sent]
    assert row.sent_at == NOW
    assert row.lease_owner is None
    assert {record.idempotency_key for record in harness.chat.sent} == {
        f"{delivery_id}.{index}" for index in range(len(expected))
    }


async def test_a_native_quiz_poll_id_is_stored_for_its_answers(harness: Harness) -> None:
    learner_id, enrollment_id = add_learner(harness.engine)
    delivery_id = add_delivery(harness.engine, learner_id, enrollment_id, "diagram")
    await harness.sender.drain_once()
    quiz_records = [record for record in harness.chat.sent if isinstance(record.part, QuizPart)]
    assert len(quiz_records) == 1
    with Session(harness.engine) as session:
        poll = session.get(QuizPoll, f"fake:poll-{quiz_records[0].message_ids[0]}")
    assert poll is not None
    assert (poll.delivery_id, poll.enrollment_id, poll.lesson_slug) == (delivery_id, enrollment_id, "diagram")


async def test_a_file_is_uploaded_once_and_its_id_reused_after_that(harness: Harness) -> None:
    first = add_learner(harness.engine)
    add_delivery(harness.engine, *first, "diagram")
    await harness.sender.drain_once()
    second = add_learner(harness.engine)
    add_delivery(harness.engine, *second, "diagram")
    # A new process knows the file id only from the database.
    fresh = harness.new_sender("worker-b")
    await fresh.drain_once()
    third = add_learner(harness.engine)
    add_delivery(harness.engine, *third, "diagram")
    await fresh.drain_once()

    media = [record.part for record in harness.chat.sent if isinstance(record.part, MediaPart)]
    assert len(media) == 3
    assert media[0].file_id == ""
    with Session(harness.engine) as session:
        uploads = session.exec(select(MediaUpload)).all()
    assert [(upload.platform, upload.file_key) for upload in uploads] == [("fake", media[0].file_key)]
    assert media[1].file_id == media[2].file_id == uploads[0].file_id != ""


async def test_oldest_deliveries_go_first(harness: Harness) -> None:
    harness.settings = SenderSettings(in_flight=1)
    sender = harness.new_sender()
    ids = []
    for _ in range(5):
        learner_id, enrollment_id = add_learner(harness.engine)
        ids.append(add_delivery(harness.engine, learner_id, enrollment_id, "intro"))
    await sender.drain_once()
    order = [int(record.idempotency_key.split(".")[0]) for record in harness.chat.sent]
    assert order == ids


async def test_a_broadcast_is_sent_as_text(harness: Harness) -> None:
    learner_id, enrollment_id = add_learner(harness.engine)
    broadcast_id = add_broadcast(harness.engine, "Live session on Friday!")
    delivery_id = add_delivery(harness.engine, learner_id, enrollment_id, None, broadcast_id=broadcast_id)
    await harness.sender.drain_once()
    parts = harness.chat.parts_to(str(learner_id))
    assert len(parts) == 1
    assert isinstance(parts[0], TextPart)
    assert "Live session on Friday!" in parts[0].text
    assert delivery(harness.engine, delivery_id).status is DeliveryStatus.SENT


async def test_a_lesson_removed_by_a_reload_is_cancelled_with_a_log_line(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    learner_id, enrollment_id = add_learner(harness.engine)
    gone_lesson = add_delivery(harness.engine, learner_id, enrollment_id, "deleted-lesson")
    other = add_learner(harness.engine, course="gone")
    gone_course = add_delivery(harness.engine, *other, "intro", course="gone")
    with caplog.at_level(logging.INFO, logger="scheduler.sender"):
        await harness.sender.drain_once()
    assert harness.chat.sent == []
    for delivery_id in (gone_lesson, gone_course):
        row = delivery(harness.engine, delivery_id)
        assert row.status is DeliveryStatus.CANCELLED
        assert row.error
    assert sum("outcome=cancelled" in record.getMessage() for record in caplog.records) == 2


# --- order and concurrency -----------------------------------------------------------------------


async def test_lessons_to_one_chat_never_interleave(harness: Harness) -> None:
    harness.settings = SenderSettings(in_flight=8)
    sender = harness.new_sender()
    chats: dict[str, list[int]] = {}
    for _ in range(4):
        learner_id, enrollment_id = add_learner(harness.engine)
        chats[str(learner_id)] = [
            add_delivery(harness.engine, learner_id, enrollment_id, slug)
            for slug in ("diagram", "outro", "intro")
        ]
    await sender.drain_once()
    for chat_id, delivery_ids in chats.items():
        keys = [record.idempotency_key for record in harness.chat.sent if record.chat_id == chat_id]
        order = [int(key.split(".")[0]) for key in keys]
        # Deliveries follow their ids, each one's parts contiguous and in part order.
        assert order == sorted(order)
        assert set(order) == set(delivery_ids)
        for delivery_id in delivery_ids:
            indexes = [int(key.split(".")[1]) for key in keys if key.startswith(f"{delivery_id}.")]
            assert indexes == list(range(len(indexes)))
    assert sender.max_in_flight_seen <= 8
    assert sender.max_in_flight_seen >= 2  # the chats really were served concurrently


async def test_a_broadcast_due_later_today_does_not_hold_back_a_lesson_due_now(harness: Harness) -> None:
    learner_id, enrollment_id = add_learner(harness.engine)
    broadcast_id = add_broadcast(harness.engine, "See you at 9!")
    at_their_hour = NOW + dt.timedelta(hours=9)
    broadcast = add_delivery(
        harness.engine, learner_id, enrollment_id, None, due_at=at_their_hour, broadcast_id=broadcast_id
    )
    lesson = add_delivery(harness.engine, learner_id, enrollment_id, "intro")

    await harness.sender.drain_once()

    assert delivery(harness.engine, lesson).status is DeliveryStatus.SENT
    assert delivery(harness.engine, broadcast).status is DeliveryStatus.PENDING


async def test_a_lesson_waiting_for_its_retry_still_holds_back_the_next_one(harness: Harness) -> None:
    learner_id, enrollment_id = add_learner(harness.engine)
    first = add_delivery(harness.engine, learner_id, enrollment_id, "intro")
    harness.chat.fail_next(TransientError("502 Bad Gateway"))
    await harness.sender.drain_once()
    second = add_delivery(harness.engine, learner_id, enrollment_id, "outro")

    assert await harness.sender.drain_once() == 0
    assert delivery(harness.engine, second).status is DeliveryStatus.PENDING

    harness.clock.at = delivery(harness.engine, first).next_attempt_at
    await harness.sender.drain_once()
    await harness.sender.drain_once()
    keys = [record.idempotency_key.split(".")[0] for record in harness.chat.sent]
    assert keys.index(str(first)) < keys.index(str(second))


async def test_never_more_than_in_flight_deliveries_are_held(harness: Harness) -> None:
    harness.settings = SenderSettings(in_flight=3)
    sender = harness.new_sender()
    for _ in range(20):
        add_delivery(harness.engine, *add_learner(harness.engine), "diagram")
    held: list[int] = []
    original = harness.chat.send

    async def spying_send(chat_id: str, part: OutboundPart, *, idempotency_key: str = "") -> SentMessage:
        with Session(harness.engine) as session:
            held.append(
                len(session.exec(select(Delivery).where(Delivery.status == DeliveryStatus.SENDING)).all())
            )
        return await original(chat_id, part, idempotency_key=idempotency_key)

    harness.chat.send = spying_send  # type: ignore[method-assign]
    assert await sender.drain_once() == 20
    assert max(held) <= 3
    assert sender.max_in_flight_seen == 3


# --- failures ------------------------------------------------------------------------------------


async def test_a_transient_error_backs_off_with_jitter_then_succeeds(harness: Harness) -> None:
    learner_id, enrollment_id = add_learner(harness.engine)
    delivery_id = add_delivery(harness.engine, learner_id, enrollment_id, "intro")
    harness.chat.fail_next(TransientError("502 Bad Gateway"), times=2)

    await harness.sender.drain_once()
    row = delivery(harness.engine, delivery_id)
    assert (row.status, row.attempts) == (DeliveryStatus.PENDING, 1)
    assert NOW < row.next_attempt_at <= NOW + dt.timedelta(seconds=1)
    assert "502" in (row.error or "")
    assert await harness.sender.drain_once() == 0  # not due yet: nothing is retried early

    harness.clock.at = row.next_attempt_at
    await harness.sender.drain_once()
    row = delivery(harness.engine, delivery_id)
    assert (row.status, row.attempts) == (DeliveryStatus.PENDING, 2)
    assert harness.clock.at < row.next_attempt_at <= harness.clock.at + dt.timedelta(seconds=2)

    harness.clock.at = row.next_attempt_at
    await harness.sender.drain_once()
    row = delivery(harness.engine, delivery_id)
    assert row.status is DeliveryStatus.SENT
    assert row.error is None
    assert len(harness.chat.sent) == 1


async def test_transient_errors_fail_the_delivery_after_max_attempts(harness: Harness) -> None:
    harness.settings = SenderSettings(max_attempts=3)
    sender = harness.new_sender()
    delivery_id = add_delivery(harness.engine, *add_learner(harness.engine), "intro")
    harness.chat.fail_next(TransientError("connection reset"), times=10)
    for _ in range(5):
        await sender.drain_once()
        harness.later(3600)
    row = delivery(harness.engine, delivery_id)
    assert row.status is DeliveryStatus.FAILED
    assert row.attempts == 3
    assert "connection reset" in (row.error or "")
    assert harness.chat.attempts == 3


def test_full_jitter_backoff_stays_within_its_exponential_ceiling() -> None:
    rng = random.Random(1)
    for attempt in range(1, 15):
        ceiling = min(300.0, 1.0 * 2 ** (attempt - 1))
        delays = [full_jitter_backoff(attempt, 1.0, 300.0, rng) for _ in range(200)]
        assert all(0 <= delay <= ceiling for delay in delays)
        assert max(delays) > ceiling * 0.8  # full jitter spreads over the whole range
        assert min(delays) < ceiling * 0.2


async def test_a_bad_request_fails_once_with_lesson_and_file_and_is_never_retried(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    learner_id, enrollment_id = add_learner(harness.engine)
    delivery_id = add_delivery(harness.engine, learner_id, enrollment_id, "diagram")
    parts = expected_parts(harness.course, "diagram", delivery_id, enrollment_id)
    media_index = next(index for index, part in enumerate(parts) if isinstance(part, MediaPart))
    original = harness.chat.send

    async def refuse_media(chat_id: str, part: OutboundPart, *, idempotency_key: str = "") -> SentMessage:
        if isinstance(part, MediaPart):
            harness.chat.attempts += 1
            raise PermanentError("Bad Request: wrong file identifier")
        return await original(chat_id, part, idempotency_key=idempotency_key)

    harness.chat.send = refuse_media  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO, logger="scheduler.sender"):
        for _ in range(3):
            await harness.sender.drain_once()
            harness.later(3600)
    row = delivery(harness.engine, delivery_id)
    assert row.status is DeliveryStatus.FAILED
    assert "wrong file identifier" in (row.error or "")
    assert "lesson diagram" in (row.error or "")
    assert "diagram.png" in (row.error or "")
    assert row.parts_sent == media_index
    assert harness.chat.attempts == media_index + 1
    incidents = [record for record in caplog.records if "outcome=failed" in record.getMessage()]
    assert len(incidents) == 1
    assert incidents[0].levelno == logging.WARNING
    assert learner(harness.engine, learner_id).reachable


async def test_an_unreachable_learner_is_marked_and_gets_no_more_releases(harness: Harness) -> None:
    learner_id, enrollment_id = add_learner(harness.engine)
    delivery_id = add_delivery(harness.engine, learner_id, enrollment_id, "intro")
    harness.chat.blocked_chats.add(str(learner_id))
    await harness.sender.drain_once()
    row = delivery(harness.engine, delivery_id)
    assert row.status is DeliveryStatus.FAILED
    assert (row.error or "").startswith("unreachable: ")
    who = learner(harness.engine, learner_id)
    assert not who.reachable
    assert "blocked" in (who.unreachable_reason or "")
    with Session(harness.engine) as session:
        enrollment = session.get(Enrollment, enrollment_id)
    assert enrollment is not None
    assert enrollment.next_release_at is None
    harness.later(3600)
    assert await harness.sender.drain_once() == 0
    assert harness.chat.attempts == 1


@pytest.mark.parametrize("resend", [True, False])
async def test_an_ambiguous_send_is_resent_only_when_configured(harness: Harness, resend: bool) -> None:
    harness.settings = SenderSettings(resend_ambiguous=resend)
    sender = harness.new_sender()
    delivery_id = add_delivery(harness.engine, *add_learner(harness.engine), "intro")
    harness.chat.fail_next(AmbiguousError("Timed out (the request may have arrived)"))
    await sender.drain_once()
    row = delivery(harness.engine, delivery_id)
    assert row.attempts == 1
    assert "may have arrived" in (row.error or "")
    harness.later(3600)
    await sender.drain_once()
    row = delivery(harness.engine, delivery_id)
    if resend:
        assert row.status is DeliveryStatus.SENT
        assert harness.chat.attempts == 2
    else:
        assert row.status is DeliveryStatus.AMBIGUOUS
        assert harness.chat.attempts == 1


async def test_a_migrated_chat_is_remembered_and_the_part_resent_at_once(harness: Harness) -> None:
    learner_id, enrollment_id = add_learner(harness.engine, chat_id="-4001")
    delivery_id = add_delivery(harness.engine, learner_id, enrollment_id, "intro")
    harness.chat.fail_next(ChatMigrated("group upgraded", "-1004001"), chat_id="-4001")
    await harness.sender.drain_once()
    assert delivery(harness.engine, delivery_id).status is DeliveryStatus.SENT
    assert learner(harness.engine, learner_id).chat_id == "-1004001"
    assert [record.chat_id for record in harness.chat.sent] == ["-1004001"]


async def test_retry_after_for_one_chat_does_not_block_the_others(harness: Harness) -> None:
    slow_learner, slow_enrollment = add_learner(harness.engine)
    slow = add_delivery(harness.engine, slow_learner, slow_enrollment, "intro")
    others = [add_delivery(harness.engine, *add_learner(harness.engine), "intro") for _ in range(3)]
    harness.chat.fail_next(
        RetryAfter("Too Many Requests: retry after 30", 30, str(slow_learner)), chat_id=str(slow_learner)
    )
    await harness.sender.drain_once()
    assert all(delivery(harness.engine, other).status is DeliveryStatus.SENT for other in others)
    row = delivery(harness.engine, slow)
    assert row.status is DeliveryStatus.PENDING
    assert row.next_attempt_at == NOW + dt.timedelta(seconds=30)
    assert row.attempts == 0  # being told to wait is not a failed attempt
    assert harness.pacer.paused_for(str(slow_learner)) == pytest.approx(30, abs=0.1)
    assert harness.pacer.paused_for(str(others[0])) < 1
    assert harness.pacer.paused_for() == 0
    assert harness.metrics.rate_limited.labels(platform="fake")._value.get() == 1
    harness.later(30)
    harness.virtual.now += 30
    await harness.sender.drain_once()
    assert delivery(harness.engine, slow).status is DeliveryStatus.SENT


async def test_retry_after_without_a_chat_pauses_the_whole_platform(harness: Harness) -> None:
    add_delivery(harness.engine, *add_learner(harness.engine), "intro")
    harness.chat.fail_next(RetryAfter("flood", 12))
    await harness.sender.drain_once()
    assert harness.pacer.paused_for() == pytest.approx(12, abs=0.1)
    assert harness.pacer.paused_for("anyone") == pytest.approx(12, abs=0.1)


async def test_several_chats_told_to_wait_at_once_pause_the_whole_platform(harness: Harness) -> None:
    """Telegram names the chat on every 429; three chats limited in the same second is the bot's limit."""
    for _ in range(3):
        learner_id, enrollment_id = add_learner(harness.engine)
        add_delivery(harness.engine, learner_id, enrollment_id, "intro")
        harness.chat.fail_next(RetryAfter("flood", 7, str(learner_id)), chat_id=str(learner_id))
    await harness.sender.drain_once()
    assert harness.pacer.paused_for() == pytest.approx(7, abs=0.1)
    assert harness.pacer.paused_for("someone-else") == pytest.approx(7, abs=0.1)


async def test_a_token_in_an_error_never_reaches_the_database_or_the_log(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    token = "123456:SECRET-TOKEN-VALUE"
    sender = harness.new_sender(secrets=(token,))
    delivery_id = add_delivery(harness.engine, *add_learner(harness.engine), "intro")
    harness.chat.fail_next(TransientError(f"POST https://api.telegram.org/bot{token}/sendMessage failed"))
    with caplog.at_level(logging.INFO, logger="scheduler.sender"):
        await sender.drain_once()
    assert token not in (delivery(harness.engine, delivery_id).error or "")
    assert "sendMessage" in (delivery(harness.engine, delivery_id).error or "")
    assert all(token not in record.getMessage() for record in caplog.records)


async def test_every_send_is_one_structured_log_line(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    learner_id, enrollment_id = add_learner(harness.engine)
    delivery_id = add_delivery(harness.engine, learner_id, enrollment_id, "diagram")
    with caplog.at_level(logging.INFO, logger="scheduler.sender"):
        await harness.sender.drain_once()
    lines = [record for record in caplog.records if record.getMessage().startswith("send ")]
    assert len(lines) == 1
    message = lines[0].getMessage()
    for field in (
        f"delivery={delivery_id}",
        f"learner={learner_id}",
        "lesson=diagram",
        "platform=fake",
        "outcome=sent",
    ):
        assert field in message
    assert "latency_ms=" in message
    assert lines[0].outcome == "sent"  # type: ignore[attr-defined]


# --- crash safety and leases ---------------------------------------------------------------------


async def test_a_resend_after_a_crash_starts_after_the_parts_already_accepted(harness: Harness) -> None:
    learner_id, enrollment_id = add_learner(harness.engine)
    delivery_id = add_delivery(harness.engine, learner_id, enrollment_id, "diagram")
    parts = expected_parts(harness.course, "diagram", delivery_id, enrollment_id)
    with Session(harness.engine) as session:
        row = session.get(Delivery, delivery_id)
        assert row is not None
        row.status, row.lease_owner, row.parts_sent, row.message_ids = DeliveryStatus.SENDING, "dead", 1, "77"
        row.lease_expires_at = NOW + dt.timedelta(seconds=60)
        session.add(row)
        session.commit()
    sender = harness.new_sender()
    await sender.start()  # a lone SQLite process takes back everything left in flight at once
    await asyncio.sleep(0)
    await sender.stop()
    assert [without_file_ids(record.part) for record in harness.chat.sent] == parts[1:]
    row = delivery(harness.engine, delivery_id)
    assert row.status is DeliveryStatus.SENT
    assert row.message_ids.split()[0] == "77"
    assert len(row.message_ids.split()) == len(parts)


async def test_an_expired_lease_is_reclaimed_by_another_worker_and_not_before(harness: Harness) -> None:
    delivery_id = add_delivery(harness.engine, *add_learner(harness.engine), "intro")
    with Session(harness.engine) as session:
        claims = outbox.claim_due(
            session, worker_id="dead-worker", now=NOW, lease_seconds=60, limit=10, platforms=["fake"]
        )
        session.commit()
    assert [claim.delivery_id for claim in claims] == [delivery_id]
    survivor = harness.new_sender("survivor")
    harness.later(59)
    assert await survivor.drain_once() == 0
    harness.later(2)
    assert await survivor.drain_once() == 1
    assert delivery(harness.engine, delivery_id).status is DeliveryStatus.SENT
    # The dead worker's late write cannot undo the survivor's work.
    with Session(harness.engine) as session:
        late = outbox.PartRecord(index=0, message_ids="999", last=True, uploads={})
        assert not outbox.record_part(session, claims[0], worker_id="dead-worker", part=late, now=NOW)
        session.commit()
    assert delivery(harness.engine, delivery_id).message_ids != "999"


class GatedChat(FakeChat):
    """A FakeChat whose sends wait for `gate`, so a test can stop the sender with sends in flight."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.gate = asyncio.Event()
        self.waiting = 0

    async def send(self, chat_id: str, part: OutboundPart, *, idempotency_key: str = "") -> SentMessage:
        self.waiting += 1
        await self.gate.wait()
        return await super().send(chat_id, part, idempotency_key=idempotency_key)


async def wait_until(condition: object, within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.005)


async def test_stop_with_drain_finishes_in_flight_sends_and_claims_nothing_new(
    sqlite_engine: Engine, media_file: Path, clock: FakeClock
) -> None:
    chat = GatedChat(clock)
    rig = Harness(sqlite_engine, make_course(media_file), clock, chat, in_flight=2)
    ids = [add_delivery(sqlite_engine, *add_learner(sqlite_engine), "intro") for _ in range(6)]
    await rig.sender.start()
    await wait_until(lambda: chat.waiting == 2)
    stopping = asyncio.ensure_future(rig.sender.stop(drain=True))
    await asyncio.sleep(0.05)
    chat.gate.set()
    await stopping
    statuses = [delivery(sqlite_engine, delivery_id).status for delivery_id in ids]
    assert statuses.count(DeliveryStatus.SENT) == 2
    assert statuses.count(DeliveryStatus.PENDING) == 4
    assert len(chat.sent) == 2
    # The next process picks up exactly the rest: no loss, no duplicate.
    chat.gate.set()
    await rig.new_sender("worker-b").drain_once()
    assert sorted(int(record.idempotency_key.split(".")[0]) for record in chat.sent) == ids
    rig.close()


async def test_stop_past_its_grace_hands_back_a_half_sent_lesson_without_loss_or_duplicate(
    sqlite_engine: Engine, media_file: Path, clock: FakeClock
) -> None:
    chat = GatedChat(clock)
    rig = Harness(sqlite_engine, make_course(media_file), clock, chat, in_flight=2)
    learner_id, enrollment_id = add_learner(sqlite_engine)
    delivery_id = add_delivery(sqlite_engine, learner_id, enrollment_id, "diagram")
    parts = expected_parts(rig.course, "diagram", delivery_id, enrollment_id)
    await rig.sender.start()
    await wait_until(lambda: chat.waiting == 1)
    stopping = asyncio.ensure_future(rig.sender.stop(drain=True, grace_seconds=0.01))
    await asyncio.sleep(0.05)
    chat.gate.set()
    await stopping
    row = delivery(sqlite_engine, delivery_id)
    assert (row.status, row.parts_sent, row.lease_owner) == (DeliveryStatus.PENDING, 1, None)
    await rig.new_sender("worker-b").drain_once()
    assert [without_file_ids(record.part) for record in chat.sent] == parts
    assert delivery(sqlite_engine, delivery_id).status is DeliveryStatus.SENT
    rig.close()


async def test_wake_makes_a_running_sender_send_at_once(harness: Harness) -> None:
    await harness.sender.start()
    add_delivery(harness.engine, *add_learner(harness.engine), "intro")
    await harness.sender.wake()
    await wait_until(lambda: len(harness.chat.sent) == 1, within=0.5)  # well before the 1 s poll
    await harness.sender.stop()


async def test_metrics_count_sends_lateness_and_queue_depth(harness: Harness) -> None:
    learner_id, enrollment_id = add_learner(harness.engine)
    add_delivery(harness.engine, learner_id, enrollment_id, "intro", due_at=NOW - dt.timedelta(seconds=90))
    add_delivery(harness.engine, *add_learner(harness.engine), "intro", due_at=NOW + dt.timedelta(hours=1))
    await harness.sender.start()
    await wait_until(lambda: len(harness.chat.sent) == 1)
    await harness.sender.stop()
    registry = harness.metrics.registry
    assert registry.get_sample_value("dripcourse_sends_total", {"platform": "fake", "outcome": "sent"}) == 1
    assert registry.get_sample_value("dripcourse_messages_sent_total", {"platform": "fake"}) == 1
    assert registry.get_sample_value("dripcourse_lateness_seconds_sum", {"platform": "fake"}) == 90
    assert registry.get_sample_value("dripcourse_queue_depth") in (1, 2)


# --- a rule that must hold whatever the platform does ----------------------------------------------

FAILURES = st.sampled_from(["ok", "ok", "ok", "transient", "retry_after", "ambiguous", "migrated"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    plans=st.lists(
        st.lists(FAILURES, max_size=6).filter(lambda plan: plan.count("migrated") <= 3),
        min_size=1,
        max_size=5,
    ),
    in_flight=st.integers(1, 4),
)
def test_whatever_fails_every_lesson_arrives_complete_in_order_and_at_most_once_per_part(
    media_file: Path, plans: list[list[str]], in_flight: int
) -> None:
    """Retries never skip a part; only an ambiguous resend may repeat the one part in flight."""
    asyncio.run(_run_failure_plan(media_file, plans, in_flight))


async def _run_failure_plan(media_file: Path, plans: list[list[str]], in_flight: int) -> None:
    engine = create_db_engine("sqlite://")
    upgrade(engine)
    clock = FakeClock(NOW)
    chat = FakeChat(clock=clock)
    rig = Harness(engine, make_course(media_file), clock, chat, in_flight=in_flight, max_attempts=50)
    try:
        deliveries: dict[int, tuple[str, int]] = {}
        for plan in plans:
            learner_id, enrollment_id = add_learner(engine)
            chat_id = str(learner_id)
            for slug in ("diagram", "outro"):
                deliveries[add_delivery(engine, learner_id, enrollment_id, slug)] = (chat_id, enrollment_id)
            errors = {
                "transient": TransientError("503"),
                "retry_after": RetryAfter("429", 5, chat_id),
                "ambiguous": AmbiguousError("timeout"),
                "migrated": ChatMigrated("moved", chat_id),  # migrates to the same id: harmless to check
            }
            for step in plan:
                if step != "ok":
                    chat.fail_next(errors[step], chat_id=chat_id)
        for _ in range(60):
            processed = await rig.sender.drain_once()
            rig.later(3600)
            rig.virtual.now += 3600
            if processed == 0:
                break
        with Session(engine) as session:
            rows = session.exec(select(Delivery).order_by(col(Delivery.id))).all()
        assert all(row.status is DeliveryStatus.SENT for row in rows)
        for delivery_id in deliveries:
            keys = [r.idempotency_key for r in chat.sent if r.idempotency_key.startswith(f"{delivery_id}.")]
            indexes = [int(key.split(".")[1]) for key in keys]
            assert sorted(set(indexes)) == list(range(max(indexes) + 1))  # nothing skipped
            assert indexes == sorted(indexes)  # in order
        for chat_id in {chat_id for chat_id, _ in deliveries.values()}:
            order = [int(r.idempotency_key.split(".")[0]) for r in chat.sent if r.chat_id == chat_id]
            assert order == sorted(order)  # lessons to one chat never interleave
        # FakeChat raises before accepting, so no failure here may duplicate anything.
        keys = [record.idempotency_key for record in chat.sent]
        assert len(keys) == len(set(keys))
    finally:
        rig.close()
        engine.dispose()


async def test_a_lesson_edited_by_a_course_reload_goes_out_as_edited(harness: Harness) -> None:
    catalog = Catalog(harness.course)
    sender = Sender(
        harness.database,
        catalog,
        {"fake": harness.chat},
        {"fake": harness.pacer},
        harness.clock,
        harness.settings,
        worker_id="worker-a",
    )
    before, after = add_learner(harness.engine), add_learner(harness.engine)
    add_delivery(harness.engine, *before, "intro")
    assert await sender.drain_once() == 1
    intro = harness.course.lesson("intro")
    assert intro is not None
    edited = dataclasses.replace(intro, body_markdown="Welcome back: this lesson was edited.")
    catalog.courses["course"] = dataclasses.replace(
        harness.course, lessons=(edited, *harness.course.lessons[1:])
    )
    delivery_id = add_delivery(harness.engine, *after, "intro")
    assert await sender.drain_once() == 1

    (first,) = harness.chat.parts_to(str(before[0]))
    (second,) = harness.chat.parts_to(str(after[0]))
    assert isinstance(first, TextPart) and isinstance(second, TextPart)
    assert "Welcome to the course." in first.text
    assert "this lesson was edited" in second.text
    assert [second] == expected_parts(catalog.courses["course"], "intro", delivery_id, after[1])
