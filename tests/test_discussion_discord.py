"""Lesson threads on Discord, through the real adapter and discord.py against the fake Discord REST API.

`ForumDiscord` extends the harness with what threads need: forum channels (a post opened by its starter
message), server roles and channel overwrites (for the rights check), pins, locking and message counts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord
import pytest
from aiohttp import web
from pydantic import SecretStr
from sqlmodel import Session, select

from adapters.discord import DiscordAdapter
from adapters.discord.adapter import discord_capabilities
from adapters.discord.forum import channel_permissions
from bot.admin import AdminPolicy, AdminTools
from bot.catalog import Catalog
from bot.content import Course
from bot.conversation import Conversation
from bot.db import Database
from bot.discussion import DiscussionService
from bot.discussion_admin import DiscussionAdminConversation, ThreadModeration
from bot.models import Delivery, DiscussionThread, Enrollment, EnrollmentStatus, Learner
from bot.ports import Capabilities
from bot.settings import DiscordSettings, SenderSettings
from scheduler.pacer import Pacer
from scheduler.sender import Sender
from tests.conftest import SAMPLE_COURSES
from tests.discord_harness.interactions import Learner as DiscordUser
from tests.discord_harness.interactions import Place, deliver, deliver_message, direct_message, slash_command
from tests.discord_harness.rest import BOT_ID, FakeDiscord, button_ids, text_of, user_payload
from tests.fakes import FakeClock

GUILD = 555_000_000_000_000_001
FORUM = 555_000_000_000_000_010
TEXT = 555_000_000_000_000_011
LOBBY = 555_000_000_000_000_012
BOT_ROLE = 555_000_000_000_000_020
COURSE = "async-learning"
FIRST = "your-own-clock"
NOW = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)
PROMPT = "Say hello! Where are you learning from"
ADA = DiscordUser(111_000_000_000_000_001, "ada", Place(LOBBY, GUILD))
INSTRUCTOR_ID = 111_000_000_000_000_009
P = discord.Permissions
EVERYONE_PERMISSIONS = P(view_channel=True, send_messages=True, read_message_history=True)
BOT_PERMISSIONS = P(
    create_public_threads=True, send_messages_in_threads=True, manage_threads=True, pin_messages=True
)
MISSING_PERMISSIONS = 50013


def _json(data: Any, status: int = 200) -> web.Response:
    # discord.py reads a body as JSON only when the content type is exactly application/json.
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"}
    )


def _error(status: int, code: int, message: str) -> web.Response:
    return _json({"message": message, "code": code}, status=status)


@dataclass
class ForumDiscord(FakeDiscord):
    """The harness's fake Discord with forum channels, roles, overwrites, pins, locks and message counts."""

    roles: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    member_roles: dict[tuple[int, int], list[str]] = field(default_factory=dict)
    pins: dict[int, list[int]] = field(default_factory=dict)
    refuse_threads: bool = False
    """Answer thread creation with 403 Missing Permissions (the bot lost the right since start-up)."""

    def add_server(self, guild_id: int) -> None:
        self.roles[guild_id] = [
            {"id": str(guild_id), "name": "@everyone", "permissions": str(EVERYONE_PERMISSIONS.value)},
            {"id": str(BOT_ROLE), "name": "dripcourse", "permissions": str(BOT_PERMISSIONS.value)},
        ]
        self.member_roles[(guild_id, BOT_ID)] = [str(BOT_ROLE)]

    def add_forum_channel(self, channel_id: int, guild_id: int) -> None:
        self.add_guild_channel(channel_id, guild_id)
        self.channels[channel_id] |= {"type": 15, "name": "lesson-talk"}

    def overwrite(self, channel_id: int, target: int, *, allow: P = P.none(), deny: P = P.none()) -> None:
        """A permission overwrite on the channel for a role (or member) id."""
        overwrites = self.channels[channel_id].setdefault("permission_overwrites", [])
        overwrites.append({"id": str(target), "type": 0, "allow": str(allow.value), "deny": str(deny.value)})

    def threads_created(self) -> list[dict[str, Any]]:
        return [request.body for request in self.calls("POST", r"/channels/\d+/threads")]

    def _routes(self) -> list[tuple[str, re.Pattern[str], Any]]:
        return [
            ("GET", re.compile(r"/channels/(\d+)"), self._get_channel),
            ("GET", re.compile(r"/guilds/(\d+)"), self._get_guild),
            ("GET", re.compile(r"/guilds/(\d+)/members/(\d+)"), self._get_member),
            ("POST", re.compile(r"/channels/(\d+)/threads"), self._create_thread_or_post),
            ("PATCH", re.compile(r"/channels/(\d+)"), self._edit_thread),
            ("PUT", re.compile(r"/channels/(\d+)/messages/pins/(\d+)"), self._pin),
            *super()._routes(),
        ]

    async def _get_channel(self, match: re.Match[str], body: Any, files: Any) -> web.Response:
        channel_id = int(match.group(1))
        channel = self.channels.get(channel_id)
        if channel is None:
            return _error(404, 10003, "Unknown Channel")
        if channel["type"] in (11, 12):
            messages = self.messages.get(channel_id, [])
            starter = 1 if messages and messages[0]["id"] == channel["id"] else 0
            channel = {**channel, "message_count": len(messages) - starter}
        return _json(channel)

    async def _get_guild(self, match: re.Match[str], body: Any, files: Any) -> web.Response:
        guild_id = int(match.group(1))
        if guild_id not in self.roles:
            return _error(404, 10004, "Unknown Guild")
        return _json(
            {"id": str(guild_id), "name": "Course server", "owner_id": "1", "roles": self.roles[guild_id]}
        )

    async def _get_member(self, match: re.Match[str], body: Any, files: Any) -> web.Response:
        key = (int(match.group(1)), int(match.group(2)))
        if key not in self.member_roles:
            return _error(404, 10007, "Unknown Member")
        return _json(
            {"user": user_payload(key[1], "member"), "roles": self.member_roles[key], "joined_at": None}
        )

    async def _create_thread_or_post(self, match: re.Match[str], body: Any, files: Any) -> web.StreamResponse:
        if self.refuse_threads:
            return _error(403, MISSING_PERMISSIONS, "Missing Permissions")
        parent_id = int(match.group(1))
        parent = self.channels.get(parent_id)
        if parent is None or parent["type"] != 15:
            return await self._create_thread(match, body, files)
        if not (body.get("message") or {}).get("content"):
            return _error(400, 50035, "Invalid Form Body: a forum post needs a message")
        response = await self._create_thread(match, {**body, "type": 11}, files)
        thread = self.threads()[-1]
        thread_id = int(thread["id"])
        starter = self._message(
            thread_id, body["message"], [], author=user_payload(BOT_ID, "dripcourse", bot=True)
        )
        starter["id"] = thread["id"]  # a forum post's starter message shares the thread's id
        self.messages.setdefault(thread_id, []).append(starter)
        assert response.status == 201
        return _json({**thread, "message": starter}, status=201)

    async def _edit_thread(self, match: re.Match[str], body: Any, files: Any) -> web.Response:
        channel = self.channels.get(int(match.group(1)))
        if channel is None:
            return _error(404, 10003, "Unknown Channel")
        metadata = channel.get("thread_metadata")
        if metadata is not None:
            for key in ("archived", "locked"):
                if key in body:
                    metadata[key] = bool(body[key])
        return _json(channel)

    async def _pin(self, match: re.Match[str], body: Any, files: Any) -> web.Response:
        channel_id, message_id = int(match.group(1)), int(match.group(2))
        if not any(int(message["id"]) == message_id for message in self.messages.get(channel_id, [])):
            return _error(404, 10008, "Unknown Message")
        self.pins.setdefault(channel_id, []).append(message_id)
        return web.Response(status=204)


