"""Getting messages to a learner over Discord's REST API: the DM, or the private thread instead.

Each request runs under a timeout and fails as `CallFailed`, classified. A DM channel is opened in
the DM pacer's next slot and remembered; when Discord refuses the DM (closed, or opened too fast) and a
fallback channel is configured, the learner gets a private thread there with a one-time notice. Both
moves come back to the sender as `ChatMigrated`, so the new chat id is stored with the learner.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

import aiohttp
import discord
from discord.http import handle_message_parameters
from discord.utils import MISSING

from adapters.discord.dm_pacing import DmOpenPacer
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
from adapters.discord.materialize import embed_of, open_files, view_of
from adapters.discord.translate import (
    Destination,
    DirectMessage,
    OutgoingMessage,
    PrivateThread,
    channel_of,
    chat_id_of,
    fallback_notice,
    fallback_thread_name,
    nonce_for,
)
from bot.ports import ChatMigrated, PlatformError, SentMessage

log = logging.getLogger(__name__)

T = TypeVar("T")

PRIVATE_THREAD: Literal[12] = 12
THREAD_ARCHIVE_MINUTES: Literal[10080] = 10080

_SEEN_429S: contextvars.ContextVar[list[RateLimitSeen] | None] = contextvars.ContextVar(
    "discord_429s_seen", default=None
)


def rate_limit_trace() -> aiohttp.TraceConfig:
    """An aiohttp trace that lets `Outbound.call` see the 429s discord.py met during a request."""
    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(_note_rate_limit)
    return trace


async def _note_rate_limit(
    session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestEndParams
) -> None:
    seen = _SEEN_429S.get()
    if seen is not None:
        note = rate_limit_seen(params.response.status, params.response.headers)
        if note is not None:
            seen.append(note)


class CallFailed(Exception):
    """A Discord request failed: the original error (for fallback decisions) and its classification."""

    def __init__(self, original: BaseException, classified: PlatformError) -> None:
        super().__init__(classified.reason)
        self.original = original
        self.classified = classified


class Outbound:
    """Posts messages for one logged-in client; see the module docstring."""

    def __init__(
        self,
        client: discord.Client,
        *,
        dm_pacer: DmOpenPacer,
        fallback_channel_id: int | None,
        request_timeout: float,
        secrets: list[str],
    ) -> None:
        self._client = client
        self._dm_pacer = dm_pacer
        self._fallback_channel_id = fallback_channel_id
        self._request_timeout = request_timeout
        self._secrets = secrets
        self._dm_channels: dict[int, int] = {}

    def remember_dm(self, user_id: int, channel_id: int) -> None:
        self._dm_channels[user_id] = channel_id

    async def deliver(
        self, destination: Destination, messages: list[OutgoingMessage], key: str, chat_id: str
    ) -> SentMessage:
        """Post `messages` where `destination` says; `ChatMigrated` when the learner's chat moves first."""
        if isinstance(destination, DirectMessage) and destination.channel_id is None:
            moved = await self._dm_or_thread(destination.user_id, key, chat_id)
            reason = "opened the learner's DM channel" if isinstance(moved, DirectMessage) else "DMs refused"
            raise ChatMigrated(reason, chat_id_of(moved))
        channel_id = channel_of(destination)
        assert channel_id is not None
        try:
            return SentMessage(tuple(await self.post_all(channel_id, messages, key, chat_id)))
        except CallFailed as failure:
            if isinstance(destination, DirectMessage) and dms_refused(failure.original):
                thread = await self._fallback_thread(destination.user_id, key, chat_id, failure)
                raise ChatMigrated(f"DMs refused ({failure.classified.reason})", chat_id_of(thread)) from None
            if isinstance(destination, PrivateThread) and error_code(failure.original) == ARCHIVED_THREAD:
                http = self._client.http
                await self.call(lambda: http.edit_channel(channel_id, archived=False), chat_id)
                return SentMessage(tuple(await self.post_all(channel_id, messages, key, chat_id)))
            raise

    async def channel_for(self, destination: Destination, chat_id: str) -> int:
        """The channel to answer in, opening the DM if needed (without moving the learner)."""
        channel_id = channel_of(destination)
        if isinstance(destination, DirectMessage) and channel_id is None:
            channel_id = await self._open_dm(destination.user_id, chat_id)
        assert channel_id is not None
        return channel_id

    async def post_all(
        self, channel_id: int, messages: list[OutgoingMessage], key: str, chat_id: str
    ) -> list[str]:
        """Post each message with its nonce (none without a key); the new message ids."""
        ids: list[str] = []
        for index, message in enumerate(messages):
            nonce = nonce_for(key, index)
            data = await self.call(functools.partial(self._post, channel_id, message, nonce), chat_id)
            ids.append(str(data["id"]))
        return ids

    async def edit(self, channel_id: int, message_id: int, message: OutgoingMessage, chat_id: str) -> None:
        """Replace a posted message's content, embed and buttons (PATCH of the channel message)."""
        embed = embed_of(message)
        # None, not MISSING: an edit sends every field, so an embed or buttons the message had are removed.
        with handle_message_parameters(
            content=message.content or None,
            embed=embed,
            view=view_of(message.buttons),
            allowed_mentions=discord.AllowedMentions.none(),
        ) as params:
            http = self._client.http
            await self.call(lambda: http.edit_message(channel_id, message_id, params=params), chat_id)

    async def call(self, request: Callable[[], Awaitable[T]], chat_id: str | None) -> T:
        """One Discord request under a timeout; failures come back as `CallFailed`, classified."""
        seen: list[RateLimitSeen] = []
        token = _SEEN_429S.set(seen)
        try:
            async with asyncio.timeout(self._request_timeout):
                return await request()
        except (discord.DiscordException, aiohttp.ClientError, OSError) as error:
            classified = classify(error, chat_id, seen=seen[-1] if seen else None, secrets=self._secrets)
            raise CallFailed(error, classified) from error
        finally:
            _SEEN_429S.reset(token)

    async def _dm_or_thread(self, user_id: int, key: str, chat_id: str) -> DirectMessage | PrivateThread:
        try:
            return DirectMessage(user_id, await self._open_dm(user_id, chat_id))
        except CallFailed as failure:
            if not dms_refused(failure.original):
                raise
            return await self._fallback_thread(user_id, key, chat_id, failure)

    async def _open_dm(self, user_id: int, chat_id: str) -> int:
        """The user's DM channel: remembered, or opened in the DM pacer's next slot."""
        known = self._dm_channels.get(user_id)
        if known is not None:
            return known
        await self._dm_pacer.wait()
        http = self._client.http
        try:
            data = await self.call(lambda: http.start_private_message(user_id), chat_id)
        except CallFailed as failure:
            if error_code(failure.original) == OPENING_DMS_TOO_FAST:
                self._dm_pacer.hold(DM_THROTTLE_SECONDS)
            raise
        channel_id = int(data["id"])
        self._dm_channels[user_id] = channel_id
        return channel_id

    async def _fallback_thread(
        self, user_id: int, key: str, chat_id: str, refused: CallFailed
    ) -> PrivateThread:
        """A new private thread for the learner in the fallback channel, with a one-time notice."""
        parent = self._fallback_channel_id
        if parent is None:
            raise refused
        client = self._client
        user = client.get_user(user_id)
        if user is None:
            user = await self.call(functools.partial(client.fetch_user, user_id), chat_id)
        log.info(
            "Discord user %s refuses DMs (%s): lessons go to a private thread",
            user_id,
            refused.classified.reason,
        )
        data = await self.call(
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
        await self.call(lambda: client.http.add_user_to_thread(thread.thread_id, user_id), chat_id)
        notice = OutgoingMessage(content=fallback_notice(user_id))
        mention = discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(user_id)])
        nonce = nonce_for(f"{key}/fallback", 0)
        await self.call(lambda: self._post(thread.thread_id, notice, nonce, mention), chat_id)
        return thread

    async def _post(
        self,
        channel_id: int,
        message: OutgoingMessage,
        nonce: str | None,
        mentions: discord.AllowedMentions | None = None,
    ) -> Any:
        files = open_files(message)
        embed = embed_of(message)
        # With a nonce discord.py also sets enforce_nonce: Discord answers a repeat with the first message.
        with handle_message_parameters(
            content=message.content or MISSING,
            embed=embed if embed is not None else MISSING,
            files=files or MISSING,
            view=view_of(message.buttons) or MISSING,
            nonce=nonce,
            allowed_mentions=mentions or discord.AllowedMentions.none(),
        ) as params:
            return await self._client.http.send_message(channel_id, params=params)
