"""The Telegram adapter over real HTTP: python-telegram-bot against the Bot API emulator on loopback."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from pydantic import SecretStr
from telegram import Bot, BotCommandScopeChat, BotCommandScopeDefault

from adapters.telegram import HttpOptions, TelegramAdapter
from bot.content import MediaKind
from bot.ports import (
    AlbumPart,
    AmbiguousError,
    Button,
    ButtonPressed,
    ChatMigrated,
    Command,
    FilePart,
    InboundEvent,
    LinkButton,
    LocationShared,
    MediaPart,
    PermanentError,
    PlatformError,
    QuizAnswered,
    QuizPart,
    Reply,
    RequestLocationButton,
    RetryAfter,
    TextPart,
    TextReceived,
    TransientError,
)
from bot.settings import TelegramSettings
from tests.conftest import free_port
from tests.emulators.telegram_bot_api import (
    Fault,
    FaultKind,
    SentRecord,
    TelegramEmulator,
    TelegramLimits,
    TelegramUser,
)

ADA = TelegramUser(42, "Ada", username="ada", language_code="en", last_name="Lovelace")
GROUP_ID = -100500
LEARNER_COMMANDS = [("start", "Start or enrol"), ("progress", "Where you are")]
ADMIN_COMMANDS = [("stats", "Course statistics"), ("broadcast", "Message every learner")]

StartAdapter = Callable[..., Awaitable[TelegramAdapter]]


class FakeCore:
    """The core's inbound callback: records every event and answers it with `answer(event)`."""

    def __init__(self, answer: Callable[[InboundEvent], Reply] | None = None) -> None:
        self.events: list[InboundEvent] = []
        self.answer = answer or (lambda event: Reply((TextPart(f"got {type(event).__name__}"),)))
        self._changed = asyncio.Condition()

    async def __call__(self, event: InboundEvent) -> Reply:
        self.events.append(event)
        async with self._changed:
            self._changed.notify_all()
        return self.answer(event)

    async def event(self, number: int) -> InboundEvent:
        """The `number`th event (1-based), once it has arrived (within five seconds)."""
        async with asyncio.timeout(5.0), self._changed:
            await self._changed.wait_for(lambda: len(self.events) >= number)
        return self.events[number - 1]


@pytest.fixture
async def emu() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator(limits=TelegramLimits(enabled=False)) as emulator:
        emulator.add_user(ADA)
        emulator.add_group(GROUP_ID, "Async learners", supergroup=True)
        yield emulator


def settings_for(emu: TelegramEmulator, **overrides: Any) -> TelegramSettings:
    return TelegramSettings(
        token=SecretStr(emu.token),
        api_base_url=emu.base_url,
        file_base_url=emu.file_base_url,
        **overrides,
    )


@pytest.fixture
async def start_adapter(emu: TelegramEmulator) -> AsyncIterator[StartAdapter]:
    """Starts adapters on the emulator (polling unless settings say otherwise) and stops them afterwards."""
    started: list[TelegramAdapter] = []

    async def start(
        core: FakeCore | None = None, *, settings: TelegramSettings | None = None, **options: Any
    ) -> TelegramAdapter:
        options.setdefault("http", HttpOptions(read_timeout=2.0))
        adapter = TelegramAdapter(
            settings or settings_for(emu),
            learner_commands=LEARNER_COMMANDS,
            admin_commands=ADMIN_COMMANDS,
            **options,
        )
        await adapter.start(core or FakeCore())
        started.append(adapter)
        return adapter

    yield start
    for adapter in started:
        await adapter.stop()


def png(tmp_path: Path, name: str = "diagram.png") -> Path:
    path = tmp_path / name
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


def param(record: SentRecord, name: str) -> Any:
    """A request parameter as sent; nested objects travel as JSON strings in form bodies."""
    value = record.params[name]
    return json.loads(value) if isinstance(value, str) and value[:1] in "{[" else value


# --- lifecycle -----------------------------------------------------------------------------------


