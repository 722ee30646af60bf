"""The Discord `ChatAdapter`: discord.py hosted in the application's own event loop.

Inbound: slash commands, button presses (any custom_id, also on messages sent before a restart) and
text typed in the bot's DM become neutral events. Each interaction is deferred before the core runs and
answered with followups, ephemeral in servers. Outbound: lessons go over REST to the learner's DM, or to
a private thread in `fallback_channel_id` when Discord refuses the DM (see `translate` for chat ids).
Every message carries a nonce derived from the idempotency key, so Discord drops a resent duplicate.
The sender paces requests globally; discord.py keeps its per-route buckets.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import io
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import aiohttp
import discord
from discord.http import Route, handle_message_parameters
from discord.utils import MISSING

from adapters.discord.choices import CourseChoices, time_choices, zone_choices
from adapters.discord.commands import build_command_tree
from adapters.discord.dm_pacing import DmOpenPacer, Monotonic, Sleep
from adapters.discord.errors import (
    ARCHIVED_THREAD,
    DM_THROTTLE_SECONDS,
    OPENING_DMS_TOO_FAST,
    RateLimitSeen,
    classify,
    dms_refused,
    error_code,
    rate_limit_seen,
)
from adapters.discord.translate import (
    AdminRule,
    ButtonSpec,
    ButtonStyle,
    Destination,
    DirectMessage,
    MediaLinks,
    Origin,
    OutgoingMessage,
    PrivateThread,
    SlashCommand,
    channel_of,
    chat_id_of,
    command_event,
    component_event,
    direct_message_event,
    fallback_notice,
    fallback_thread_name,
    nonce_for,
    parse_chat_id,
    part_messages,
    sender_for,
)
from bot.capabilities import DISCORD
from bot.ports import (
    Capabilities,
    ChatMigrated,
    InboundEvent,
    InboundHandler,
    OutboundPart,
    PermanentError,
    PlatformError,
    Reply,
    Sender,
    SentMessage,
)
from bot.settings import DiscordSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

LINKED_MEDIA_BYTES = 2**40
"""With `media_base_url` any file can be sent: what is too large to attach goes as a link."""
PRIVATE_THREAD: Literal[12] = 12
THREAD_ARCHIVE_MINUTES: Literal[10080] = 10080
MAX_INLINE_RATE_LIMIT_WAIT = 30.0
"""Shorter 429s discord.py waits out on the route; longer ones come back to the sender as RetryAfter."""

DISCORD_API_BASE = Route.BASE
"""discord.py's own API address; `api_base_url` replaces it process-wide (one Discord API per process)."""

_SEEN_429S: contextvars.ContextVar[list[RateLimitSeen] | None] = contextvars.ContextVar(
    "discord_429s_seen", default=None
)


def discord_capabilities(media_links: bool) -> Capabilities:
    """Discord's limits; with a media base URL, files over the attachment limit are sent as links."""
    if media_links:
        return dataclasses.replace(
            DISCORD, max_upload_bytes=LINKED_MEDIA_BYTES, max_photo_bytes=LINKED_MEDIA_BYTES
        )
    return DISCORD


