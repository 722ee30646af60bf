"""The Discord adapter's real client driven in-process by dpytest, with the real core on a real database.

A learner types commands in their DM with the bot and dpytest checks the replies; a lesson with an
attached file is released and sent, buttons on it are pressed, a slash command is invoked, a reaction is
ignored and a lesson thread is created, each through a shim where dpytest 0.7.0 falls short.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import discord
import discord.ext.test as dpytest
import pytest
from pydantic import SecretStr
from sqlmodel import select

from adapters.discord import DiscordAdapter
from bot.catalog import Catalog
from bot.conversation import Conversation
from bot.db import Database
from bot.models import Delivery
from bot.settings import DiscordSettings, SenderSettings
from scheduler.pacer import discord_pacer
from scheduler.planner import release_due
from scheduler.sender import Sender
from tests.conftest import SAMPLE_COURSES
from tests.discord_harness.dpytest_shims import (
    Dpytest,
    add_reaction,
    install,
    press_button,
    slash_command,
)
from tests.fakes import FakeClock
from tests.test_pacer import VirtualTime

COURSE = "async-learning"


class DpytestAdapter(DiscordAdapter):
    """The real adapter, whose freshly built client is handed to dpytest before it logs in."""

    world: Dpytest | None = None

    def _build_client(self) -> discord.Client:
        client = super()._build_client()
        self.world = install(client)
        return client


@dataclass
class Bot:
    adapter: DpytestAdapter
    world: Dpytest
    sender: Sender
    database: Database
    catalog: Catalog
    clock: FakeClock

    async def release_and_send(self) -> int:
        await asyncio.to_thread(release_due, self.database.engine, self.catalog, self.clock.now())
        return await self.sender.drain_once()


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """dpytest writes each attachment it receives to ./dpytest_N.dat: keep them out of the repository."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
async def bot(database: Database, clock: FakeClock, in_tmp: Path) -> AsyncIterator[Bot]:
    catalog, problems = Catalog.load(SAMPLE_COURSES)
    assert COURSE in catalog, problems
    virtual = VirtualTime()
    settings = DiscordSettings(token=SecretStr("dpytest-token"), sync_global=True)
    adapter = DpytestAdapter(
        settings, courses_root=SAMPLE_COURSES, gateway=False, monotonic=virtual.monotonic, sleep=virtual.sleep
    )
    conversation = Conversation(database, catalog, clock, {"discord": adapter.capabilities})
    await adapter.start(conversation.handle)
    assert adapter.world is not None
    sender = Sender(
        database,
        catalog,
        {"discord": adapter},
        {"discord": discord_pacer(settings, monotonic=virtual.monotonic, sleep=virtual.sleep)},
        clock,
        SenderSettings(),
        worker_id="dpytest",
    )
    yield Bot(adapter, adapter.world, sender, database, catalog, clock)
    await adapter.stop()
    await dpytest.empty_queue()
    adapter.world.uninstall()


CHIME = SAMPLE_COURSES / COURSE / "media" / "session-chime.wav"
CAPTION = "A three-second chime. Play it when you sit down to study, and let it become your cue."


def queued() -> int:
    return dpytest.runner.sent_queue.qsize()


async def learner_in_dm(bot: Bot) -> tuple[discord.User, discord.DMChannel]:
    member = bot.world.config.members[0]
    user = bot.adapter.client.get_user(member.id)
    assert user is not None
    return user, await user.create_dm()


async def enrol_by_typing(user: discord.User, dm: discord.DMChannel) -> None:
    """The whole onboarding as text typed in the DM, each answer checked as dpytest sees it."""
    await dpytest.message(f"/start {COURSE}", channel=dm, member=user)
    assert dpytest.verify().message().contains().content("First, which time zone are you in?")
    await dpytest.message("Europe/Berlin", channel=dm, member=user)
    assert dpytest.verify().message().contains().content("Time zone set: Europe/Berlin")
    await dpytest.message("08:00", channel=dm, member=user)
    assert dpytest.verify().message().contains().content("Lessons will arrive at 08:00, your time.")
    await dpytest.message("daily", channel=dm, member=user)
    assert dpytest.verify().message().contains().content("You're all set: daily at 08:00 (Europe/Berlin).")
    assert dpytest.verify().message().nothing()


