"""A broadcast's status message in the instructor's chat: sent once, edited as deliveries settle, then left.

The watcher runs against a real SQLite database and a `FakeChat`; deliveries settle by writing their rows
as the sender would, the fake clock moves, and each test calls `step()` itself. The last test runs the
whole bot on the Telegram emulator: the instructor confirms a broadcast and sees their status message
edited to the final counts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlmodel import Session, col

from bot.admin import AdminPolicy, AdminTools
from bot.admin_conversation import AdminConversation
from bot.broadcasts import UNREACHABLE_PREFIX, BroadcastProgress
from bot.catalog import Catalog
from bot.db import Database
from bot.models import BroadcastStatus, Delivery, DeliveryStatus
from bot.ports import (
    ButtonPressed,
    ChatMigrated,
    Command,
    OutboundPart,
    Reply,
    RetryAfter,
    Sender,
    SentMessage,
    TransientError,
)
from scheduler.pacer import Pacer
from scheduler.progress_messages import ProgressMessages, progress_bar, status_text
from tests.e2e.telegram_app import emulator_settings, running_app
from tests.e2e.telegram_chat import TelegramChat
from tests.emulators.telegram_bot_api import TelegramEmulator, TelegramLimits, TelegramUser
from tests.fakes import FAKE_CAPABILITIES, FakeChat, FakeClock, reply_text
from tests.release_helpers import add_enrollment, make_course
from tests.test_pacer import VirtualTime

INSTRUCTOR = Sender("fake", "42", "42", "Ines")
COURSE = make_course("habits", 3)
SECONDS = dt.timedelta(seconds=1)


class Scene:
    """An instructor's chat with the bot, the broadcast watcher, and learners enrolled in `habits`."""

    def __init__(
        self,
        database: Database,
        clock: FakeClock,
        courses_root: Path,
        pacer: Pacer | None = None,
        chat: FakeChat | None = None,
    ) -> None:
        self.database = database
        self.clock = clock
        self.chat = chat or FakeChat(clock=clock)
        self.watcher = ProgressMessages(
            database,
            clock,
            {"fake": self.chat},
            {"fake": pacer} if pacer else None,
            edit_every=4.0,
            local_edit_every=60.0,
        )
        tools = AdminTools(
            database, Catalog([COURSE]), clock, AdminPolicy({"fake": ["42"]}), courses_root=courses_root
        )
        self.admin = AdminConversation(tools, {"fake": FAKE_CAPABILITIES}, progress=self.watcher)

    def enrol(self, count: int, *, due_in: dt.timedelta | None = None) -> None:
        for _ in range(count):
            due = self.clock.now() + due_in if due_in is not None else None
            add_enrollment(self.database.engine, COURSE, due=due)

    async def broadcast(self, mode: str = "now") -> Reply:
        """The instructor writes a broadcast and presses its button; returns the answer to the press."""
        await self.admin.handle(Command(INSTRUCTOR, "broadcast", "habits Office hours today at 17:00"))
        return await self.admin.handle(ButtonPressed(INSTRUCTOR, f"bcast:1:{mode}"))

    def settle(self, count: int, status: DeliveryStatus, error: str | None = None) -> None:
        """The sender settles `count` more deliveries of broadcast #1, earliest due first."""
        with Session(self.database.engine) as session:
            waiting = select(Delivery.id).where(  # type: ignore[call-overload]
                col(Delivery.broadcast_id) == 1, col(Delivery.status) == DeliveryStatus.PENDING
            )
            ids = list(
                session.execute(
                    waiting.order_by(col(Delivery.due_at), col(Delivery.id)).limit(count)
                ).scalars()
            )
            assert len(ids) == count, f"only {len(ids)} deliveries left to settle"
            session.execute(
                update(Delivery).where(col(Delivery.id).in_(ids)).values(status=status, error=error)
            )
            session.commit()

    def later(self, seconds: float) -> None:
        self.clock.at += seconds * SECONDS

    def status(self) -> str:
        """The instructor's status message as it reads now."""
        [record] = [record for record in self.chat.sent if record.chat_id == INSTRUCTOR.chat_id]
        return self.chat.text_of(INSTRUCTOR.chat_id, record.message_ids[0])


