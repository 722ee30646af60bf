"""Lesson topics on Telegram, through the real adapter and python-telegram-bot against the Bot API emulator.

Two "workers" are two adapters, two services and two outbox senders on separate database engines: they
release the same lesson at once and Telegram sees exactly one createForumTopic. Group commands are
answered privately with a pointer in the same topic, within the group's 20 messages a minute.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlmodel import Session, select
from telegram import Message

from adapters.telegram import TelegramAdapter
from adapters.telegram.translate import BotIdentity, TelegramSender, message_to_event
from bot.catalog import Catalog
from bot.clock import SystemClock
from bot.db import Database, create_db_engine, upgrade
from bot.discussion import DiscussionService
from bot.models import Delivery, DeliveryStatus, DiscussionThread, Enrollment, EnrollmentStatus, Learner
from bot.ports import Command
from bot.settings import CoursesSettings, DatabaseSettings, SenderSettings, Settings, TelegramSettings
from dripcourse.app import App, platform_adapters
from scheduler.pacer import Pacer
from scheduler.sender import Sender
from tests.conftest import REPO_ROOT, SAMPLE_COURSES
from tests.emulators.telegram_bot_api import (
    ActionRecord,
    AdminRights,
    Fault,
    FaultKind,
    SentRecord,
    TelegramEmulator,
    TelegramLimits,
    TelegramUser,
)
from tests.fakes import FakeClock

FORUM = -1001234500001
COURSE = "async-learning"
FIRST = "your-own-clock"
ADA = TelegramUser(42, "Ada", username="ada")
BOB = TelegramUser(43, "Bob", username="bob")
CARL = TelegramUser(44, "Carl", username="carl")
INSTRUCTOR = TelegramUser(7, "Ina", username="ina")
NOW = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)
FULL_RIGHTS = AdminRights(can_manage_topics=True, can_pin_messages=True)
PROMPT = "Say hello! Where are you learning from"
USERS = [ADA, BOB, CARL, TelegramUser(45, "Dee"), TelegramUser(46, "Eve"), TelegramUser(47, "Fay")]


@pytest.fixture
def courses(tmp_path: Path) -> Path:
    """The sample course with its discussion in the emulated forum supergroup."""
    root = tmp_path / "courses"
    shutil.copytree(SAMPLE_COURSES / COURSE, root / COURSE)
    toml = root / COURSE / "course.toml"
    toml.write_text(toml.read_text() + f'\n[discussion]\ntelegram_chat_id = "{FORUM}"\n', encoding="utf-8")
    return root


@pytest.fixture
async def emu() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator(limits=TelegramLimits(enabled=False)) as emulator:
        emulator.add_group(FORUM, "Course forum", forum=True, bot_rights=FULL_RIGHTS)
        yield emulator


def telegram_settings(emu: TelegramEmulator, per_group_per_minute: float = 600) -> TelegramSettings:
    return TelegramSettings(
        token=SecretStr(emu.token),
        api_base_url=emu.base_url,
        file_base_url=emu.file_base_url,
        per_chat_per_second=30,
        per_group_per_minute=per_group_per_minute,
        admins=[str(INSTRUCTOR.id)],
    )


def adapter_for(emu: TelegramEmulator, per_group_per_minute: float = 600) -> TelegramAdapter:
    return TelegramAdapter(
        telegram_settings(emu, per_group_per_minute), learner_commands=[], admin_commands=[]
    )


def actions(emu: TelegramEmulator, method: str) -> list[ActionRecord]:
    return [action for action in emu.actions if action.method == method]


def topic_messages(emu: TelegramEmulator, thread_id: int) -> list[SentRecord]:
    return [record for record in emu.sent_to(FORUM) if record.message_thread_id == thread_id]


def link_buttons(records: list[SentRecord]) -> list[tuple[str, str]]:
    return [
        (button["text"], button["url"])
        for record in records
        for row in (record.reply_markup or {}).get("inline_keyboard", [])
        for button in row
        if "url" in button
    ]


# --- two workers, one topic ------------------------------------------------------------------------


def seed_lesson_deliveries(url: str, users: list[TelegramUser]) -> None:
    """Each user enrolled in the course with the first lesson released and waiting in the outbox."""
    engine = create_db_engine(url)
    with Session(engine) as session:
        for user in users:
            learner = Learner(platform="telegram", platform_user_id=str(user.id), chat_id=str(user.id))
            session.add(learner)
            session.flush()
            enrollment = Enrollment(
                learner_id=learner.id or 0,
                course_slug=COURSE,
                status=EnrollmentStatus.ACTIVE,
                last_lesson_slug=FIRST,
                lessons_released=1,
            )
            session.add(enrollment)
            session.flush()
            session.add(
                Delivery(
                    enrollment_id=enrollment.id or 0,
                    learner_id=learner.id or 0,
                    course_slug=COURSE,
                    lesson_slug=FIRST,
                    due_at=NOW,
                    next_attempt_at=NOW,
                )
            )
        session.commit()
    engine.dispose()


@dataclass
class Worker:
    database: Database
    adapter: TelegramAdapter
    discussion: DiscussionService
    sender: Sender


@pytest.fixture
async def two_workers(
    emu: TelegramEmulator, database_url: str, courses: Path
) -> AsyncIterator[Callable[[], list[Worker]]]:
    built: list[Worker] = []

    def build() -> list[Worker]:
        catalog, problems = Catalog.load(courses)
        assert not problems
        clock = FakeClock(NOW)
        for number in range(2):
            database = Database(create_db_engine(database_url))
            adapter = adapter_for(emu)
            discussion = DiscussionService(database, {"telegram": adapter}, clock, poll_seconds=0.02)
            sender = Sender(
                database,
                catalog,
                {"telegram": adapter},
                {"telegram": Pacer("telegram", 1000.0)},
                clock,
                SenderSettings(),
                worker_id=f"worker-{number}",
                discuss_url=discussion.lesson_link,
            )
            built.append(Worker(database, adapter, discussion, sender))
        return built

    yield build
    for worker in built:
        await worker.adapter.stop()
        worker.database.close()


def assert_one_topic_linked_for(emu: TelegramEmulator, users: list[TelegramUser], database_url: str) -> None:
    """One createForumTopic, its prompt posted and pinned, and every learner's lesson linking to it."""
    (created,) = actions(emu, "createForumTopic")
    assert created.params["name"] == "01 · Welcome, and a routine built around your own clock"
    thread_id = int(created.result["message_thread_id"])
    url = f"https://t.me/c/1234500001/{thread_id}"
    (prompt,) = topic_messages(emu, thread_id)
    assert PROMPT in (prompt.text or "") and "no spoilers" in (prompt.text or "")
    (pinned,) = actions(emu, "pinChatMessage")
    assert pinned.message_id == prompt.message_id
    for user in users:
        assert ("💬 Discuss", url) in link_buttons(emu.sent_to(user.id)), user.first_name
    engine = create_db_engine(database_url)
    with Session(engine) as session:
        (thread,) = session.exec(select(DiscussionThread)).all()
        statuses = {delivery.status for delivery in session.exec(select(Delivery)).all()}
    engine.dispose()
    assert (thread.lesson_slug, thread.thread_id, thread.url) == (FIRST, str(thread_id), url)
    assert statuses <= {DeliveryStatus.SENT, DeliveryStatus.PENDING}