async def test_start_publishes_learner_menu_for_everyone_and_admin_menu_for_admins(
    emu: TelegramEmulator, start_adapter: StartAdapter
) -> None:
    await start_adapter(admin_chat_ids=["42"])
    async with Bot(emu.token, base_url=emu.base_url, base_file_url=emu.file_base_url) as bot:
        everyone = await bot.get_my_commands(scope=BotCommandScopeDefault())
        admin = await bot.get_my_commands(scope=BotCommandScopeChat(42))
    assert [command.command for command in everyone] == ["start", "progress"]
    assert [command.command for command in admin] == ["start", "progress", "stats", "broadcast"]


async def test_a_wrong_token_fails_start_with_a_permanent_error(emu: TelegramEmulator) -> None:
    emu.accept_any_token = False
    settings = TelegramSettings(
        token=SecretStr("987654321:WRONGtokenWRONGtokenWRONG"),
        api_base_url=emu.base_url,
        file_base_url=emu.file_base_url,
    )
    adapter = TelegramAdapter(settings, learner_commands=[], admin_commands=[])
    with pytest.raises(PermanentError) as failure:
        await adapter.start(FakeCore())
    assert "WRONGtoken" not in failure.value.reason
    await adapter.stop()


async def test_sends_work_before_start_and_stop_lets_sends_in_flight_finish(emu: TelegramEmulator) -> None:
    # The outbox may start draining before the adapter starts receiving, and is drained after it stops.
    adapter = TelegramAdapter(settings_for(emu), learner_commands=[], admin_commands=[])
    try:
        await adapter.send("42", TextPart("before start"))
        emu.faults.add(Fault(FaultKind.SLOW, method="sendMessage", chat_id=42, delay=0.3))
        in_flight = asyncio.create_task(adapter.send("42", TextPart("in flight at stop")))
        await emu.wait_for(lambda: len([request for request in emu.requests if request.chat_id == 42]) == 2)
        await adapter.stop()
        assert (await in_flight).message_ids
        assert emu.texts_to(42) == ["before start", "in flight at stop"]
        with pytest.raises(TransientError):
            await adapter.send("42", TextPart("after stop"))
    finally:
        await adapter.stop()


async def test_a_sending_only_worker_never_asks_for_updates(
    emu: TelegramEmulator, start_adapter: StartAdapter
) -> None:
    # Telegram answers a second getUpdates caller with 409 Conflict: extra workers must only send.
    adapter = await start_adapter(settings=settings_for(emu, receive_updates=False))
    await adapter.send("42", TextPart("from a sending-only worker"))
    assert emu.texts_to(42) == ["from a sending-only worker"]
    assert not [
        request for request in emu.requests if request.method in ("getUpdates", "setWebhook", "deleteWebhook")
    ]


# --- sending every part --------------------------------------------------------------------------


async def test_text_with_inline_buttons_is_html_without_link_previews(
    emu: TelegramEmulator, start_adapter: StartAdapter
) -> None:
    adapter = await start_adapter()
    part = TextPart(
        "<b>Lesson 1</b> of <i>Async</i>",
        (Button("✅ Done", "done:1"), LinkButton("💬 Discuss", "https://t.me/c/1/2")),
    )
    sent = await adapter.send("42", part)
    (record,) = emu.sent_to(42)
    assert sent.message_ids == (str(record.message_id),)
    assert record.method == "sendMessage"
    assert record.text == "Lesson 1 of Async"  # Telegram strips the tags it parsed into entities
    assert {entity["type"] for entity in record.entities} == {"bold", "italic"}
    assert record.parse_mode == "HTML"
    assert param(record, "link_preview_options") == {"is_disabled": True}
    assert record.reply_markup == {
        "inline_keyboard": [
            [
                {"text": "✅ Done", "callback_data": "done:1"},
                {"text": "💬 Discuss", "url": "https://t.me/c/1/2"},
            ]
        ]
    }
    assert not record.paid_broadcast


