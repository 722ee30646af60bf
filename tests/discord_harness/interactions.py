"""Gateway events as Discord delivers them, fed through discord.py's own connection state.

No fake gateway: `deliver` hands an INTERACTION_CREATE payload to `ConnectionState.parse_interaction_create`
(and `deliver_message` a MESSAGE_CREATE to `parse_message_create`), exactly what the gateway reader does,
then waits until discord.py's handler tasks have finished. Their answers go to the fake REST server.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

import discord

from tests.discord_harness.rest import APPLICATION_ID, user_payload

_HANDLER_TASKS = ("CommandTree-invoker", "discord.py: on_interaction", "discord.py: on_message")
_ids = itertools.count(800_000_000_000_000_000)


@dataclass(frozen=True)
class Place:
    """Where a user acts: a server channel (guild_id set) or the user's DM with the bot."""

    channel_id: int
    guild_id: int | None = None


@dataclass
class Learner:
    user_id: int
    name: str
    place: Place
    locale: str = "en-US"
    tokens: list[str] = field(default_factory=list)
    """The token of each interaction this learner made, newest last (followups are found by it)."""


def _base(
    learner: Learner, kind: int, data: dict[str, Any], message: dict[str, Any] | None
) -> dict[str, Any]:
    token = f"token-{next(_ids)}"
    learner.tokens.append(token)
    user = user_payload(learner.user_id, learner.name)
    payload: dict[str, Any] = {
        "id": str(next(_ids)),
        "application_id": str(APPLICATION_ID),
        "type": kind,
        "data": data,
        "token": token,
        "version": 1,
        "locale": learner.locale,
        "app_permissions": "0",
        "entitlements": [],
        "attachment_size_limit": 10 * 1024 * 1024,
        "authorizing_integration_owners": {},
    }
    place = learner.place
    if place.guild_id is not None:
        payload |= {
            "guild_id": str(place.guild_id),
            "guild_locale": "en-US",
            "context": 0,
            "channel_id": str(place.channel_id),
            "channel": {
                "id": str(place.channel_id),
                "type": 0,
                "guild_id": str(place.guild_id),
                "name": "lessons",
                "position": 0,
                "permission_overwrites": [],
            },
            "member": {
                "user": user,
                "roles": [],
                "joined_at": "2026-01-01T00:00:00+00:00",
                "deaf": False,
                "mute": False,
                "flags": 0,
                "permissions": "0",
            },
        }
    else:
        payload |= {
            "context": 1,
            "channel_id": str(place.channel_id),
            "channel": {"id": str(place.channel_id), "type": 1, "recipients": [user]},
            "user": user,
        }
    if message is not None:
        payload["message"] = message
    return payload


def slash_command(learner: Learner, name: str, **options: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(next(_ids)),
        "name": name,
        "type": 1,
        "options": [{"name": key, "type": 3, "value": value} for key, value in options.items()],
    }
    if learner.place.guild_id is not None:
        data["guild_id"] = str(learner.place.guild_id)
    return _base(learner, 2, data, None)


def autocomplete(learner: Learner, name: str, option: str, typed: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(next(_ids)),
        "name": name,
        "type": 1,
        "options": [{"name": option, "type": 3, "value": typed, "focused": True}],
    }
    if learner.place.guild_id is not None:
        data["guild_id"] = str(learner.place.guild_id)
    return _base(learner, 4, data, None)


def button_press(learner: Learner, custom_id: str, message: dict[str, Any]) -> dict[str, Any]:
    return _base(learner, 3, {"custom_id": custom_id, "component_type": 2}, message)


async def deliver(client: discord.Client, payload: dict[str, Any]) -> None:
    """Hand one INTERACTION_CREATE to discord.py and wait for its handlers to finish."""
    client._connection.parse_interaction_create(payload)  # type: ignore[arg-type]
    await settle()


async def settle() -> None:
    """Wait until discord.py's command and event handler tasks have all finished."""
    for _ in range(100):
        pending = [
            task
            for task in asyncio.all_tasks()
            if task.get_name().startswith(_HANDLER_TASKS)
            and not task.done()
            and task is not asyncio.current_task()
        ]
        if not pending:
            return
        await asyncio.wait(pending, timeout=10)
    raise AssertionError("discord.py handlers kept spawning tasks")


def direct_message(learner: Learner, text: str) -> dict[str, Any]:
    """A MESSAGE_CREATE for text the learner typed in their DM with the bot (`learner.place`)."""
    return {
        "id": str(next(_ids)),
        "channel_id": str(learner.place.channel_id),
        "type": 0,
        "author": user_payload(learner.user_id, learner.name),
        "content": text,
        "timestamp": "2026-03-02T06:00:00+00:00",
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": False,
        "flags": 0,
    }


async def deliver_message(client: discord.Client, payload: dict[str, Any]) -> None:
    """Hand one MESSAGE_CREATE to discord.py and wait for its handlers to finish."""
    client._connection.parse_message_create(payload)  # type: ignore[arg-type]
    await settle()
