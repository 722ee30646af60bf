"""Telegram errors classified into the core's PlatformError classes (pure, no network)."""

from __future__ import annotations

import warnings

import aiohttp
import httpx
import pytest
from telegram import error as tg

from adapters.telegram.aiohttp_request import PoolTimeoutError
from adapters.telegram.errors import REDACTED, classify
from bot.ports import AmbiguousError, ChatMigrated, PermanentError, PlatformError, RetryAfter, TransientError

REQUEST = httpx.Request("POST", "http://127.0.0.1/bot123:SECRET/sendMessage")


def caused_by(error: tg.TelegramError, cause: BaseException) -> tg.TelegramError:
    """`error` as PTB raises it: `raise error from cause`."""
    error.__cause__ = cause
    return error


def test_retry_after_keeps_the_seconds_and_the_chat() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB's own constructor reads its deprecated int attribute
        flood = tg.RetryAfter(17)
    result = classify(flood, "42")
    assert isinstance(result, RetryAfter)
    assert (result.seconds, result.chat_id) == (17.0, "42")


@pytest.mark.parametrize(
    "description",
    [
        "Forbidden: bot was blocked by the user",
        "Forbidden: user is deactivated",
        "Forbidden: bot was kicked from the group chat",
        "Forbidden: bot can't initiate conversation with a user",
    ],
)
def test_forbidden_means_unreachable(description: str) -> None:
    result = classify(tg.Forbidden(description), "42")
    assert isinstance(result, PermanentError)
    assert result.unreachable
    assert description.removeprefix("Forbidden: ") in result.reason


def test_missing_rights_in_a_group_is_permanent_but_keeps_the_chat() -> None:
    result = classify(tg.Forbidden("Forbidden: not enough rights to send text messages to the chat"))
    assert isinstance(result, PermanentError)
    assert not result.unreachable


def test_chat_not_found_means_unreachable() -> None:
    result = classify(tg.BadRequest("Bad Request: chat not found"), "42")
    assert isinstance(result, PermanentError)
    assert result.unreachable


def test_other_bad_requests_are_permanent_with_the_description() -> None:
    result = classify(tg.BadRequest("Bad Request: can't parse entities: unsupported start tag"), "42")
    assert isinstance(result, PermanentError)
    assert not result.unreachable
    assert "unsupported start tag" in result.reason


def test_chat_migrated_carries_the_new_chat_id() -> None:
    result = classify(tg.ChatMigrated(-1009876), "-55")
    assert isinstance(result, ChatMigrated)
    assert result.new_chat_id == "-1009876"


@pytest.mark.parametrize(
    "cause",
    [httpx.ConnectTimeout("connect", request=REQUEST), httpx.PoolTimeout("pool", request=REQUEST)],
)
def test_timeout_before_sending_is_transient(cause: httpx.TimeoutException) -> None:
    assert isinstance(classify(caused_by(tg.TimedOut(), cause)), TransientError)


@pytest.mark.parametrize(
    "cause",
    [httpx.ReadTimeout("read", request=REQUEST), httpx.WriteTimeout("write", request=REQUEST), None],
)
def test_timeout_after_sending_is_ambiguous(cause: httpx.TimeoutException | None) -> None:
    error = tg.TimedOut() if cause is None else caused_by(tg.TimedOut(), cause)
    assert isinstance(classify(error), AmbiguousError)


@pytest.mark.parametrize(
    "cause",
    [
        httpx.ConnectError("[Errno 111] Connection refused", request=REQUEST),
        httpx.RemoteProtocolError("Server disconnected without sending a response.", request=REQUEST),
        httpx.ReadError("[Errno 104] Connection reset by peer", request=REQUEST),
    ],
)
def test_connection_errors_and_resets_are_transient(cause: httpx.TransportError) -> None:
    error = caused_by(tg.NetworkError(f"httpx.{type(cause).__name__}: {cause}"), cause)
    assert isinstance(classify(error), TransientError)


@pytest.mark.parametrize("description", ["Internal Server Error", "Bad Gateway (502)", "Service Unavailable"])
def test_server_errors_are_transient(description: str) -> None:
    assert isinstance(classify(tg.NetworkError(description)), TransientError)


def test_a_file_too_large_is_permanent() -> None:
    result = classify(tg.NetworkError("Request Entity Too Large"))
    assert isinstance(result, PermanentError)
    assert not result.unreachable


def test_bot_level_failures_are_permanent_and_unparseable_answers_ambiguous() -> None:
    assert isinstance(classify(tg.InvalidToken()), PermanentError)
    assert isinstance(classify(tg.Conflict("terminated by other getUpdates request")), PermanentError)
    assert isinstance(classify(tg.TelegramError("Invalid server response")), AmbiguousError)


def test_secrets_never_reach_the_reason() -> None:
    error = tg.BadRequest("Bad Request: wrong url http://x/bot123:SECRET/sendMessage")
    result = classify(error, secrets=["123:SECRET"])
    assert "123:SECRET" not in result.reason
    assert REDACTED in result.reason


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        (aiohttp.ConnectionTimeoutError("Connection timeout to host"), TransientError),
        (PoolTimeoutError(), TransientError),
        (aiohttp.SocketTimeoutError("Timeout on reading data from socket"), AmbiguousError),
        (TimeoutError(), AmbiguousError),
    ],
    ids=lambda value: type(value).__name__,
)
def test_aiohttp_timeouts_tell_never_sent_from_may_have_arrived(
    cause: BaseException, expected: type[PlatformError]
) -> None:
    result = classify(caused_by(tg.TimedOut(), cause), "42")
    assert type(result) is expected


@pytest.mark.parametrize(
    "cause",
    [aiohttp.ServerDisconnectedError(), aiohttp.ClientOSError(104, "Connection reset by peer")],
    ids=lambda value: type(value).__name__,
)
def test_an_aiohttp_connection_failure_is_transient(cause: BaseException) -> None:
    result = classify(caused_by(tg.NetworkError(f"aiohttp.{type(cause).__name__}"), cause), "42")
    assert isinstance(result, TransientError)