async def test_two_workers_releasing_the_first_lesson_at_once_create_one_topic(
    emu: TelegramEmulator, database_url: str, two_workers: Callable[[], list[Worker]], courses: Path
) -> None:
    """Each worker asks for the link of the lesson it sends, all at once: one insert wins, the rest wait."""
    seed_lesson_deliveries(database_url, USERS)
    workers = two_workers()
    course = Catalog.load(courses)[0].get(COURSE)
    assert course is not None
    emu.faults.add(Fault(FaultKind.SLOW, method="createForumTopic", delay=0.3))
    links = await asyncio.gather(
        *(
            workers[enrollment % 2].discussion.lesson_link("telegram", course, course.lessons[0], enrollment)
            for enrollment in range(1, len(USERS) + 1)
        )
    )
    (created,) = actions(emu, "createForumTopic")
    assert set(links) == {f"https://t.me/c/1234500001/{created.result['message_thread_id']}"}
    assert len(emu.sent_to(FORUM)) == 1 and len(actions(emu, "pinChatMessage")) == 1


@pytest.mark.postgres
async def test_two_senders_on_postgres_release_the_lesson_at_once_and_link_the_one_topic(
    emu: TelegramEmulator, postgres_schema: str, courses: Path
) -> None:
    """The outbox senders of two workers, sharing one PostgreSQL, drain the same lesson concurrently."""
    engine = create_db_engine(postgres_schema)
    upgrade(engine)
    engine.dispose()
    seed_lesson_deliveries(postgres_schema, USERS)
    catalog, _ = Catalog.load(courses)
    clock = FakeClock(NOW)
    workers: list[Worker] = []
    for number in range(2):
        database = Database(create_db_engine(postgres_schema))
        adapter = adapter_for(emu)
        discussion = DiscussionService(database, {"telegram": adapter}, clock, poll_seconds=0.02)
        sender = Sender(
            database,
            catalog,
            {"telegram": adapter},
            {"telegram": Pacer("telegram", 1000.0)},
            clock,
            SenderSettings(in_flight=2),
            worker_id=f"worker-{number}",
            discuss_url=discussion.lesson_link,
        )
        workers.append(Worker(database, adapter, discussion, sender))
    emu.faults.add(Fault(FaultKind.SLOW, method="createForumTopic", delay=0.3))
    try:
        processed = await asyncio.gather(*(worker.sender.drain_once() for worker in workers))
    finally:
        for worker in workers:
            await worker.adapter.stop()
            worker.database.close()
    assert sum(processed) == len(USERS) and all(processed), processed
    assert_one_topic_linked_for(emu, USERS, postgres_schema)


