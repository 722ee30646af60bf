"""What dpytest 0.7.0 needs to drive the Discord adapter's real client under discord.py 2.7.1.

`install(client)` runs `dpytest.configure(client)` and then swaps in `ShimmedHttp`, dpytest's fake HTTP
client with the gaps filled, and an interaction webhook that turns interaction answers into messages
dpytest sees. `press_button`, `slash_command` and `add_reaction` simulate what dpytest cannot.
Each shim's comment names the dpytest 0.7.0 / discord.py 2.7.1 breakage it works around.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from contextvars import Token
from dataclasses import dataclass, field
from typing import Any

import discord
import discord.ext.test as dpytest
from discord.ext.test import backend, factories
from discord.ext.test.runner import sent_queue
from discord.http import MultipartParameters, Route
from discord.webhook.async_ import AsyncWebhookAdapter, async_context

from tests.discord_harness.interactions import settle

EPHEMERAL = 64
_CALLBACK = re.compile(r"/interactions/(\d+)/([^/?]+)/callback")
_FOLLOWUP = re.compile(r"/webhooks/\d+/([^/?]+)$")
_ids = itertools.count(900_000_000_000_000_000)


@dataclass
class Recorded:
    """What the shims saw that dpytest keeps nowhere: synced commands, interaction callbacks, threads."""

    commands: dict[int | None, list[dict[str, Any]]] = field(default_factory=dict)
    """Synced command payloads by server id (None: global)."""
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    followups: dict[str, list[discord.Message]] = field(default_factory=dict)
    """Interaction token -> the followup messages it got, in order."""
    ephemeral: set[int] = field(default_factory=set)
    """Ids of followup messages only their user can see."""
    threads: list[discord.Thread] = field(default_factory=list)
    channels_by_token: dict[str, discord.abc.Messageable] = field(default_factory=dict)


class ShimmedHttp(backend.FakeHttp):
    """dpytest's FakeHttp with the requests the adapter makes that it does not handle."""

    recorded: Recorded

    # dpytest has no login: FakeHttp.request raises NotImplementedError for GET /users/@me.
    async def static_login(self, token: str) -> Any:
        user = self.state.user
        assert user is not None
        return {**factories.dict_from_user(user), "bot": True, "global_name": None}  # type: ignore[arg-type]

    # dpytest does not support tree.sync(): bulk command upserts reach FakeHttp.request (NotImplementedError).
    async def bulk_upsert_global_commands(self, application_id: int | str, payload: list[Any]) -> Any:
        return self._synced(None, payload)

    async def bulk_upsert_guild_commands(
        self, application_id: int | str, guild_id: int | str, payload: list[Any]
    ) -> Any:
        return self._synced(int(guild_id), payload)

    def _synced(self, guild_id: int | None, payload: list[Any]) -> list[dict[str, Any]]:
        self.recorded.commands[guild_id] = list(payload)
        assert self.state.application_id is not None
        synced = []
        for command in payload:
            entry = {**command, "id": str(next(_ids)), "application_id": str(self.state.application_id)}
            entry.setdefault("description", "")
            entry["version"] = "1"
            if guild_id is not None:
                entry["guild_id"] = str(guild_id)
            synced.append(entry)
        return synced

    # FakeHttp finds the recipient in its caller's frame (`self` of User.create_dm); a direct call has none.
    async def start_private_message(self, user_id: int | str) -> Any:
        user = self.state.get_user(int(user_id))
        if user is None:
            raise discord.NotFound(backend.FakeRequest(404, "Not Found"), "Unknown User")
        channel = user.dm_channel
        if channel is not None:
            return {"id": str(channel.id), "type": 1, "recipients": [factories.dict_from_user(user)]}
        return factories.make_dm_channel_dict(user)

    async def send_message(self, channel_id: int | str, *, params: MultipartParameters) -> Any:
        # FakeHttp.send_message reads the channel from its caller's `channel` local (only Messageable.send has
        # one), so the channel is resolved here, in the caller's frame it looks at.
        channel = self._resolve(int(channel_id))
        # With files, discord.py 2.7.1 moves the JSON payload into multipart `payload_json` and sets `payload`
        # to None: dpytest then drops the text, embeds and nonce sent together with the file.
        restored = _with_payload(params)
        data = await backend.FakeHttp.send_message(self, int(channel_id), params=restored)
        # dpytest has no message components: it stores no buttons, so they are put on the message here.
        return self._attach_components(channel, data, (restored.payload or {}).get("components") or [])

    def _attach_components(
        self, channel: discord.abc.Messageable, data: dict[str, Any], components: list[dict[str, Any]]
    ) -> dict[str, Any]:
        message = self.state._get_message(int(data["id"]))
        if message is not None:
            message.components = [
                component
                for component in (discord.components._component_factory(raw) for raw in components)  # type: ignore[arg-type]
                if component is not None
            ]
        stored = _stored(_channel_id(channel))
        for entry in stored:
            if int(entry["id"]) == int(data["id"]):
                entry["components"] = components
        return {**data, "components": components, "channel_id": str(_channel_id(channel))}

    def _resolve(self, channel_id: int) -> discord.abc.Messageable:
        state = self.state
        private = state._get_private_channel(channel_id)
        if isinstance(private, discord.DMChannel):
            return private
        for guild in state.guilds:
            found = guild.get_channel_or_thread(channel_id)
            if isinstance(found, discord.abc.Messageable):
                return found
        raise discord.NotFound(backend.FakeRequest(404, "Not Found"), "Unknown Channel")

    # dpytest raises NotImplementedError for thread creation (POST /channels/{id}/threads).
    async def start_thread_without_message(
        self,
        channel_id: int | str,
        *,
        name: str,
        auto_archive_duration: int,
        type: int,
        invitable: bool = True,
        rate_limit_per_user: int | None = None,
        reason: str | None = None,
    ) -> Any:
        parent = self._resolve(int(channel_id))
        assert isinstance(parent, discord.TextChannel), "threads start in a text channel"
        data: dict[str, Any] = {
            "id": str(next(_ids)),
            "type": type,
            "guild_id": str(parent.guild.id),
            "parent_id": str(parent.id),
            "owner_id": str(self.state.self_id),
            "name": name,
            "message_count": 0,
            "member_count": 1,
            "rate_limit_per_user": rate_limit_per_user or 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": auto_archive_duration,
                "archive_timestamp": discord.utils.utcnow().isoformat(),
                "locked": False,
                "invitable": invitable,
            },
        }
        self.state.parse_thread_create(data)  # type: ignore[arg-type]
        thread = parent.guild.get_thread(int(data["id"]))
        assert thread is not None
        self.recorded.threads.append(thread)
        return data

    # dpytest's pin_message only dispatches CHANNEL_PINS_UPDATE: the message itself never becomes pinned.
    async def pin_message(
        self, channel_id: int | str, message_id: int | str, reason: str | None = None
    ) -> None:
        message = self.state._get_message(int(message_id))
        if message is not None:
            message.pinned = True


