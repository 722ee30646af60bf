"""Access: no one does what they may not. Every instructor operation by a non-instructor is refused and
audited, on each platform, privately and in groups; a learner never sees or changes another learner's
data, whatever callback data or custom id they forge; the webhook takes only Telegram's secret; and no
token or password shows up in anything the bot writes out."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import json
import logging
import os
import sqlite3
import traceback
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import telegram
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy import select as select_rows
from sqlmodel import Session, SQLModel, col, select
from typer.testing import CliRunner

from adapters.discord import DiscordAdapter
from adapters.discord.translate import Origin, component_event, direct_message_event, sender_for
from adapters.telegram import TelegramAdapter
from adapters.telegram.translate import BotIdentity, update_to_event
from bot.actions import encode
from bot.admin import REFUSAL, Actor, AdminTools, NotAuthorized
from bot.admin_conversation import ADMIN_COMMANDS
from bot.capabilities import DISCORD, TELEGRAM
from bot.discussion_admin import THREAD_COMMANDS
from bot.markup import escape_user_text
from bot.models import AdminAction, Broadcast, BroadcastStatus, Delivery, Learner, QuizPoll
from bot.ports import (
    ButtonPressed,
    Command,
    InboundEvent,
    PlatformError,
    QuizAnswered,
    Reply,
    Sender,
    TextPart,
    TextReceived,
)
from bot.settings import (
    CoursesSettings,
    DatabaseSettings,
    DiscordSettings,
    Settings,
    TelegramSettings,
)
from dripcourse.app import App
from dripcourse.cli import app as cli
from tests.conftest import SAMPLE_COURSES
from tests.discord_harness.rest import FakeDiscord
from tests.e2e.telegram_chat import TelegramChat
from tests.emulators.telegram_bot_api import Fault, FaultKind, TelegramEmulator, TelegramLimits, TelegramUser
from tests.fakes import FakeChat, FakeClock, reply_text
from tests.test_telegram_e2e import BotRuns, free_port

COURSE = "async-learning"
FIRST_LESSON = "your-own-clock"
TELEGRAM_ADMIN = "1"
DISCORD_ADMIN = "900000000000000001"
TELEGRAM_GROUP = -1001234567890
DISCORD_GUILD = 555
DISCORD_DM = 600000000000000009
BOT = BotIdentity(777000, "dripcourse_bot")
TELEGRAM_BOT = telegram.Bot("123456:access-test-token-never-sent")
VICTIM_NAME = "Victoria Victim"

ALL_ADMIN_COMMANDS = [name for name, _ in (*ADMIN_COMMANDS, *THREAD_COMMANDS)]
ADMIN_ARGUMENTS = {
    "stats": COURSE,
    "learners": f"{COURSE} active",
    "learner": "{victim} remove",
    "broadcast": f"{COURSE} Everyone: the course is cancelled!",
    "announce": f"2030-01-01 10:00 {COURSE} Fake announcement",
    "export": COURSE,
    "reload": "",
    "cohort": f"create {COURSE} intruders",
    "audit": "50",
    "admin": "",
    "thread": f"close {COURSE} {FIRST_LESSON}",
    "threads": COURSE,
}
"""What an instructor would type: arguments under which each operation would really do something."""


# --- the app, with a victim part-way through the course ---------------------------------------------------


@dataclass
class Scene:
    app: App
    chats: dict[str, FakeChat]
    clock: FakeClock
    victims: dict[str, dict[str, Any]]
    """platform -> the victim's learner, enrollment and delivery ids, their poll id and their sender."""
    draft_broadcast: int

    @property
    def engine(self) -> Engine:
        return self.app.database.engine

    async def handle(self, event: InboundEvent) -> Reply:
        return await self.app.conversation.handle(event)


