"""The Telegram Bot API emulator, driven by the real python-telegram-bot stack over loopback HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import io
import json
import subprocess
import sys
import time
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Poll,
    Update,
)
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    EndPointNotFound,
    Forbidden,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from tests.emulators.telegram_bot_api import (
    AdminRights,
    Fault,
    TelegramEmulator,
    TelegramLimits,
    TelegramUser,
)
from tests.emulators.telegram_limits import TokenBucket
from tests.emulators.telegram_markup import EntityParseError, format_text
from tests.emulators.telegram_webhook import SECRET_HEADER

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

REPO_ROOT = Path(__file__).resolve().parent.parent
NO_LIMITS = TelegramLimits(enabled=False)
ALICE = TelegramUser(id=1001, first_name="Alice", username="alice", language_code="de")
BOB = TelegramUser(id=1002, first_name="Bob", username="bob", language_code="en")


class ManualClock:
    """A monotonic clock that moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def png(width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def retry_seconds(error: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def make_bot(emu: TelegramEmulator, read_timeout: float = 3.0) -> Bot:
    return Bot(
        emu.token,
        base_url=emu.base_url,
        base_file_url=emu.file_base_url,
        request=HTTPXRequest(read_timeout=read_timeout),
        get_updates_request=HTTPXRequest(read_timeout=read_timeout),
    )


@pytest.fixture
async def emu() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator(limits=NO_LIMITS) as emulator:
        yield emulator


@pytest.fixture
async def bot(emu: TelegramEmulator) -> AsyncIterator[Bot]:
    async with make_bot(emu) as client:
        yield client


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def limited(clock: ManualClock) -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator(clock=clock) as emulator:
        yield emulator


@pytest.fixture
async def limited_bot(limited: TelegramEmulator) -> AsyncIterator[Bot]:
    async with make_bot(limited) as client:
        yield client


# --- identity and plain messages ---------------------------------------------------------------


async def test_get_me_answers_a_bot_user(bot: Bot, emu: TelegramEmulator) -> None:
    me = await bot.get_me()
    assert me.is_bot
    assert me.username == "dripcourse_bot"
    assert me.id == int(emu.token.split(":")[0])
    assert me.can_join_groups is True
    assert me.supports_inline_queries is False


async def test_send_message_with_html_and_an_inline_keyboard(bot: Bot, emu: TelegramEmulator) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Next", callback_data="next:7")]])
    message = await bot.send_message(
        ALICE.id,
        "<b>Lesson 1</b> &amp; <i>more</i> 😀 <a href='https://example.org'>x</a>",
        parse_mode="HTML",
        reply_markup=keyboard,
    )
    assert message.text == "Lesson 1 & more 😀 x"
    assert [(entity.type, entity.offset, entity.length) for entity in message.entities] == [
        ("bold", 0, 8),
        ("italic", 11, 4),
        ("text_link", 19, 1),
    ]
    assert message.reply_markup == keyboard
    (record,) = emu.sent_to(ALICE.id)
    assert record.method == "sendMessage"
    assert record.parse_mode == "HTML"
    assert record.callback_data == ("next:7",)
    assert record.message_id == message.message_id
    assert emu.texts_to(ALICE.id) == ["Lesson 1 & more 😀 x"]


@pytest.mark.parametrize(
    ("text", "description"),
    [
        ("<p>hello</p>", 'unsupported start tag "p" at byte offset 0'),
        ("<b>bold <i>both</b></i>", 'unmatched end tag at byte offset 15, expected "</i>", found "</b>"'),
        ("<b>never closed", 'can\'t find end tag corresponding to start tag "b"'),
        ("a << b", 'unsupported start tag "<" at byte offset 2'),
        ("<span>x</span>", 'tag "span" must have class "tg-spoiler"'),
    ],
)
async def test_bad_html_is_refused_as_telegram_does(
    bot: Bot, emu: TelegramEmulator, text: str, description: str
) -> None:
    with pytest.raises(BadRequest, match="parse entities") as refused:
        await bot.send_message(ALICE.id, text, parse_mode="HTML")
    assert description in refused.value.message.lower()
    assert emu.sent == []
    assert emu.requests[-1].status == 400


async def test_message_length_counts_text_after_entity_parsing(bot: Bot, emu: TelegramEmulator) -> None:
    await bot.send_message(ALICE.id, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(ALICE.id, "x" * 4097)
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(ALICE.id, "<b> </b>", parse_mode="HTML")
    assert len(emu.sent) == 1


async def test_callback_data_over_64_bytes_is_refused(bot: Bot, emu: TelegramEmulator) -> None:
    await bot.send_message(
        ALICE.id,
        "ok",
        reply_markup=InlineKeyboardMarkup.from_button(InlineKeyboardButton("fits", callback_data="é" * 32)),
    )
    too_long = InlineKeyboardMarkup.from_button(InlineKeyboardButton("long", callback_data="x" * 65))
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await bot.send_message(ALICE.id, "no", reply_markup=too_long)
    assert emu.texts_to(ALICE.id) == ["ok"]


async def test_json_and_form_bodies_are_read_like_telegram_reads_them(emu: TelegramEmulator) -> None:
    url = f"{emu.base_url}{emu.token}/sendMessage"
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
    async with httpx.AsyncClient() as client:
        by_json = await client.post(url, json={"chat_id": 5, "text": "json", "reply_markup": markup})
        by_form = await client.post(
            url, data={"chat_id": "5", "text": "form", "reply_markup": json.dumps(markup)}
        )
        by_query = await client.get(url, params={"chat_id": "5", "text": "query"})
        unknown = await client.post(f"{emu.base_url}{emu.token}/sendTelepathy", json={})
        bad_token = await client.post(f"{emu.base_url}not-a-token/getMe")
    assert [response.json()["ok"] for response in (by_json, by_form, by_query)] == [True, True, True]
    assert emu.texts_to(5) == ["json", "form", "query"]
    assert emu.sent[1].reply_markup == markup
    assert unknown.status_code == 404
    assert unknown.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
    assert bad_token.status_code == 404


async def test_unknown_method_maps_to_endpoint_not_found(bot: Bot) -> None:
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("sendTelepathy", api_kwargs={"chat_id": 1})


# --- media -------------------------------------------------------------------------------------


async def test_photo_upload_then_reuse_of_its_file_id(bot: Bot, emu: TelegramEmulator) -> None:
    picture = png(640, 480)
    first = await bot.send_photo(ALICE.id, photo=picture, caption="<b>Map</b>", parse_mode="HTML")
    sizes = first.photo
    assert [(size.width, size.height) for size in sizes] == [(90, 68), (320, 240), (640, 480)]
    largest = sizes[-1].file_id
    assert first.caption == "Map"
    second = await bot.send_photo(BOB.id, photo=largest)
    assert [size.file_id for size in second.photo] == [size.file_id for size in sizes]
    file = await bot.get_file(largest)
    assert bytes(await file.download_as_bytearray()) == picture
    assert emu.sent[0].media_kind == "photo"
    assert emu.sent[1].file_ids == emu.sent[0].file_ids
    with pytest.raises(BadRequest, match="Wrong file identifier"):
        await bot.send_photo(ALICE.id, photo="AgACnot-a-real-file-id")
    with pytest.raises(BadRequest, match="Image_process_failed"):
        await bot.send_photo(ALICE.id, photo=b"not an image at all")
    with pytest.raises(BadRequest, match="caption is too long"):
        await bot.send_photo(ALICE.id, photo=largest, caption="c" * 1025)
    assert len(emu.sent) == 2


async def test_documents_audio_voice_video_and_file_downloads(bot: Bot, emu: TelegramEmulator) -> None:
    document = await bot.send_document(ALICE.id, document=b"%PDF-1.4 lesson", filename="lesson-1.pdf")
    assert document.document.file_name == "lesson-1.pdf"
    assert document.document.mime_type == "application/pdf"
    audio = await bot.send_audio(ALICE.id, audio=b"ID3 audio", filename="talk.mp3", duration=61)
    voice = await bot.send_voice(ALICE.id, voice=b"OggS voice", filename="note.ogg", duration=3)
    video = await bot.send_video(ALICE.id, video=b"mp4 video", filename="clip.mp4", width=320, height=240)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        assert audio.audio.duration in (61, dt.timedelta(seconds=61))
    assert voice.voice.file_id and video.video.width == 320
    with pytest.raises(BadRequest, match=r"(?i)can't use file of type document as photo"):
        await bot.send_photo(ALICE.id, photo=document.document.file_id)
    reused = await bot.send_document(BOB.id, document=document.document.file_id)
    assert reused.document.file_id == document.document.file_id
    downloaded = await (await bot.get_file(document.document.file_id)).download_as_bytearray()
    assert bytes(downloaded) == b"%PDF-1.4 lesson"
    assert [record.media_kind for record in emu.sent] == ["document", "audio", "voice", "video", "document"]


async def test_media_sent_by_url_is_fetched_or_refused(bot: Bot, emu: TelegramEmulator) -> None:
    emu.serve_url("https://cdn.example.org/map.png", png())
    message = await bot.send_photo(ALICE.id, photo="https://cdn.example.org/map.png")
    assert message.photo[-1].width == 64
    with pytest.raises(BadRequest, match="Failed to get http url content"):
        await bot.send_photo(ALICE.id, photo="http://127.0.0.1:9/missing.png")


async def test_media_group_uploads_attachments_and_reuses_file_ids(bot: Bot, emu: TelegramEmulator) -> None:
    first = await bot.send_photo(ALICE.id, photo=png())
    album = [
        InputMediaPhoto(png(100, 100), caption="<i>one</i>", parse_mode="HTML"),
        InputMediaPhoto(first.photo[-1].file_id, caption="two"),
    ]
    messages = await bot.send_media_group(ALICE.id, media=album)
    assert len(messages) == 2
    assert messages[0].media_group_id == messages[1].media_group_id is not None
    assert [message.caption for message in messages] == ["one", "two"]
    assert messages[1].photo[-1].file_id == first.photo[-1].file_id
    records = [record for record in emu.sent if record.method == "sendMediaGroup"]
    assert [record.caption for record in records] == ["one", "two"]
    with pytest.raises(BadRequest):
        await bot.send_media_group(ALICE.id, media=[InputMediaPhoto(png())] * 11)


# --- polls, callbacks and updates --------------------------------------------------------------


async def test_quiz_poll_and_the_users_answer_through_get_updates(bot: Bot, emu: TelegramEmulator) -> None:
    message = await bot.send_poll(
        ALICE.id,
        "Which cadence releases on Monday, Wednesday and Friday?",
        ["daily", "mon,wed,fri", "weekdays"],
        is_anonymous=False,
        type=Poll.QUIZ,
        correct_option_ids=[1],
        explanation="<b>Three</b> named days",
        explanation_parse_mode="HTML",
    )
    poll_id = message.poll.id
    (record,) = emu.sent
    assert record.poll is not None
    assert record.poll.id == poll_id
    assert record.poll.correct_option_id == 1
    assert record.poll.options == ("daily", "mon,wed,fri", "weekdays")
    assert record.poll.explanation == "Three named days"
    emu.user_answers_poll(ALICE, poll_id, [1])
    updates = await bot.get_updates(timeout=1)
    answers = [update.poll_answer for update in updates if update.poll_answer]
    assert len(answers) == 1
    assert answers[0].poll_id == poll_id
    assert answers[0].option_ids == (1,)
    assert answers[0].user.id == ALICE.id
    assert any(update.poll and update.poll.total_voter_count == 1 for update in updates)
    with pytest.raises(ValueError, match="cannot be changed"):
        emu.user_answers_poll(ALICE, poll_id, [0])
    stopped = await bot.stop_poll(ALICE.id, message.message_id)
    assert stopped.is_closed


@pytest.mark.parametrize(
    ("question", "options", "extra", "error"),
    [
        ("q" * 301, ["a", "b"], {}, "question length"),
        ("q", ["only"], {}, "at least 2"),
        ("q", [str(index) for index in range(13)], {}, "more than 12"),
        ("q", ["a", "o" * 101], {}, "options length"),
        (
            "q",
            ["a", "b"],
            {"type": Poll.QUIZ, "correct_option_ids": [1], "explanation": "e" * 201},
            "explanation",
        ),
        ("q", ["a", "b"], {"type": Poll.QUIZ, "correct_option_ids": [2]}, "correct option"),
    ],
)
async def test_poll_limits(
    bot: Bot, question: str, options: list[str], extra: dict[str, object], error: str
) -> None:
    with pytest.raises(BadRequest, match=f"(?i){error}"):
        await bot.send_poll(ALICE.id, question, options, **extra)


async def test_long_polling_honours_timeout_offset_and_allowed_updates(
    bot: Bot, emu: TelegramEmulator
) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=0) == ()
    waiting = asyncio.create_task(bot.get_updates(timeout=10))
    await emu.wait_for(lambda: sum(request.method == "getUpdates" for request in emu.requests) == 2)
    emu.user_sends_text(ALICE, "hello")
    (update,) = await waiting
    assert time.monotonic() - started < 5
    assert update.message.text == "hello"
    assert update.message.from_user.language_code == "de"
    assert update.message.chat.type == "private"
    assert update.message.chat.id == ALICE.id
    assert update.message.date.tzinfo is not None
    assert abs(update.message.date.timestamp() - time.time()) < 5
    again = await bot.get_updates(timeout=0)
    assert [item.update_id for item in again] == [update.update_id]
    assert await bot.get_updates(offset=update.update_id + 1, timeout=0) == ()
    sent = await bot.send_message(
        ALICE.id,
        "pick",
        reply_markup=InlineKeyboardMarkup.from_button(InlineKeyboardButton("A", callback_data="a")),
    )
    await bot.get_updates(timeout=0, allowed_updates=["message"])
    assert emu.user_presses_button(ALICE, sent.message_id, "a") is None
    emu.user_sends_text(ALICE, "still here")
    (only,) = await bot.get_updates(timeout=0)
    assert only.message.text == "still here"
    assert only.message.message_id == sent.message_id + 1


async def test_commands_carry_bot_command_entities_and_deep_link_payloads(
    bot: Bot, emu: TelegramEmulator
) -> None:
    emu.add_group(-1001234567890, "Learners")
    emu.user_sends_command(ALICE, "/start", payload="async-learning")
    emu.user_sends_command(BOB, "/progress", chat_id=-1001234567890)
    private, group = await bot.get_updates(timeout=0)
    assert private.message.text == "/start async-learning"
    assert private.message.entities[0].type == "bot_command"
    assert private.message.entities[0].length == len("/start")
    assert group.message.text == "/progress@dripcourse_bot"
    assert group.message.entities[0].length == len("/progress@dripcourse_bot")
    assert group.message.chat.type == "supergroup"


async def test_callback_query_round_trip_through_an_application(emu: TelegramEmulator) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        payload = " ".join(context.args or [])
        await update.message.reply_text(
            f"Welcome to {payload}",
            reply_markup=InlineKeyboardMarkup.from_button(
                InlineKeyboardButton("Enrol", callback_data="enrol:async")
            ),
        )

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("Enrolled!")
        await query.edit_message_text(f"You chose {query.data}")

    application = (
        Application.builder().token(emu.token).base_url(emu.base_url).base_file_url(emu.file_base_url).build()
    )
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CallbackQueryHandler(pressed))
    async with application:
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0.0, timeout=1)
        try:
            emu.user_sends_command(ALICE, "/start", payload="async-learning")
            (welcome,) = await emu.wait_for_sent(1, chat_id=ALICE.id)
            assert welcome.text == "Welcome to async-learning"
            update = emu.user_presses_button(ALICE, welcome.message_id, "enrol:async")
            assert update is not None
            query_id = update["callback_query"]["id"]
            await emu.wait_for(lambda: any(action.method == "editMessageText" for action in emu.actions))
        finally:
            await application.updater.stop()
            await application.stop()
    assert emu.callback_answer(query_id) == {"callback_query_id": query_id, "text": "Enrolled!"}
    assert emu.message(ALICE.id, welcome.message_id)["text"] == "You chose enrol:async"  # type: ignore[index]
    with pytest.raises(ValueError, match="no button"):
        emu.user_presses_button(ALICE, welcome.message_id, "forged")