class _CallFailed(Exception):
    """A Discord request failed: the original error (for fallback decisions) and its classification."""

    def __init__(self, original: BaseException, classified: PlatformError) -> None:
        super().__init__(classified.reason)
        self.original = original
        self.classified = classified


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
        self._admins = AdminRule(frozenset(settings.admins), settings.admin_role)
        self._dm_pacer = DmOpenPacer(settings.dm_opens_per_minute, monotonic=monotonic, sleep=sleep)
        self._dm_channels: dict[int, int] = {}
        self._client: discord.Client | None = None
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
        build_command_tree(
            client, self._run_command, courses=self._course_choices, zones=zone_choices, times=time_choices
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
        self._on_event = None
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
            return await self._deliver(destination, messages, idempotency_key, chat_id)
        except _CallFailed as failure:
            raise failure.classified from failure.original

    async def send_reply(self, sender: Sender, reply: Reply) -> None:
        """Answer outside an interaction: in the sender's DM (opened if needed) or channel."""
        try:
            destination = parse_chat_id(sender.chat_id)
        except ValueError as error:
            raise PermanentError(str(error), unreachable=True) from None
        try:
            channel_id = channel_of(destination)
            if isinstance(destination, DirectMessage) and channel_id is None:
                channel_id = await self._open_dm(destination.user_id, sender.chat_id)
            assert channel_id is not None
            for part in reply.parts:
                await self._post_all(channel_id, self._messages(part), "", sender.chat_id)
        except _CallFailed as failure:
            raise failure.classified from failure.original

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
        on_event = self._on_event
        if on_event is None:
            return
        self._dm_channels[message.author.id] = message.channel.id
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
                await self._post_all(message.channel.id, self._messages(part), "", event.sender.chat_id)
        except _CallFailed as failure:
            log.warning(
                "reply to Discord user %s not delivered: %s", message.author.id, failure.classified.reason
            )
        except Exception:
            log.exception("handling a DM from Discord user %s failed", message.author.id)

    async def _run_command(
        self, interaction: discord.Interaction, command: SlashCommand, options: dict[str, object]
    ) -> None:
        await self._answer(interaction, lambda sender: command_event(sender, command, options))

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
        on_event = self._on_event
        if on_event is None:
            return
        origin = _origin(interaction)
        if origin.in_bot_dm and origin.channel_id is not None:
            self._dm_channels[origin.user_id] = origin.channel_id
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
            files = self._open_files(message)
            embed = _embed(message)
            await interaction.followup.send(
                content=message.content or MISSING,
                embed=embed if embed is not None else MISSING,
                files=files or MISSING,
                view=_view(message.buttons) or MISSING,
                ephemeral=ephemeral,
                allowed_mentions=discord.AllowedMentions.none(),
                wait=True,
            )

    # --- outbound ----------------------------------------------------------------------------------

    async def _deliver(
        self, destination: Destination, messages: list[OutgoingMessage], key: str, chat_id: str
    ) -> SentMessage:
        if isinstance(destination, DirectMessage) and destination.channel_id is None:
            moved = await self._dm_or_thread(destination.user_id, key, chat_id)
            reason = "opened the learner's DM channel" if isinstance(moved, DirectMessage) else "DMs refused"
            raise ChatMigrated(reason, chat_id_of(moved))
        channel_id = channel_of(destination)
        assert channel_id is not None
        try:
            return SentMessage(tuple(await self._post_all(channel_id, messages, key, chat_id)))
        except _CallFailed as failure:
            if isinstance(destination, DirectMessage) and dms_refused(failure.original):
                thread = await self._fallback_thread(destination.user_id, key, chat_id, failure)
                raise ChatMigrated(f"DMs refused ({failure.classified.reason})", chat_id_of(thread)) from None
            if isinstance(destination, PrivateThread) and error_code(failure.original) == ARCHIVED_THREAD:
                client = self.client
                await self._call(lambda: client.http.edit_channel(channel_id, archived=False), chat_id)
                return SentMessage(tuple(await self._post_all(channel_id, messages, key, chat_id)))
            raise

    async def _dm_or_thread(self, user_id: int, key: str, chat_id: str) -> DirectMessage | PrivateThread:
        try:
            return DirectMessage(user_id, await self._open_dm(user_id, chat_id))
        except _CallFailed as failure:
            if not dms_refused(failure.original):
                raise
            return await self._fallback_thread(user_id, key, chat_id, failure)

    async def _open_dm(self, user_id: int, chat_id: str) -> int:
        """The user's DM channel: remembered, or opened in the DM pacer's next slot."""
        known = self._dm_channels.get(user_id)
        if known is not None:
            return known
        await self._dm_pacer.wait()
        client = self.client
        try:
            data = await self._call(lambda: client.http.start_private_message(user_id), chat_id)
        except _CallFailed as failure:
            if error_code(failure.original) == OPENING_DMS_TOO_FAST:
                self._dm_pacer.hold(DM_THROTTLE_SECONDS)
            raise
        channel_id = int(data["id"])
        self._dm_channels[user_id] = channel_id
        return channel_id

    async def _fallback_thread(
        self, user_id: int, key: str, chat_id: str, refused: _CallFailed
    ) -> PrivateThread:
        """A new private thread for the learner in the fallback channel, with a one-time notice."""
        parent = self._settings.fallback_channel_id
        if parent is None:
            raise refused
        client = self.client
        user = client.get_user(user_id)
        if user is None:
            user = await self._call(functools.partial(client.fetch_user, user_id), chat_id)
        log.info(
            "Discord user %s refuses DMs (%s): lessons go to a private thread",
            user_id,
            refused.classified.reason,
        )
        data = await self._call(
            lambda: client.http.start_thread_without_message(
                parent,
                name=fallback_thread_name(user.display_name, user_id),
                auto_archive_duration=THREAD_ARCHIVE_MINUTES,
                type=PRIVATE_THREAD,
                invitable=False,
                reason="lessons for a learner who does not accept DMs",
            ),
            chat_id,
        )
        thread = PrivateThread(user_id, int(data["id"]))
        await self._call(lambda: client.http.add_user_to_thread(thread.thread_id, user_id), chat_id)
        notice = OutgoingMessage(content=fallback_notice(user_id))
        mention = discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(user_id)])
        nonce = nonce_for(f"{key}/fallback", 0)
        await self._call(lambda: self._post(thread.thread_id, notice, nonce, mention), chat_id)
        return thread

    async def _post_all(
        self, channel_id: int, messages: list[OutgoingMessage], key: str, chat_id: str
    ) -> list[str]:
        ids: list[str] = []
        for index, message in enumerate(messages):
            nonce = nonce_for(key, index)
            data = await self._call(functools.partial(self._post, channel_id, message, nonce), chat_id)
            ids.append(str(data["id"]))
        return ids

    async def _post(
        self,
        channel_id: int,
        message: OutgoingMessage,
        nonce: str | None,
        mentions: discord.AllowedMentions | None = None,
    ) -> Any:
        files = self._open_files(message)
        embed = _embed(message)
        with handle_message_parameters(
            content=message.content or MISSING,
            embed=embed if embed is not None else MISSING,
            files=files or MISSING,
            view=_view(message.buttons) or MISSING,
            nonce=nonce,
            allowed_mentions=mentions or discord.AllowedMentions.none(),
        ) as params:
            return await self.client.http.send_message(channel_id, params=params)

    async def _call(self, request: Callable[[], Awaitable[T]], chat_id: str | None) -> T:
        """One Discord request under a timeout; failures come back as `_CallFailed`, classified."""
        seen: list[RateLimitSeen] = []
        token = _SEEN_429S.set(seen)
        try:
            async with asyncio.timeout(self._request_timeout):
                return await request()
        except (discord.DiscordException, aiohttp.ClientError, OSError) as error:
            classified = classify(error, chat_id, seen=seen[-1] if seen else None, secrets=[self._token])
            raise _CallFailed(error, classified) from error
        finally:
            _SEEN_429S.reset(token)

    def _messages(self, part: OutboundPart) -> list[OutgoingMessage]:
        try:
            return part_messages(part, media_links=self._media_links, size_of=_size_of)
        except OSError as error:
            raise PermanentError(f"cannot read a media file: {error.strerror or error}") from None

    def _open_files(self, message: OutgoingMessage) -> list[discord.File]:
        files: list[discord.File] = []
        try:
            for attachment in message.attachments:
                if attachment.path is not None:
                    files.append(discord.File(attachment.path, filename=attachment.filename))
                else:
                    files.append(
                        discord.File(io.BytesIO(attachment.content or b""), filename=attachment.filename)
                    )
        except OSError as error:
            for opened in files:
                opened.close()
            raise PermanentError(
                f"cannot read {error.filename or 'a media file'}: {error.strerror}"
            ) from None
        return files

    # --- setup -------------------------------------------------------------------------------------

    def _build_client(self) -> discord.Client:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.dm_messages = True
        trace = aiohttp.TraceConfig()
        trace.on_request_end.append(_note_rate_limit)
        options: dict[str, Any] = {
            "intents": intents,
            "http_trace": trace,
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
        role_names=tuple(role.name for role in member.roles) if member is not None else (),
        administrator=member is not None and interaction.permissions.administrator,
    )


