"""Platform and database faults end to end: storms of 429s, 5xx runs, timeouts before and after the
request reaches the server, connection resets, slow answers, blocked users and migrating chats, through
the Telegram Bot API emulator and the fake Discord REST API, and a PostgreSQL server dropping the bot's
connections mid-run.

Expected every time: no release lost, duplicates only where a request timed out after it reached the
server (each such timeout is one message in flight: the documented window), no delivery left stuck,
retries bounded by `max_attempts`, one single-line log record per failed attempt and no error logged,
and the bot answering learners throughout.

The PostgreSQL test needs DRIPCOURSE_TEST_POSTGRES_URL. It does not restart the shared server (other
tests use it): it terminates every backend of this test's own connections with pg_terminate_backend,
which is what the bot sees of a restart, twice, while lessons go out.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

from adapters.discord import DiscordAdapter
from adapters.discord.translate import fallback_notice
from adapters.telegram import TelegramAdapter
from adapters.telegram.adapter import HttpOptions
from bot.catalog import Catalog
from bot.clock import SystemClock
from bot.db import Database, create_db_engine, upgrade
from bot.models import Delivery, DeliveryStatus, Enrollment, EnrollmentStatus, Learner
from bot.ports import Reply
from bot.settings import (
    CoursesSettings,
    DatabaseSettings,
    DiscordSettings,
    SchedulerSettings,
    SenderSettings,
    Settings,
    TelegramSettings,
)
from dripcourse.app import App
from scheduler.pacer import discord_pacer
from scheduler.planner import release_due
from scheduler.sender import Sender as OutboxSender
from tests.conftest import SAMPLE_COURSES, postgres_url_or_skip
from tests.discord_harness.rest import FakeDiscord
from tests.emulators.telegram_bot_api import (
    Fault,
    FaultKind,
    SentRecord,
    TelegramEmulator,
    TelegramLimits,
    TelegramUser,
)
from tests.fakes import FakeClock
from tests.test_pacer import VirtualTime

COURSE = "async-learning"
MAX_ATTEMPTS = 8
FAST_HTTP = HttpOptions(connect_timeout=1.0, read_timeout=0.6, write_timeout=1.0, pool_timeout=1.0)


def seed_due_learners(
    engine: Engine, platform: str, users: Iterable[int], chat_of: dict[int, str], now: dt.datetime
) -> None:
    """Learners onboarded already, each with lesson one due now."""
    catalog, _ = Catalog.load(SAMPLE_COURSES)
    first = catalog.get(COURSE).lessons[0].slug  # type: ignore[union-attr]
    with Session(engine) as session:
        for user in users:
            learner = Learner(
                platform=platform,
                platform_user_id=str(user),
                chat_id=chat_of[user],
                display_name=f"Learner {user}",
                time_zone="Europe/Berlin",
                created_at=now,
            )
            session.add(learner)
            session.flush()
            session.add(
                Enrollment(
                    learner_id=learner.id or 0,
                    course_slug=COURSE,
                    status=EnrollmentStatus.ACTIVE,
                    next_lesson_slug=first,
                    next_release_at=now,
                    enrolled_at=now,
                )
            )
        session.commit()


def deliveries(engine: Engine) -> list[Delivery]:
    with Session(engine) as session:
        return list(session.exec(select(Delivery).order_by(col(Delivery.id))).all())


@dataclass
class Tally:
    """What reached the platform, per chat: complete lessons, extra copies."""

    lost: list[str]
    duplicates: int


def tally(messages: dict[str, list[tuple[str, str]]], expected: list[tuple[str, str]]) -> Tally:
    lost = []
    duplicates = 0
    for chat, received in messages.items():
        counts = Counter(received)
        if set(counts) != set(expected):
            lost.append(chat)
        duplicates += sum(count - 1 for count in counts.values())
    return Tally(lost, duplicates)


class LogLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def ours(self, level: int) -> list[logging.LogRecord]:
        return [
            record
            for record in self.records
            if record.levelno == level
            and record.name.split(".")[0] in ("bot", "scheduler", "adapters", "dripcourse")
        ]


@pytest.fixture
def log_lines() -> Iterable[LogLines]:
    handler = LogLines()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def assert_one_line_per_incident(log_lines: LogLines, incidents: int) -> None:
    errors = log_lines.ours(logging.ERROR)
    assert not errors, [record.getMessage() for record in errors]
    warnings = log_lines.ours(logging.WARNING)
    assert all("\n" not in record.getMessage() and record.exc_info is None for record in warnings)
    failed_sends = [record for record in warnings if record.getMessage().startswith("send delivery=")]
    assert incidents <= len(failed_sends) + len(warnings) and len(failed_sends) <= incidents, (
        len(failed_sends),
        incidents,
    )


# --- Telegram ----------------------------------------------------------------------------------------------

STORM = range(20_001, 20_041)
"""Learners whose lessons go out through the storm."""
BLOCKERS = (20_001, 20_002)
MIGRATING = 20_003
NEW_CHAT = -100_777_000_001
CHATTY = [TelegramUser(30_000 + n, f"Chatty {n}", language_code="en") for n in range(3)]


@dataclass
class TelegramRig:
    app: App
    emu: TelegramEmulator
    clock: FakeClock

    async def cycle(self, minutes: int = 10) -> int:
        """Release what is due, send it, then move the clock on so scheduled retries come due."""
        await self.app.heartbeat.tick()
        processed = await self.app.sender.drain_once()
        self.clock.at += dt.timedelta(minutes=minutes)
        return processed


@pytest.fixture
async def telegram_rig(tmp_path: Path, clock: FakeClock) -> AsyncIterator[TelegramRig]:
    async with TelegramEmulator(limits=TelegramLimits(enabled=False)) as emu:
        telegram = TelegramSettings(
            token=SecretStr(emu.token),
            api_base_url=emu.base_url,
            file_base_url=emu.file_base_url,
            per_chat_per_second=30,
        )
        settings = Settings(
            database=DatabaseSettings(url=SecretStr(f"sqlite:///{tmp_path / 'faults.db'}")),
            courses=CoursesSettings(path=SAMPLE_COURSES),
            telegram=telegram,
            sender=SenderSettings(in_flight=8, max_attempts=MAX_ATTEMPTS),
        )
        adapter = TelegramAdapter(telegram, learner_commands=[], admin_commands=[], http=FAST_HTTP)
        app = await App.open(settings, clock=clock, adapters={"telegram": adapter}, background=False)
        await app.start()
        try:
            yield TelegramRig(app, emu, clock)
        finally:
            await app.stop()


def storm_faults() -> list[Fault]:
    lesson_calls = ("sendMessage", "sendAudio")
    faults = [
        Fault(FaultKind.TOO_MANY_REQUESTS, method="sendMessage", times=6, retry_after=1),
        Fault(FaultKind.SERVER_ERROR, method="sendAudio", times=8),
        Fault(FaultKind.SERVER_ERROR, method="sendMessage", times=4, status=502),
        Fault(FaultKind.RESET, method="sendMessage", times=5),
        Fault(FaultKind.RESET, method="sendAudio", times=3),
        Fault(FaultKind.TIMEOUT_BEFORE, method="sendMessage", times=2),
        Fault(FaultKind.TIMEOUT_AFTER, method="sendMessage", times=2),
        Fault(FaultKind.TIMEOUT_AFTER, method="sendAudio", times=1),
        Fault(FaultKind.SLOW, method="sendAudio", times=4, delay=0.3),
        Fault(FaultKind.MIGRATED, chat_id=MIGRATING, migrate_to_chat_id=NEW_CHAT),
    ]
    faults += [Fault(FaultKind.BLOCKED, chat_id=user, times=None) for user in BLOCKERS]
    assert all(fault.method in (*lesson_calls, None) for fault in faults)
    return faults


async def test_a_telegram_fault_storm_loses_nothing_and_the_bot_keeps_answering(
    telegram_rig: TelegramRig, log_lines: LogLines
) -> None:
    rig, emu = telegram_rig, telegram_rig.emu
    chats = {user: str(user) for user in STORM}
    seed_due_learners(rig.app.database.engine, "telegram", STORM, chats, rig.clock.now())
    faults = storm_faults()
    for fault in faults:
        emu.faults.add(fault)
    answered: list[str] = []

    async def chat_during_the_storm() -> None:
        for round_number in range(4):
            for user in CHATTY:
                emu.user_sends_command(user, "progress" if round_number % 2 else "help")
            expected = len(CHATTY) * (round_number + 1)
            await emu.wait_for(lambda n=expected: sum(len(emu.sent_to(u.id)) for u in CHATTY) >= n, 20)
        answered.extend(text for user in CHATTY for text in emu.texts_to(user.id))

    chatter = asyncio.create_task(chat_during_the_storm())
    for _ in range(MAX_ATTEMPTS + 4):
        await rig.cycle()
    await chatter

    # The blocked learners come back: writing again makes them reachable and their lesson goes out.
    for fault in faults[-len(BLOCKERS) :]:
        emu.faults.remove(fault)
    for user in BLOCKERS:
        emu.user_sends_command(TelegramUser(user, f"Learner {user}"), "progress")
    await emu.wait_for(lambda: all(emu.sent_to(user) for user in BLOCKERS), 20)
    for _ in range(3):
        await rig.cycle()

    rows = deliveries(rig.app.database.engine)
    assert len(rows) == len(STORM)
    assert {row.status for row in rows} == {DeliveryStatus.SENT}, Counter(row.status for row in rows)
    assert max(row.attempts for row in rows) < MAX_ATTEMPTS, "retries are bounded"
    lesson_messages: dict[str, list[tuple[str, str]]] = {}
    for record in emu.sent:
        chat = str(MIGRATING) if record.chat_id == NEW_CHAT else str(record.chat_id)
        if int(chat) in STORM and record.method in ("sendMessage", "sendAudio") and not _is_reply(record):
            lesson_messages.setdefault(chat, []).append((record.method, record.body or ""))
    expected = sorted(set(lesson_messages[str(STORM[-1])]))
    assert [method for method, _ in expected] == ["sendAudio", "sendMessage"]
    result = tally(lesson_messages, expected)
    assert result.lost == [] and len(lesson_messages) == len(STORM)
    timed_out_after = sum(1 for fired in emu.faults.fired if fired.fault.kind == FaultKind.TIMEOUT_AFTER)
    assert timed_out_after == 3
    assert result.duplicates <= timed_out_after, "a duplicate only where a request timed out after arriving"
    assert emu.sent_to(NEW_CHAT), "the migrated chat got its lesson at the new id"
    with Session(rig.app.database.engine) as session:
        moved = session.exec(select(Learner).where(Learner.platform_user_id == str(MIGRATING))).one()
    assert moved.chat_id == str(NEW_CHAT)
    assert len(answered) == 12 and all(text for text in answered), "every learner who wrote got an answer"
    chatty = {str(user.id) for user in CHATTY}
    assert any(str(fired.chat_id) in chatty for fired in emu.faults.fired), "no answer met the storm"
    incidents = len(emu.faults.fired) - _fired(emu, FaultKind.SLOW)
    assert_one_line_per_incident(log_lines, incidents)
    assert emu.count_429 >= 6


def _fired(emu: TelegramEmulator, kind: FaultKind) -> int:
    return sum(1 for fired in emu.faults.fired if fired.fault.kind == kind)


def _is_reply(record: SentRecord) -> bool:
    return (record.body or "").startswith(
        ("You are not taking", "Here is what", "Learning on your own clock: lesson")
    )


# --- Discord -----------------------------------------------------------------------------------------------

DISCORD_USERS = range(410_000_000_000_000_001, 410_000_000_000_000_031)
DMS_CLOSED = 410_000_000_000_000_001
FALLBACK = 555_000_000_000_000_003
GUILD = 555_000_000_000_000_001


async def test_a_discord_fault_storm_loses_nothing_and_duplicates_nothing(
    database: Database, clock: FakeClock, log_lines: LogLines
) -> None:
    fake = FakeDiscord()
    await fake.start()
    virtual = VirtualTime()
    fake.add_guild_channel(FALLBACK, GUILD, set(DISCORD_USERS))
    for user in DISCORD_USERS:
        fake.add_user(user, f"learner{user}")
    fake.dms_closed.add(DMS_CLOSED)
    settings = DiscordSettings(
        token=SecretStr("discord-fault-token"), api_base_url=fake.base_url, fallback_channel_id=FALLBACK
    )
    adapter = DiscordAdapter(
        settings,
        courses_root=SAMPLE_COURSES,
        gateway=False,
        request_timeout=2.0,
        monotonic=virtual.monotonic,
        sleep=virtual.sleep,
    )
    catalog, _ = Catalog.load(SAMPLE_COURSES)
    await adapter.start(_ignore)
    sender = OutboxSender(
        database,
        catalog,
        {"discord": adapter},
        {"discord": discord_pacer(settings, monotonic=virtual.monotonic, sleep=virtual.sleep)},
        clock,
        SenderSettings(in_flight=8, max_attempts=MAX_ATTEMPTS),
        worker_id="discord-faults",
    )
    try:
        seed_due_learners(
            database.engine,
            "discord",
            DISCORD_USERS,
            {user: f"dm:{user}" for user in DISCORD_USERS},
            clock.now(),
        )
        await asyncio.to_thread(release_due, database.engine, catalog, clock.now())
        fake.rate_limit("POST", r"/channels/\d+/messages", 0.2, times=5)
        fake.rate_limit("POST", r"/channels/\d+/messages", 0.3, scope="global", times=2)
        fake.fail("POST", r"/channels/\d+/messages", 500, message="Internal Server Error", times=6)
        fake.fail("POST", r"/channels/\d+/messages", 502, message="Bad Gateway", times=3)
        fake.fail("POST", r"/users/@me/channels", 503, message="Service Unavailable", times=3)
        fake.fail("POST", r"/channels/\d+/messages", 500, message="slow", times=2, delay=2.5)
        for _ in range(MAX_ATTEMPTS + 4):
            await sender.drain_once()
            clock.at += dt.timedelta(minutes=10)
    finally:
        await adapter.stop()
        await fake.close()

    rows = deliveries(database.engine)
    assert len(rows) == len(DISCORD_USERS)
    assert {row.status for row in rows} == {DeliveryStatus.SENT}, Counter(row.status for row in rows)
    assert max(row.attempts for row in rows) < MAX_ATTEMPTS
    per_channel: dict[str, list[tuple[str, str]]] = {}
    for channel, messages in fake.messages.items():
        for message in messages:
            if message.get("content") != fallback_notice(DMS_CLOSED):
                per_channel.setdefault(str(channel), []).append(("post", _discord_text(message)))
    assert len(per_channel) == len(DISCORD_USERS), "every learner's DM or fallback thread got the lesson"
    expected = sorted(set(next(iter(per_channel.values()))))
    result = tally(per_channel, expected)
    assert result.lost == []
    assert result.duplicates == 0, "Discord drops a retried message by its nonce"
    assert fake.threads(), "the learner with closed DMs got a private thread in the fallback channel"
    assert_one_line_per_incident(log_lines, incidents=fake.served_429s + 6 + 3 + 3 + 2)


def _discord_text(message: dict[str, object]) -> str:
    content = str(message.get("content") or "")
    embeds = message.get("embeds") or []
    titles = "".join(str(embed.get("title", "")) for embed in embeds if isinstance(embed, dict))  # type: ignore[union-attr]
    return content + titles + str(len(message.get("attachments") or []))  # type: ignore[arg-type]


async def _ignore(_event: object) -> Reply:
    return Reply(())


# --- PostgreSQL drops the bot's connections -----------------------------------------------------------


@pytest.mark.postgres
async def test_postgresql_dropping_every_connection_mid_run_loses_nothing(
    postgres_schema: str, tmp_path: Path, log_lines: LogLines
) -> None:
    tag = f"dripcourse_fault_{uuid.uuid4().hex[:8]}"
    url = f"{postgres_schema}&application_name={tag}"
    upgrade_engine = create_db_engine(url)
    upgrade(upgrade_engine)
    upgrade_engine.dispose()
    users = range(50_001, 50_061)
    async with TelegramEmulator(limits=TelegramLimits(enabled=False)) as emu:
        telegram = TelegramSettings(
            token=SecretStr(emu.token),
            api_base_url=emu.base_url,
            file_base_url=emu.file_base_url,
            per_chat_per_second=30,
        )
        settings = Settings(
            database=DatabaseSettings(url=SecretStr(url)),
            courses=CoursesSettings(path=SAMPLE_COURSES),
            telegram=telegram,
            scheduler=SchedulerSettings(heartbeat_seconds=0.2),
            sender=SenderSettings(in_flight=4, backoff_base_seconds=0.05, backoff_max_seconds=0.5),
        )
        adapter = TelegramAdapter(telegram, learner_commands=[], admin_commands=[], http=FAST_HTTP)
        app = await App.open(settings, clock=SystemClock(), adapters={"telegram": adapter})
        seed_due_learners(
            app.database.engine, "telegram", users, {user: str(user) for user in users}, SystemClock().now()
        )
        admin = create_db_engine(postgres_url_or_skip())
        await app.start()
        try:
            answers = []
            for round_number in range(2):
                await emu.wait_for(lambda n=round_number: len(emu.sent) >= 30 * (n + 1), 60)
                dropped = await asyncio.to_thread(_terminate_backends, admin, tag)
                assert dropped >= 1, "the bot had no connection to drop"
                emu.user_sends_command(CHATTY[round_number], "help")
                await emu.wait_for(lambda n=round_number: emu.texts_to(CHATTY[n].id), 30)
                answers += emu.texts_to(CHATTY[round_number].id)
            await emu.wait_for(lambda: _lesson_chats(emu, users) == len(users), 60)
            await emu.wait_for(lambda: _unfinished(app.database) == 0, 30)
        finally:
            await app.stop()
            admin.dispose()
    reader = create_db_engine(url)
    rows = await asyncio.to_thread(deliveries, reader)
    reader.dispose()
    assert {row.status for row in rows} == {DeliveryStatus.SENT}
    per_chat: dict[str, list[tuple[str, str]]] = {}
    for record in emu.sent:
        if record.chat_id in users:
            per_chat.setdefault(str(record.chat_id), []).append((record.method, record.body or ""))
    expected = sorted(set(per_chat[str(users[0])]))
    result = tally(per_chat, expected)
    assert result.lost == [] and len(per_chat) == len(users)
    assert result.duplicates <= 2 * settings.sender.in_flight, "at most what was in flight at each drop"
    assert all("Sorry" not in answer for answer in answers), answers
    errors = log_lines.ours(logging.ERROR)
    assert not errors, [record.getMessage() for record in errors]
    warnings = log_lines.ours(logging.WARNING)
    assert all("\n" not in record.getMessage() and record.exc_info is None for record in warnings)
    dropped = [record for record in warnings if "database unavailable" in record.getMessage()]
    assert len(dropped) <= 2 * (settings.sender.in_flight + 1), "one line per failed unit of work"


def _terminate_backends(admin: Engine, application_name: str) -> int:
    with admin.begin() as connection:
        return len(
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :name AND pid <> pg_backend_pid()"
                ),
                {"name": application_name},
            ).all()
        )


def _lesson_chats(emu: TelegramEmulator, users: range) -> int:
    return len(
        {record.chat_id for record in emu.sent if record.chat_id in users and record.method == "sendAudio"}
    )


def _unfinished(database: Database) -> int:
    with Session(database.engine) as session:
        return len(
            session.exec(
                select(Delivery).where(
                    col(Delivery.status).in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING])
                )
            ).all()
        )