async def test_edits_deletes_pins_and_chat_actions(bot: Bot, emu: TelegramEmulator) -> None:
    keyboard = InlineKeyboardMarkup.from_button(InlineKeyboardButton("A", callback_data="a"))
    message = await bot.send_message(ALICE.id, "draft", reply_markup=keyboard)
    with pytest.raises(BadRequest, match="not modified"):
        await bot.edit_message_text("draft", ALICE.id, message.message_id, reply_markup=keyboard)
    edited = await bot.edit_message_text("<b>final</b>", ALICE.id, message.message_id, parse_mode="HTML")
    assert edited.text == "final" and edited.reply_markup is None
    again = await bot.edit_message_reply_markup(ALICE.id, message.message_id, reply_markup=keyboard)
    assert again.reply_markup == keyboard
    assert await bot.pin_chat_message(ALICE.id, message.message_id)
    assert await bot.send_chat_action(ALICE.id, "typing")
    assert await bot.delete_message(ALICE.id, message.message_id)
    with pytest.raises(BadRequest, match="not found"):
        await bot.delete_message(ALICE.id, message.message_id)
    with pytest.raises(BadRequest, match="not found"):
        await bot.edit_message_text("gone", ALICE.id, message.message_id)
    assert [action.method for action in emu.actions] == [
        "editMessageText",
        "editMessageReplyMarkup",
        "pinChatMessage",
        "sendChatAction",
        "deleteMessage",
    ]
    assert emu.message(ALICE.id, message.message_id) is None