@pytest.fixture
async def fake() -> AsyncIterator[ForumDiscord]:
    fake = ForumDiscord()
    await fake.start()
    fake.add_server(GUILD)
    fake.add_forum_channel(FORUM, GUILD)
    fake.add_guild_channel(TEXT, GUILD)
    fake.add_guild_channel(LOBBY, GUILD, {ADA.user_id})
    fake.add_user(ADA.user_id, ADA.name)
    fake.add_user(INSTRUCTOR_ID, "ina")
    yield fake
    await fake.close()


def course_in(channel_id: int, tmp_path: Path) -> Catalog:
    root = tmp_path / f"courses-{channel_id}"
    shutil.copytree(SAMPLE_COURSES / COURSE, root / COURSE)
    toml = root / COURSE / "course.toml"
    toml.write_text(
        toml.read_text() + f'\n[discussion]\ndiscord_channel_id = "{channel_id}"\n', encoding="utf-8"
    )
    catalog, problems = Catalog.load(root)
    assert COURSE in catalog, problems
    return catalog


def first_course(catalog: Catalog) -> Course:
    course = catalog.get(COURSE)
    assert course is not None
    return course


@pytest.fixture
async def adapters(fake: ForumDiscord) -> AsyncIterator[Callable[[], Any]]:
    """Starts Discord adapters (REST only) on the fake; all are stopped afterwards."""
    started: list[DiscordAdapter] = []

    async def start(on_event: Any = None) -> DiscordAdapter:
        settings = DiscordSettings(
            token=SecretStr("test-token"), api_base_url=fake.base_url, admins=[str(INSTRUCTOR_ID)]
        )
        adapter = DiscordAdapter(settings, gateway=False)
        await adapter.start(on_event or _no_events)
        started.append(adapter)
        return adapter

    yield start
    for adapter in reversed(started):
        await adapter.stop()


