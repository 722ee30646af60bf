"""A learner's whole course on Discord: the real core, a real SQLite database, a moved clock, the real
planner and sender, and discord.py talking to a fake Discord REST API on loopback."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import SecretStr
from sqlmodel import select

from adapters.discord import DiscordAdapter
from bot.catalog import Catalog
from bot.conversation import Conversation
from bot.db import Database
from bot.models import Delivery, DeliveryStatus, Enrollment, EnrollmentStatus
from bot.models import Learner as LearnerRow
from bot.settings import DiscordSettings, SenderSettings
from scheduler.pacer import discord_pacer
from scheduler.planner import release_due
from scheduler.sender import Sender
from tests.conftest import SAMPLE_COURSES
from tests.discord_harness.interactions import Learner, Place, button_press, deliver, slash_command
from tests.discord_harness.rest import FakeDiscord, button_ids, text_of
from tests.fakes import FakeClock
from tests.test_pacer import VirtualTime

GUILD = 555_000_000_000_000_001
LOBBY = 555_000_000_000_000_002
FALLBACK = 555_000_000_000_000_003
COURSE = "async-learning"


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord()
    await fake.start()
    fake.add_guild_channel(LOBBY, GUILD)
    fake.add_guild_channel(FALLBACK, GUILD)
    yield fake
    await fake.close()


@pytest.fixture
def catalog() -> Catalog:
    loaded, problems = Catalog.load(SAMPLE_COURSES)
    assert COURSE in loaded, problems
    return loaded


@dataclass
class RunningBot:
    """One process's worth of the Discord side: adapter, conversation and sender on one database."""

    adapter: DiscordAdapter
    sender: Sender
    fake: FakeDiscord
    database: Database
    catalog: Catalog
    clock: FakeClock

    async def say(self, learner: Learner, command: str, **options: str) -> list[dict[str, Any]]:
        """Run a slash command; the followups it got."""
        await deliver(self.adapter.client, slash_command(learner, command, **options))
        return self.fake.followups.get(learner.tokens[-1], [])

    async def press(self, learner: Learner, label: str, message: dict[str, Any]) -> list[dict[str, Any]]:
        """Press the button labelled `label` on `message`; the followups it got."""
        matching = [custom_id for text, custom_id in button_ids(message) if text == label]
        assert matching, f"no button {label!r} on the message; it has {button_ids(message)}"
        await deliver(self.adapter.client, button_press(learner, matching[0], message))
        return self.fake.followups.get(learner.tokens[-1], [])

    async def release_and_send(self) -> int:
        """Run the planner at the clock's time, then drain the outbox once; how many deliveries were sent."""
        await asyncio.to_thread(release_due, self.database.engine, self.catalog, self.clock.now())
        return await self.sender.drain_once()

    async def stop(self) -> None:
        await self.adapter.stop()


@pytest.fixture
async def running() -> AsyncIterator[list[RunningBot]]:
    """Every bot a test starts; each is stopped afterwards, even when the test fails."""
    bots: list[RunningBot] = []
    yield bots
    for bot in bots:
        await bot.stop()


async def start_bot(
    fake: FakeDiscord,
    database: Database,
    catalog: Catalog,
    clock: FakeClock,
    virtual: VirtualTime,
    running: list[RunningBot],
) -> RunningBot:
    settings = DiscordSettings(
        token=SecretStr("test-token"),
        api_base_url=fake.base_url,
        guild_ids=[GUILD],
        fallback_channel_id=FALLBACK,
    )
    adapter = DiscordAdapter(
        settings, courses_root=SAMPLE_COURSES, gateway=False, monotonic=virtual.monotonic, sleep=virtual.sleep
    )
    conversation = Conversation(database, catalog, clock, {"discord": adapter.capabilities})
    await adapter.start(conversation.handle)
    sender = Sender(
        database,
        catalog,
        {"discord": adapter},
        {"discord": discord_pacer(settings, monotonic=virtual.monotonic, sleep=virtual.sleep)},
        clock,
        SenderSettings(),
        worker_id="discord-flow",
    )
    bot = RunningBot(adapter, sender, fake, database, catalog, clock)
    running.append(bot)
    return bot


async def onboard(bot: RunningBot, learner: Learner) -> None:
    """/enroll, /timezone, then the time and pace buttons, as a learner in a server would."""
    [welcome] = await bot.say(learner, "enroll", course=COURSE)
    assert "which time zone" in text_of(welcome).lower()
    [ask_time] = await bot.say(learner, "timezone", zone="Europe/Berlin")
    assert "Time zone set" in text_of(ask_time)
    [ask_pace] = await bot.press(learner, "08:00", ask_time)
    assert "How often" in text_of(ask_pace)
    [all_set] = await bot.press(learner, "Every day", ask_pace)
    assert "You're all set" in text_of(all_set)
    assert "Lesson 1: right now" in text_of(all_set)


def learner_row(database: Database, user_id: int) -> LearnerRow:
    with database.session() as session:
        row = session.exec(select(LearnerRow).where(LearnerRow.platform_user_id == str(user_id))).one()
        session.expunge(row)
        return row