@pytest.fixture
def scene(database: Database, clock: FakeClock, tmp_path: Path) -> Scene:
    return Scene(database, clock, tmp_path)


# --- the text ------------------------------------------------------------------------------------------


def progress(**counts: int) -> BroadcastProgress:
    values = dict(total=0, sent=0, waiting=0, scheduled=0, failed=0, unreachable=0, cancelled=0, skipped=0)
    values.update(counts)
    return BroadcastProgress(
        broadcast_id=12,
        course_slug="habits",
        cohort_name=None,
        status=BroadcastStatus.QUEUED,
        at_local_time=False,
        **values,
    )


def test_the_status_reads_like_a_sentence_over_a_bar_of_settled_deliveries() -> None:
    running = progress(total=1000, sent=340, failed=3, unreachable=1, waiting=656)
    assert status_text(running) == (
        "Broadcast #12 (habits, now): 340 of 1,000 sent, 3 failed, 1 unreachable\n▓▓▓░░░░░░░ 34%"
    )
    done = dataclasses.replace(running, sent=995, waiting=0, skipped=2, cancelled=1)
    assert status_text(done) == (
        "Broadcast #12 (habits, now) finished: 995 of 1,000 sent, 3 failed, 3 unreachable, 1 cancelled\n"
        "▓▓▓▓▓▓▓▓▓▓ 100%"
    )
    local = dataclasses.replace(
        running, at_local_time=True, cohort_name="spring", sent=0, waiting=0, scheduled=996
    )
    assert status_text(local).startswith(
        "Broadcast #12 (habits, cohort spring, at each learner's time): 0 of 1,000 sent, 3 failed, "
        "1 unreachable, 996 waiting for the learner's own time\n░░░░░░░░░░ 0%"
    )
    cancelled = dataclasses.replace(running, status=BroadcastStatus.CANCELLED, waiting=0, cancelled=656)
    assert status_text(cancelled).startswith("Broadcast #12 (habits, now) cancelled: 340 of 1,000 sent")


def test_the_bar_fills_only_when_everything_settled() -> None:
    assert progress_bar(0, 3) == "░░░░░░░░░░ 0%"
    assert progress_bar(999, 1000) == "▓▓▓▓▓▓▓▓▓░ 99%"
    assert progress_bar(1000, 1000) == "▓▓▓▓▓▓▓▓▓▓ 100%"
    assert progress_bar(0, 0) == "▓▓▓▓▓▓▓▓▓▓ 100%"


# --- the watcher ---------------------------------------------------------------------------------------