def settings_for(tmp_path: Path) -> Settings:
    return Settings(
        database=DatabaseSettings(url=SecretStr(f"sqlite:///{tmp_path / 'access.db'}")),
        courses=CoursesSettings(path=SAMPLE_COURSES),
        telegram=TelegramSettings(token=SecretStr("42:unused"), admins=[TELEGRAM_ADMIN]),
        discord=DiscordSettings(token=SecretStr("unused"), admins=[DISCORD_ADMIN]),
    )


def private_sender(platform: str, user_id: str, name: str = "Someone") -> Sender:
    if platform == "discord":
        origin = Origin(int(user_id), name, None, None, DISCORD_DM, in_bot_dm=True)
        return sender_for(origin)
    return Sender("telegram", user_id, user_id, name, "en")


@pytest.fixture
async def scene(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Scene]:
    chats = {
        "telegram": FakeChat(capabilities=TELEGRAM, clock=clock),
        "discord": FakeChat(capabilities=DISCORD, clock=clock),
    }
    app = await App.open(settings_for(tmp_path), clock=clock, adapters=chats, background=False)
    await app.start()
    victims: dict[str, dict[str, Any]] = {}
    try:
        for platform, user_id in (("telegram", "8001"), ("discord", "800000000000000001")):
            victim = private_sender(platform, user_id, VICTIM_NAME)
            for event in (
                Command(victim, "start", COURSE),
                TextReceived(victim, "Europe/Berlin"),
                TextReceived(victim, "08:00"),
                TextReceived(victim, "daily"),
            ):
                await app.conversation.handle(event)
            victims[platform] = {"sender": victim}
        await app.heartbeat.tick()
        await app.sender.drain_once()
        with Session(app.database.engine) as session:
            for platform, victim in victims.items():
                learner = session.exec(
                    select(Learner).where(
                        Learner.platform == platform, Learner.platform_user_id == victim["sender"].user_id
                    )
                ).one()
                delivery = session.exec(select(Delivery).where(Delivery.learner_id == learner.id)).one()
                poll = session.exec(select(QuizPoll).where(QuizPoll.delivery_id == delivery.id)).first()
                victim |= {
                    "learner": learner.id,
                    "enrollment": delivery.enrollment_id,
                    "delivery": delivery.id,
                    "poll": poll.poll_key.split(":", 1)[1] if poll else "no-poll",
                }
        instructor = Actor("telegram", TELEGRAM_ADMIN, "Ines")
        draft = await app.admin.prepare_broadcast(instructor, COURSE, "A real announcement")
        yield Scene(app, chats, clock, victims, draft.broadcast_id)
    finally:
        await app.stop()


def state(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored row but the audit trail, less the columns any event may touch (last seen, awaiting)."""
    ignored = {"learner": {"last_seen_at", "awaiting"}}
    rows: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            if table.name == "adminaction":
                continue
            columns = [
                column for column in table.columns if column.name not in ignored.get(table.name, set())
            ]
            rows[table.name] = [
                tuple(row)
                for row in connection.execute(select_rows(*columns).order_by(*table.primary_key.columns))
            ]
    return rows


def audit_rows(engine: Engine) -> list[AdminAction]:
    with Session(engine) as session:
        return list(session.exec(select(AdminAction).order_by(col(AdminAction.id))).all())


# --- instructor operations by anyone else ------------------------------------------------------------------


def telegram_command(user_id: int, text: str, *, group: bool) -> InboundEvent:
    """A command typed in a private chat or a group, through the adapter's own translation."""
    chat = (
        {"id": TELEGRAM_GROUP, "type": "supergroup", "title": "Course group"}
        if group
        else {"id": user_id, "type": "private", "first_name": "Mallory"}
    )
    update = {
        "update_id": 1,
        "message": {
            "message_id": 5,
            "date": 1772431200,
            "chat": chat,
            "from": {"id": user_id, "is_bot": False, "first_name": "Mallory", "language_code": "en"},
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}],
        },
    }
    event = update_to_event(telegram.Update.de_json(update, TELEGRAM_BOT), BOT)
    assert event is not None, text
    return event