def _channel_id(channel: discord.abc.Messageable) -> int:
    return int(channel.id)  # type: ignore[attr-defined]


def _stored(channel_id: int) -> list[dict[str, Any]]:
    """The message payloads dpytest keeps for a channel (the ones its own fetches answer with)."""
    config: Any = backend._cur_config
    return config.messages.get(channel_id, []) if config is not None else []


def _with_payload(params: MultipartParameters) -> MultipartParameters:
    if params.payload is not None or not params.multipart:
        return params
    for part in params.multipart:
        if part.get("name") == "payload_json":
            return MultipartParameters(json.loads(part["value"]), params.multipart, params.files)
    return params


class InteractionWebhooks(AsyncWebhookAdapter):
    """Interaction callbacks and followups, which go to Discord's webhook endpoints and not through the
    client's HTTP client, so dpytest never sees them: each followup becomes a message in the interaction's
    channel, in dpytest's sent queue."""

    def __init__(self, state: Any, recorded: Recorded) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._state = state
        self._recorded = recorded

    async def request(self, route: Route, session: Any, **kwargs: Any) -> Any:
        params = MultipartParameters(
            kwargs.get("payload"), kwargs.get("multipart") or [], kwargs.get("files")
        )
        payload = _with_payload(params).payload or {}
        path = route.path
        if route.method == "POST" and (callback := _CALLBACK.search(route.url)):
            self._recorded.callbacks.append({"token": callback.group(2), **payload})
            flags = (payload.get("data") or {}).get("flags", 0)
            return {
                "interaction": {
                    "id": callback.group(1),
                    "type": 2,
                    "response_message_loading": payload.get("type") == 5,
                    "response_message_ephemeral": bool(flags & EPHEMERAL),
                }
            }
        if route.method == "POST" and (followup := _FOLLOWUP.search(route.url)):
            return await self._followup(followup.group(1), payload, kwargs.get("files") or [])
        if route.method == "DELETE":
            return None
        raise NotImplementedError(f"no interaction shim for {route.method} {path}")

    async def _followup(self, token: str, payload: dict[str, Any], files: list[discord.File]) -> Any:
        channel: Any = self._recorded.channels_by_token[token]
        embeds = [discord.Embed.from_dict(embed) for embed in payload.get("embeds") or []]
        attachments = [
            discord.Attachment(
                state=self._state,
                data=factories.make_attachment_dict(file.filename or "file", 0, "", ""),  # type: ignore[arg-type]
            )
            for file in files
        ]
        message = backend.make_message(
            payload.get("content") or "",
            self._state.user,
            channel,
            embeds=embeds,
            attachments=attachments,
        )
        components = payload.get("components") or []
        message.components = [
            component
            for component in (discord.components._component_factory(raw) for raw in components)
            if component is not None
        ]
        if payload.get("flags", 0) & EPHEMERAL:
            self._recorded.ephemeral.add(message.id)
        self._recorded.followups.setdefault(token, []).append(message)
        await sent_queue.put(message)
        data = factories.make_message_dict(channel, self._state.user, message.id, content=message.content)
        data["timestamp"] = message.created_at.isoformat()
        data["components"] = components
        data["embeds"] = payload.get("embeds") or []
        data["flags"] = payload.get("flags", 0)
        data["webhook_id"] = str(self._state.application_id)
        return data


