"""Telegram failures as the core's `PlatformError` classes: what the sender should do about each one."""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections.abc import Iterable

import aiohttp
import httpx
from telegram import error as tg

from adapters.telegram.aiohttp_request import PoolTimeoutError
from bot.ports import AmbiguousError, ChatMigrated, PermanentError, PlatformError, RetryAfter, TransientError

REDACTED = "<redacted>"

_NEVER_SENT = (httpx.ConnectTimeout, httpx.PoolTimeout, aiohttp.ConnectionTimeoutError, PoolTimeoutError)
"""Timeouts while connecting or waiting for a free connection (httpx or aiohttp): nothing went out."""
_UNREACHABLE_BAD_REQUEST = ("chat not found", "user not found", "peer_id_invalid", "chat_id is empty")


def classify(
    error: tg.TelegramError, chat_id: str | None = None, *, secrets: Iterable[str] = ()
) -> PlatformError:
    """The `PlatformError` for a failed Bot API call to `chat_id`; `secrets` never appear in the reason."""
    # PTB keeps Telegram's own prefix ("Forbidden: bot was blocked...") in some messages; say it once.
    label = type(error).__name__
    message = error.message if error.message.startswith(f"{label}:") else f"{label}: {error.message}"
    reason = _scrub(message, secrets)
    if isinstance(error, tg.RetryAfter):
        return RetryAfter(reason, _retry_after_seconds(error), chat_id)
    if isinstance(error, tg.ChatMigrated):
        return ChatMigrated(reason, str(error.new_chat_id))
    if isinstance(error, tg.Forbidden):
        # Blocked, deactivated, kicked, never started: the chat is gone. Missing rights in a group is for
        # an operator to fix and keeps the chat.
        return PermanentError(reason, unreachable="rights" not in error.message.lower())
    if isinstance(error, tg.BadRequest):
        text = error.message.lower()
        return PermanentError(reason, unreachable=any(phrase in text for phrase in _UNREACHABLE_BAD_REQUEST))
    if isinstance(error, tg.TimedOut):
        if _caused_by(error, *_NEVER_SENT):
            return TransientError(f"{reason} (the request was never sent)")
        return AmbiguousError(f"{reason} (the request may have arrived)")
    if isinstance(error, tg.NetworkError):
        if _caused_by(error, httpx.TransportError, aiohttp.ClientError):
            return TransientError(f"{reason} (connection failed or was reset)")
        if "too large" in error.message.lower():
            return PermanentError(reason)
        # An HTTP status PTB has no class for: 5xx, the server did not take the request.
        return TransientError(reason)
    if isinstance(error, tg.InvalidToken | tg.EndPointNotFound | tg.Conflict):
        return PermanentError(reason)
    # A response PTB could not parse: Telegram may have acted on the request.
    return AmbiguousError(reason)


def is_not_modified(error: tg.TelegramError) -> bool:
    """Telegram refused an edit because the message already reads exactly so: the edit is done."""
    return isinstance(error, tg.BadRequest) and "message is not modified" in error.message.lower()


def _retry_after_seconds(error: tg.RetryAfter) -> float:
    with warnings.catch_warnings():
        # PTB warns about the int form it returns until PTB_TIMEDELTA is set; both forms are handled.
        warnings.simplefilter("ignore")
        value = error.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def _caused_by(error: BaseException, *kinds: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, kinds):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _scrub(text: str, secrets: Iterable[str]) -> str:
    # PTB capitalizes API error descriptions, which lower-cases any token inside them.
    for secret in secrets:
        if secret:
            text = re.sub(re.escape(secret), REDACTED, text, flags=re.IGNORECASE)
    return text