async def _no_events(event: Any) -> Any:
    raise AssertionError(f"no event expected: {event!r}")


# --- one thread per lesson, created once -----------------------------------------------------------


async def test_two_workers_open_one_forum_post_per_lesson_with_the_prompt_as_its_first_message(
    fake: ForumDiscord, adapters: Any, open_database: Callable[[], Database], tmp_path: Path
) -> None:
    course = first_course(course_in(FORUM, tmp_path))
    clock = FakeClock(NOW)
    workers = [
        DiscussionService(open_database(), {"discord": await adapters()}, clock, poll_seconds=0.01)
        for _ in range(2)
    ]
    links = await asyncio.gather(
        *(worker.discuss_url("discord", course, course.lessons[0]) for worker in workers for _ in range(4))
    )
    (created,) = fake.threads_created()
    assert created["name"] == "01 · Welcome, and a routine built around your own clock"
    assert PROMPT in created["message"]["content"]
    assert created["message"]["allowed_mentions"] == {"parse": []}
    (thread,) = fake.threads()
    assert set(links) == {f"https://discord.com/channels/{GUILD}/{thread['id']}"}
    assert [message["id"] for message in fake.sent_to(int(thread["id"]))] == [thread["id"]]  # no second post
    assert fake.pins == {}


async def test_in_a_text_channel_the_prompt_is_posted_in_a_public_thread_and_pinned(
    fake: ForumDiscord, adapters: Any, database: Database, tmp_path: Path
) -> None:
    course = first_course(course_in(TEXT, tmp_path))
    discussion = DiscussionService(database, {"discord": await adapters()}, FakeClock(NOW))
    link = await discussion.discuss_url("discord", course, course.lessons[1])
    (created,) = fake.threads_created()
    assert (created["name"], created["type"]) == ("02 · Choosing your time and your cadence", 11)
    (thread,) = fake.threads()
    assert link == f"https://discord.com/channels/{GUILD}/{thread['id']}"
    (prompt,) = fake.sent_to(int(thread["id"]))
    assert "Lesson 2 of 8" in prompt["content"] and "no spoilers" in prompt["content"]
    assert fake.pins == {int(thread["id"]): [int(prompt["id"])]}