@dataclass
class Dpytest:
    """The configured dpytest world and what the shims recorded."""

    client: discord.Client
    recorded: Recorded
    webhooks: Token[AsyncWebhookAdapter]

    @property
    def config(self) -> dpytest.RunnerConfig:
        return dpytest.get_config()

    def uninstall(self) -> None:
        """Put discord.py's own interaction webhook adapter back."""
        try:
            async_context.reset(self.webhooks)
        except ValueError:  # reset from another context than the one that installed it
            async_context.set(AsyncWebhookAdapter())  # type: ignore[no-untyped-call]


def install(client: discord.Client) -> Dpytest:
    """`dpytest.configure(client)` with the shims in place; call it from the task that drives the test."""
    # dpytest builds its guilds through discord.py's user and member caches, which discord.py 2.7.1 leaves
    # off without the members intent (the adapter asks for none): turn them on for the fake state.
    client._connection._intents.members = True
    client._connection.member_cache_flags = discord.MemberCacheFlags.from_intents(client._connection._intents)
    dpytest.configure(client, guilds=1, text_channels=["lessons", "discussion"], voice_channels=0, members=2)
    state = backend.get_state()
    recorded = Recorded()
    http = ShimmedHttp(loop=asyncio.get_running_loop())
    http.state = state
    http.recorded = recorded
    client.http = http
    state.http = http
    # dpytest's FakeWebSocket has no socket: Client.close would raise reading `ws.open`.
    client.ws = None  # type: ignore[assignment]
    webhooks = async_context.set(InteractionWebhooks(state, recorded))
    return Dpytest(client, recorded, webhooks)


# --- events dpytest cannot make ------------------------------------------------------------------