# --- commands, chats and forum topics ----------------------------------------------------------


async def test_commands_are_stored_per_scope_and_language(bot: Bot, emu: TelegramEmulator) -> None:
    await bot.set_my_commands([BotCommand("start", "Enrol"), BotCommand("pause", "Pause lessons")])
    await bot.set_my_commands(
        [BotCommand("broadcast", "Message all learners")], scope=BotCommandScopeChat(ALICE.id)
    )
    await bot.set_my_commands([BotCommand("start", "Einschreiben")], language_code="de")
    assert [command.command for command in await bot.get_my_commands()] == ["start", "pause"]
    assert [
        command.command for command in await bot.get_my_commands(scope=BotCommandScopeChat(ALICE.id))
    ] == ["broadcast"]
    assert (await bot.get_my_commands(language_code="de"))[0].description == "Einschreiben"
    await bot.delete_my_commands(scope=BotCommandScopeChat(ALICE.id))
    assert await bot.get_my_commands(scope=BotCommandScopeChat(ALICE.id)) == ()
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Bad-Name", "no")])


async def test_forum_topics_and_the_bots_rights(bot: Bot, emu: TelegramEmulator) -> None:
    forum = -1009876543210
    emu.add_group(
        forum, "Course discussion", forum=True, bot_rights=AdminRights(can_manage_topics=True), owner_id=7
    )
    member = await bot.get_chat_member(forum, bot.id)
    assert member.status == "administrator"
    assert member.can_manage_topics is True  # type: ignore[attr-defined]
    chat = await bot.get_chat(forum)
    assert chat.is_forum and chat.type == "supergroup"
    topic = await bot.create_forum_topic(forum, "Lesson 1: Time zones")
    message = await bot.send_message(forum, "Discuss here", message_thread_id=topic.message_thread_id)
    assert message.message_thread_id == topic.message_thread_id
    assert emu.sent[-1].message_thread_id == topic.message_thread_id
    assert await bot.edit_forum_topic(forum, topic.message_thread_id, name="Lesson 1: Zones")
    assert await bot.close_forum_topic(forum, topic.message_thread_id)
    with pytest.raises(BadRequest, match="Topic_not_modified"):
        await bot.close_forum_topic(forum, topic.message_thread_id)
    assert await bot.reopen_forum_topic(forum, topic.message_thread_id)
    with pytest.raises(BadRequest, match="thread not found"):
        await bot.send_message(forum, "nowhere", message_thread_id=999)
    admins = await bot.get_chat_administrators(forum)
    assert [admin.status for admin in admins] == ["creator", "administrator"]
    emu.set_bot_rights(forum, None)
    with pytest.raises(BadRequest, match=r"(?i)not enough rights"):
        await bot.create_forum_topic(forum, "Lesson 2")
    plain = -1001111111111
    emu.add_group(plain, "Plain", bot_rights=AdminRights())
    with pytest.raises(BadRequest, match="not a forum"):
        await bot.create_forum_topic(plain, "Lesson 2")