def discord_command(user_id: int, name: str, args: str, *, in_dm: bool, server_admin: bool) -> InboundEvent:
    """A command from the bot's DM (typed text) or from a server (as if sent from a guild channel)."""
    origin = Origin(
        user_id,
        "Mallory",
        None,
        None if in_dm else DISCORD_GUILD,
        DISCORD_DM if in_dm else 556,
        in_bot_dm=in_dm,
        # A server's own admin role is not one the config names: it gives no instructor rights.
        role_names=("Admin",) if server_admin else (),
    )
    sender = sender_for(origin)
    if in_dm:
        event = direct_message_event(sender, f"/{name} {args}".strip())
        assert isinstance(event, Command)
        return event
    return Command(sender, name, args)


def intruder_events(platform: str, context: str, name: str, args: str) -> InboundEvent:
    if platform == "telegram":
        user = 7001 if context == "private" else 7002
        suffix = "@dripcourse_bot" if context == "group" else ""
        return telegram_command(user, f"/{name}{suffix} {args}".strip(), group=context == "group")
    user = 700000000000000001 if context == "private" else 700000000000000002
    return discord_command(user, name, args, in_dm=context == "private", server_admin=context == "group")


@pytest.mark.parametrize(
    ("platform", "context"),
    [("telegram", "private"), ("telegram", "group"), ("discord", "private"), ("discord", "group")],
)
async def test_every_instructor_command_from_anyone_else_is_refused_changes_nothing_and_is_audited(
    scene: Scene, platform: str, context: str
) -> None:
    refusal = escape_user_text(REFUSAL, scene.app.adapters[platform].capabilities.markup)
    victim = scene.victims[platform]["learner"]
    failures = []
    for name in ALL_ADMIN_COMMANDS:
        args = ADMIN_ARGUMENTS.get(name, "").format(victim=victim)
        event = intruder_events(platform, context, name, args)
        before, audited = state(scene.engine), len(audit_rows(scene.engine))

        reply = await scene.handle(event)

        rows = audit_rows(scene.engine)[audited:]
        if reply_text(reply) != refusal:
            failures.append(f"/{name}: answered {reply_text(reply)[:200]!r}")
        if state(scene.engine) != before:
            failures.append(f"/{name}: changed stored data")
        if [(row.platform, row.user_id, row.action, row.allowed) for row in rows] != [
            (platform, event.sender.user_id, name, False)
        ]:
            failures.append(f"/{name}: audited as {[(row.action, row.allowed) for row in rows]}")
        if any(part for part in reply.parts if not isinstance(part, TextPart)):
            failures.append(f"/{name}: sent a file")
    assert not failures, "\n".join(failures)


async def test_the_instructor_is_not_refused_so_the_refusals_above_mean_something(scene: Scene) -> None:
    for platform, admin in (("telegram", TELEGRAM_ADMIN), ("discord", DISCORD_ADMIN)):
        sender = private_sender(platform, admin, "Ines")
        for name in ("stats", "audit", "learners"):
            reply = await scene.handle(Command(sender, name, ADMIN_ARGUMENTS[name]))
            assert REFUSAL not in reply_text(reply), (platform, name)
    assert {
        row.allowed for row in audit_rows(scene.engine) if row.user_id in (TELEGRAM_ADMIN, DISCORD_ADMIN)
    } == {True}


async def test_an_instructor_on_one_platform_is_nobody_on_the_other(scene: Scene) -> None:
    impostor = private_sender("discord", "1")  # the Telegram instructor's id, on Discord
    reply = await scene.handle(Command(impostor, "export", ""))
    assert REFUSAL in reply_text(reply)
    assert not [part for part in reply.parts if not isinstance(part, TextPart)]


