"""Discord failures as the core's `PlatformError` classes: what the sender should do about each one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import aiohttp
import discord

from bot.ports import AmbiguousError, PermanentError, PlatformError, RetryAfter, TransientError

REDACTED = "<redacted>"

UNKNOWN_CHANNEL = 10003
UNKNOWN_MEMBER = 10007
UNKNOWN_USER = 10013
OPENING_DMS_TOO_FAST = 40003
CANNOT_MESSAGE_USER = 50007
INVALID_FORM_BODY = 50035
ARCHIVED_THREAD = 50083

UNREACHABLE_CODES = frozenset({UNKNOWN_CHANNEL, UNKNOWN_MEMBER, UNKNOWN_USER, CANNOT_MESSAGE_USER})
"""The learner is gone for this bot: the channel or user no longer exists, or they refuse DMs."""
DM_FALLBACK_CODES = frozenset({CANNOT_MESSAGE_USER, OPENING_DMS_TOO_FAST})
"""A DM did not go through, but a private thread in a server may still reach the learner."""
DM_THROTTLE_SECONDS = 60.0
"""How long a learner waits after Discord said we open DMs too fast (it gives no retry_after)."""


@dataclass(frozen=True)
class RateLimitSeen:
    """A 429 response observed on the wire (discord.py may have handled it, or raised RateLimited)."""

    retry_after: float
    is_global: bool


def rate_limit_seen(status: int, headers: Mapping[str, str]) -> RateLimitSeen | None:
    """What a response's headers say about a rate limit; None unless it is a 429."""
    if status != 429:
        return None
    lowered = {key.lower(): value for key, value in headers.items()}
    try:
        retry_after = float(lowered.get("retry-after") or lowered.get("x-ratelimit-reset-after") or 1.0)
    except ValueError:
        retry_after = 1.0
    is_global = (
        lowered.get("x-ratelimit-global", "").lower() == "true"
        or lowered.get("x-ratelimit-scope", "").lower() == "global"
    )
    return RateLimitSeen(max(0.0, retry_after), is_global)


def error_code(error: BaseException) -> int | None:
    """Discord's JSON error code of a failed request (50007, 10003, ...), if it has one."""
    if isinstance(error, discord.HTTPException) and error.code:
        return int(error.code)
    return None


def dms_refused(error: BaseException) -> bool:
    """Discord would not deliver a DM (closed DMs, or DMs opened too fast): try the fallback thread."""
    return error_code(error) in DM_FALLBACK_CODES


def classify(
    error: BaseException,
    chat_id: str | None = None,
    *,
    seen: RateLimitSeen | None = None,
    secrets: Iterable[str] = (),
) -> PlatformError:
    """The `PlatformError` for a failed call about `chat_id`; `seen` is the 429 observed during it."""
    reason = _scrub(f"{type(error).__name__}: {error}", secrets)
    if isinstance(error, discord.RateLimited):
        # Without an observed 429, discord.py refused before sending: a per-route bucket is exhausted.
        is_global = seen.is_global if seen is not None else False
        return RetryAfter(reason, float(error.retry_after), None if is_global else chat_id)
    if isinstance(error, discord.LoginFailure):
        return PermanentError(reason)
    if isinstance(error, discord.HTTPException):
        return _classify_http(error, reason, chat_id)
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return TransientError(f"{reason} (the request was never sent)")
    if isinstance(error, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return AmbiguousError(f"{reason or 'timed out'} (the request may have arrived)")
    if isinstance(error, aiohttp.ClientError | OSError):
        return TransientError(f"{reason} (connection failed or was reset)")
    return AmbiguousError(reason)


def _classify_http(error: discord.HTTPException, reason: str, chat_id: str | None) -> PlatformError:
    status = error.status
    code = error.code
    if status == 429:
        seen = rate_limit_seen(status, _headers(error))
        if seen is None or _banned(error):
            # No Discord rate-limit body: Cloudflare is turning the whole bot away for a while.
            return RetryAfter(reason, seen.retry_after if seen else 60.0, None)
        return RetryAfter(reason, seen.retry_after, None if seen.is_global else chat_id)
    if code == OPENING_DMS_TOO_FAST:
        return RetryAfter(reason, DM_THROTTLE_SECONDS, chat_id)
    if code in UNREACHABLE_CODES:
        return PermanentError(reason, unreachable=True)
    if status >= 500:
        return TransientError(reason)
    return PermanentError(reason)


def _headers(error: discord.HTTPException) -> Mapping[str, str]:
    headers = getattr(error.response, "headers", None)
    return headers if headers is not None else {}


def _banned(error: discord.HTTPException) -> bool:
    return "via" not in {key.lower() for key in _headers(error)}


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text