# --- flood limits ------------------------------------------------------------------------------


async def test_a_burst_above_30_per_second_gets_retry_after(
    limited: TelegramEmulator, limited_bot: Bot, clock: ManualClock
) -> None:
    refused: list[RetryAfter] = []
    for chat_id in range(1, 41):
        try:
            await limited_bot.send_message(chat_id, "burst")
        except RetryAfter as error:
            refused.append(error)
    assert len(limited.sent) == 30
    assert len(refused) == 10
    assert limited.count_429 == 10
    assert all(retry_seconds(error) == 1 for error in refused)
    clock.advance(1.0)
    await limited_bot.send_message(99, "after waiting")


async def test_an_evenly_paced_stream_at_30_per_second_is_never_refused(
    limited: TelegramEmulator, limited_bot: Bot, clock: ManualClock
) -> None:
    for chat_id in range(1, 121):
        await limited_bot.send_message(chat_id, "paced")
        clock.advance(1 / 30)
    assert limited.count_429 == 0
    assert len(limited.sent) == 120


async def test_one_message_per_second_per_chat(
    limited: TelegramEmulator, limited_bot: Bot, clock: ManualClock
) -> None:
    await limited_bot.send_message(ALICE.id, "first")
    clock.advance(0.5)
    with pytest.raises(RetryAfter) as refused:
        await limited_bot.send_message(ALICE.id, "too soon")
    assert retry_seconds(refused.value) == 1
    await limited_bot.send_message(BOB.id, "another chat is not held back")
    clock.advance(0.5)
    await limited_bot.send_message(ALICE.id, "a second later")
    assert limited.texts_to(ALICE.id) == ["first", "a second later"]