def enrollment_row(database: Database, learner_id: int) -> Enrollment:
    with database.session() as session:
        row = session.exec(select(Enrollment).where(Enrollment.learner_id == learner_id)).one()
        session.expunge(row)
        return row


def lesson_titles(messages: list[dict[str, Any]]) -> list[str]:
    return [embed["title"] for message in messages for embed in message["embeds"] if embed.get("title")]


async def bot_with_learner(
    fake: FakeDiscord,
    database: Database,
    catalog: Catalog,
    clock: FakeClock,
    running: list[RunningBot],
    learner: Learner,
) -> tuple[RunningBot, VirtualTime]:
    """A running bot on the fake Discord API that already knows `learner`'s account, and its virtual time."""
    virtual = VirtualTime()
    fake.clock = virtual.monotonic
    fake.add_user(learner.user_id, learner.name)
    return await start_bot(fake, database, catalog, clock, virtual, running), virtual


async def test_a_learner_takes_the_course_from_enroll_to_stop(
    fake_discord: FakeDiscord,
    database: Database,
    catalog: Catalog,
    clock: FakeClock,
    running: list[RunningBot],
) -> None:
    ada = Learner(111_000_000_000_000_001, "ada", Place(LOBBY, GUILD))
    bot, virtual = await bot_with_learner(fake_discord, database, catalog, clock, running, ada)

    assert {command["name"] for command in fake_discord.commands[str(GUILD)]} >= {
        "enroll", "timezone", "time", "pace", "schedule", "progress", "pause", "resume", "next", "repeat",
        "stop", "help",
    }  # fmt: skip
    await onboard(bot, ada)
    # Every interaction was deferred (ephemeral, in a server) before its answer arrived as a followup.
    assert [callback["type"] for callback in fake_discord.callbacks] == [5, 5, 5, 5]
    assert all(callback["data"]["flags"] == 64 for callback in fake_discord.callbacks)

    # Lesson 1 is due at once: the DM is opened, remembered, and the lesson arrives there.
    assert await bot.release_and_send() == 1
    dm = fake_discord.dm_channel_of(ada.user_id)
    assert dm is not None
    assert len(fake_discord.calls("POST", r"/users/@me/channels")) == 1
    learner = learner_row(database, ada.user_id)
    assert learner.chat_id == f"dm:{ada.user_id}:{dm}"
    lesson_one = fake_discord.sent_to(dm)
    assert lesson_titles(lesson_one) == ["Lesson 1 of 8 · Welcome, and a routine built around your own clock"]
    assert any(
        attachment["filename"] == "session-chime.wav" for m in lesson_one for attachment in m["attachments"]
    )
    assert [label for label, _ in button_ids(lesson_one[-1])] == ["✅ Done", "➡️ Next lesson"]
    sends = fake_discord.calls("POST", rf"/channels/{dm}/messages")
    assert all(
        request.body["enforce_nonce"] is True and len(request.body["nonce"]) <= 25 for request in sends
    )
    assert len({request.body["nonce"] for request in sends}) == len(sends)

    # The clock moves a day: lesson 2 with its quiz as buttons, at 08:00 Berlin time.
    clock.at = dt.datetime(2026, 3, 3, 7, 0, tzinfo=dt.UTC)
    assert await bot.release_and_send() == 1
    lesson_two = fake_discord.sent_to(dm)[len(lesson_one) :]
    assert lesson_titles(lesson_two) == ["Lesson 2 of 8 · Choosing your time and your cadence"]
    [quiz] = [message for message in lesson_two if "❓" in message["content"]]
    assert [label for label, _ in button_ids(quiz)] == ["1", "2", "3", "4"]

    # A restart: a new client and a new core on the same database. The old quiz buttons still work.
    await bot.stop()
    bot = await start_bot(fake_discord, database, catalog, clock, virtual, running)
    ada_in_dm = Learner(ada.user_id, ada.name, Place(dm))
    [feedback] = await bot.press(ada_in_dm, "2", quiz)
    assert "✅ Right!" in text_of(feedback)
    assert "beats willpower and cramming" in text_of(feedback)
    assert feedback["flags"] == 0  # in the learner's own DM the answer stays visible
    with database.session() as session:
        delivery_two = session.exec(select(Delivery).where(Delivery.lesson_slug == "time-and-cadence")).one()
        assert delivery_two.status is DeliveryStatus.SENT

    clock.at = dt.datetime(2026, 3, 4, 7, 0, tzinfo=dt.UTC)
    assert await bot.release_and_send() == 1
    assert lesson_titles(fake_discord.sent_to(dm)) == [
        "Lesson 1 of 8 · Welcome, and a routine built around your own clock",
        "Lesson 2 of 8 · Choosing your time and your cadence",
        "Lesson 3 of 8 · Staying motivated without a live class",
    ]
    assert len(fake_discord.calls("POST", r"/users/@me/channels")) == 1  # the DM was opened once, ever

    [paused] = await bot.say(ada, "pause")
    assert "Paused" in text_of(paused)
    assert enrollment_row(database, learner.id or 0).status is EnrollmentStatus.PAUSED
    clock.at = dt.datetime(2026, 3, 5, 7, 0, tzinfo=dt.UTC)
    assert await bot.release_and_send() == 0

    [resumed] = await bot.say(ada, "resume")
    assert "Welcome back" in text_of(resumed)
    assert enrollment_row(database, learner.id or 0).status is EnrollmentStatus.ACTIVE

    [confirm] = await bot.say(ada, "stop")
    assert [label for label, _ in button_ids(confirm)] == ["Yes, leave the course", "No, keep going"]
    [left] = await bot.press(ada, "Yes, leave the course", confirm)
    assert "You have left" in text_of(left)
    assert enrollment_row(database, learner.id or 0).status is EnrollmentStatus.STOPPED
    assert all(followup["flags"] == 64 for token in ada.tokens for followup in fake_discord.followups[token])