async def test_the_broadcast_buttons_of_an_instructor_are_refused_to_anyone_else(scene: Scene) -> None:
    for platform, user in (("telegram", "7003"), ("discord", "700000000000000003")):
        for mode in ("now", "local", "cancel"):
            before, audited = state(scene.engine), len(audit_rows(scene.engine))
            reply = await scene.handle(
                ButtonPressed(private_sender(platform, user), encode("bcast", scene.draft_broadcast, mode))
            )
            assert REFUSAL in reply_text(reply)
            assert state(scene.engine) == before
            [row] = audit_rows(scene.engine)[audited:]
            assert (row.action, row.allowed, row.user_id) == ("button", False, user)
    with Session(scene.engine) as session:
        broadcast = session.get_one(Broadcast, scene.draft_broadcast)
        assert broadcast.status is BroadcastStatus.DRAFT
        assert not session.exec(select(Delivery).where(Delivery.broadcast_id == broadcast.id)).all()


OPERATION_ARGUMENTS: dict[str, Any] = {
    "course_slug": COURSE,
    "learner_id": 1,
    "action": "remove",
    "lesson_slug": None,
    "target": COURSE,
    "text": "Forged",
    "broadcast_id": 1,
    "at_local_time": False,
    "run_at": dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
    "name": "intruders",
    "limit": 5,
    "filter_text": "",
    "page": 1,
    "start_date": None,
    "cadence": None,
    "local_time": None,
    "errors": 0,
    "progress": None,
}
NOT_OPERATIONS = {"authorize", "record_failure", "apply_requested_reloads"}


async def test_every_admin_operation_in_the_core_refuses_a_non_instructor_whatever_the_adapter(
    scene: Scene,
) -> None:
    tools: AdminTools = scene.app.admin
    intruders = [
        Actor("telegram", "7004", "Mallory"),
        Actor("discord", "700000000000000004", "Mallory", role_hint=True),  # no admin role is configured
        Actor("console", "7004"),
    ]
    operations = [
        (name, method)
        for name, method in inspect.getmembers(AdminTools, inspect.iscoroutinefunction)
        if not name.startswith("_") and name not in NOT_OPERATIONS
    ]
    assert len(operations) >= 12, [name for name, _ in operations]
    for name, method in operations:
        parameters = [
            p for p in inspect.signature(method).parameters.values() if p.name not in ("self", "actor")
        ]
        unknown = [p.name for p in parameters if p.name not in OPERATION_ARGUMENTS and p.default is p.empty]
        assert not unknown, f"{name}: add a value for {unknown} to OPERATION_ARGUMENTS"
        kwargs = {p.name: OPERATION_ARGUMENTS[p.name] for p in parameters if p.name in OPERATION_ARGUMENTS}
        for actor in intruders:
            before, audited = state(scene.engine), len(audit_rows(scene.engine))
            with pytest.raises(NotAuthorized):
                await method(tools, actor, **kwargs)
            assert state(scene.engine) == before, name
            rows = audit_rows(scene.engine)[audited:]
            assert [(row.allowed, row.user_id) for row in rows] == [(False, actor.user_id)], name


# --- one learner, another learner's data -----------------------------------------------------------------


def forged_actions(victim: dict[str, Any]) -> list[str]:
    enrollment, delivery, learner = victim["enrollment"], victim["delivery"], victim["learner"]
    return [
        encode("done", delivery),
        encode("quiz", delivery, 0),
        encode("quiz", delivery, 1),
        encode("time", enrollment, "0730"),
        encode("pace", enrollment, "weekdays"),
        encode("zone", enrollment, "Asia/Tokyo"),
        encode("next", enrollment),
        encode("stop", enrollment),
        encode("keep", enrollment),
        encode("more", "zone", enrollment),
        encode("forget", learner, "yes"),
        f"rev:{delivery}:0",
    ]