async def test_the_sent_lesson_carries_the_discuss_link_to_its_topic(
    emu: TelegramEmulator, database_url: str, two_workers: Callable[[], list[Worker]]
) -> None:
    seed_lesson_deliveries(database_url, USERS[:3])
    first, second = two_workers()
    assert await first.sender.drain_once() == 3
    assert await second.sender.drain_once() == 0
    assert_one_topic_linked_for(emu, USERS[:3], database_url)


# --- two worker processes --------------------------------------------------------------------------


def wait_for_file(path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.005)


async def run_worker(url: str, api: str, token: str, courses: Path, ready: Path, go: Path) -> str | None:
    """One worker process: connect, say it is ready, wait for the go, then ask for lesson 1's link."""
    course = Catalog.load(courses)[0].get(COURSE)
    assert course is not None
    database = Database(create_db_engine(url))
    settings = TelegramSettings(
        token=SecretStr(token), api_base_url=f"{api}/bot", file_base_url=f"{api}/file/bot"
    )
    adapter = TelegramAdapter(settings, learner_commands=[], admin_commands=[])
    try:
        assert await adapter.check_rights(str(FORUM)) == []  # connected, the chat known
        discussion = DiscussionService(database, {"telegram": adapter}, SystemClock(), poll_seconds=0.02)
        await asyncio.to_thread(ready.touch)
        await asyncio.to_thread(wait_for_file, go)
        return await discussion.discuss_url("telegram", course, course.lessons[0])
    finally:
        await adapter.stop()
        database.close()


def worker_main(arguments: list[str]) -> None:
    url, api, token, courses, ready, go, out = arguments
    link = asyncio.run(run_worker(url, api, token, Path(courses), Path(ready), Path(go)))
    Path(out).write_text(link or "", encoding="utf-8")