async def test_a_learner_with_closed_dms_gets_lessons_in_a_private_thread(
    fake_discord: FakeDiscord,
    database: Database,
    catalog: Catalog,
    clock: FakeClock,
    running: list[RunningBot],
) -> None:
    virtual = VirtualTime()
    ben = Learner(111_000_000_000_000_002, "ben", Place(LOBBY, GUILD))
    fake_discord.add_user(ben.user_id, ben.name)
    fake_discord.members[GUILD].add(ben.user_id)
    fake_discord.dms_closed.add(ben.user_id)
    bot = await start_bot(fake_discord, database, catalog, clock, virtual, running)
    await onboard(bot, ben)

    assert await bot.release_and_send() == 1
    [thread] = fake_discord.threads()
    thread_id = int(thread["id"])
    assert thread["type"] == 12  # private
    assert thread["invitable"] is False
    assert thread["parent_id"] == str(FALLBACK)
    assert ben.user_id in fake_discord.thread_members[thread_id]
    assert learner_row(database, ben.user_id).chat_id == f"thread:{ben.user_id}:{thread_id}"
    notice, *lesson_one = fake_discord.sent_to(thread_id)
    assert notice["content"].startswith(f"<@{ben.user_id}> I could not send you a direct message")
    assert [str(user) for user in notice["allowed_mentions"]["users"]] == [str(ben.user_id)]
    assert lesson_titles(lesson_one) == ["Lesson 1 of 8 · Welcome, and a routine built around your own clock"]
    dm = fake_discord.dm_channel_of(ben.user_id)
    assert dm is not None
    assert fake_discord.sent_to(dm) == []

    # The next lesson goes straight to the thread: no second thread, no second notice.
    clock.at = dt.datetime(2026, 3, 3, 7, 0, tzinfo=dt.UTC)
    assert await bot.release_and_send() == 1
    assert len(fake_discord.threads()) == 1
    in_thread = fake_discord.sent_to(thread_id)
    assert sum("could not send you a direct message" in m["content"] for m in in_thread) == 1
    assert "Lesson 2 of 8 · Choosing your time and your cadence" in lesson_titles(in_thread)

    # Answering the quiz inside the server thread: the explanation is shown to the learner only.
    [quiz] = [message for message in in_thread if "❓" in message["content"]]
    ben_in_thread = Learner(ben.user_id, ben.name, Place(thread_id, GUILD))
    [feedback] = await bot.press(ben_in_thread, "1", quiz)
    assert "Not quite" in text_of(feedback)
    assert feedback["flags"] == 64
    assert fake_discord.callbacks[-1]["data"]["flags"] == 64


async def test_a_learner_gets_their_data_and_has_it_deleted_by_slash_command(
    fake_discord: FakeDiscord,
    database: Database,
    catalog: Catalog,
    clock: FakeClock,
    running: list[RunningBot],
) -> None:
    ada = Learner(111_000_000_000_000_003, "ada", Place(LOBBY, GUILD))
    bot, _virtual = await bot_with_learner(fake_discord, database, catalog, clock, running, ada)
    await onboard(bot, ada)
    learner_id = learner_row(database, ada.user_id).id

    answers = await bot.say(ada, "mydata")
    files = [attachment["filename"] for answer in answers for attachment in answer["attachments"]]
    assert files == ["my-data.json"]
    assert all(answer["flags"] == 64 for answer in answers)  # personal data: only the learner sees it

    [question] = await bot.say(ada, "forgetme")
    assert [label for label, _ in button_ids(question)] == ["Yes, delete my data", "No, keep it"]
    [kept] = await bot.press(ada, "No, keep it", question)
    assert "Nothing was deleted" in text_of(kept)
    assert enrollment_row(database, learner_id or 0).status is EnrollmentStatus.ACTIVE

    [deleted] = await bot.press(ada, "Yes, delete my data", question)
    assert "deleted everything" in text_of(deleted)
    with database.session() as session:
        assert session.exec(select(LearnerRow).where(LearnerRow.id == learner_id)).first() is None
        assert session.exec(select(Enrollment).where(Enrollment.learner_id == learner_id)).first() is None