def telegram_press(user_id: int, data: str) -> InboundEvent:
    update = {
        "update_id": 2,
        "callback_query": {
            "id": "9",
            "from": {"id": user_id, "is_bot": False, "first_name": "Mallory"},
            "chat_instance": "1",
            "data": data,
            "message": {
                "message_id": 3,
                "date": 1772431200,
                "chat": {"id": user_id, "type": "private", "first_name": "Mallory"},
                "from": {"id": BOT.id, "is_bot": True, "first_name": "Bot"},
                "text": "a lesson",
            },
        },
    }
    event = update_to_event(telegram.Update.de_json(update, TELEGRAM_BOT), BOT)
    assert event is not None
    return event


@pytest.mark.parametrize("platform", ["telegram", "discord"])
async def test_forged_callback_data_and_custom_ids_for_another_learner_are_rejected(
    scene: Scene, platform: str
) -> None:
    victim = scene.victims[platform]
    attacker_id = "7005" if platform == "telegram" else "700000000000000005"
    attacker = private_sender(platform, attacker_id, "Mallory")
    for event in (
        Command(attacker, "start", COURSE),
        TextReceived(attacker, "Asia/Tokyo"),
        TextReceived(attacker, "09:00"),
        TextReceived(attacker, "daily"),
    ):
        await scene.handle(event)
    victim_rows = _rows_of(scene.engine, victim["learner"])
    for action in forged_actions(victim):
        before = state(scene.engine)
        if platform == "telegram":
            event = telegram_press(int(attacker_id), action)
        else:
            event = component_event(attacker, action, 42)
        reply = await scene.handle(event)
        answer = reply_text(reply)
        assert "something went wrong" not in answer, action
        assert VICTIM_NAME not in answer and victim["sender"].user_id not in answer, action
        assert _rows_of(scene.engine, victim["learner"]) == victim_rows, f"{action} changed the victim's data"
        if not action.startswith(("more", "keep")):
            assert state(scene.engine) == before, f"{action} changed something"
    # Another learner's native quiz poll cannot be answered either.
    if platform == "telegram":
        reply = await scene.handle(QuizAnswered(attacker, victim["poll"], 0))
        assert "could not match" in reply_text(reply) or "not for you" in reply_text(reply)
        assert _rows_of(scene.engine, victim["learner"]) == victim_rows


async def test_what_a_learner_can_ask_for_never_shows_another_learner(scene: Scene) -> None:
    attacker = private_sender("telegram", "7006", "Mallory")
    await scene.handle(Command(attacker, "start", COURSE))
    for name in (
        "progress",
        "schedule",
        "settings",
        "repeat",
        "mydata",
        "courses",
        "help",
        "learner",
        "learners",
    ):
        args = str(scene.victims["telegram"]["learner"]) if name == "learner" else ""
        reply = await scene.handle(Command(attacker, name, args))
        everything = reply_text(reply) + "".join(
            part.content.decode(errors="replace") for part in reply.parts if hasattr(part, "content")
        )
        assert VICTIM_NAME not in everything, name
        assert scene.victims["telegram"]["sender"].user_id not in everything, name


def _rows_of(engine: Engine, learner_id: int) -> dict[str, list[tuple[Any, ...]]]:
    result: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            column = table.c.id if table.name == "learner" else table.c.get("learner_id")
            if column is None:
                continue
            ignored = {"last_seen_at", "awaiting"} if table.name == "learner" else set()
            columns = [c for c in table.columns if c.name not in ignored]
            result[table.name] = [
                tuple(row)
                for row in connection.execute(
                    select_rows(*columns).where(column == learner_id).order_by(*table.primary_key.columns)
                )
            ]
    return result


# --- the webhook ------------------------------------------------------------------------------------------

WEBHOOK_SECRET = "access-hook_secret-0123456789abcdef"