async def test_an_edit_replaces_text_and_buttons_and_an_unchanged_edit_counts_as_done(
    emu: TelegramEmulator, start_adapter: StartAdapter
) -> None:
    adapter = await start_adapter()
    sent = await adapter.send(
        "42", TextPart("Broadcast #1: 0 of 2 sent", (Button("Cancel", "bcast:1:cancel"),))
    )
    (message_id,) = sent.message_ids
    final = TextPart("Broadcast #1 <b>finished</b>: 2 of 2 sent")
    await adapter.edit("42", message_id, final)
    message = emu.message(ADA.id, int(message_id))
    assert message is not None
    assert message["text"] == "Broadcast #1 finished: 2 of 2 sent"
    assert [entity["type"] for entity in message["entities"]] == ["bold"]
    assert "reply_markup" not in message  # the Cancel button went with the edit
    await adapter.edit("42", message_id, final)  # Telegram answers 400 "message is not modified"
    edits = [request for request in emu.requests if request.method == "editMessageText"]
    assert [request.status for request in edits] == [200, 400]
    assert "message is not modified" in edits[1].description
    assert len(emu.sent_to(42)) == 1


async def test_editing_a_deleted_message_is_a_permanent_error_but_not_an_unreachable_chat(
    emu: TelegramEmulator, start_adapter: StartAdapter
) -> None:
    adapter = await start_adapter()
    (message_id,) = (await adapter.send("42", TextPart("Broadcast #1: 0 of 2 sent"))).message_ids
    emu.user_deletes_message(ADA.id, int(message_id))
    with pytest.raises(PermanentError) as gone:
        await adapter.edit("42", message_id, TextPart("Broadcast #1: 1 of 2 sent"))
    assert gone.value.reason == "BadRequest: Message to edit not found"
    assert not gone.value.unreachable
    emu.block_bot(ADA.id)
    with pytest.raises(PermanentError) as blocked:
        await adapter.edit("42", message_id, TextPart("Broadcast #1: 2 of 2 sent"))
    assert blocked.value.unreachable


async def test_location_request_is_a_one_time_reply_keyboard_on_its_own_message(
    emu: TelegramEmulator, start_adapter: StartAdapter
) -> None:
    adapter = await start_adapter()
    part = TextPart(
        "Which time zone?", (Button("Berlin", "zone:1:Europe/Berlin"), RequestLocationButton("📍 Here"))
    )
    sent = await adapter.send("42", part)
    first, second = emu.sent_to(42)
    assert len(sent.message_ids) == 2
    assert first.reply_markup == {
        "inline_keyboard": [[{"text": "Berlin", "callback_data": "zone:1:Europe/Berlin"}]]
    }
    assert second.reply_markup is not None
    assert second.reply_markup["keyboard"] == [[{"text": "📍 Here", "request_location": True}]]
    assert second.reply_markup["one_time_keyboard"] is True


async def test_media_is_uploaded_once_then_sent_by_file_id(
    emu: TelegramEmulator, start_adapter: StartAdapter, tmp_path: Path
) -> None:
    adapter = await start_adapter()
    path = png(tmp_path)
    first = await adapter.send(
        "42", MediaPart(MediaKind.IMAGE, path, caption="<b>Figure 1</b>", file_key="sha-diagram")
    )
    file_id = first.uploaded_file_ids["sha-diagram"]
    second = await adapter.send(
        "42", MediaPart(MediaKind.IMAGE, path, caption="again", file_key="sha-diagram", file_id=file_id)
    )
    upload, reuse = emu.sent_to(42)
    assert (upload.method, upload.caption, upload.parse_mode) == ("sendPhoto", "Figure 1", "HTML")
    assert file_id == upload.file_ids[-1]  # the largest size Telegram made
    assert second.uploaded_file_ids == {}
    assert reuse.params["photo"] == file_id
    assert reuse.file_ids == upload.file_ids