@pytest.mark.postgres
@pytest.mark.slow
def test_two_worker_processes_on_postgres_create_the_topic_once(
    postgres_schema: str, courses: Path, tmp_path: Path
) -> None:
    """Real processes, each with its own connection pool and database engine, released at the same instant."""
    engine = create_db_engine(postgres_schema)
    upgrade(engine)
    engine.dispose()
    emulator = TelegramEmulator(limits=TelegramLimits(enabled=False))
    with emulator.run_in_thread() as served:
        served.call(emulator.add_group, FORUM, "Course forum", forum=True, bot_rights=FULL_RIGHTS)
        served.call(emulator.faults.add, Fault(FaultKind.SLOW, method="createForumTopic", delay=0.3))
        go = tmp_path / "go"
        outputs = [tmp_path / f"link-{number}" for number in range(2)]
        readies = [tmp_path / f"ready-{number}" for number in range(2)]
        api = f"http://{emulator.host}:{emulator.port}"
        module = "tests.test_discussion_telegram"
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", module, postgres_schema, api, emulator.token, *map(str, paths)],
                cwd=REPO_ROOT,
                env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            )
            for paths in zip([courses, courses], readies, [go, go], outputs, strict=True)
        ]
        try:
            for ready in readies:
                wait_for_file(ready)
            go.touch()
            assert [process.wait(60) for process in processes] == [0, 0]
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
        created = served.call(lambda: actions(emulator, "createForumTopic"))
        forum_messages = served.call(lambda: emulator.sent_to(FORUM))
    (topic,) = created
    links = {out.read_text(encoding="utf-8") for out in outputs}
    assert links == {f"https://t.me/c/1234500001/{topic.result['message_thread_id']}"}
    assert len(forum_messages) == 1


async def test_a_restarted_worker_reuses_the_recorded_topic(
    emu: TelegramEmulator, database_url: str, two_workers: Callable[[], list[Worker]], courses: Path
) -> None:
    first, second = two_workers()
    catalog, _ = Catalog.load(courses)
    course = catalog.get(COURSE)
    assert course is not None
    url = await first.discussion.discuss_url("telegram", course, course.lessons[0])
    assert url == await second.discussion.discuss_url("telegram", course, course.lessons[0])
    assert url is not None and url.startswith("https://t.me/c/1234500001/")
    assert len(actions(emu, "createForumTopic")) == 1


async def test_a_public_forum_links_topics_by_its_username(
    emu: TelegramEmulator, courses: Path, tmp_path: Path
) -> None:
    public = -1001234500002
    emu.add_group(public, "Public forum", forum=True, username="dripcourse_talk", bot_rights=FULL_RIGHTS)
    adapter = adapter_for(emu)
    try:
        created = await adapter.create_thread(str(public), "02 · Time and cadence", "ignored")
    finally:
        await adapter.stop()
    assert created.url == f"https://t.me/dripcourse_talk/{created.thread_id}"
    assert created.opening_posted is False


# --- rights ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("forum", "rights", "missing"),
    [
        (True, FULL_RIGHTS, []),
        (
            True,
            None,
            ["to be an admin with can_manage_topics to create lesson topics (and can_pin_messages)"],
        ),
        (
            True,
            AdminRights(can_manage_topics=False),
            ["the can_manage_topics admin right to create lesson topics"],
        ),
        (
            True,
            AdminRights(can_pin_messages=False),
            ["the can_pin_messages admin right to pin each topic's prompt"],
        ),
        (False, FULL_RIGHTS, ["the chat to be a forum supergroup (turn Topics on in the group's settings)"]),
    ],
)
async def test_the_adapter_names_each_right_the_bot_lacks(
    emu: TelegramEmulator, forum: bool, rights: AdminRights | None, missing: list[str]
) -> None:
    chat = -1001234500009
    emu.add_group(chat, "Discussion", supergroup=True, forum=forum, bot_rights=rights)
    adapter = adapter_for(emu)
    try:
        assert await adapter.check_rights(str(chat)) == missing
    finally:
        await adapter.stop()


async def test_a_chat_the_bot_is_not_in_is_named_too() -> None:
    async with TelegramEmulator(limits=TelegramLimits(enabled=False), strict_chats=True) as emulator:
        adapter = adapter_for(emulator)
        try:
            (missing,) = await adapter.check_rights("-1009999999999")
        finally:
            await adapter.stop()
    assert missing.startswith("to be added to the chat as an admin with can_manage_topics")


def app_settings(
    emu: TelegramEmulator, tmp_path: Path, courses: Path, per_group_per_minute: float = 600
) -> Settings:
    return Settings(
        database=DatabaseSettings(url=SecretStr(f"sqlite:///{tmp_path / 'app.db'}")),
        courses=CoursesSettings(path=courses),
        telegram=telegram_settings(emu, per_group_per_minute),
    )


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[App]:
    """The whole bot on the emulator, driven by hand (no scheduler, no send loop)."""
    app = await App.open(
        settings, clock=FakeClock(NOW), adapters=platform_adapters(settings), background=False
    )
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