async def test_the_learners_lesson_carries_the_discuss_link(
    fake: ForumDiscord, adapters: Any, database: Database, sqlite_engine: Any, tmp_path: Path
) -> None:
    catalog = course_in(FORUM, tmp_path)
    adapter = await adapters()
    clock = FakeClock(NOW)
    discussion = DiscussionService(database, {"discord": adapter}, clock)
    sender = Sender(
        database,
        catalog,
        {"discord": adapter},
        {"discord": Pacer("discord", 1000.0)},
        clock,
        SenderSettings(),
        discuss_url=discussion.lesson_link,
    )
    with Session(sqlite_engine) as session:
        learner = Learner(platform="discord", platform_user_id=str(ADA.user_id), chat_id=f"dm:{ADA.user_id}")
        session.add(learner)
        session.flush()
        enrollment = Enrollment(
            learner_id=learner.id or 0, course_slug=COURSE, status=EnrollmentStatus.ACTIVE
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
    assert await sender.drain_once() == 1  # the DM is opened first (the chat moves), then the lesson goes
    assert await sender.drain_once() == 0
    dm = fake.dm_channel_of(ADA.user_id)
    assert dm is not None
    (thread,) = fake.threads()
    buttons = [button for message in fake.sent_to(dm) for button in button_ids(message)]
    assert ("💬 Discuss", f"https://discord.com/channels/{GUILD}/{thread['id']}") in buttons
    with Session(sqlite_engine) as session:
        assert [row.lesson_slug for row in session.exec(select(DiscussionThread)).all()] == [FIRST]


# --- rights ----------------------------------------------------------------------------------------


def test_permissions_follow_discords_order_of_roles_and_overwrites() -> None:
    guild = {
        "id": "1",
        "owner_id": "9",
        "roles": [
            {"id": "1", "permissions": str(P(view_channel=True, send_messages=True).value)},
            {"id": "2", "permissions": str(P(manage_threads=True).value)},
        ],
    }
    everyone_denied = [{"id": "1", "allow": "0", "deny": str(P(send_messages=True).value)}]
    role_allowed = [*everyone_denied, {"id": "2", "allow": str(P(send_messages=True).value), "deny": "0"}]
    member_denied = [*role_allowed, {"id": "5", "allow": "0", "deny": str(P(manage_threads=True).value)}]
    seen = channel_permissions(user_id=5, guild=guild, member_roles=["2"], overwrites=[])
    assert seen.send_messages and seen.manage_threads and not seen.create_public_threads
    assert not channel_permissions(
        user_id=5, guild=guild, member_roles=["2"], overwrites=everyone_denied
    ).send_messages
    assert channel_permissions(
        user_id=5, guild=guild, member_roles=["2"], overwrites=role_allowed
    ).send_messages
    assert not channel_permissions(
        user_id=5, guild=guild, member_roles=["2"], overwrites=member_denied
    ).manage_threads
    assert channel_permissions(user_id=9, guild=guild, member_roles=[], overwrites=member_denied) == P.all()


@pytest.mark.parametrize(
    ("channel", "deny", "missing"),
    [
        (TEXT, P.none(), []),
        (FORUM, P.none(), []),
        (
            TEXT,
            P(create_public_threads=True),
            ["the Create Public Threads permission to create lesson threads"],
        ),
        (
            FORUM,
            P(manage_threads=True, send_messages_in_threads=True),
            [
                "the Send Messages in Threads permission to post each lesson's prompt",
                "the Manage Threads permission to close and reopen lesson threads",
            ],
        ),
        (TEXT, P(pin_messages=True), ["the Pin Messages permission to pin each thread's prompt"]),
    ],
)
async def test_the_adapter_names_each_permission_the_bot_lacks(
    fake: ForumDiscord, adapters: Any, channel: int, deny: P, missing: list[str]
) -> None:
    fake.overwrite(channel, BOT_ROLE, deny=deny)
    assert await (await adapters()).check_rights(str(channel)) == missing


async def test_start_up_check_and_refused_creation_say_clearly_what_is_missing(
    fake: ForumDiscord, adapters: Any, database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake.overwrite(TEXT, GUILD, deny=P(create_public_threads=True))
    fake.refuse_threads = True
    course = first_course(course_in(TEXT, tmp_path))
    unknown = first_course(course_in(999_000_000_000_000_999, tmp_path / "other"))
    discussion = DiscussionService(database, {"discord": await adapters()}, FakeClock(NOW))
    with caplog.at_level(logging.WARNING, logger="bot.discussion"):
        problems = await discussion.check_rights([course, unknown])
        assert await discussion.discuss_url("discord", course, course.lessons[0]) is None
    assert problems[0] == (
        f"discord channel {TEXT}: the bot needs the Create Public Threads permission to create lesson threads"
    )
    assert problems[1].startswith(
        "discord channel 999000000000000999: the bot needs to see the channel and be a member of its server"
    )
    assert "Missing Permissions" in caplog.text
    with database.session() as session:
        assert session.exec(select(DiscussionThread)).all() == []  # the claim was released


# --- in the server: ephemeral answers --------------------------------------------------------------


async def test_a_command_in_the_server_is_answered_ephemerally(
    fake: ForumDiscord, adapters: Any, database: Database, tmp_path: Path
) -> None:
    catalog = course_in(FORUM, tmp_path)
    conversation = Conversation(database, catalog, FakeClock(NOW), {"discord": discord_caps()})
    adapter = await adapters(conversation.handle)
    await deliver(adapter.client, slash_command(ADA, "progress"))
    (callback,) = fake.callbacks
    assert (callback["type"], callback["data"]["flags"]) == (5, 64)  # deferred, visible to Ada only
    (answer,) = fake.followups[ADA.tokens[-1]]
    assert answer["flags"] == 64
    assert fake.sent_to(LOBBY) == []  # nothing in the channel itself


def discord_caps() -> Capabilities:
    return discord_capabilities(False)


# --- moderation ------------------------------------------------------------------------------------


async def test_an_instructor_closes_reopens_reprompts_and_counts_a_lesson_thread_from_their_dm(
    fake: ForumDiscord, adapters: Any, database: Database, tmp_path: Path
) -> None:
    catalog = course_in(FORUM, tmp_path)
    course = first_course(catalog)
    clock = FakeClock(NOW)
    caps = {"discord": discord_caps()}
    tools = AdminTools(
        database, catalog, clock, AdminPolicy({"discord": [str(INSTRUCTOR_ID)]}), courses_root=tmp_path
    )

    async def handle(event: Any) -> Any:
        return await conversation.handle(event)

    adapter = await adapters(handle)
    discussion = DiscussionService(database, {"discord": adapter}, clock)
    moderation = ThreadModeration(tools, discussion, database, clock, caps)
    conversation = Conversation(
        database, catalog, clock, caps, admin=DiscussionAdminConversation(tools, caps, moderation)
    )
    await discussion.discuss_url("discord", course, course.lessons[0])
    (thread,) = fake.threads()
    thread_id = int(thread["id"])
    instructor = DiscordUser(INSTRUCTOR_ID, "ina", Place(777_000_000_000_000_001))
    fake.channels[777_000_000_000_000_001] = {
        "id": "777000000000000001",
        "type": 1,
        "recipients": [user_payload(INSTRUCTOR_ID, "ina")],
    }

    async def command(text: str) -> str:
        before = len(fake.sent_to(777_000_000_000_000_001))
        await deliver_message(adapter.client, direct_message(instructor, text))
        replies = fake.sent_to(777_000_000_000_000_001)[before:]
        return "\n".join(text_of(reply) for reply in replies)

    assert (await command(f"/thread close {COURSE} {FIRST}")).startswith("Closed 01 · Welcome")
    metadata = fake.channels[thread_id]["thread_metadata"]
    assert (metadata["archived"], metadata["locked"]) == (True, True)
    assert (await command(f"/thread reopen {COURSE} {FIRST}")).startswith("Reopened 01 · Welcome")
    assert (metadata["archived"], metadata["locked"]) == (False, False)
    assert (await command(f"/thread prompt {COURSE} {FIRST}")).startswith("Posted the prompt again in 01")
    reposted = fake.sent_to(thread_id)[-1]
    assert PROMPT in reposted["content"] and fake.pins == {thread_id: [int(reposted["id"])]}
    fake.messages[thread_id].append({**reposted, "id": "1", "content": "I learn from Lisbon"})
    listing = await command(f"/threads {COURSE}")
    assert "01 · Welcome, and a routine built around your own clock – discord, 2 message(s)" in listing
    assert f"https://discord.com/channels/{GUILD}/{thread_id}" in listing