@pytest.mark.parametrize(
    ("kind", "method", "filename"),
    [
        (MediaKind.AUDIO, "sendAudio", "talk.mp3"),
        (MediaKind.VOICE, "sendVoice", "note.ogg"),
        (MediaKind.VIDEO, "sendVideo", "demo.mp4"),
        (MediaKind.DOCUMENT, "sendDocument", "slides.pdf"),
    ],
)
async def test_each_media_kind_uses_its_method(
    emu: TelegramEmulator,
    start_adapter: StartAdapter,
    tmp_path: Path,
    kind: MediaKind,
    method: str,
    filename: str,
) -> None:
    adapter = await start_adapter()
    path = tmp_path / filename
    path.write_bytes(b"\x00media-bytes-" + filename.encode())
    button = Button("✅ Done", "done:3")
    sent = await adapter.send("42", MediaPart(kind, path, caption="Listen", file_key="k", buttons=(button,)))
    (record,) = emu.sent_to(42)
    assert record.method == method
    assert record.caption == "Listen"
    assert record.callback_data == ("done:3",)
    assert sent.uploaded_file_ids == {"k": record.file_ids[0]}


async def test_album_is_one_media_group_and_reports_each_upload(
    emu: TelegramEmulator, start_adapter: StartAdapter, tmp_path: Path
) -> None:
    adapter = await start_adapter()
    part = AlbumPart(
        (
            MediaPart(MediaKind.IMAGE, png(tmp_path, "a.png"), caption="Before", file_key="ka"),
            MediaPart(MediaKind.IMAGE, png(tmp_path, "b.png"), caption="After", file_key="kb"),
        )
    )
    sent = await adapter.send("42", part)
    records = emu.sent_to(42)
    assert [record.method for record in records] == ["sendMediaGroup", "sendMediaGroup"]
    assert [record.caption for record in records] == ["Before", "After"]
    assert len({record.media_group_id for record in records}) == 1
    assert sent.message_ids == tuple(str(record.message_id) for record in records)
    assert sent.uploaded_file_ids == {"ka": records[0].file_ids[-1], "kb": records[1].file_ids[-1]}


async def test_native_quiz_returns_the_poll_id_and_its_answer_comes_back(
    emu: TelegramEmulator, start_adapter: StartAdapter
) -> None:
    core = FakeCore()
    adapter = await start_adapter(core)
    quiz = QuizPart(
        "Which is async?", ("Email", "Phone call"), 0, "Email waits for you.", "quiz:5:", native=True
    )
    sent = await adapter.send("42", quiz)
    (record,) = emu.sent_to(42)
    assert record.poll is not None
    assert sent.poll_id == record.poll.id
    assert (record.poll.type, record.poll.is_anonymous, record.poll.correct_option_ids) == (
        "quiz",
        False,
        (0,),
    )
    assert record.poll.explanation == "Email waits for you."
    emu.user_answers_poll(ADA, record.poll.id, [1])
    event = await core.event(1)
    assert event == QuizAnswered(event.sender, record.poll.id, 1)
    assert event.sender.chat_id == "42"


async def test_button_quiz_for_a_non_native_quiz(emu: TelegramEmulator, start_adapter: StartAdapter) -> None:
    adapter = await start_adapter()
    quiz = QuizPart("Is a forum async?", ("Yes", "No"), 0, "", "quiz:5:", native=False)
    sent = await adapter.send("42", quiz)
    (record,) = emu.sent_to(42)
    assert sent.poll_id is None
    assert record.method == "sendMessage"
    assert record.text == "Is a forum async?"
    assert record.callback_data == ("quiz:5:0", "quiz:5:1")


async def test_generated_files_go_as_document_or_photo(
    emu: TelegramEmulator, start_adapter: StartAdapter, tmp_path: Path
) -> None:
    adapter = await start_adapter()
    await adapter.send("42", FilePart("progress.csv", b"lesson,done\n1,yes\n", caption="Your export"))
    await adapter.send("42", FilePart("chart.png", png(tmp_path).read_bytes(), as_photo=True))
    document, photo = emu.sent_to(42)
    assert (document.method, document.caption, document.media_kind) == (
        "sendDocument",
        "Your export",
        "document",
    )
    assert document.message["document"]["file_name"] == "progress.csv"
    assert photo.method == "sendPhoto"


