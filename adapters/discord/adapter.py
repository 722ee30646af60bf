"""The Discord `ChatAdapter`: discord.py hosted in the application's own event loop.

Inbound: slash commands, button presses (any custom_id, also on messages sent before a restart) and
text typed in the bot's DM become neutral events. Each interaction is deferred before the core runs and
answered with followups; in a server every answer is ephemeral (the defer decides that before the core
has answered). Outbound (`outbound`): lessons go over REST to the learner's DM, or to a private thread in
`fallback_channel_id` when Discord refuses the DM; chat ids are described in `translate`. The sender
paces requests globally; discord.py keeps its per-route buckets and waits out short 429s itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import discord
from discord.http import Route
from discord.utils import MISSING

from adapters.discord.choices import CourseChoices, time_choices, zone_choices
from adapters.discord.commands import build_command_tree
from adapters.discord.dm_pacing import DmOpenPacer, Monotonic, Sleep
from adapters.discord.errors import classify
from adapters.discord.forum import DiscordThreads
from adapters.discord.materialize import embed_of, open_files, size_of, view_of
from adapters.discord.outbound import CallFailed, Outbound, rate_limit_trace
from adapters.discord.translate import (
    MAX_THREAD_NAME,
    AdminRule,
    MediaLinks,
    Origin,
    OutgoingMessage,
    SlashCommand,
    command_event,
    component_event,
    direct_message_event,
    instructor_event,
    parse_chat_id,
    part_messages,
    sender_for,
)
from bot.capabilities import DISCORD
from bot.discussion import CreatedThread
from bot.ports import (
    Capabilities,
    InboundEvent,
    InboundHandler,
    OutboundPart,
    PermanentError,
    PlatformError,
    Reply,
    Sender,
    SentMessage,
    TextPart,
    TransientError,
)
from bot.settings import DiscordSettings

log = logging.getLogger(__name__)

LINKED_MEDIA_BYTES = 2**40
"""With `media_base_url` any file can be sent: what is too large to attach goes as a link."""
MAX_INLINE_RATE_LIMIT_WAIT = 30.0
"""Shorter 429s discord.py waits out on the route; longer ones come back to the sender as RetryAfter."""

DISCORD_API_BASE = Route.BASE
"""discord.py's own API address; `api_base_url` replaces it process-wide (one Discord API per process)."""


def discord_capabilities(media_links: bool) -> Capabilities:
    """Discord's limits; with a media base URL, files over the attachment limit are sent as links."""
    if media_links:
        return dataclasses.replace(
            DISCORD, max_upload_bytes=LINKED_MEDIA_BYTES, max_photo_bytes=LINKED_MEDIA_BYTES
        )
    return DISCORD