async def test_the_status_message_follows_a_broadcast_sent_now_to_its_final_counts(scene: Scene) -> None:
    scene.enrol(10)
    reply = await scene.broadcast("now")
    assert reply_text(reply) == (
        "Broadcast #1 queued: 10 delivery(ies) going out now. "
        "A status message follows and is kept up to date (also: /broadcast status 1)."
    )
    assert "was already queued" in reply_text(
        await scene.admin.handle(ButtonPressed(INSTRUCTOR, "bcast:1:now"))
    )
    assert len(scene.watcher.watches) == 1

    assert await scene.watcher.step() == 1
    assert (
        scene.status() == "Broadcast #1 (habits, now): 0 of 10 sent, 0 failed, 0 unreachable\n░░░░░░░░░░ 0%"
    )

    scene.settle(3, DeliveryStatus.SENT)
    scene.settle(1, DeliveryStatus.FAILED, "Bad Request: chat not found")
    assert await scene.watcher.step() == 0  # the numbers changed, but the last edit was just now
    scene.later(4)
    assert await scene.watcher.step() == 1
    assert (
        scene.status() == "Broadcast #1 (habits, now): 3 of 10 sent, 1 failed, 0 unreachable\n▓▓▓▓░░░░░░ 40%"
    )

    scene.later(4)
    assert await scene.watcher.step() == 0  # nothing changed: no edit
    assert len(scene.chat.edits) == 1

    scene.settle(5, DeliveryStatus.SENT)
    scene.settle(1, DeliveryStatus.FAILED, f"{UNREACHABLE_PREFIX}: the learner blocked the bot")
    scene.later(4)
    assert await scene.watcher.step() == 1
    assert scene.status() == (
        "Broadcast #1 (habits, now) finished: 8 of 10 sent, 1 failed, 1 unreachable\n▓▓▓▓▓▓▓▓▓▓ 100%"
    )
    assert scene.watcher.watches == ()
    scene.later(60)
    assert await scene.watcher.step() == 0
    assert [edit.at for edit in scene.chat.edits] == [
        dt.datetime(2026, 3, 2, 6, 0, 4, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 2, 6, 0, 12, tzinfo=dt.UTC),
    ]
    assert len(scene.chat.sent) == 1
    status = reply_text(await scene.admin.handle(Command(INSTRUCTOR, "broadcast", "status 1")))
    assert "is finished: 10 of 10 settled" in status


async def test_at_each_learners_time_the_status_is_edited_once_a_minute_until_the_last_one_settles(
    scene: Scene,
) -> None:
    scene.enrol(2, due_in=dt.timedelta(hours=1))
    scene.enrol(1, due_in=dt.timedelta(hours=5))
    await scene.broadcast("local")
    assert await scene.watcher.step() == 1
    assert scene.status().startswith(
        "Broadcast #1 (habits, at each learner's time): 0 of 3 sent, 0 failed, 0 unreachable, "
        "3 waiting for the learner's own time\n"
    )

    scene.later(3600)
    scene.settle(1, DeliveryStatus.SENT)
    assert await scene.watcher.step() == 1
    scene.later(30)
    scene.settle(1, DeliveryStatus.SENT)
    assert await scene.watcher.step() == 0  # within the minute
    scene.later(30)
    assert await scene.watcher.step() == 1
    assert scene.status().startswith(
        "Broadcast #1 (habits, at each learner's time): 2 of 3 sent, 0 failed, 0"
    )

    for _ in range(45):  # three quiet hours: checked every minute, never edited
        scene.later(240)
        assert await scene.watcher.step() == 0
    scene.later(3600)
    scene.settle(1, DeliveryStatus.SENT)
    assert await scene.watcher.step() == 1
    assert scene.status().startswith("Broadcast #1 (habits, at each learner's time) finished: 3 of 3 sent")
    assert scene.watcher.watches == ()
    assert len(scene.chat.edits) == 3


async def test_a_passing_failure_is_tried_again_and_a_deleted_message_ends_the_watch_with_one_log_line(
    scene: Scene, caplog: pytest.LogCaptureFixture
) -> None:
    scene.enrol(4)
    await scene.broadcast("now")
    scene.chat.fail_next(TransientError("connection reset"))
    assert await scene.watcher.step() == 0
    scene.later(4)
    assert await scene.watcher.step() == 1  # the status message went out at the second try

    scene.settle(1, DeliveryStatus.SENT)
    scene.chat.fail_next_edit(TransientError("502 Bad Gateway"), times=2)
    for _ in range(2):
        scene.later(4)
        assert await scene.watcher.step() == 0
    scene.later(4)
    assert await scene.watcher.step() == 1
    assert scene.status().startswith("Broadcast #1 (habits, now): 1 of 4 sent")

    scene.chat.deleted.add(scene.chat.sent[0].message_ids[0])
    scene.settle(1, DeliveryStatus.SENT)
    with caplog.at_level(logging.INFO, logger="scheduler.progress_messages"):
        scene.later(4)
        assert await scene.watcher.step() == 0
        scene.settle(2, DeliveryStatus.SENT)
        scene.later(4)
        assert await scene.watcher.step() == 0
    assert scene.watcher.watches == ()
    assert [record.getMessage() for record in caplog.records] == [
        "status message of broadcast 1 in fake chat 42 is no longer updated: "
        "Bad Request: message to edit not found"
    ]