async def test_paid_broadcast_is_requested_on_sends(
    emu: TelegramEmulator, start_adapter: StartAdapter
) -> None:
    adapter = await start_adapter(paid_broadcast=True)
    await adapter.send("42", TextPart("Announcement"))
    (record,) = emu.sent_to(42)
    assert record.paid_broadcast


# --- inbound events and replies ------------------------------------------------------------------


async def test_text_command_and_location_reach_the_core_and_replies_come_back(
    emu: TelegramEmulator, start_adapter: StartAdapter
) -> None:
    core = FakeCore()
    await start_adapter(core)
    emu.user_sends_command(ADA, "/start", payload="async-learning")
    start = await core.event(1)
    assert isinstance(start, Command)
    assert (start.name, start.args) == ("start", "async-learning")
    sender = start.sender
    assert (sender.platform, sender.user_id, sender.chat_id, sender.display_name) == (
        "telegram",
        "42",
        "42",
        "Ada Lovelace",
    )
    assert (sender.language_code, sender.is_private) == ("en", True)
    await emu.wait_for(lambda: emu.texts_to(42) == ["got Command"])

    emu.user_sends_text(ADA, "Lisbon")
    text = await core.event(2)
    assert isinstance(text, TextReceived)
    assert text.text == "Lisbon"

    emu.user_shares_location(ADA, 38.72, -9.14)
    location = await core.event(3)
    assert isinstance(location, LocationShared)
    assert (location.latitude, location.longitude) == (38.72, -9.14)
    await emu.wait_for(lambda: emu.texts_to(42) == ["got Command", "got TextReceived", "got LocationShared"])


async def test_button_press_is_answered_at_once_and_reaches_the_core(
    emu: TelegramEmulator, start_adapter: StartAdapter
) -> None:
    core = FakeCore()
    adapter = await start_adapter(core)
    sent = await adapter.send("42", TextPart("Lesson 1", (Button("✅ Done", "done:1"),)))
    update = emu.user_presses_button(ADA, int(sent.message_ids[0]), "done:1")
    assert update is not None
    query_id = update["callback_query"]["id"]
    event = await core.event(1)
    assert event == ButtonPressed(event.sender, "done:1", sent.message_ids[0])
    await emu.wait_for(lambda: emu.callback_answer(query_id) is not None)
    await emu.wait_for(lambda: "got ButtonPressed" in emu.texts_to(42))


async def test_group_commands_for_the_bot_are_answered_privately_with_a_pointer_in_the_group(
    emu: TelegramEmulator, start_adapter: StartAdapter
) -> None:
    core = FakeCore(lambda event: Reply((TextPart("You finished 3 of 10 lessons."),), private=True))
    await start_adapter(core, http=HttpOptions(concurrent_updates=1))
    emu.group_message(GROUP_ID, ADA, "plain chatter is not for the bot")
    emu.user_sends_command(ADA, "/progress@someotherbot", chat_id=GROUP_ID, mention=False)
    emu.user_sends_command(ADA, "/progress", chat_id=GROUP_ID)  # names this bot: /progress@dripcourse_bot
    event = await core.event(1)
    assert isinstance(event, Command)
    assert event.name == "progress"
    assert not event.sender.is_private
    await emu.wait_for(lambda: emu.texts_to(42) == ["You finished 3 of 10 lessons."])
    (pointer,) = await emu.wait_for(lambda: emu.sent_to(GROUP_ID))
    assert "private chat" in (pointer.text or "")
    assert pointer.reply_markup == {
        "inline_keyboard": [[{"text": "Open private chat", "url": "https://t.me/dripcourse_bot"}]]
    }
    assert len(core.events) == 1