async def test_twenty_messages_per_minute_per_group(
    limited: TelegramEmulator, limited_bot: Bot, clock: ManualClock
) -> None:
    group = -1005555555555
    for _ in range(20):
        await limited_bot.send_message(group, "paced at 20 per minute")
        clock.advance(3.0)
    await limited_bot.send_message(group, "21st, three seconds later")
    clock.advance(1.0)
    with pytest.raises(RetryAfter) as refused:
        await limited_bot.send_message(group, "one second later is too soon in a group")
    assert retry_seconds(refused.value) == 2


async def test_paid_broadcasts_draw_on_their_own_budget(
    limited: TelegramEmulator, limited_bot: Bot, clock: ManualClock
) -> None:
    for chat_id in range(1, 31):
        await limited_bot.send_message(chat_id, "free")
    with pytest.raises(RetryAfter):
        await limited_bot.send_message(31, "free budget spent")
    await limited_bot.send_message(31, "paid", allow_paid_broadcast=True)
    assert limited.sent[-1].paid_broadcast


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(min_value=0.2, max_value=2000),
    burst=st.integers(min_value=1, max_value=50),
    sends=st.integers(min_value=1, max_value=300),
)
def test_token_bucket_admits_an_even_pace_and_refuses_a_burst(rate: float, burst: int, sends: int) -> None:
    paced = TokenBucket(rate, burst, now=0.0)
    for index in range(sends):
        now = index / rate
        assert paced.wait(now, tolerance=1e-6) == 0.0
        paced.take(now)
    bursting = TokenBucket(rate, burst, now=0.0)
    admitted = 0
    for _ in range(sends):
        if bursting.wait(0.0, tolerance=0.05) == 0.0:
            bursting.take(0.0)
            admitted += 1
    assert admitted == min(sends, burst)