async def test_start_up_says_clearly_when_the_bot_is_not_a_topic_admin(
    emu: TelegramEmulator, tmp_path: Path, courses: Path, caplog: pytest.LogCaptureFixture
) -> None:
    emu.set_bot_rights(FORUM, None)
    with caplog.at_level(logging.WARNING, logger="bot.discussion"):
        async with running_app(app_settings(emu, tmp_path, courses)) as app:
            course = app.catalog.get(COURSE)
            assert course is not None
            assert await app.discussion.discuss_url("telegram", course, course.lessons[0]) is None
    lines = [record.getMessage() for record in caplog.records if record.name == "bot.discussion"]
    assert lines[0] == (
        f"discussion threads of course {COURSE}: telegram chat {FORUM}: the bot needs to be an admin with"
        " can_manage_topics to create lesson topics (and can_pin_messages)"
    )
    assert "Not enough rights to create a topic" in lines[1]
    assert actions(emu, "createForumTopic") == []


# --- in the group: commands only, answered privately -----------------------------------------------


async def first_topic(app: App, emu: TelegramEmulator) -> int:
    course = app.catalog.get(COURSE)
    assert course is not None
    assert await app.discussion.discuss_url("telegram", course, course.lessons[0]) is not None
    (created,) = actions(emu, "createForumTopic")
    return int(created.result["message_thread_id"])


async def test_a_command_in_a_lesson_topic_is_answered_privately_with_a_pointer_in_that_topic(
    emu: TelegramEmulator, tmp_path: Path, courses: Path
) -> None:
    async with running_app(app_settings(emu, tmp_path, courses)) as app:
        thread_id = await first_topic(app, emu)
        emu.group_message(FORUM, ADA, "Hello everyone, learning from Lisbon!", message_thread_id=thread_id)
        emu.user_sends_command(ADA, "progress", chat_id=FORUM, message_thread_id=thread_id, mention=False)
        await emu.wait_for(lambda: len(topic_messages(emu, thread_id)) >= 2)
        emu.user_sends_command(
            BOB, "progress@some_other_bot", chat_id=FORUM, message_thread_id=thread_id, mention=False
        )
        emu.group_message(FORUM, BOB, "/help@some_other_bot", message_thread_id=thread_id)
        emu.user_sends_command(CARL, "courses", chat_id=FORUM, message_thread_id=thread_id)
        await emu.wait_for(lambda: len(topic_messages(emu, thread_id)) >= 3)
        await emu.wait_for(lambda: emu.sent_to(CARL.id))
    private = emu.sent_to(ADA.id)
    assert len(private) == 1, [record.text for record in private]
    prompt, to_ada, to_carl = topic_messages(emu, thread_id)
    assert PROMPT in (prompt.text or "")
    assert (to_ada.text or "").startswith("Ada, I have answered you in our private chat")
    assert link_buttons([to_ada]) == [("Open private chat", "https://t.me/dripcourse_bot")]
    assert (to_carl.text or "").startswith("Carl, I have answered you")
    assert emu.sent_to(BOB.id) == []  # commands for another bot are not ours
    assert [record for record in emu.sent_to(FORUM) if record.message_thread_id != thread_id] == []


async def test_group_pointers_keep_to_twenty_messages_a_minute(tmp_path: Path, courses: Path) -> None:
    """Every asker is answered privately; the group gets pointers only while its budget allows (3 s apart)."""
    askers = USERS[:4]
    async with TelegramEmulator() as emu:  # Telegram's flood limits on: a group takes one message per 3 s
        emu.add_group(FORUM, "Course forum", forum=True, bot_rights=FULL_RIGHTS)
        async with running_app(app_settings(emu, tmp_path, courses, per_group_per_minute=20)):
            for user in askers:
                emu.user_sends_command(user, "progress", chat_id=FORUM)
            await emu.wait_for(lambda: all(emu.sent_to(user.id) for user in askers))
            await emu.wait_for(lambda: len(emu.sent_to(FORUM)) >= 2, timeout=10)
            await asyncio.sleep(0.5)  # a third pointer would be on its way by now
        assert emu.count_429 == 0
        first, second = emu.sent_to(FORUM)
        assert second.received_at - first.received_at >= 2.9


