"""Lesson threads on Discord (the `ThreadHost` side of the adapter), over REST.

In a forum channel each lesson is a forum post whose starter message is the prompt; in a text channel it
is a public thread whose first message is the prompt, pinned. Closing archives and locks the thread.
The rights check computes the bot's permissions in the channel from the server's roles and the
channel's overwrites, as Discord does.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import discord
from discord.http import handle_message_parameters

from adapters.discord.errors import ARCHIVED_THREAD, UNKNOWN_CHANNEL, error_code
from adapters.discord.outbound import CallFailed, Outbound
from adapters.discord.translate import MAX_THREAD_NAME, OutgoingMessage
from bot.discussion import CreatedThread
from bot.ports import PlatformError

PUBLIC_THREAD: Literal[11] = 11
ARCHIVE_AFTER_MINUTES: Literal[10080] = 10080
TEXT, ANNOUNCEMENT, FORUM = 0, 5, 15
MISSING_ACCESS = 50001
CHANNEL_URL = "https://discord.com/channels/{guild_id}/{channel_id}"


def _bits(value: object) -> int:
    return int(str(value or 0))


def channel_permissions(
    *,
    user_id: int,
    guild: Mapping[str, Any],
    member_roles: Iterable[str],
    overwrites: Iterable[Mapping[str, Any]],
) -> discord.Permissions:
    """The member's permissions in a channel: @everyone and their roles, then the channel's overwrites for
    @everyone, their roles together, and them (Discord's documented order)."""
    if str(guild.get("owner_id")) == str(user_id):
        return discord.Permissions.all()
    guild_id = str(guild["id"])
    roles = {str(role["id"]): _bits(role.get("permissions")) for role in guild.get("roles", [])}
    mine = {str(role) for role in member_roles}
    allowed = roles.get(guild_id, 0)
    for role in mine:
        allowed |= roles.get(role, 0)
    if allowed & discord.Permissions(administrator=True).value:
        return discord.Permissions.all()
    by_target = {str(overwrite["id"]): overwrite for overwrite in overwrites}
    if guild_id in by_target:
        everyone = by_target[guild_id]
        allowed = (allowed & ~_bits(everyone.get("deny"))) | _bits(everyone.get("allow"))
    role_allow = role_deny = 0
    for role in mine:
        if role in by_target:
            role_allow |= _bits(by_target[role].get("allow"))
            role_deny |= _bits(by_target[role].get("deny"))
    allowed = (allowed & ~role_deny) | role_allow
    member = by_target.get(str(user_id))
    if member is not None:
        allowed = (allowed & ~_bits(member.get("deny"))) | _bits(member.get("allow"))
    return discord.Permissions(allowed)


def missing_permissions(kind: int, permissions: discord.Permissions) -> list[str]:
    """What the bot lacks to keep lesson threads in a channel, each phrase completing "the bot needs ..."."""
    if kind not in (TEXT, ANNOUNCEMENT, FORUM):
        return ["a text or forum channel to keep lesson threads in (this channel is neither)"]
    missing: list[str] = []
    if not permissions.view_channel:
        missing.append("the View Channel permission there")
    if kind == FORUM and not permissions.send_messages:
        missing.append("the Send Messages permission to open a forum post per lesson")
    if kind != FORUM and not permissions.create_public_threads:
        missing.append("the Create Public Threads permission to create lesson threads")
    if not permissions.send_messages_in_threads:
        missing.append("the Send Messages in Threads permission to post each lesson's prompt")
    if not permissions.manage_threads:
        missing.append("the Manage Threads permission to close and reopen lesson threads")
    if kind != FORUM and not (permissions.pin_messages or permissions.manage_messages):
        missing.append("the Pin Messages permission to pin each thread's prompt")
    return missing


class DiscordThreads:
    """Creates, posts in, closes and reopens lesson threads; failures raise the core's `PlatformError`s."""

    def __init__(self, client: discord.Client, outbound: Outbound) -> None:
        self._client = client
        self._outbound = outbound
        self._channels: dict[str, dict[str, Any]] = {}

    async def create(self, channel_id: str, title: str, opening: str) -> CreatedThread:
        http = self._client.http
        name = title[:MAX_THREAD_NAME]
        channel = await self._channel(channel_id)
        if channel.get("type") == FORUM:
            with handle_message_parameters(
                content=opening,
                allowed_mentions=discord.AllowedMentions.none(),
                channel_payload={"name": name, "auto_archive_duration": ARCHIVE_AFTER_MINUTES},
            ) as params:
                thread: Any = await self._call(
                    functools.partial(http.start_thread_in_forum, int(channel_id), params=params), channel_id
                )
            opened = True
        else:
            thread = await self._call(
                functools.partial(
                    http.start_thread_without_message,
                    int(channel_id),
                    name=name,
                    auto_archive_duration=ARCHIVE_AFTER_MINUTES,
                    type=PUBLIC_THREAD,
                ),
                channel_id,
            )
            opened = False
        guild_id = thread.get("guild_id") or channel.get("guild_id")
        url = CHANNEL_URL.format(guild_id=guild_id, channel_id=thread["id"])
        return CreatedThread(str(thread["id"]), url, opening_posted=opened)

    async def post(self, channel_id: str, thread_id: str, text: str, *, pin: bool) -> str:
        """Post in the thread (unarchiving it first if it went to sleep; a closed one stays locked)."""
        message = [OutgoingMessage(content=text)]
        try:
            (message_id,) = await self._outbound.post_all(int(thread_id), message, "", thread_id)
        except CallFailed as failure:
            if error_code(failure.original) != ARCHIVED_THREAD:
                raise failure.classified from failure.original
            await self._edit(thread_id, archived=False)
            try:
                (message_id,) = await self._outbound.post_all(int(thread_id), message, "", thread_id)
            except CallFailed as again:
                raise again.classified from again.original
        if pin:
            http = self._client.http
            await self._call(functools.partial(http.pin_message, int(thread_id), int(message_id)), thread_id)
        return message_id

    async def set_closed(self, channel_id: str, thread_id: str, closed: bool) -> None:
        await self._edit(thread_id, archived=closed, locked=closed)

    async def message_count(self, channel_id: str, thread_id: str) -> int | None:
        thread: Any = await self._call(
            functools.partial(self._client.http.get_channel, int(thread_id)), thread_id
        )
        count = thread.get("message_count")
        return int(count) if count is not None else None

    async def check_rights(self, channel_id: str) -> list[str]:
        http = self._client.http
        user = self._client.user
        assert user is not None, "the Discord adapter is not started"
        try:
            channel = await self._channel(channel_id, fresh=True)
        except PlatformError as error:
            cause = error.__cause__
            if cause is not None and error_code(cause) in (UNKNOWN_CHANNEL, MISSING_ACCESS):
                return [f"to see the channel and be a member of its server ({error.reason})"]
            raise
        guild_id = int(channel["guild_id"])
        guild: Any = await self._call(
            functools.partial(http.get_guild, guild_id, with_counts=False), channel_id
        )
        member: Any = await self._call(functools.partial(http.get_member, guild_id, user.id), channel_id)
        permissions = channel_permissions(
            user_id=user.id,
            guild=guild,
            member_roles=member.get("roles", []),
            overwrites=channel.get("permission_overwrites", []),
        )
        return missing_permissions(int(channel.get("type", -1)), permissions)

    async def _channel(self, channel_id: str, *, fresh: bool = False) -> dict[str, Any]:
        if fresh or channel_id not in self._channels:
            data: Any = await self._call(
                functools.partial(self._client.http.get_channel, int(channel_id)), channel_id
            )
            self._channels[channel_id] = dict(data)
        return self._channels[channel_id]

    async def _edit(self, thread_id: str, **options: bool) -> None:
        edit = functools.partial(self._client.http.edit_channel, int(thread_id), reason=None, **options)
        await self._call(edit, thread_id)

    async def _call(self, request: functools.partial[Any], chat_id: str) -> Any:
        try:
            return await self._outbound.call(request, chat_id)
        except CallFailed as failure:
            raise failure.classified from failure.original