async def test_webhook_requests_without_the_right_secret_token_get_403_and_are_not_handled() -> None:
    async with TelegramEmulator(limits=TelegramLimits(enabled=False)) as emu:
        port = free_port()
        url = f"http://127.0.0.1:{port}/telegram/updates"
        adapter = TelegramAdapter(
            TelegramSettings(
                token=SecretStr(emu.token),
                api_base_url=emu.base_url,
                file_base_url=emu.file_base_url,
                mode="webhook",
                webhook_url=url,
                webhook_listen="127.0.0.1",
                webhook_port=port,
                webhook_secret=SecretStr(WEBHOOK_SECRET),
            ),
            learner_commands=[],
            admin_commands=[],
        )
        handled: list[InboundEvent] = []

        async def handle(event: InboundEvent) -> Reply:
            handled.append(event)
            return Reply((TextPart("ok"),))

        await adapter.start(handle)
        try:
            update = {
                "update_id": 777,
                "message": {
                    "message_id": 1,
                    "date": 1772431200,
                    "chat": {"id": 4242, "type": "private", "first_name": "Eve"},
                    "from": {"id": 4242, "is_bot": False, "first_name": "Eve"},
                    "text": "/help",
                    "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
                },
            }
            header = "X-Telegram-Bot-Api-Secret-Token"
            async with httpx.AsyncClient() as client:
                missing = await client.post(url, json=update)
                wrong = await client.post(url, json=update, headers={header: "guess"})
                almost = await client.post(url, json=update, headers={header: WEBHOOK_SECRET[:-1]})
                empty = await client.post(url, json=update, headers={header: ""})
                assert [missing.status_code, wrong.status_code, almost.status_code, empty.status_code] == [
                    403
                ] * 4
                assert WEBHOOK_SECRET not in missing.text + wrong.text + almost.text
                await asyncio.sleep(0)
                assert handled == [], "a request without the secret reached the bot"
                right = await client.post(url, json=update, headers={header: WEBHOOK_SECRET})
            assert right.status_code == 200
            await emu.wait_for(lambda: emu.texts_to(4242), timeout=10)
            assert [type(event).__name__ for event in handled] == ["Command"]
        finally:
            await adapter.stop()


# --- secrets never written out ------------------------------------------------------------------------------

TOKEN = "987654321:AAF-TokenThatMustNeverLeak_0123456789ab"
DISCORD_TOKEN = "MTIzNDU2Nzg5.DiscordTokenThatMustNeverLeak.abcdefghijklmnop"
DB_PASSWORD = "pg-Password-That-Must-Never-Leak"
LEARNER = TelegramUser(9090, "Lena", username="lena", language_code="en")
BLOCKED = TelegramUser(9091, "Blocky", username="blocky", language_code="en")


def secrets_in(text: str) -> list[str]:
    """Which secrets (or their secret halves) appear in `text`, case-insensitively."""
    found = []
    for secret in (TOKEN, TOKEN.split(":", 1)[1], DISCORD_TOKEN, WEBHOOK_SECRET, DB_PASSWORD):
        if secret.lower() in text.lower():
            found.append(secret[:12] + "…")
    return found


def database_text(path: Path) -> str:
    connection = sqlite3.connect(path)
    try:
        return "\n".join(connection.iterdump())
    finally:
        connection.close()