def _interaction(
    world: Dpytest, user: discord.abc.User, channel: discord.abc.Messageable, kind: int, data: dict[str, Any]
) -> dict[str, Any]:
    token = f"token-{next(_ids)}"
    world.recorded.channels_by_token[token] = channel
    state = backend.get_state()
    user_data = {**factories.dict_from_user(user), "global_name": None}  # type: ignore[arg-type]
    payload: dict[str, Any] = {
        "id": str(next(_ids)),
        "application_id": str(state.application_id),
        "type": kind,
        "data": data,
        "token": token,
        "version": 1,
        "locale": "en-US",
        "app_permissions": "0",
        "entitlements": [],
        "attachment_size_limit": 10 * 1024 * 1024,
        "authorizing_integration_owners": {},
        "channel_id": str(_channel_id(channel)),
    }
    if isinstance(channel, discord.DMChannel):
        payload |= {
            "context": 1,
            "channel": {"id": str(channel.id), "type": 1, "recipients": [user_data]},
            "user": user_data,
        }
    else:
        assert isinstance(channel, discord.abc.GuildChannel | discord.Thread)
        assert isinstance(user, discord.Member)
        payload |= {
            "context": 0,
            "guild_id": str(channel.guild.id),
            "guild_locale": "en-US",
            "channel": {"id": str(channel.id), "type": channel.type.value, "guild_id": str(channel.guild.id)},
            "member": {
                "user": user_data,
                "roles": [str(role.id) for role in user.roles if role != channel.guild.default_role],
                "joined_at": "2026-01-01T00:00:00+00:00",
                "deaf": False,
                "mute": False,
                "flags": 0,
                "permissions": str(user.guild_permissions.value),
            },
        }
    return payload


async def press_button(world: Dpytest, user: discord.abc.User, message: discord.Message, label: str) -> str:
    """Press the button labelled `label` on `message`; the interaction token (its followups are by it).

    dpytest has no message components, so the press is fed to discord.py as Discord's INTERACTION_CREATE.
    """
    buttons = {
        child.label: child.custom_id
        for row in message.components
        if isinstance(row, discord.ActionRow)
        for child in row.children
        if isinstance(child, discord.Button)
    }
    custom_id = buttons.get(label)
    assert custom_id, f"no button {label!r} on the message; it has {sorted(map(str, buttons))}"
    raw_message = next(entry for entry in _stored(message.channel.id) if int(entry["id"]) == message.id)
    wire_message = {
        **raw_message,
        "id": str(message.id),
        "channel_id": str(message.channel.id),
        "timestamp": message.created_at.isoformat(),
        "author": {**raw_message["author"], "id": str(raw_message["author"]["id"])},
    }
    payload = _interaction(world, user, message.channel, 3, {"custom_id": custom_id, "component_type": 2}) | {
        "message": wire_message
    }
    backend.get_state().parse_interaction_create(payload)  # type: ignore[arg-type]
    await settle()
    return str(payload["token"])


async def slash_command(
    world: Dpytest, user: discord.abc.User, channel: discord.abc.Messageable, name: str, **options: str
) -> str:
    """Invoke slash command `name` as Discord would; the interaction token (dpytest cannot invoke one)."""
    data: dict[str, Any] = {
        "id": str(next(_ids)),
        "name": name,
        "type": 1,
        "options": [{"name": key, "type": 3, "value": value} for key, value in options.items()],
    }
    payload = _interaction(world, user, channel, 2, data)
    backend.get_state().parse_interaction_create(payload)  # type: ignore[arg-type]
    await settle()
    return str(payload["token"])


async def add_reaction(user: discord.abc.User, message: discord.Message, emoji: str) -> None:
    """A reaction, as MESSAGE_REACTION_ADD carries it in discord.py 2.7.1.

    dpytest.add_reaction's payload has no `type` (normal or burst), and discord.py 2.7.1 raises
    `KeyError: 'type'` reading it.
    """
    data: dict[str, Any] = {
        "message_id": str(message.id),
        "channel_id": str(message.channel.id),
        "user_id": str(user.id),
        "emoji": {"id": None, "name": emoji},
        "type": 0,
        "burst": False,
        "burst_colors": [],
        "message_author_id": str(message.author.id),
    }
    if message.guild is not None:
        data["guild_id"] = str(message.guild.id)
    backend.get_state().parse_message_reaction_add(data)  # type: ignore[arg-type]
    await dpytest.run_all_events()