# --- faults ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "expected", "recorded"),
    [
        (Fault("blocked"), Forbidden, False),
        (Fault("chat_not_found"), BadRequest, False),
        (Fault("migrated", migrate_to_chat_id=-1002000), ChatMigrated, False),
        (Fault("too_many_requests", retry_after=7), RetryAfter, False),
        (Fault("server_error"), NetworkError, False),
        (Fault("server_error", status=502), NetworkError, False),
        (Fault("bad_request", description="Bad Request: PEER_ID_INVALID"), BadRequest, False),
        (Fault("reset"), NetworkError, False),
        (Fault("timeout_before"), TimedOut, False),
        (Fault("timeout_after"), TimedOut, True),
    ],
)
async def test_each_fault_maps_to_its_python_telegram_bot_error(
    emu: TelegramEmulator, fault: Fault, expected: type[Exception], recorded: bool
) -> None:
    emu.faults.add(fault)
    async with make_bot(emu, read_timeout=0.4) as client:
        with pytest.raises(expected) as raised:
            await client.send_message(ALICE.id, "lesson")
        await client.send_message(ALICE.id, "next one goes through")
    assert emu.texts_to(ALICE.id) == (["lesson"] if recorded else []) + ["next one goes through"]
    assert emu.requests[1].fault == fault.kind
    if isinstance(raised.value, ChatMigrated):
        assert raised.value.new_chat_id == -1002000
    if isinstance(raised.value, RetryAfter):
        assert retry_seconds(raised.value) == 7
        assert emu.count_429 == 1
    if isinstance(raised.value, BadRequest) and fault.kind == "chat_not_found":
        assert raised.value.message == "Chat not found"
    if expected is NetworkError:
        assert not isinstance(raised.value, TimedOut)