async def test_a_rate_limited_edit_waits_as_long_as_the_platform_asks(
    database: Database, clock: FakeClock, tmp_path: Path
) -> None:
    virtual = VirtualTime()
    pacer = Pacer("fake", 30.0, monotonic=virtual.monotonic, sleep=virtual.sleep)
    scene = Scene(database, clock, tmp_path, pacer)
    scene.enrol(2)
    await scene.broadcast("now")
    await scene.watcher.step()
    scene.settle(1, DeliveryStatus.SENT)
    scene.chat.fail_next_edit(RetryAfter("Too Many Requests: retry after 30", 30.0, INSTRUCTOR.chat_id))
    scene.later(4)
    assert await scene.watcher.step() == 0
    assert pacer.paused_for(INSTRUCTOR.chat_id) == pytest.approx(30.0)
    scene.later(20)
    assert await scene.watcher.step() == 0  # the platform asked for 30 seconds
    scene.later(10)
    assert await scene.watcher.step() == 1
    assert virtual.now >= 30.0  # and the pacer held the edit back in its own time as well


async def test_the_first_send_follows_a_discord_dm_being_opened(scene: Scene) -> None:
    scene.enrol(1)
    await scene.broadcast("now")
    scene.chat.fail_next(ChatMigrated("opened the learner's DM channel", "dm:42:77"))
    assert await scene.watcher.step() == 1
    scene.settle(1, DeliveryStatus.SENT)
    scene.later(4)
    assert await scene.watcher.step() == 1
    assert [(edit.chat_id, edit.message_id) for edit in scene.chat.edits] == [("dm:42:77", "1")]
    assert scene.chat.text_of("dm:42:77", "1").startswith("Broadcast #1 (habits, now) finished: 1 of 1 sent")


async def test_a_broadcast_stuck_for_an_hour_says_so_and_is_no_longer_followed(scene: Scene) -> None:
    scene.enrol(2)
    await scene.broadcast("now")
    await scene.watcher.step()
    scene.settle(1, DeliveryStatus.SENT)
    scene.later(4)
    assert await scene.watcher.step() == 1
    for _ in range(59):
        scene.later(60)
        assert await scene.watcher.step() == 0
    scene.later(60)
    assert await scene.watcher.step() == 1
    assert scene.status() == (
        "Broadcast #1 (habits, now): 1 of 2 sent, 0 failed, 0 unreachable\n▓▓▓▓▓░░░░░ 50%\n"
        "No longer updated: see /broadcast status 1"
    )
    assert scene.watcher.watches == ()


async def test_edits_that_keep_failing_while_nothing_moves_end_after_an_hour_with_one_log_line(
    scene: Scene, caplog: pytest.LogCaptureFixture
) -> None:
    scene.enrol(2)
    await scene.broadcast("now")
    await scene.watcher.step()
    scene.settle(1, DeliveryStatus.SENT)
    scene.chat.fail_next_edit(TransientError("502 Bad Gateway"), times=1000)
    minutes = 0
    with caplog.at_level(logging.INFO, logger="scheduler.progress_messages"):
        while scene.watcher.watches and minutes < 100:
            scene.later(60)
            minutes += 1
            assert await scene.watcher.step() == 0
    assert minutes == 61  # the numbers last changed at the first minute
    assert scene.chat.edits == []
    assert [record.getMessage() for record in caplog.records] == [
        "status message of broadcast 1 not updated, trying again: 502 Bad Gateway"
    ]


