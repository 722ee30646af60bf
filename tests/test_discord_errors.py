"""Classifying Discord failures: what the sender should do about each one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import aiohttp
import discord
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.discord.errors import RateLimitSeen, classify, dms_refused, error_code, rate_limit_seen
from bot.ports import AmbiguousError, PermanentError, PlatformError, RetryAfter, TransientError

CHAT = "dm:42:99"


@dataclass
class Response:
    """What discord.HTTPException reads from aiohttp's response."""

    status: int
    reason: str = "Error"
    headers: dict[str, str] = field(default_factory=dict)


def http_error(status: int, code: int = 0, message: str = "failed", **headers: str) -> discord.HTTPException:
    kind: type[discord.HTTPException] = discord.HTTPException
    if status == 403:
        kind = discord.Forbidden
    elif status == 404:
        kind = discord.NotFound
    elif status >= 500:
        kind = discord.DiscordServerError
    body: dict[str, Any] = {"code": code, "message": message}
    return kind(Response(status, headers=dict(headers)), body)


def rate_limited(retry_after: float, *, scope: str = "user", global_: bool = False) -> discord.HTTPException:
    headers = {"Via": "1.1 google", "Retry-After": str(retry_after), "X-RateLimit-Scope": scope}
    if global_:
        headers["X-RateLimit-Global"] = "true"
    return discord.HTTPException(Response(429, headers=headers), {"message": "slow down", "code": 0})


def test_a_per_route_429_holds_only_that_chat() -> None:
    error = classify(rate_limited(2.5, scope="user"), CHAT)
    assert isinstance(error, RetryAfter)
    assert (error.seconds, error.chat_id) == (2.5, CHAT)


@pytest.mark.parametrize("exception", [rate_limited(7.0, scope="global"), rate_limited(7.0, global_=True)])
def test_a_global_429_holds_the_whole_bot(exception: discord.HTTPException) -> None:
    error = classify(exception, CHAT)
    assert isinstance(error, RetryAfter)
    assert (error.seconds, error.chat_id) == (7.0, None)


def test_a_429_without_discords_headers_is_cloudflare_turning_the_whole_bot_away() -> None:
    error = classify(http_error(429), CHAT)
    assert isinstance(error, RetryAfter)
    assert error.chat_id is None
    assert error.seconds >= 1.0


def test_rate_limited_raised_by_discord_py_takes_its_scope_from_the_429_seen_on_the_wire() -> None:
    long_wait = discord.RateLimited(45.0)
    per_route = classify(long_wait, CHAT, seen=RateLimitSeen(45.0, is_global=False))
    whole_bot = classify(long_wait, CHAT, seen=RateLimitSeen(45.0, is_global=True))
    pre_emptive = classify(long_wait, CHAT)  # refused before sending: an exhausted route bucket
    assert isinstance(per_route, RetryAfter) and per_route.chat_id == CHAT
    assert isinstance(whole_bot, RetryAfter) and whole_bot.chat_id is None
    assert isinstance(pre_emptive, RetryAfter) and (pre_emptive.seconds, pre_emptive.chat_id) == (45.0, CHAT)


@pytest.mark.parametrize(
    ("status", "code"),
    [(403, 50007), (404, 10003), (404, 10013), (404, 10007)],
)
def test_a_learner_who_cannot_be_messaged_or_no_longer_exists_is_unreachable(status: int, code: int) -> None:
    error = classify(http_error(status, code), CHAT)
    assert isinstance(error, PermanentError)
    assert error.unreachable is True


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, 50035), (403, 50013), (403, 50001), (401, 0), (413, 40005), (404, 10008)],
)
def test_a_bad_request_or_missing_permission_is_permanent_but_keeps_the_learner(
    status: int, code: int
) -> None:
    error = classify(http_error(status, code), CHAT)
    assert isinstance(error, PermanentError)
    assert error.unreachable is False


def test_opening_dms_too_fast_makes_the_learner_wait() -> None:
    error = classify(http_error(400, 40003, "You are opening direct messages too fast."), CHAT)
    assert isinstance(error, RetryAfter)
    assert error.chat_id == CHAT
    assert error.seconds >= 30


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_transient(status: int) -> None:
    assert isinstance(classify(http_error(status), CHAT), TransientError)


@pytest.mark.parametrize(
    "exception",
    [
        ConnectionResetError(104, "Connection reset by peer"),
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientOSError(111, "Connection refused"),
        aiohttp.ConnectionTimeoutError("connect timed out"),
    ],
)
def test_failures_to_connect_or_resets_are_transient(exception: BaseException) -> None:
    assert isinstance(classify(exception, CHAT), TransientError)


@pytest.mark.parametrize("exception", [TimeoutError(), aiohttp.SocketTimeoutError("read timed out")])
def test_a_timeout_after_sending_is_ambiguous(exception: BaseException) -> None:
    error = classify(exception, CHAT)
    assert isinstance(error, AmbiguousError)
    assert "may have arrived" in error.reason


def test_a_refused_login_is_permanent() -> None:
    assert isinstance(classify(discord.LoginFailure("Improper token has been passed."), None), PermanentError)


def test_only_closed_dms_and_dm_throttling_call_for_the_fallback_thread() -> None:
    assert dms_refused(http_error(403, 50007))
    assert dms_refused(http_error(400, 40003))
    assert not dms_refused(http_error(404, 10003))
    assert not dms_refused(ConnectionResetError())
    assert error_code(http_error(404, 10013)) == 10013
    assert error_code(TimeoutError()) is None


def test_secrets_never_reach_the_reason() -> None:
    error = classify(
        http_error(400, 50035, "Invalid Form Body near sekrit-token"), CHAT, secrets=["sekrit-token"]
    )
    assert "sekrit-token" not in error.reason
    assert "<redacted>" in error.reason


@given(
    status=st.integers(min_value=400, max_value=599),
    code=st.sampled_from([0, 10003, 10007, 10013, 40003, 50001, 50007, 50013, 50035, 50083, 90001]),
)
def test_every_http_failure_gets_exactly_one_verdict(status: int, code: int) -> None:
    error = classify(http_error(status, code), CHAT)
    assert isinstance(error, PlatformError)
    if status >= 500 and code not in (10003, 10007, 10013, 40003, 50007):
        assert isinstance(error, TransientError)
    if isinstance(error, PermanentError) and error.unreachable:
        assert code in (10003, 10007, 10013, 50007)
    if isinstance(error, RetryAfter):
        assert error.seconds > 0


def test_rate_limit_headers_are_read_case_insensitively() -> None:
    assert rate_limit_seen(200, {"Retry-After": "3"}) is None
    assert rate_limit_seen(429, {"retry-after": "3", "x-ratelimit-scope": "shared"}) == RateLimitSeen(
        3.0, False
    )
    assert rate_limit_seen(429, {"X-RateLimit-Global": "true", "Retry-After": "9"}) == RateLimitSeen(
        9.0, True
    )
    assert rate_limit_seen(429, {}) == RateLimitSeen(1.0, False)