async def test_slow_answers_arrive_after_the_delay(emu: TelegramEmulator, bot: Bot) -> None:
    emu.faults.add(Fault("slow", method="sendMessage", delay=0.3))
    started = time.monotonic()
    await bot.send_message(ALICE.id, "slowly")
    assert time.monotonic() - started >= 0.3
    assert emu.texts_to(ALICE.id) == ["slowly"]


async def test_faults_are_scoped_by_chat_method_and_count(emu: TelegramEmulator, bot: Bot) -> None:
    emu.faults.add(Fault("too_many_requests", chat_id=BOB.id, times=2, retry_after=3))
    await bot.send_message(ALICE.id, "unaffected")
    for _ in range(2):
        with pytest.raises(RetryAfter):
            await bot.send_message(BOB.id, "held")
    await bot.send_message(BOB.id, "released")
    emu.faults.add(Fault("server_error", method="sendPhoto", times=None))
    await bot.send_message(BOB.id, "text is fine")
    for _ in range(3):
        with pytest.raises(NetworkError):
            await bot.send_photo(BOB.id, photo=png())
    assert await bot.get_me()
    assert emu.texts_to(BOB.id) == ["released", "text is fine"]
    assert emu.count_429 == 2


async def test_blocked_users_and_migrated_groups_persist(emu: TelegramEmulator, bot: Bot) -> None:
    emu.add_user(ALICE)
    emu.block_bot(ALICE.id)
    with pytest.raises(Forbidden, match="blocked by the user"):
        await bot.send_message(ALICE.id, "lesson 2")
    (kicked,) = await bot.get_updates(timeout=0)
    assert kicked.my_chat_member.new_chat_member.status == "kicked"
    emu.unblock_bot(ALICE.id)
    await bot.send_message(ALICE.id, "welcome back")
    emu.add_group(-4001, "Old group")
    await bot.send_message(-4001, "before")
    emu.migrate_group(-4001, -1004001)
    with pytest.raises(ChatMigrated) as migrated:
        await bot.send_message(-4001, "after")
    assert migrated.value.new_chat_id == -1004001
    await bot.send_message(migrated.value.new_chat_id, "after, at the new id")
    assert emu.texts_to(-1004001) == ["after, at the new id"]


async def test_strict_chats_answer_chat_not_found_until_added() -> None:
    async with TelegramEmulator(limits=NO_LIMITS, strict_chats=True) as emu, make_bot(emu) as client:
        with pytest.raises(BadRequest, match="Chat not found"):
            await client.send_message(ALICE.id, "who?")
        emu.add_user(ALICE)
        await client.send_message(ALICE.id, "hello")
        assert emu.texts_to(ALICE.id) == ["hello"]


# --- webhook -----------------------------------------------------------------------------------


