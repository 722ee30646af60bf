"""Instructor slash commands on Discord: published for managers only, refused and audited for anyone
else, and run for a member who holds the configured admin role; the whole app, discord.py talking to a
fake Discord REST API on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import discord
import pytest
from pydantic import SecretStr
from sqlmodel import Session, col, select

from adapters.discord import DiscordAdapter
from adapters.discord.commands import INSTRUCTOR_COMMANDS
from bot.admin import REFUSAL
from bot.admin_conversation import ADMIN_COMMANDS
from bot.discussion_admin import THREAD_COMMANDS
from bot.markup import escape_user_text
from bot.models import AdminAction
from bot.ports import Markup
from bot.settings import CoursesSettings, DatabaseSettings, DiscordSettings, Settings
from dripcourse.app import App
from tests.conftest import SAMPLE_COURSES
from tests.discord_harness.interactions import Learner, Place, deliver, slash_command
from tests.discord_harness.rest import FakeDiscord, text_of
from tests.fakes import FakeClock

GUILD = 556_000_000_000_000_001
LOBBY = 556_000_000_000_000_002
INSTRUCTOR_ROLE = 556_000_000_000_000_003
HELPER_ROLE = 556_000_000_000_000_004
ROLE_NAME = "Instructors"
COURSE = "async-learning"
MANAGE_GUILD = discord.Permissions(manage_guild=True).value


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord()
    await fake.start()
    fake.add_guild_channel(LOBBY, GUILD)
    yield fake
    await fake.close()


@pytest.fixture
async def app(fake_discord: FakeDiscord, tmp_path: Path, clock: FakeClock) -> AsyncIterator[App]:
    discord_settings = DiscordSettings(
        token=SecretStr("admin-test-token"),
        api_base_url=fake_discord.base_url,
        guild_ids=[GUILD],
        admin_role=ROLE_NAME,
    )
    settings = Settings(
        database=DatabaseSettings(url=SecretStr(f"sqlite:///{tmp_path / 'admin.db'}")),
        courses=CoursesSettings(path=SAMPLE_COURSES),
        discord=discord_settings,
    )
    adapter = DiscordAdapter(discord_settings, courses_root=SAMPLE_COURSES, gateway=False)
    opened = await App.open(settings, clock=clock, adapters={"discord": adapter}, background=False)
    await opened.start()
    # What the gateway sends when the bot joins: the server's roles, so role names can be read.
    adapter.client._connection.parse_guild_create(guild_create())
    yield opened
    await opened.stop()


def guild_create() -> dict[str, Any]:
    def role(role_id: int, name: str, position: int) -> dict[str, Any]:
        return {
            "id": str(role_id),
            "name": name,
            "permissions": "0",
            "position": position,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }

    return {
        "id": str(GUILD),
        "name": "School",
        "owner_id": "1",
        "roles": [
            role(GUILD, "@everyone", 0),
            role(INSTRUCTOR_ROLE, ROLE_NAME, 1),
            role(HELPER_ROLE, "Helpers", 2),
        ],
        "emojis": [],
        "stickers": [],
        "features": [],
        "channels": [
            {"id": str(LOBBY), "type": 0, "name": "lobby", "position": 0, "permission_overwrites": []}
        ],
        "threads": [],
        "members": [],
        "presences": [],
        "voice_states": [],
        "member_count": 3,
        "unavailable": False,
        "large": False,
        "joined_at": "2026-01-01T00:00:00+00:00",
    }


async def run(
    app: App, fake: FakeDiscord, member: Learner, name: str, roles: list[int], **options: str
) -> list[dict[str, Any]]:
    """A slash command from `member` holding `roles` in the server; the followups it got."""
    payload = slash_command(member, name, **options)
    payload["member"]["roles"] = [str(role) for role in roles]
    adapter = app.adapters["discord"]
    assert isinstance(adapter, DiscordAdapter)
    await deliver(adapter.client, payload)
    return fake.followups.get(member.tokens[-1], [])


def audit_rows(app: App) -> list[AdminAction]:
    with Session(app.database.engine) as session:
        return list(session.exec(select(AdminAction).order_by(col(AdminAction.id))).all())


async def test_instructor_commands_are_published_for_managers_only(
    app: App, fake_discord: FakeDiscord
) -> None:
    published = {command["name"]: command for command in fake_discord.commands[str(GUILD)]}
    instructor = [name for name, _ in (*ADMIN_COMMANDS, *THREAD_COMMANDS)]
    assert [name for name, _ in INSTRUCTOR_COMMANDS] == instructor
    for name in instructor:
        command = published[name]
        assert int(command["default_member_permissions"]) == MANAGE_GUILD, name
        assert command["contexts"] == [0], name  # servers only: a DM cannot hide a command
        assert [option["name"] for option in command["options"]] == ["arguments"]
        assert command["options"][0]["required"] is False
    for name in ("enroll", "timezone", "progress", "help"):
        assert published[name]["default_member_permissions"] is None, name


async def test_an_instructor_command_from_a_member_is_refused_and_audited(
    app: App, fake_discord: FakeDiscord
) -> None:
    mallory = Learner(700_000_000_000_000_001, "mallory", Place(LOBBY, GUILD))
    [refused] = await run(app, fake_discord, mallory, "stats", [HELPER_ROLE], arguments=COURSE)
    assert text_of(refused) == escape_user_text(REFUSAL, Markup.DISCORD_MARKDOWN)
    assert refused["flags"] == 64  # only Mallory sees it
    assert refused["attachments"] == []
    [closing] = await run(
        app, fake_discord, mallory, "thread", [], arguments=f"close {COURSE} your-own-clock"
    )
    assert text_of(closing) == escape_user_text(REFUSAL, Markup.DISCORD_MARKDOWN)

    rows = audit_rows(app)
    assert [(row.platform, row.user_id, row.action, row.allowed, row.outcome) for row in rows] == [
        ("discord", str(mallory.user_id), "stats", False, "refused"),
        ("discord", str(mallory.user_id), "thread", False, "refused"),
    ]
    assert rows[0].arguments == COURSE


async def test_an_instructor_with_the_admin_role_runs_one(app: App, fake_discord: FakeDiscord) -> None:
    ines = Learner(700_000_000_000_000_002, "ines", Place(LOBBY, GUILD))
    [summary, chart] = await run(
        app, fake_discord, ines, "stats", [HELPER_ROLE, INSTRUCTOR_ROLE], arguments=f"  {COURSE} "
    )
    assert "Learning on your own clock" in text_of(summary)
    assert [attachment["filename"] for attachment in chart["attachments"]] == [f"funnel-{COURSE}.png"]
    assert summary["flags"] == chart["flags"] == 64
    [row] = audit_rows(app)
    assert (row.user_id, row.action, row.allowed, row.outcome) == (str(ines.user_id), "stats", True, "ok")
    assert fake_discord.callbacks[-1]["type"] == 5  # deferred before the core worked