def topic_update(text: str, *, reply_to: dict[str, Any], thread_id: int = 77) -> Message:
    user = {"id": ADA.id, "is_bot": False, "first_name": "Ada"}
    chat = {"id": FORUM, "type": "supergroup", "title": "Forum", "is_forum": True}
    payload = {
        "message_id": 90,
        "date": 1_770_000_000,
        "chat": chat,
        "from": user,
        "text": text,
        "message_thread_id": thread_id,
        "is_topic_message": True,
        "reply_to_message": {"message_id": thread_id, "date": 1_770_000_000, "chat": chat, **reply_to},
    }
    message = Message.de_json(payload, None)
    assert message is not None
    return message


def test_chatter_in_a_lesson_topic_is_not_mistaken_for_a_reply_to_the_bot() -> None:
    me = BotIdentity(1, "dripcourse_bot")
    bot_user = {"id": 1, "is_bot": True, "first_name": "Dripcourse", "username": "dripcourse_bot"}
    creation = {"from": bot_user, "forum_topic_created": {"name": "01 · Intro", "icon_color": 7322096}}
    assert message_to_event(topic_update("I learn at 6am", reply_to=creation), me) is None
    to_prompt = topic_update("I learn at 6am, before work", reply_to={"from": bot_user, "text": "Say hello!"})
    assert message_to_event(to_prompt, me) is None
    command = message_to_event(topic_update("/progress", reply_to=creation), me)
    assert isinstance(command, Command) and isinstance(command.sender, TelegramSender)
    assert (command.sender.group_thread_id, command.sender.group_chat_id) == ("77", str(FORUM))
    assert command.sender.chat_id == str(ADA.id)


# --- moderation from the instructor's private chat -------------------------------------------------


async def test_an_instructor_closes_reopens_reprompts_and_lists_lesson_topics(
    emu: TelegramEmulator, tmp_path: Path, courses: Path
) -> None:
    async with running_app(app_settings(emu, tmp_path, courses)) as app:
        thread_id = await first_topic(app, emu)

        async def command(text: str) -> str:
            before = len(emu.sent_to(INSTRUCTOR.id))
            name, _, payload = text.partition(" ")
            emu.user_sends_command(INSTRUCTOR, name, payload or None)
            await emu.wait_for(lambda: len(emu.sent_to(INSTRUCTOR.id)) > before)
            return emu.sent_to(INSTRUCTOR.id)[-1].text or ""

        assert await command(f"thread close {COURSE} {FIRST}") == (
            "Closed 01 · Welcome, and a routine built around your own clock (telegram)."
        )
        (closed,) = actions(emu, "closeForumTopic")
        assert closed.params["message_thread_id"] in (thread_id, str(thread_id))
        assert (await command(f"thread close {COURSE} {FIRST}")).startswith("Closed")  # already closed: fine
        assert (await command(f"thread reopen {COURSE} {FIRST}")).startswith("Reopened 01 · Welcome")
        assert len(actions(emu, "reopenForumTopic")) == 1
        assert (await command(f"thread prompt {COURSE} {FIRST}")).startswith("Posted the prompt again in 01")
        prompts = topic_messages(emu, thread_id)
        assert len(prompts) == 2 and all(PROMPT in (record.text or "") for record in prompts)
        assert [action.message_id for action in actions(emu, "pinChatMessage")] == [
            record.message_id for record in prompts
        ]
        listing = await command(f"threads {COURSE}")
        assert (
            "01 · Welcome, and a routine built around your own clock – telegram, telegram does not" in listing
        )
        assert f"https://t.me/c/1234500001/{thread_id}" in listing
        assert "no spoilers" not in listing and "⚠️" not in listing
        refused_before = len(emu.sent_to(ADA.id))
        emu.user_sends_command(ADA, "thread", f"close {COURSE} {FIRST}")
        await emu.wait_for(lambda: len(emu.sent_to(ADA.id)) > refused_before)
        assert emu.sent_to(ADA.id)[-1].text == "Sorry, that command is for the course's instructors."
        assert len(actions(emu, "closeForumTopic")) == 1


if __name__ == "__main__":
    worker_main(sys.argv[1:])