async def test_a_watch_that_cannot_be_read_is_dropped_and_the_others_go_on(
    scene: Scene, caplog: pytest.LogCaptureFixture
) -> None:
    scene.enrol(1)
    await scene.broadcast("now")
    scene.watcher.watch_broadcast(Sender("fake", "42", "other-chat"), 99)
    scene.watcher.watch_broadcast(Sender("telegram", "42", "42"), 1)  # no such adapter: ignored
    with caplog.at_level(logging.ERROR, logger="scheduler.progress_messages"):
        assert await scene.watcher.step() == 1
    assert [record.getMessage() for record in caplog.records] == [
        "status message of broadcast 99 failed; it is no longer updated"
    ]
    assert [watch.broadcast_id for watch in scene.watcher.watches] == [1]


@dataclass
class SignallingChat(FakeChat):
    """A `FakeChat` that says when something was sent."""

    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, chat_id: str, part: OutboundPart, *, idempotency_key: str = "") -> SentMessage:
        sent = await super().send(chat_id, part, idempotency_key=idempotency_key)
        self.arrived.set()
        return sent


async def test_in_the_background_it_follows_by_itself_and_stops_cleanly(
    database: Database, clock: FakeClock, tmp_path: Path
) -> None:
    chat = SignallingChat(clock=clock)
    scene = Scene(database, clock, tmp_path, chat=chat)
    scene.enrol(1)
    await scene.watcher.start()
    await scene.broadcast("now")
    await asyncio.wait_for(chat.arrived.wait(), 5.0)
    await scene.watcher.stop()
    await scene.watcher.stop()
    assert len(scene.watcher.watches) == 1  # stopped while following: nothing survives a restart


# --- the whole bot on the Telegram emulator -------------------------------------------------------------

INES = TelegramUser(77, "Ines", username="ines", language_code="en")
ADA = TelegramUser(42, "Ada", username="ada", language_code="en")
BOB = TelegramUser(43, "Bob", username="bob", language_code="en")


@pytest.fixture
async def emu() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator(limits=TelegramLimits(enabled=False)) as emulator:
        yield emulator


async def test_an_instructor_on_telegram_sees_their_status_message_edited_to_the_final_counts(
    emu: TelegramEmulator, clock: FakeClock, tmp_path: Path
) -> None:
    settings = emulator_settings(
        emu, tmp_path / "dripcourse.db", admins=[str(INES.id)], per_chat_per_second=30
    )
    async with running_app(settings, clock) as app:
        for user in (ADA, BOB):
            learner = TelegramChat(emu, user)
            await learner.command("start", "async-learning", replies=2)
            await learner.send("Berlin")
            await learner.send("7:30")
            await learner.send("daily")
        emu.block_bot(BOB.id)
        ines = TelegramChat(emu, INES)
        (preview,) = await ines.command("broadcast", "async-learning Office hours today at 17:00 UTC")
        assert preview.callback_data == ("bcast:1:now", "bcast:1:local", "bcast:1:cancel")
        (queued,) = await ines.press("bcast:1:now")
        assert (queued.body or "").startswith("Broadcast #1 queued: 2 delivery(ies) going out now.")

        assert await app.progress.step() == 1
        (status,) = await ines.expect(1)
        assert status.body == (
            "Broadcast #1 (async-learning, now): 0 of 2 sent, 0 failed, 0 unreachable\n░░░░░░░░░░ 0%"
        )
        assert await app.sender.drain_once() == 2
        assert await app.progress.step() == 0  # not yet: at most one edit every 4 seconds
        clock.at += 4 * SECONDS
        assert await app.progress.step() == 1

        message = emu.message(INES.id, status.message_id)
        assert message is not None
        assert message["text"] == (
            "Broadcast #1 (async-learning, now) finished: 1 of 2 sent, 0 failed, 1 unreachable\n"
            "▓▓▓▓▓▓▓▓▓▓ 100%"
        )
        edits = [action for action in emu.actions if action.method == "editMessageText"]
        assert [(edit.chat_id, edit.message_id) for edit in edits] == [(INES.id, status.message_id)]
        assert app.progress.watches == ()
        ines.assert_quiet()