async def test_a_learner_enrols_and_asks_by_typing_in_the_dm(bot: Bot) -> None:
    user, dm = await learner_in_dm(bot)
    await dpytest.message("/progress", channel=dm, member=user)
    assert dpytest.verify().message().content("You are not taking a course yet. Send /courses to pick one.")

    await enrol_by_typing(user, dm)
    await dpytest.message("/progress", channel=dm, member=user)
    assert dpytest.verify().message().contains().content("Learning on your own clock: lesson 0 of 8.")
    await dpytest.message("/help", channel=dm, member=user)
    help_text = dpytest.get_message()
    assert help_text.content.startswith("Here is what I understand:")
    assert "/progress – where you are" in help_text.content
    assert help_text.channel.id == dm.id
    assert dpytest.verify().message().nothing()


async def test_a_lesson_with_a_file_arrives_whole_and_its_buttons_work(bot: Bot) -> None:
    user, dm = await learner_in_dm(bot)
    await enrol_by_typing(user, dm)

    assert await bot.release_and_send() == 1
    heading = dpytest.get_message()
    assert [embed.title for embed in heading.embeds] == [
        "Lesson 1 of 8 · Welcome, and a routine built around your own clock"
    ]
    while queued() > 1:
        body = dpytest.get_message()
        assert body.channel.id == dm.id and not body.attachments
    # The caption travels with the file; without the shim dpytest records this message with no text.
    assert dpytest.verify().message().peek().content(CAPTION).attachment(CHIME)
    with_file = dpytest.get_message()
    assert [attachment.filename for attachment in with_file.attachments] == ["session-chime.wav"]
    buttons = [child for row in with_file.components for child in getattr(row, "children", [])]
    assert [(button.label, button.custom_id) for button in buttons] == [
        ("✅ Done", "done:1"),
        ("➡️ Next lesson", "next:1"),
    ]

    token = await press_button(bot.world, user, with_file, "✅ Done")
    [callback] = bot.world.recorded.callbacks
    assert callback["type"] == 5  # deferred at once, then answered by a followup
    assert not (callback.get("data") or {}).get("flags")  # in the learner's own DM: not ephemeral
    assert dpytest.verify().message().peek().content("Marked as done. Well done!")
    assert [message.id for message in bot.world.recorded.followups[token]] == [dpytest.get_message().id]
    assert not bot.world.recorded.ephemeral
    with bot.database.session() as session:
        assert session.exec(select(Delivery)).one().done_at is not None

    await add_reaction(user, with_file, "👍")
    assert [(str(reaction.emoji), reaction.count) for reaction in with_file.reactions] == [("👍", 1)]
    assert dpytest.verify().message().nothing()  # a reaction is not a command


async def test_slash_commands_are_synced_and_invoked(bot: Bot) -> None:
    synced = bot.world.recorded.commands[None]
    assert {command["name"] for command in synced} >= {
        "enroll",
        "timezone",
        "time",
        "pace",
        "progress",
        "help",
    }
    user, dm = await learner_in_dm(bot)
    await enrol_by_typing(user, dm)

    token = await slash_command(bot.world, user, dm, "progress")
    assert dpytest.verify().message().contains().content("Learning on your own clock: lesson 0 of 8.")
    assert len(bot.world.recorded.followups[token]) == 1

    member = bot.world.config.members[1]
    lessons = bot.world.config.channels[0]
    assert isinstance(lessons, discord.TextChannel)
    await slash_command(bot.world, member, lessons, "help")
    reply = dpytest.get_message()
    assert reply.content.startswith("Here is what I understand:")
    assert reply.id in bot.world.recorded.ephemeral  # in a server only the member sees the answer


async def test_a_lesson_thread_is_created_and_its_prompt_pinned(bot: Bot) -> None:
    lessons = bot.world.config.channels[0]
    created = await bot.adapter.create_thread(str(lessons.id), "Lesson 1 · Welcome", "Say hello!")
    [thread] = bot.world.recorded.threads
    assert (created.thread_id, thread.name, thread.parent_id) == (
        str(thread.id),
        "Lesson 1 · Welcome",
        lessons.id,
    )
    assert created.url == f"https://discord.com/channels/{lessons.guild.id}/{thread.id}"
    assert not created.opening_posted  # in a text channel the prompt is posted next

    message_id = await bot.adapter.post(str(lessons.id), created.thread_id, "Say hello!", pin=True)
    assert dpytest.verify().message().peek().content("Say hello!")
    prompt = dpytest.get_message()
    assert (prompt.channel.id, str(prompt.id), prompt.pinned) == (thread.id, message_id, True)