async def test_webhook_delivery_with_secret_header_and_retries() -> None:
    received: list[tuple[dict[str, object], str | None]] = []
    answers = [500, 200, 200]

    async def endpoint(request: web.Request) -> web.Response:
        received.append((await request.json(), request.headers.get(SECRET_HEADER)))
        return web.Response(status=answers.pop(0) if answers else 200)

    app = web.Application()
    app.router.add_post("/hook", endpoint)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    hook_url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        async with (
            TelegramEmulator(limits=NO_LIMITS, webhook_retry_delays=(0.01,)) as emu,
            make_bot(emu) as client,
        ):
            assert await client.set_webhook(hook_url, secret_token="s3cr3t-token")
            emu.user_sends_text(ALICE, "via webhook")
            emu.user_sends_text(ALICE, "second")
            await emu.wait_for(lambda: len(emu.webhook_attempts) >= 3)
            info = await client.get_webhook_info()
            with pytest.raises(Conflict):
                await client.get_updates(timeout=0)
            assert await client.delete_webhook()
    finally:
        await runner.cleanup()
    assert [attempt.status for attempt in emu.webhook_attempts] == [500, 200, 200]
    assert [update["message"]["text"] for update, _ in received] == ["via webhook", "via webhook", "second"]  # type: ignore[index]
    assert {secret for _, secret in received} == {"s3cr3t-token"}
    assert info.url == hook_url
    assert info.pending_update_count == 0
    assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"


# --- running it --------------------------------------------------------------------------------


async def test_parsed_text_round_trips_through_real_requests(bot: Bot) -> None:
    text = 'Zeitzone <Europe/Berlin> & "quotes" — 🕰'
    message = await bot.send_message(ALICE.id, html.escape(text), parse_mode="HTML")
    assert message.text == text


def test_run_in_thread_serves_a_client_on_another_loop() -> None:
    emulator = TelegramEmulator(limits=NO_LIMITS)
    with emulator.run_in_thread() as thread:
        url = f"{emulator.base_url}{emulator.token}"
        me = httpx.get(f"{url}/getMe").json()
        assert me["ok"] and me["result"]["is_bot"] is True
        thread.call(emulator.user_sends_text, ALICE, "from the benchmark thread")
        updates = httpx.post(f"{url}/getUpdates", data={"timeout": "1"}).json()["result"]
        assert updates[0]["message"]["text"] == "from the benchmark thread"


def test_module_runs_standalone_and_prints_its_base_url() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.emulators.telegram_bot_api", "--port", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        base_url = line.split()[5]
        token = process.stdout.readline().split()[1]
        assert base_url.startswith("http://127.0.0.1:")
        assert (
            httpx.get(f"{base_url}{token}/getMe", timeout=5).json()["result"]["username"] == "dripcourse_bot"
        )
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- formatting rules that hold for every text -------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_escaped_html_parses_back_to_the_text(text: str) -> None:
    assert format_text(html.escape(text), "HTML").text == text.strip()


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_escaped_markdown_v2_parses_back_to_the_text(text: str) -> None:
    escaped = "".join("\\" + char if char in "_*[]()~`>#+-=|{}.!\\" else char for char in text)
    assert format_text(escaped, "MarkdownV2").text == text.strip()


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("1. point", "Character '.' is reserved"),
        ("*bold", "Can't find end of Bold entity at byte offset 0"),
        ("[link](https://x.org", "Can't find end of a URL"),
    ],
)
def test_markdown_v2_errors_use_telegrams_wording(source: str, error: str) -> None:
    with pytest.raises(EntityParseError, match=error.replace("(", r"\(").replace(".", r"\.")):
        format_text(source, "MarkdownV2")


def test_markdown_v2_entities() -> None:
    parsed = format_text(
        "*bold* _it_ __under__ ||spoiler|| `code` [link](https://x.org) ```py\nprint()```", "MarkdownV2"
    )
    assert parsed.text == "bold it under spoiler code link print()"
    assert [entity["type"] for entity in parsed.entities] == [
        "bold",
        "italic",
        "underline",
        "spoiler",
        "code",
        "text_link",
        "pre",
    ]
    assert parsed.entities[-1]["language"] == "py"