class DiscordAdapter:
    """A `ChatAdapter` for one Discord application."""

    def __init__(
        self,
        settings: DiscordSettings,
        *,
        courses_root: Path | None = None,
        gateway: bool = True,
        request_timeout: float = 60.0,
        monotonic: Monotonic = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """`gateway=False` logs in over REST only (no events arrive but those handed to the client's
        connection state): for tests and one-off sends."""
        if settings.token is None:
            raise ValueError("discord.token is not set (DRIPCOURSE_DISCORD_TOKEN)")
        self._settings = settings
        self._token = settings.token.get_secret_value()
        self._gateway = gateway
        self._request_timeout = request_timeout
        self._capabilities = discord_capabilities(bool(settings.media_base_url))
        self._media_links = MediaLinks(settings.media_base_url, courses_root)
        self._course_choices = CourseChoices(courses_root)
        self._admins = AdminRule(
            frozenset(settings.admins), settings.admin_role, frozenset(settings.guild_ids)
        )
        self._dm_pacer = DmOpenPacer(settings.dm_opens_per_minute, monotonic=monotonic, sleep=sleep)
        self._client: discord.Client | None = None
        self._outbound: Outbound | None = None
        self._threads: DiscordThreads | None = None
        self._connection: asyncio.Task[None] | None = None
        self._on_event: InboundHandler | None = None
        self._installed_base: str | None = None

    # --- ChatAdapter -------------------------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    @property
    def client(self) -> discord.Client:
        """The discord.py client, once started."""
        if self._client is None:
            raise RuntimeError("the Discord adapter is not started")
        return self._client

    async def start(self, on_event: InboundHandler) -> None:
        """Log in, publish the slash commands, then receive events over the gateway."""
        if self._client is not None:
            raise RuntimeError("the Discord adapter is already started")
        if self._settings.api_base_url:
            self._installed_base = Route.BASE = self._settings.api_base_url.rstrip("/")
        client = self._build_client()
        self._client, self._on_event = client, on_event
        self._outbound = Outbound(
            client,
            dm_pacer=self._dm_pacer,
            fallback_channel_id=self._settings.fallback_channel_id,
            request_timeout=self._request_timeout,
            secrets=[self._token],
        )
        self._threads = DiscordThreads(client, self._outbound)
        build_command_tree(
            client,
            self._run_command,
            courses=self._course_choices,
            zones=zone_choices,
            times=time_choices,
            run_instructor=self._run_instructor_command,
        )
        try:
            await client.login(self._token)
        except (discord.DiscordException, aiohttp.ClientError, OSError) as error:
            await self.stop()
            raise classify(error, secrets=[self._token]) from None
        await self._publish_commands()
        if self._gateway:
            self._connection = asyncio.create_task(self._stay_connected(client), name="discord gateway")
        assert client.user is not None
        log.info("Discord bot %s (%s) started", client.user.name, client.user.id)

    async def stop(self) -> None:
        """Disconnect and close the HTTP session; safe to call twice."""
        client, self._client = self._client, None
        self._on_event, self._outbound, self._threads = None, None, None
        if client is not None:
            await client.close()
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.cancel()
            await asyncio.gather(connection, return_exceptions=True)
        if self._installed_base is not None and self._installed_base == Route.BASE:
            Route.BASE = DISCORD_API_BASE
        self._installed_base = None

    async def send(self, chat_id: str, part: OutboundPart, *, idempotency_key: str = "") -> SentMessage:
        """Send one part; raises `ChatMigrated` when the learner's chat moves (DM opened, thread fallback)."""
        try:
            destination = parse_chat_id(chat_id)
        except ValueError as error:
            raise PermanentError(str(error), unreachable=True) from None
        messages = self._messages(part)
        try:
            return await self._require_outbound().deliver(destination, messages, idempotency_key, chat_id)
        except CallFailed as failure:
            raise failure.classified from failure.original

    async def send_reply(self, sender: Sender, reply: Reply) -> None:
        """Answer outside an interaction: in the sender's DM (opened if needed) or channel."""
        try:
            destination = parse_chat_id(sender.chat_id)
        except ValueError as error:
            raise PermanentError(str(error), unreachable=True) from None
        outbound = self._require_outbound()
        try:
            channel_id = await outbound.channel_for(destination, sender.chat_id)
            for part in reply.parts:
                await outbound.post_all(channel_id, self._messages(part), "", sender.chat_id)
        except CallFailed as failure:
            raise failure.classified from failure.original

    async def edit(self, chat_id: str, message_id: str, part: TextPart) -> None:
        """Edit a message the bot posted in `chat_id` (its DM, thread or channel); Discord accepts an edit
        that changes nothing. Interaction replies are not edited here: their token lasts 15 minutes."""
        try:
            destination = parse_chat_id(chat_id)
            message = int(message_id)
        except ValueError as error:
            raise PermanentError(f"cannot edit message {message_id[:24]!r}: {error}") from None
        messages = self._messages(part)
        if len(messages) != 1:
            raise PermanentError(f"an edit must fit in one Discord message, this text needs {len(messages)}")
        outbound = self._require_outbound()
        try:
            channel_id = await outbound.channel_for(destination, chat_id)
            await outbound.edit(channel_id, message, messages[0], chat_id)
        except CallFailed as failure:
            raise failure.classified from failure.original

    # --- ThreadHost: lesson threads in a forum or text channel ---------------------------------------

    @property
    def max_thread_title(self) -> int:
        return MAX_THREAD_NAME

    async def create_thread(self, chat_id: str, title: str, opening: str) -> CreatedThread:
        """A forum post opened by `opening`, or a public thread in a text channel (opened by `post`)."""
        return await self._require_threads().create(chat_id, title, opening)

    async def post(self, chat_id: str, thread_id: str, text: str, *, pin: bool) -> str:
        return await self._require_threads().post(chat_id, thread_id, text, pin=pin)

    async def close_thread(self, chat_id: str, thread_id: str) -> None:
        await self._require_threads().set_closed(chat_id, thread_id, True)

    async def reopen_thread(self, chat_id: str, thread_id: str) -> None:
        await self._require_threads().set_closed(chat_id, thread_id, False)

    async def thread_stats(self, chat_id: str, thread_id: str) -> int | None:
        return await self._require_threads().message_count(chat_id, thread_id)

    async def check_rights(self, chat_id: str) -> list[str]:
        return await self._require_threads().check_rights(chat_id)

    def _require_threads(self) -> DiscordThreads:
        if self._threads is None:
            raise TransientError("the Discord adapter is not started")
        return self._threads

    # --- inbound -----------------------------------------------------------------------------------

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Gateway event: button presses (slash commands go through the command tree)."""
        if interaction.type is not discord.InteractionType.component:
            return
        data: Any = interaction.data or {}
        custom_id = data.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            return
        message_id = interaction.message.id if interaction.message is not None else None
        await self._answer(interaction, lambda sender: component_event(sender, custom_id, message_id))

    async def on_message(self, message: discord.Message) -> None:
        """Gateway event: text typed in a DM with the bot (server messages are not read)."""
        if (
            message.author.bot
            or message.guild is not None
            or not isinstance(message.channel, discord.DMChannel)
        ):
            return
        on_event, outbound = self._on_event, self._outbound
        if on_event is None or outbound is None:
            return
        outbound.remember_dm(message.author.id, message.channel.id)
        origin = Origin(
            user_id=message.author.id,
            display_name=message.author.display_name,
            locale=None,
            guild_id=None,
            channel_id=message.channel.id,
            in_bot_dm=True,
        )
        event = direct_message_event(sender_for(origin, self._admins), message.content)
        if event is None:
            return
        try:
            reply = await on_event(event)
            for part in reply.parts:
                await outbound.post_all(message.channel.id, self._messages(part), "", event.sender.chat_id)
        except CallFailed as failure:
            log.warning(
                "reply to Discord user %s not delivered: %s", message.author.id, failure.classified.reason
            )
        except PlatformError as error:
            log.warning("reply to Discord user %s not delivered: %s", message.author.id, error.reason)
        except Exception:
            log.exception("handling a DM from Discord user %s failed", message.author.id)

    async def _run_command(
        self, interaction: discord.Interaction, command: SlashCommand, options: dict[str, object]
    ) -> None:
        await self._answer(interaction, lambda sender: command_event(sender, command, options))

    async def _run_instructor_command(
        self, interaction: discord.Interaction, name: str, arguments: str
    ) -> None:
        await self._answer(interaction, lambda sender: instructor_event(sender, name, arguments))

    async def _answer(
        self, interaction: discord.Interaction, event_for: Callable[[Sender], InboundEvent]
    ) -> None:
        """Acknowledge at once (Discord allows 3 seconds), then let the core work and follow up."""
        personal = interaction.guild_id is not None
        try:
            await interaction.response.defer(ephemeral=personal, thinking=True)
        except (discord.HTTPException, aiohttp.ClientError, OSError) as error:
            log.warning("could not acknowledge a Discord interaction in time: %s", error)
            return
        on_event, outbound = self._on_event, self._outbound
        if on_event is None or outbound is None:
            return
        origin = _origin(interaction)
        if origin.in_bot_dm and origin.channel_id is not None:
            outbound.remember_dm(origin.user_id, origin.channel_id)
        event = event_for(sender_for(origin, self._admins))
        try:
            reply = await on_event(event)
            await self._follow_up(interaction, reply, ephemeral=personal)
        except (PlatformError, discord.HTTPException, aiohttp.ClientError, OSError) as error:
            log.warning(
                "answer to %s from Discord user %s not delivered: %s",
                type(event).__name__,
                origin.user_id,
                error,
            )
        except Exception:
            log.exception("handling %s from Discord user %s failed", type(event).__name__, origin.user_id)

    async def _follow_up(self, interaction: discord.Interaction, reply: Reply, *, ephemeral: bool) -> None:
        messages = [message for part in reply.parts for message in self._messages(part)]
        if not messages:
            await interaction.delete_original_response()
            return
        for message in messages:
            files = open_files(message)
            embed = embed_of(message)
            await interaction.followup.send(
                content=message.content or MISSING,
                embed=embed if embed is not None else MISSING,
                files=files or MISSING,
                view=view_of(message.buttons) or MISSING,
                ephemeral=ephemeral,
                allowed_mentions=discord.AllowedMentions.none(),
                wait=True,
            )

    # --- outbound ----------------------------------------------------------------------------------

    def _require_outbound(self) -> Outbound:
        if self._outbound is None:
            raise TransientError("the Discord adapter is not started")
        return self._outbound

    def _messages(self, part: OutboundPart) -> list[OutgoingMessage]:
        try:
            return part_messages(part, media_links=self._media_links, size_of=size_of)
        except OSError as error:
            raise PermanentError(f"cannot read a media file: {error.strerror or error}") from None

    # --- setup -------------------------------------------------------------------------------------

    def _build_client(self) -> discord.Client:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.dm_messages = True
        options: dict[str, Any] = {
            "intents": intents,
            "http_trace": rate_limit_trace(),
            "max_ratelimit_timeout": MAX_INLINE_RATE_LIMIT_WAIT,
            "allowed_mentions": discord.AllowedMentions.none(),
        }
        client: discord.Client
        if self._settings.shards:
            client = discord.AutoShardedClient(shard_count=self._settings.shards, **options)
        else:
            client = discord.Client(**options)
        client.event(self.on_interaction)
        client.event(self.on_message)
        return client

    async def _publish_commands(self) -> None:
        """Sync the commands to each configured server (instant) and globally when asked (up to an hour)."""
        client = self.client
        tree = client._connection._command_tree
        assert tree is not None
        for guild_id in self._settings.guild_ids:
            guild = discord.Object(guild_id)
            tree.copy_global_to(guild=guild)
            try:
                synced = await tree.sync(guild=guild)
            except discord.HTTPException as error:
                log.error("could not publish slash commands to server %s: %s", guild_id, error)
            else:
                log.info("published %d slash commands to server %s", len(synced), guild_id)
        if self._settings.sync_global:
            try:
                synced = await tree.sync()
            except discord.HTTPException as error:
                log.error("could not publish global slash commands: %s", error)
            else:
                log.info(
                    "published %d global slash commands (they may take up to an hour to appear)", len(synced)
                )
        if not self._settings.guild_ids and not self._settings.sync_global:
            log.warning("no slash commands published: set discord.guild_ids or discord.sync_global")

    async def _stay_connected(self, client: discord.Client) -> None:
        try:
            await client.connect(reconnect=True)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the Discord gateway connection ended")


def _origin(interaction: discord.Interaction) -> Origin:
    user = interaction.user
    member = user if isinstance(user, discord.Member) else None
    in_bot_dm = (
        interaction.guild_id is None
        and isinstance(interaction.channel, discord.DMChannel)
        and not interaction.context.private_channel
    )
    return Origin(
        user_id=user.id,
        display_name=user.display_name,
        locale=interaction.locale.value if interaction.locale else None,
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id,
        in_bot_dm=in_bot_dm,
        role_ids=tuple(role.id for role in member.roles) if member is not None else (),
        role_names=tuple(role.name for role in member.roles) if member is not None else (),
    )
