"""The aiohttp request class under python-telegram-bot's Bot, and raw sendMessage calls, against the emulator.

The adapter's own tests (test_telegram_adapter.py) run every fault through both; here each failure is
checked where it arises: the PTB error, what `classify` makes of it, and what reached Telegram.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from PIL import Image
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.error import NetworkError, RetryAfter, TelegramError, TimedOut

from adapters.telegram.aiohttp_request import AiohttpRequest
from adapters.telegram.errors import classify
from adapters.telegram.raw_calls import quiet_raw_endpoint_warnings, send_raw
from bot.ports import AmbiguousError, PermanentError, TransientError
from tests.emulators.telegram_bot_api import Fault, FaultKind, TelegramEmulator, TelegramLimits, TelegramUser
from tests.test_telegram_adapter import free_port

ADA = TelegramUser(id=42, first_name="Ada", username="ada")


@pytest.fixture
async def emu() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator(limits=TelegramLimits(enabled=False)) as emulator:
        emulator.add_user(ADA)
        yield emulator


def make_bot(emu: TelegramEmulator, request: AiohttpRequest) -> Bot:
    return Bot(emu.token, base_url=emu.base_url, base_file_url=emu.file_base_url, request=request)


@pytest.fixture
async def bot(emu: TelegramEmulator) -> AsyncIterator[Bot]:
    async with make_bot(emu, AiohttpRequest(read_timeout=0.5, pool_timeout=0.2)) as started:
        yield started


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def param(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) and value[:1] in "{[" else value


async def test_a_message_with_buttons_arrives_as_sent(emu: TelegramEmulator, bot: Bot) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Done", callback_data="done:1")]])
    message = await bot.send_message(42, "<b>Lesson</b> one", parse_mode="HTML", reply_markup=keyboard)
    (record,) = emu.sent_to(42)
    assert message.message_id == record.message_id
    assert record.body == "Lesson one"
    assert record.callback_data == ("done:1",)
    assert param(record.params["reply_markup"]) == keyboard.to_dict()


async def test_an_upload_goes_as_multipart_and_its_file_can_be_downloaded(
    emu: TelegramEmulator, bot: Bot
) -> None:
    content = png()
    message = await bot.send_photo(42, InputFile(content, filename="dot.png"), caption="A dot")
    assert emu.texts_to(42) == ["A dot"]
    assert message.photo
    file = await bot.get_file(message.photo[-1].file_id)
    assert bytes(await file.download_as_bytearray()) == content


async def test_raw_send_message_returns_the_new_message_id(emu: TelegramEmulator, bot: Bot) -> None:
    quiet_raw_endpoint_warnings()
    ids = await send_raw(bot, "send_message", {"chat_id": 42, "text": "raw", "reply_markup": None})
    (record,) = emu.sent_to(42)
    assert ids == (str(record.message_id),)
    assert "reply_markup" not in record.params  # None values are dropped, as Bot.send_message drops them


class AnsweringBot(Bot):
    """A Bot whose raw calls get a fixed answer, as a broken proxy in front of Telegram might give."""

    def __init__(self, answer: object) -> None:
        super().__init__("123:ABC")
        self._answer = answer

    async def do_api_request(self, endpoint: str, api_kwargs: Any = None, *args: Any, **kwargs: Any) -> Any:
        return self._answer


@pytest.mark.parametrize("answer", [True, {}, {"message_id": "7"}, [{"message_id": 7}]])
async def test_a_raw_answer_without_a_message_id_is_ambiguous(answer: object) -> None:
    with pytest.raises(TelegramError) as raised:
        await send_raw(AnsweringBot(answer), "send_message", {"chat_id": 42, "text": "hi"})
    assert isinstance(classify(raised.value, "42"), AmbiguousError)  # Telegram may have sent it


async def test_flood_control_keeps_retry_after(emu: TelegramEmulator, bot: Bot) -> None:
    emu.faults.add(Fault(FaultKind.TOO_MANY_REQUESTS, method="sendMessage", retry_after=9))
    with pytest.raises(RetryAfter) as raised:
        await bot.send_message(42, "too fast")
    result = classify(raised.value, "42")
    assert result.reason.startswith("RetryAfter")
    assert (getattr(result, "seconds", None), getattr(result, "chat_id", None)) == (9.0, "42")


@pytest.mark.parametrize("status", [500, 502])
async def test_a_server_error_is_transient(emu: TelegramEmulator, bot: Bot, status: int) -> None:
    emu.faults.add(Fault(FaultKind.SERVER_ERROR, method="sendMessage", status=status))
    with pytest.raises(NetworkError) as raised:
        await bot.send_message(42, "hello")
    assert isinstance(classify(raised.value, "42"), TransientError)
    assert emu.sent_to(42) == []


async def test_a_blocked_learner_is_unreachable(emu: TelegramEmulator, bot: Bot) -> None:
    emu.block_bot(ADA.id)
    with pytest.raises(TelegramError) as raised:
        await bot.send_message(42, "hello")
    result = classify(raised.value, "42")
    assert isinstance(result, PermanentError)
    assert result.unreachable


async def test_a_reset_connection_is_transient_and_the_next_call_reconnects(
    emu: TelegramEmulator, bot: Bot
) -> None:
    emu.faults.add(Fault(FaultKind.RESET, method="sendMessage"))
    with pytest.raises(NetworkError) as raised:
        await bot.send_message(42, "reset")
    assert isinstance(classify(raised.value, "42"), TransientError)
    await bot.send_message(42, "again")
    assert emu.texts_to(42) == ["again"]


@pytest.mark.parametrize("kind", [FaultKind.TIMEOUT_BEFORE, FaultKind.TIMEOUT_AFTER])
async def test_a_late_answer_is_ambiguous(emu: TelegramEmulator, bot: Bot, kind: FaultKind) -> None:
    emu.faults.add(Fault(kind, method="sendMessage", delay=2.0))
    with pytest.raises(TimedOut) as raised:
        await bot.send_message(42, "late")
    assert isinstance(classify(raised.value, "42"), AmbiguousError)
    assert len(emu.sent_to(42)) == (1 if kind is FaultKind.TIMEOUT_AFTER else 0)


async def test_waiting_for_a_free_connection_times_out_before_sending(emu: TelegramEmulator) -> None:
    request = AiohttpRequest(connection_pool_size=1, read_timeout=5.0, pool_timeout=0.1)
    async with make_bot(emu, request) as bot:
        emu.faults.add(Fault(FaultKind.SLOW, method="sendMessage", chat_id=42, delay=1.0))
        slow = asyncio.create_task(bot.send_message(42, "slow"))
        await emu.wait_for(lambda: any(record.chat_id == 42 for record in emu.requests))
        with pytest.raises(TimedOut) as raised:
            await bot.send_message(43, "queued behind")
        result = classify(raised.value, "43")
        assert isinstance(result, TransientError)
        assert "never sent" in result.reason
        await slow
        await bot.send_message(43, "after")  # the connection is free again
    assert emu.texts_to(43) == ["after"]


async def test_a_refused_connection_is_transient() -> None:
    request = AiohttpRequest(connect_timeout=1.0)
    await request.initialize()
    try:
        with pytest.raises(NetworkError) as raised:
            await request.post(f"http://127.0.0.1:{free_port()}/bot123:ABC/getMe")
    finally:
        await request.shutdown()
    assert isinstance(classify(raised.value), TransientError)


async def test_calls_before_initialize_or_after_shutdown_are_refused(emu: TelegramEmulator) -> None:
    request = AiohttpRequest()
    url = f"{emu.base_url}{emu.token}/getMe"
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request(url, "POST")
    await request.initialize()
    await request.initialize()  # a second initialize keeps the open session
    status, payload = await request.do_request(url, "POST")
    assert status == 200
    assert json.loads(payload)["result"]["username"] == "dripcourse_bot"
    await request.shutdown()
    await request.shutdown()
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request(url, "POST")


def test_a_pool_needs_a_connection() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        AiohttpRequest(connection_pool_size=0)
