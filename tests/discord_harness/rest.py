"""A fake Discord REST API on loopback, enough for discord.py 2.7 to log in, sync commands, answer
interactions and send messages, with the failures that matter: 429s, closed DMs, gone channels, 5xx.

It keeps a small world (users, DM channels, server channels, threads, messages) and records every
request with the time of an injected clock, so tests can assert on what reached "Discord" and when.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

API_PREFIX = "/api/v10"
Handler = Callable[[re.Match[str], Any, list[tuple[str, bytes]]], Awaitable[web.StreamResponse]]
BOT_ID = 900_000_000_000_000_001
APPLICATION_ID = 900_000_000_000_000_002
OWNER_ID = 900_000_000_000_000_003


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    files: list[tuple[str, bytes]]
    headers: dict[str, str]
    at: float


@dataclass
class Fault:
    """The next `times` requests matching method and path answer `status` with `body` and `headers`."""

    method: str
    path: re.Pattern[str]
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    times: int
    delay: float = 0.0


@dataclass
class RouteBucket:
    """A per-channel message bucket the fake enforces and announces in X-RateLimit headers."""

    limit: int
    per_seconds: float
    window_start: float = 0.0
    used: int = 0


@dataclass
class FakeDiscord:
    """The fake API; `await start()` gives the base URL to put in `api_base_url`."""

    clock: Callable[[], float] = time.monotonic
    requests: list[RecordedRequest] = field(default_factory=list)
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    dms_closed: set[int] = field(default_factory=set)
    """Users whose privacy settings refuse DMs from the bot (sending answers 50007)."""
    guild_channels: dict[int, int] = field(default_factory=dict)
    """Server text channel id -> server id."""
    members: dict[int, set[int]] = field(default_factory=dict)
    """Server id -> ids of its members."""
    channels: dict[int, dict[str, Any]] = field(default_factory=dict)
    messages: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    thread_members: dict[int, set[int]] = field(default_factory=dict)
    commands: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """"global" or the server id -> the last synced command list."""
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    followups: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    route_bucket: RouteBucket | None = None
    served_429s: int = 0
    _faults: list[Fault] = field(default_factory=list)
    _nonces: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1_000_000_000_000_000))
    _runner: web.AppRunner | None = None
    base_url: str = ""

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}{API_PREFIX}"
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- world -------------------------------------------------------------------------------------

    def add_user(self, user_id: int, name: str) -> dict[str, Any]:
        self.users[user_id] = user_payload(user_id, name)
        return self.users[user_id]

    def add_guild_channel(self, channel_id: int, guild_id: int, member_ids: set[int] | None = None) -> None:
        self.guild_channels[channel_id] = guild_id
        self.members.setdefault(guild_id, set()).update(member_ids or set())
        self.channels[channel_id] = {
            "id": str(channel_id),
            "type": 0,
            "guild_id": str(guild_id),
            "name": "lessons",
        }

    def fail(
        self,
        method: str,
        path: str,
        status: int,
        *,
        code: int = 0,
        message: str = "failure",
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer the next `times` matching requests with an error (`path` is a regex on the API path),
        after `delay` real seconds (to let a client time out)."""
        payload = body if body is not None else {"message": message, "code": code}
        self._faults.append(Fault(method, re.compile(path), status, payload, headers or {}, times, delay))

    def rate_limit(
        self, method: str, path: str, retry_after: float, *, scope: str = "user", times: int = 1
    ) -> None:
        """Answer with Discord's 429: a JSON body, the Via header and the scope headers."""
        is_global = scope == "global"
        headers = {
            "Via": "1.1 google",
            "Retry-After": f"{retry_after:g}",
            "X-RateLimit-Scope": scope,
        }
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        body = {
            "message": "You are being rate limited.",
            "retry_after": retry_after,
            "global": is_global,
            "code": 0,
        }
        self.fail(method, path, 429, headers=headers, body=body, times=times)

    # --- queries -----------------------------------------------------------------------------------

    def calls(self, method: str, path: str) -> list[RecordedRequest]:
        pattern = re.compile(path)
        return [r for r in self.requests if r.method == method and pattern.fullmatch(r.path)]

    def sent_to(self, channel_id: int) -> list[dict[str, Any]]:
        return list(self.messages.get(channel_id, []))

    def dm_channel_of(self, user_id: int) -> int | None:
        for channel in self.channels.values():
            if channel["type"] == 1 and int(channel["recipients"][0]["id"]) == user_id:
                return int(channel["id"])
        return None

    def delete_message(self, channel_id: int, message_id: str) -> None:
        """A message is deleted (by a moderator, or by another process of the bot)."""
        self.messages[channel_id] = [m for m in self.messages.get(channel_id, []) if m["id"] != message_id]

    def threads(self) -> list[dict[str, Any]]:
        return [channel for channel in self.channels.values() if channel["type"] in (11, 12)]

    # --- dispatch ----------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.removeprefix(API_PREFIX)
        body, files = await _read_body(request)
        self.requests.append(
            RecordedRequest(
                request.method, path, dict(request.query), body, files, dict(request.headers), self.clock()
            )
        )
        for fault in self._faults:
            if fault.times > 0 and fault.method == request.method and fault.path.fullmatch(path):
                fault.times -= 1
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault.status == 429:
                    self.served_429s += 1
                return _json(fault.body, status=fault.status, headers=fault.headers)
        for method, pattern, handler in self._routes():
            match = pattern.fullmatch(path)
            if method == request.method and match:
                return await handler(match, body, files)
        return _error(404, 0, f"fake Discord has no route {request.method} {path}")

    def _routes(self) -> list[tuple[str, re.Pattern[str], Handler]]:
        return [
            ("GET", re.compile(r"/users/@me"), self._me),
            ("GET", re.compile(r"/oauth2/applications/@me"), self._application),
            ("PUT", re.compile(r"/applications/(\d+)/commands"), self._sync_global),
            ("PUT", re.compile(r"/applications/(\d+)/guilds/(\d+)/commands"), self._sync_guild),
            ("POST", re.compile(r"/users/@me/channels"), self._open_dm),
            ("GET", re.compile(r"/users/(\d+)"), self._get_user),
            ("POST", re.compile(r"/channels/(\d+)/messages"), self._post_message),
            ("POST", re.compile(r"/channels/(\d+)/threads"), self._create_thread),
            ("PUT", re.compile(r"/channels/(\d+)/thread-members/(\d+)"), self._add_thread_member),
            ("PATCH", re.compile(r"/channels/(\d+)/messages/(\d+)"), self._edit_message),
            ("PATCH", re.compile(r"/channels/(\d+)"), self._edit_channel),
            ("POST", re.compile(r"/interactions/(\d+)/([^/]+)/callback"), self._callback),
            ("POST", re.compile(r"/webhooks/(\d+)/([^/]+)"), self._followup),
            ("DELETE", re.compile(r"/webhooks/(\d+)/([^/]+)/messages/@original"), self._delete_original),
        ]

    async def _me(self, match: re.Match[str], body: Any, files: Any) -> web.Response:
        return _json(user_payload(BOT_ID, "dripcourse", bot=True))

    async def _application(self, match: re.Match[str], body: Any, files: Any) -> web.Response:
        return _json(
            {
                "id": str(APPLICATION_ID),
                "name": "dripcourse",
                "description": "",
                "icon": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": user_payload(OWNER_ID, "owner"),
                "verify_key": "0" * 64,
                "flags": 0,
            }
        )

    async def _sync_global(self, match: re.Match[str], body: Any, files: Any) -> web.Response:
        self.commands["global"] = body
        return _json(self._synced(body, None))

    async def _sync_guild(self, match: re.Match[str], body: Any, files: Any) -> web.Response:
        self.commands[match.group(2)] = body
        return _json(self._synced(body, match.group(2)))

    def _synced(self, commands: list[dict[str, Any]], guild_id: str | None) -> list[dict[str, Any]]:
        synced = []
        for command in commands:
            entry = {
                **command,
                "id": str(next(self._ids)),
                "application_id": str(APPLICATION_ID),
                "version": "1",
            }
            entry.setdefault("description", "")
            if guild_id:
                entry["guild_id"] = guild_id
            synced.append(entry)
        return synced

    async def _open_dm(self, match: re.Match[str], body: Any, files: Any) -> web.Response:
        user_id = int(body["recipient_id"])
        if user_id not in self.users:
            return _error(400, 50035, "Invalid Form Body")
        existing = self.dm_channel_of(user_id)
        channel_id = existing if existing is not None else next(self._ids)
        channel = {
            "id": str(channel_id),
            "type": 1,
            "recipients": [self.users[user_id]],
            "last_message_id": None,
        }
        self.channels[channel_id] = channel
        return _json(channel)

    async def _get_user(self, match: re.Match[str], body: Any, files: Any) -> web.Response:
        user = self.users.get(int(match.group(1)))
        if user is None:
            return _error(404, 10013, "Unknown User")
        return _json(user)

    async def _post_message(self, match: re.Match[str], body: Any, files: Any) -> web.Response:
        channel_id = int(match.group(1))
        channel = self.channels.get(channel_id)
        if channel is None:
            return _error(404, 10003, "Unknown Channel")
        if channel["type"] == 1 and int(channel["recipients"][0]["id"]) in self.dms_closed:
            return _error(403, 50007, "Cannot send messages to this user")
        if channel["type"] in (11, 12) and channel["thread_metadata"]["archived"]:
            return _error(400, 50083, "Thread is archived")
        headers = self._take_bucket(channel_id)
        if headers is None:
            self.served_429s += 1
            return _json(
                {"message": "You are being rate limited.", "retry_after": 1.0, "global": False},
                status=429,
                headers={"Via": "1.1 google", "Retry-After": "1", "X-RateLimit-Scope": "user"},
            )
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce") and (channel_id, nonce) in self._nonces:
            return _json(self._nonces[(channel_id, nonce)], headers=headers)
        message = self._message(channel_id, body, files, author=user_payload(BOT_ID, "dripcourse", bot=True))
        self.messages.setdefault(channel_id, []).append(message)
        if nonce is not None and body.get("enforce_nonce"):
            self._nonces[(channel_id, nonce)] = message
        return _json(message, headers=headers)

    def _take_bucket(self, channel_id: int) -> dict[str, str] | None:
        bucket = self.route_bucket
        if bucket is None:
            return {}
        now = time.monotonic()
        if now - bucket.window_start >= bucket.per_seconds:
            bucket.window_start, bucket.used = now, 0
        if bucket.used >= bucket.limit:
            return None
        bucket.used += 1
        reset_after = max(0.0, bucket.per_seconds - (now - bucket.window_start))
        return {
            "X-RateLimit-Limit": str(bucket.limit),
            "X-RateLimit-Remaining": str(bucket.limit - bucket.used),
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Bucket": f"messages-{channel_id}",
        }

    async def _create_thread(self, match: re.Match[str], body: Any, files: Any) -> web.Response:
        parent_id = int(match.group(1))
        guild_id = self.guild_channels.get(parent_id)
        if guild_id is None:
            return _error(404, 10003, "Unknown Channel")
        thread_id = next(self._ids)
        thread = {
            "id": str(thread_id),
            "type": body.get("type", 11),
            "guild_id": str(guild_id),
            "parent_id": str(parent_id),
            "owner_id": str(BOT_ID),
            "name": body["name"],
            "invitable": body.get("invitable", True),
            "member_count": 1,
            "message_count": 0,
            "rate_limit_per_user": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": body.get("auto_archive_duration", 1440),
                "archive_timestamp": _timestamp(),
                "locked": False,
                "invitable": body.get("invitable", True),
            },
        }
        self.channels[thread_id] = thread
        self.thread_members[thread_id] = {BOT_ID}
        return _json(thread, status=201)

    async def _add_thread_member(self, match: re.Match[str], body: Any, files: Any) -> web.Response:
        thread_id, user_id = int(match.group(1)), int(match.group(2))
        thread = self.channels.get(thread_id)
        if thread is None:
            return _error(404, 10003, "Unknown Channel")
        if user_id not in self.members.get(int(thread["guild_id"]), set()):
            return _error(404, 10007, "Unknown Member")
        self.thread_members.setdefault(thread_id, set()).add(user_id)
        return web.Response(status=204)

    async def _edit_message(self, match: re.Match[str], body: Any, files: Any) -> web.Response:
        channel_id, message_id = int(match.group(1)), match.group(2)
        if channel_id not in self.channels:
            return _error(404, 10003, "Unknown Channel")
        found = [message for message in self.messages.get(channel_id, []) if message["id"] == message_id]
        if not found:
            return _error(404, 10008, "Unknown Message")
        message = found[0]
        if message["author"]["id"] != str(BOT_ID):
            return _error(403, 50005, "Cannot edit a message authored by another user")
        # Like Discord: the fields sent replace the message's, the others stay; an unchanged edit is fine.
        for key in ("content", "embeds", "components", "flags"):
            if key in body:
                message[key] = body[key] if body[key] is not None else ("" if key == "content" else [])
        message["edited_timestamp"] = _timestamp()
        return _json(message)

    async def _edit_channel(self, match: re.Match[str], body: Any, files: Any) -> web.Response:
        channel = self.channels.get(int(match.group(1)))
        if channel is None:
            return _error(404, 10003, "Unknown Channel")
        if "archived" in body and "thread_metadata" in channel:
            channel["thread_metadata"]["archived"] = bool(body["archived"])
        return _json(channel)

    async def _callback(self, match: re.Match[str], body: Any, files: Any) -> web.Response:
        self.callbacks.append({"interaction_id": match.group(1), "token": match.group(2), **body})
        flags = (body.get("data") or {}).get("flags", 0)
        return _json(
            {
                "interaction": {
                    "id": match.group(1),
                    "type": 2,
                    "response_message_loading": body["type"] == 5,
                    "response_message_ephemeral": bool(flags & 64),
                }
            }
        )

    async def _followup(self, match: re.Match[str], body: Any, files: Any) -> web.Response:
        token = match.group(2)
        message = self._message(0, body, files, author=user_payload(BOT_ID, "dripcourse", bot=True))
        message["webhook_id"] = match.group(1)
        self.followups.setdefault(token, []).append(message)
        return _json(message)

    async def _delete_original(self, match: re.Match[str], body: Any, files: Any) -> web.Response:
        return web.Response(status=204)

    def _message(
        self, channel_id: int, body: dict[str, Any], files: list[tuple[str, bytes]], *, author: dict[str, Any]
    ) -> dict[str, Any]:
        message_id = next(self._ids)
        return {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "type": 0,
            "content": body.get("content") or "",
            "author": author,
            "timestamp": _timestamp(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [
                {
                    "id": str(next(self._ids)),
                    "filename": name,
                    "size": len(content),
                    "url": f"https://cdn/{name}",
                    "proxy_url": f"https://cdn/{name}",
                }
                for name, content in files
            ],
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "pinned": False,
            "flags": body.get("flags", 0),
            "nonce": body.get("nonce"),
            "allowed_mentions": body.get("allowed_mentions"),
        }


def user_payload(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": str(user_id),
        "username": name,
        "global_name": name.title(),
        "discriminator": "0",
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
    }


def button_ids(message: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, custom_id or url) of every button on a message payload, in order."""
    found: list[tuple[str, str]] = []
    for row in message.get("components", []):
        for component in row.get("components", []):
            if component.get("type") == 2:
                found.append(
                    (component.get("label", ""), component.get("custom_id") or component.get("url", ""))
                )
    return found


def text_of(message: dict[str, Any]) -> str:
    """A message's content and embed titles and descriptions, joined."""
    pieces = [message.get("content") or ""]
    for embed in message.get("embeds", []):
        pieces += [embed.get("title") or "", embed.get("description") or ""]
    return "\n".join(piece for piece in pieces if piece)


def _timestamp() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _json(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py parses a body as JSON only when the content type is exactly application/json.
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


def _error(status: int, code: int, message: str) -> web.Response:
    return _json({"message": message, "code": code}, status=status)


async def _read_body(request: web.Request) -> tuple[Any, list[tuple[str, bytes]]]:
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        body: Any = {}
        files: list[tuple[str, bytes]] = []
        while (part := await reader.next()) is not None:
            if part.name == "payload_json":  # type: ignore[union-attr]
                body = json.loads(await part.text())  # type: ignore[union-attr]
            else:
                files.append((part.filename or "", await part.read()))  # type: ignore[union-attr]
        return body, files
    raw = await request.read()
    if not raw:
        return {}, []
    try:
        return json.loads(raw), []
    except ValueError:
        return raw.decode(errors="replace"), []