async def test_group_start_with_a_blocked_private_chat_points_to_a_deep_link(
    emu: TelegramEmulator, start_adapter: StartAdapter
) -> None:
    core = FakeCore(lambda event: Reply((TextPart("Welcome to the course."),), private=True))
    await start_adapter(core)
    emu.block_bot(ADA.id)
    emu.user_sends_command(ADA, "/start", payload="async-learning", chat_id=GROUP_ID)
    (pointer,) = await emu.wait_for(lambda: emu.sent_to(GROUP_ID))
    assert "press Start" in (pointer.text or "")
    assert pointer.reply_markup == {
        "inline_keyboard": [
            [{"text": "Open private chat", "url": "https://t.me/dripcourse_bot?start=async-learning"}]
        ]
    }
    assert emu.sent_to(42) == []


async def test_a_failing_core_is_logged_once_and_the_bot_keeps_going(
    emu: TelegramEmulator, start_adapter: StartAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    def answer(event: InboundEvent) -> Reply:
        if isinstance(event, TextReceived) and event.text == "boom":
            raise RuntimeError("core exploded")
        return Reply((TextPart("fine"),))

    core = FakeCore(answer)
    await start_adapter(core, http=HttpOptions(concurrent_updates=1))
    emu.user_sends_text(ADA, "boom")
    emu.user_sends_text(ADA, "hello")
    await emu.wait_for(lambda: emu.texts_to(42) == ["fine"])
    failures = [
        record for record in caplog.records if record.exc_info and "core exploded" in str(record.exc_info[1])
    ]
    assert len(failures) == 1


# --- webhook mode --------------------------------------------------------------------------------


async def test_webhook_mode_receives_updates_and_refuses_a_wrong_secret(
    emu: TelegramEmulator, start_adapter: StartAdapter
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/hook"
    settings = settings_for(
        emu,
        mode="webhook",
        webhook_url=url,
        webhook_listen="127.0.0.1",
        webhook_port=port,
        webhook_secret=SecretStr("hook-secret_0123456789"),
    )
    core = FakeCore()
    await start_adapter(core, settings=settings)
    emu.user_sends_text(ADA, "via webhook")
    event = await core.event(1)
    assert isinstance(event, TextReceived)
    assert event.text == "via webhook"
    await emu.wait_for(lambda: emu.texts_to(42) == ["got TextReceived"])
    assert [attempt.status for attempt in emu.webhook_attempts] == [200]

    update = {
        "update_id": 999,
        "message": {"message_id": 1, "date": 0, "chat": {"id": 42, "type": "private"}},
    }
    async with httpx.AsyncClient() as client:
        wrong = await client.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "guess"})
        missing = await client.post(url, json=update)
    assert (wrong.status_code, missing.status_code) == (403, 403)
    assert len(core.events) == 1


# --- faults --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault(FaultKind.TOO_MANY_REQUESTS, retry_after=7), RetryAfter),
        (Fault(FaultKind.SERVER_ERROR, status=500), TransientError),
        (Fault(FaultKind.SERVER_ERROR, status=502), TransientError),
        (Fault(FaultKind.RESET), TransientError),
        (Fault(FaultKind.TIMEOUT_BEFORE), AmbiguousError),
        (Fault(FaultKind.TIMEOUT_AFTER), AmbiguousError),
        (Fault(FaultKind.BLOCKED), PermanentError),
        (Fault(FaultKind.CHAT_NOT_FOUND), PermanentError),
        (Fault(FaultKind.MIGRATED, migrate_to_chat_id=-1009999), ChatMigrated),
        (Fault(FaultKind.BAD_REQUEST, description="message to reply not found"), PermanentError),
    ],
    ids=lambda value: value.kind if isinstance(value, Fault) else "",
)
async def test_each_fault_surfaces_as_its_platform_error(
    emu: TelegramEmulator, start_adapter: StartAdapter, fault: Fault, expected: type[PlatformError]
) -> None:
    adapter = await start_adapter(http=HttpOptions(read_timeout=0.3))
    fault.method, fault.chat_id = "sendMessage", 42
    emu.faults.add(fault)
    with pytest.raises(expected) as raised:
        await adapter.send("42", TextPart("Lesson 1"))
    error = raised.value
    assert type(error) is expected  # never a raw python-telegram-bot error
    if isinstance(error, RetryAfter):
        assert (error.seconds, error.chat_id) == (7.0, "42")
    if isinstance(error, ChatMigrated):
        assert error.new_chat_id == "-1009999"
    if fault.kind in (FaultKind.BLOCKED, FaultKind.CHAT_NOT_FOUND):
        assert isinstance(error, PermanentError)
        assert error.unreachable
    if fault.kind is FaultKind.BAD_REQUEST:
        assert isinstance(error, PermanentError)
        assert not error.unreachable
        assert "message to reply not found" in error.reason.lower()
    # A read timeout cannot tell "held before" from "held after" Telegram took the call, so both are
    # ambiguous; only the second leaves a message behind. (Never sent at all: the pool timeout test.)
    assert len(emu.sent_to(42)) == (1 if fault.kind is FaultKind.TIMEOUT_AFTER else 0)
    await adapter.send("42", TextPart("Lesson 1 again"))  # the next call goes through
    assert emu.texts_to(42)[-1] == "Lesson 1 again"