@pytest.mark.slow
async def test_no_token_or_password_in_logs_errors_database_exports_status_or_metrics(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A real `dripcourse run` at DEBUG level, through faults, then every command an operator runs."""
    captured: dict[str, str] = {}
    async with TelegramEmulator(token=TOKEN, limits=TelegramLimits(enabled=False)) as emu:
        database = tmp_path / "secrets.db"
        hook_port, metrics_port = free_port(), free_port()
        env = {name: value for name, value in os.environ.items() if not name.startswith("DRIPCOURSE_")}
        env |= {
            "DRIPCOURSE_TELEGRAM_TOKEN": TOKEN,
            "DRIPCOURSE_TELEGRAM_API_BASE_URL": emu.base_url,
            "DRIPCOURSE_TELEGRAM_FILE_BASE_URL": emu.file_base_url,
            "DRIPCOURSE_TELEGRAM_MODE": "webhook",
            "DRIPCOURSE_TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{hook_port}/{TOKEN}",
            "DRIPCOURSE_TELEGRAM_WEBHOOK_LISTEN": "127.0.0.1",
            "DRIPCOURSE_TELEGRAM_WEBHOOK_PORT": str(hook_port),
            "DRIPCOURSE_TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "DRIPCOURSE_TELEGRAM_ADMINS": str(LEARNER.id),
            "DRIPCOURSE_DATABASE_URL": f"sqlite:///{database}",
            "DRIPCOURSE_COURSES_PATH": str(SAMPLE_COURSES),
            "DRIPCOURSE_SCHEDULER_HEARTBEAT_SECONDS": "0.5",
            "DRIPCOURSE_SENDER_BACKOFF_BASE_SECONDS": "0.05",
            "DRIPCOURSE_METRICS_ENABLED": "true",
            "DRIPCOURSE_METRICS_PORT": str(metrics_port),
            "DRIPCOURSE_LOGGING_LEVEL": "DEBUG",
        }
        runs = BotRuns(env, tmp_path, tmp_path / "run.log")
        chat = TelegramChat(emu, LEARNER, timeout=20.0)
        await runs.start(0.0)
        try:
            await chat.command("start", COURSE, replies=2)
            await chat.send("Berlin")
            await chat.send("08:00")
            for kind in (FaultKind.SERVER_ERROR, FaultKind.RESET, FaultKind.TOO_MANY_REQUESTS):
                emu.faults.add(Fault(kind, method="sendAudio", chat_id=LEARNER.id, retry_after=1))
            await chat.send("daily", replies=1)
            await chat.expect(2)  # lesson one, its audio through a 5xx, a reset and a 429
            emu.faults.add(Fault(FaultKind.BLOCKED, chat_id=BLOCKED.id, times=None))
            emu.user_sends_command(BLOCKED, "start", COURSE)
            await emu.wait_for(lambda: any(f.fault.kind == FaultKind.BLOCKED for f in emu.faults.fired), 20)
            await chat.command("stats", replies=2)
            await chat.command("export", replies=3)
            async with httpx.AsyncClient() as client:
                metrics = await client.get(f"http://127.0.0.1:{metrics_port}/metrics")
                forged = await client.post(f"http://127.0.0.1:{hook_port}/{TOKEN}", json={"update_id": 1})
            assert metrics.status_code == 200 and "dripcourse_messages_sent" in metrics.text
            assert forged.status_code == 403
            captured["metrics"] = metrics.text
            captured["forged webhook answer"] = forged.text
        finally:
            await runs.stop()
        captured["chat"] = "\n".join(
            (record.body or "") + json.dumps(record.params, default=str) for record in emu.sent
        )
    captured["run log"] = runs.log()
    assert runs.exit_codes == [0], captured["run log"][-3000:]
    captured["database"] = database_text(database)

    # Every command an operator runs, with a PostgreSQL URL whose password must stay hidden too.
    cli_env = {**env, "DRIPCOURSE_LOGGING_LEVEL": "DEBUG"}
    out = tmp_path / "export"
    postgres_env = {
        **cli_env,
        "DRIPCOURSE_DATABASE_URL": f"postgresql+psycopg://dripcourse:{DB_PASSWORD}@127.0.0.1:1/x",
    }
    bad_setting_env = {**cli_env, "DRIPCOURSE_TELEGRAM_MESSAGES_PER_SECOND": "fast"}
    commands = {
        "status": (["status", "--json"], cli_env),
        "export": (["export", "--out", str(out)], cli_env),
        "audit": (["audit"], cli_env),
        "backup": (["backup", str(tmp_path / "copy.db")], cli_env),
        "postgres status": (["status"], postgres_env),
        "postgres db current": (["db", "current"], postgres_env),
        "postgres backup": (["backup", str(tmp_path / "pg.db")], postgres_env),
        "bad setting": (["status"], bad_setting_env),
    }
    for label, (arguments, environment) in commands.items():
        with caplog.at_level(logging.DEBUG):
            # The instructor commands run their own event loop: give them a thread of their own.
            result = await asyncio.to_thread(CliRunner().invoke, cli, arguments, env=environment)
        captured[label] = f"{result.output}\n{result.exception!r}\n" + "\n".join(
            logging.Formatter().format(record) for record in caplog.records
        )
        caplog.clear()
    captured["exported files"] = "\n".join(path.read_text(errors="replace") for path in out.glob("*"))
    captured["backup copy"] = database_text(tmp_path / "copy.db")
    assert "backed up" in captured["backup"] and "pg_dump" in captured["postgres backup"]
    assert list(out.glob("*.csv")), captured["export"]

    assert "sendMessage" in captured["run log"] or "lesson" in captured["run log"]
    assert len(captured["run log"]) > 5_000, (
        "the DEBUG run logged next to nothing: the scan would prove little"
    )
    leaks = {where: secrets_in(text) for where, text in captured.items() if secrets_in(text)}
    assert not leaks, leaks


def test_secret_scan_finds_what_it_looks_for() -> None:
    assert secrets_in(f"POST /bot{TOKEN}/getMe")
    assert secrets_in(TOKEN.split(":")[1].upper()), "PTB upper-cases descriptions: the scan ignores case"
    assert not secrets_in("nothing secret here")


async def test_a_rejected_telegram_token_is_reported_without_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with TelegramEmulator(
        token=TOKEN, accept_any_token=False, limits=TelegramLimits(enabled=False)
    ) as emu:
        wrong = "111111111:AAWrong-Token-That-Must-Never-Leak_abcd"
        adapter = TelegramAdapter(
            TelegramSettings(
                token=SecretStr(wrong), api_base_url=emu.base_url, file_base_url=emu.file_base_url
            ),
            learner_commands=[],
            admin_commands=[],
        )
        with caplog.at_level(logging.DEBUG), pytest.raises(PlatformError) as raised:
            await adapter.start(_ignore)
        await adapter.stop()
    text = "".join(traceback.format_exception(raised.value)) + _bot_logs(caplog)
    assert "Unauthorized" in text or "rejected" in text.lower(), text[-2000:]
    assert wrong.lower() not in text.lower() and wrong.split(":")[1].lower() not in text.lower()


async def test_discord_failures_are_reported_without_the_token(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeDiscord()
    await fake.start()
    try:
        settings = DiscordSettings(token=SecretStr(DISCORD_TOKEN), api_base_url=fake.base_url)
        fake.fail("GET", r"/users/@me", 401, code=0, message="401: Unauthorized")
        with caplog.at_level(logging.DEBUG), pytest.raises(PlatformError) as refused:
            await DiscordAdapter(settings, gateway=False).start(_ignore)
        adapter = DiscordAdapter(settings, gateway=False)
        await adapter.start(_ignore)
        fake.add_user(4242, "lena")
        fake.fail("POST", r"/users/@me/channels", 500, message="boom", times=1)
        fake.fail("POST", r"/channels/\d+/messages", 502, message="bad gateway", times=1)
        errors: list[PlatformError] = []
        with caplog.at_level(logging.DEBUG):
            for _ in range(3):
                try:
                    await adapter.send("dm:4242", TextPart("hello"), idempotency_key="1.0")
                except PlatformError as error:
                    errors.append(error)
            await adapter.stop()
    finally:
        await fake.close()
    text = "".join(traceback.format_exception(refused.value)) + _bot_logs(caplog)
    text += "".join("".join(traceback.format_exception(error)) for error in errors)
    assert errors, "the injected failures did not happen"
    assert not secrets_in(text), secrets_in(text)


async def _ignore(_event: InboundEvent) -> Reply:
    return Reply(())


def _bot_logs(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured record but the emulators' own access logs (they play the platform's servers)."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(
        formatter.format(record) for record in caplog.records if not record.name.startswith("aiohttp.access")
    )