async def _note_rate_limit(
    session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestEndParams
) -> None:
    seen = _SEEN_429S.get()
    if seen is not None:
        note = rate_limit_seen(params.response.status, params.response.headers)
        if note is not None:
            seen.append(note)


def _size_of(path: Path) -> int:
    return path.stat().st_size


def _embed(message: OutgoingMessage) -> discord.Embed | None:
    if not message.embed_title and not message.embed_description:
        return None
    return discord.Embed(title=message.embed_title or None, description=message.embed_description or None)


_STYLES = {
    ButtonStyle.PRIMARY: discord.ButtonStyle.primary,
    ButtonStyle.SECONDARY: discord.ButtonStyle.secondary,
    ButtonStyle.SUCCESS: discord.ButtonStyle.success,
    ButtonStyle.LINK: discord.ButtonStyle.link,
}


def _view(buttons: tuple[ButtonSpec, ...]) -> discord.ui.View | None:
    """The buttons as a view that only serializes them: every press reaches `on_interaction` instead.

    Stopped, so discord.py neither keeps it in its view store nor starts a timeout for it.
    """
    if not buttons:
        return None
    view = discord.ui.View(timeout=None)
    for spec in buttons:
        if spec.style is ButtonStyle.LINK:
            view.add_item(discord.ui.Button(label=spec.label, style=discord.ButtonStyle.link, url=spec.url))
        else:
            view.add_item(
                discord.ui.Button(label=spec.label, style=_STYLES[spec.style], custom_id=spec.custom_id)
            )
    view.stop()
    return view