async def test_waiting_for_a_free_connection_never_sent_the_request(
    emu: TelegramEmulator, start_adapter: StartAdapter
) -> None:
    adapter = await start_adapter(http=HttpOptions(pool_size=1, pool_timeout=0.2, read_timeout=5.0))
    emu.faults.add(Fault(FaultKind.SLOW, method="sendMessage", chat_id=42, delay=1.0))
    slow = asyncio.create_task(adapter.send("42", TextPart("slow")))
    await emu.wait_for(lambda: any(request.chat_id == 42 for request in emu.requests))
    with pytest.raises(TransientError):
        await adapter.send("43", TextPart("queued behind"))
    await slow
    assert emu.texts_to(43) == []


async def test_a_blocked_learner_and_a_real_bad_request(
    emu: TelegramEmulator, start_adapter: StartAdapter
) -> None:
    adapter = await start_adapter()
    with pytest.raises(PermanentError) as bad_html:
        await adapter.send("42", TextPart("<b>unclosed"))
    assert not bad_html.value.unreachable
    assert "parse entities" in bad_html.value.reason.lower()
    emu.block_bot(ADA.id)
    with pytest.raises(PermanentError) as blocked:
        await adapter.send("42", TextPart("Lesson 2"))
    assert blocked.value.unreachable


async def test_a_missing_media_file_is_a_permanent_error(start_adapter: StartAdapter, tmp_path: Path) -> None:
    adapter = await start_adapter()
    with pytest.raises(PermanentError) as missing:
        await adapter.send("42", MediaPart(MediaKind.IMAGE, tmp_path / "gone.png", file_key="k"))
    assert "gone.png" in missing.value.reason


# --- secrets in logs -----------------------------------------------------------------------------


async def test_the_token_never_reaches_the_logs_even_with_faults_and_verbose_http_logging(
    emu: TelegramEmulator, start_adapter: StartAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.WARNING, logger="aiohttp.access")  # the emulator's log: Telegram's side
    adapter = await start_adapter(http=HttpOptions(read_timeout=0.3))
    assert logging.getLogger("httpx").level == logging.WARNING
    caplog.set_level(logging.DEBUG, logger="httpx")  # as if an operator turned HTTP logging back on
    for kind in (FaultKind.SERVER_ERROR, FaultKind.RESET, FaultKind.TIMEOUT_AFTER, FaultKind.BLOCKED):
        emu.faults.add(Fault(kind, method="sendMessage", chat_id=42))
        with pytest.raises(PlatformError):
            await adapter.send("42", TextPart("Lesson"))
    await adapter.send("42", TextPart("Lesson"))
    logging.getLogger("telegram.ext.ExtBot").warning("token check %s", f"{emu.base_url}{emu.token}/getMe")
    await adapter.stop()
    token = emu.token
    http_lines = [record.getMessage() for record in caplog.records if record.name.startswith("httpx")]
    assert any("<redacted>" in line for line in http_lines), "httpx should have logged its request URLs"
    assert token not in caplog.text
    assert token.split(":")[1] not in caplog.text
    assert all(token not in record.getMessage() for record in caplog.records)
