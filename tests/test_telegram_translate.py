"""Pure Telegram translation: PTB updates to neutral events, parts to Bot API calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from telegram import InputFile, InputMediaPhoto, InputMediaVideo, Message, Update
from telegram.constants import ParseMode, PollType

from adapters.telegram.translate import (
    BotCall,
    BotIdentity,
    TelegramSender,
    Upload,
    materialize,
    parse_command,
    part_calls,
    private_chat_link,
    update_to_event,
    uploaded_file_id,
)
from bot.content import MediaKind
from bot.ports import (
    AlbumPart,
    Button,
    ButtonPressed,
    Command,
    FilePart,
    LinkButton,
    LocationShared,
    MediaPart,
    OutboundPart,
    QuizAnswered,
    QuizPart,
    RequestLocationButton,
    TextPart,
    TextReceived,
)

ME = BotIdentity(id=999, username="DripCourseBot")
ADA = {"id": 42, "is_bot": False, "first_name": "Ada", "last_name": "Lovelace", "language_code": "en"}
GROUP = {"id": -1001234, "type": "supergroup", "title": "Async learners"}
PRIVATE = {"id": 42, "type": "private", "first_name": "Ada"}
BOT_USER = {"id": ME.id, "is_bot": True, "first_name": "Drip", "username": ME.username}


def message_update(chat: dict[str, Any] = PRIVATE, **fields: Any) -> Update:
    message = {"message_id": 7, "date": 1_760_000_000, "chat": chat, "from": ADA, **fields}
    return Update.de_json({"update_id": 1, "message": message}, None)


def command_update(text: str, chat: dict[str, Any] = PRIVATE) -> Update:
    length = len(text.split()[0])
    return message_update(chat, text=text, entities=[{"type": "bot_command", "offset": 0, "length": length}])


# --- inbound -------------------------------------------------------------------------------------


def test_private_text_carries_the_whole_sender() -> None:
    event = update_to_event(message_update(text="Berlin"), ME)
    assert isinstance(event, TextReceived)
    assert event.text == "Berlin"
    sender = event.sender
    assert (sender.platform, sender.user_id, sender.chat_id) == ("telegram", "42", "42")
    assert (sender.display_name, sender.language_code, sender.is_private) == ("Ada Lovelace", "en", True)
    assert isinstance(sender, TelegramSender)
    assert sender.group_chat_id == ""


@pytest.mark.parametrize(
    ("text", "name", "args"),
    [
        ("/help", "help", ""),
        ("/Pause 3", "pause", "3"),
        ("/timezone   New York ", "timezone", "New York"),
        ("/start async-learning", "start", "async-learning"),
        ("/progress@DripCourseBot", "progress", ""),
        ("/time@dripcoursebot 08:00", "time", "08:00"),
    ],
)
def test_private_commands(text: str, name: str, args: str) -> None:
    event = update_to_event(command_update(text), ME)
    assert isinstance(event, Command)
    assert (event.name, event.args) == (name, args)
    assert event.sender.is_private


def test_a_slash_that_is_not_a_command_is_text() -> None:
    for text in ("/ not a command", "/usr/bin is a path", "/é"):
        event = update_to_event(message_update(text=text), ME)
        assert isinstance(event, TextReceived)
        assert event.text == text


def test_group_command_for_this_bot_answers_privately_and_remembers_the_group() -> None:
    event = update_to_event(command_update("/progress@DripCourseBot", GROUP), ME)
    assert isinstance(event, Command)
    assert event.name == "progress"
    sender = event.sender
    assert isinstance(sender, TelegramSender)
    assert not sender.is_private
    assert sender.chat_id == "42"  # the private chat, never the group
    assert sender.group_chat_id == "-1001234"


def test_group_command_for_another_bot_is_ignored() -> None:
    assert update_to_event(command_update("/progress@OtherBot", GROUP), ME) is None
    assert update_to_event(command_update("/progress@OtherBot"), ME) is None


def test_bare_group_command_is_handled() -> None:
    event = update_to_event(command_update("/help", GROUP), ME)
    assert isinstance(event, Command)
    assert event.name == "help"


def test_start_payload_in_a_group_becomes_a_deep_link_payload() -> None:
    event = update_to_event(command_update("/start@DripCourseBot async-learning", GROUP), ME)
    assert isinstance(event, Command)
    assert isinstance(event.sender, TelegramSender)
    assert event.sender.start_payload == "async-learning"
    private = update_to_event(command_update("/start async-learning"), ME)
    assert isinstance(private, Command)
    assert isinstance(private.sender, TelegramSender)
    assert private.sender.start_payload == ""
    assert (
        private_chat_link("DripCourseBot", "async-learning")
        == "https://t.me/DripCourseBot?start=async-learning"
    )
    assert private_chat_link("DripCourseBot") == "https://t.me/DripCourseBot"


def test_plain_group_text_is_ignored_but_a_reply_to_the_bot_is_not() -> None:
    assert update_to_event(message_update(GROUP, text="hello all"), ME) is None
    to_bot = {"message_id": 5, "date": 1_760_000_000, "chat": GROUP, "from": BOT_USER, "text": "Which city?"}
    event = update_to_event(message_update(GROUP, text="Lisbon", reply_to_message=to_bot), ME)
    assert isinstance(event, TextReceived)
    assert event.text == "Lisbon"
    to_someone = {**to_bot, "from": {**ADA, "id": 7}}
    assert update_to_event(message_update(GROUP, text="Lisbon", reply_to_message=to_someone), ME) is None


def test_messages_from_bots_and_channel_posts_are_ignored() -> None:
    robot = {"message_id": 7, "date": 1_760_000_000, "chat": PRIVATE, "from": BOT_USER, "text": "hi"}
    assert update_to_event(Update.de_json({"update_id": 1, "message": robot}, None), ME) is None
    channel = {"id": -100777, "type": "channel", "title": "News"}
    assert update_to_event(message_update(channel, text="/help"), ME) is None
    edited = {"message_id": 7, "date": 1_760_000_000, "chat": PRIVATE, "from": ADA, "text": "x"}
    assert update_to_event(Update.de_json({"update_id": 1, "edited_message": edited}, None), ME) is None


def test_callback_query_becomes_a_button_press() -> None:
    message = {"message_id": 31, "date": 1_760_000_000, "chat": PRIVATE, "from": BOT_USER, "text": "Lesson"}
    query = {"id": "cq1", "from": ADA, "chat_instance": "ci", "data": "done:17", "message": message}
    event = update_to_event(Update.de_json({"update_id": 2, "callback_query": query}, None), ME)
    assert isinstance(event, ButtonPressed)
    assert (event.action, event.message_id) == ("done:17", "31")
    assert event.sender.chat_id == "42"
    assert event.sender.is_private


def test_callback_query_in_a_group_remembers_the_group() -> None:
    message = {"message_id": 31, "date": 1_760_000_000, "chat": GROUP, "from": BOT_USER, "text": "Quiz"}
    query = {"id": "cq1", "from": ADA, "chat_instance": "ci", "data": "quiz:3:1", "message": message}
    event = update_to_event(Update.de_json({"update_id": 2, "callback_query": query}, None), ME)
    assert isinstance(event, ButtonPressed)
    assert isinstance(event.sender, TelegramSender)
    assert (event.sender.chat_id, event.sender.group_chat_id, event.sender.is_private) == (
        "42",
        "-1001234",
        False,
    )


def test_poll_answer_becomes_a_quiz_answer() -> None:
    answer = {"poll_id": "5012", "user": ADA, "option_ids": [2], "option_persistent_ids": ["c"]}
    event = update_to_event(Update.de_json({"update_id": 3, "poll_answer": answer}, None), ME)
    assert isinstance(event, QuizAnswered)
    assert (event.poll_id, event.option_index, event.sender.chat_id) == ("5012", 2, "42")
    retracted = {"poll_id": "5012", "user": ADA, "option_ids": [], "option_persistent_ids": []}
    assert update_to_event(Update.de_json({"update_id": 4, "poll_answer": retracted}, None), ME) is None


def test_shared_location() -> None:
    event = update_to_event(message_update(location={"latitude": 52.52, "longitude": 13.405}), ME)
    assert isinstance(event, LocationShared)
    assert (event.latitude, event.longitude) == (52.52, 13.405)
    assert update_to_event(message_update(GROUP, location={"latitude": 1.0, "longitude": 2.0}), ME) is None


@given(
    name=st.from_regex(r"[A-Za-z0-9_]{1,32}", fullmatch=True),
    args=st.text(st.characters(blacklist_categories=["Cs", "Cc"]), max_size=40),
    mention=st.booleans(),
)
def test_parse_command_round_trips(name: str, args: str, mention: bool) -> None:
    text = f"/{name}{'@DripCourseBot' if mention else ''} {args}"
    assert parse_command(text) == (name.lower(), "DripCourseBot" if mention else "", args.strip())


@given(text=st.text(max_size=60))
def test_any_private_text_is_one_event(text: str) -> None:
    if not text.strip():
        return
    event = update_to_event(message_update(text=text), ME)
    assert isinstance(event, Command | TextReceived)
    if isinstance(event, TextReceived):
        assert event.text == text


# --- outbound ------------------------------------------------------------------------------------


def only(calls: list[BotCall]) -> BotCall:
    assert len(calls) == 1
    return calls[0]


def keyboard(call: BotCall) -> list[list[dict[str, Any]]]:
    markup: dict[str, list[list[dict[str, Any]]]] = call.kwargs["reply_markup"].to_dict()
    return markup.get("inline_keyboard") or markup["keyboard"]


def test_text_part_is_html_without_link_previews_with_inline_buttons() -> None:
    part = TextPart(
        "<b>Lesson 1</b>",
        (
            Button("✅ Done", "done:1"),
            Button("➡️ Next", "next:2"),
            LinkButton("💬 Discuss", "https://t.me/c/1"),
        ),
    )
    call = only(part_calls(42, part))
    assert call.method == "send_message"
    assert call.kwargs["text"] == "<b>Lesson 1</b>"
    assert call.kwargs["parse_mode"] == ParseMode.HTML
    assert call.kwargs["link_preview_options"].is_disabled is True
    assert keyboard(call) == [
        [{"text": "✅ Done", "callback_data": "done:1"}, {"text": "➡️ Next", "callback_data": "next:2"}],
        [{"text": "💬 Discuss", "url": "https://t.me/c/1"}],
    ]
    assert "allow_paid_broadcast" not in call.kwargs


def test_plain_text_has_no_keyboard_and_a_title_becomes_bold() -> None:
    call = only(part_calls(42, TextPart("body", title="A <title>")))
    assert call.kwargs["reply_markup"] is None
    assert call.kwargs["text"] == "<b>A &lt;title&gt;</b>\n\nbody"


def test_location_request_alone_is_a_one_time_reply_keyboard() -> None:
    call = only(part_calls(42, TextPart("Where are you?", (RequestLocationButton("📍 Share location"),))))
    markup = call.kwargs["reply_markup"].to_dict()
    assert markup["one_time_keyboard"] is True
    assert markup["keyboard"] == [[{"text": "📍 Share location", "request_location": True}]]


def test_location_request_with_inline_buttons_goes_on_its_own_message() -> None:
    part = TextPart(
        "Pick a zone", (Button("Berlin", "zone:1:Europe/Berlin"), RequestLocationButton("📍 Here"))
    )
    first, second = part_calls(42, part)
    assert first.kwargs["text"] == "Pick a zone"
    assert keyboard(first) == [[{"text": "Berlin", "callback_data": "zone:1:Europe/Berlin"}]]
    assert "📍 Here" in second.kwargs["text"]
    assert keyboard(second) == [[{"text": "📍 Here", "request_location": True}]]


@pytest.mark.parametrize(
    ("kind", "method", "argument"),
    [
        (MediaKind.IMAGE, "send_photo", "photo"),
        (MediaKind.AUDIO, "send_audio", "audio"),
        (MediaKind.VOICE, "send_voice", "voice"),
        (MediaKind.VIDEO, "send_video", "video"),
        (MediaKind.DOCUMENT, "send_document", "document"),
    ],
)
def test_media_uploads_once_then_reuses_the_file_id(kind: MediaKind, method: str, argument: str) -> None:
    path = Path("/course/media/file.bin")
    fresh = only(part_calls(42, MediaPart(kind, path, caption="<i>Look</i>", file_key="sha1")))
    assert fresh.method == method
    assert fresh.kwargs[argument] == Upload(path)
    assert (fresh.kwargs["caption"], fresh.kwargs["parse_mode"]) == ("<i>Look</i>", ParseMode.HTML)
    assert fresh.upload_keys == (("sha1", kind),)
    assert fresh.uploads() == [path]
    known = only(part_calls(42, MediaPart(kind, path, file_key="sha1", file_id="AgAD-known")))
    assert known.kwargs[argument] == "AgAD-known"
    assert known.upload_keys == (("", kind),)
    assert known.uploads() == []
    assert "caption" not in known.kwargs


def test_media_buttons_ride_on_the_media_message() -> None:
    call = only(
        part_calls(42, MediaPart(MediaKind.IMAGE, Path("/a.png"), buttons=(Button("✅ Done", "done:1"),)))
    )
    assert keyboard(call) == [[{"text": "✅ Done", "callback_data": "done:1"}]]


def test_album_is_one_media_group_with_attach_uploads(tmp_path: Path) -> None:
    photo, video = tmp_path / "a.jpg", tmp_path / "b.mp4"
    part = AlbumPart(
        (
            MediaPart(MediaKind.IMAGE, photo, caption="first", file_key="k1"),
            MediaPart(MediaKind.VIDEO, video, file_key="k2", file_id="BAAD-known"),
        )
    )
    call = only(part_calls(42, part))
    assert call.method == "send_media_group"
    assert call.upload_keys == (("k1", MediaKind.IMAGE), ("", MediaKind.VIDEO))
    assert call.uploads() == [photo]
    kwargs = materialize(call, {photo: b"\xff\xd8jpeg"})
    first, second = kwargs["media"]
    assert isinstance(first, InputMediaPhoto)
    assert isinstance(first.media, InputFile)
    assert first.media.attach_uri is not None
    assert first.media.input_file_content == b"\xff\xd8jpeg"
    assert first.caption == "first"
    assert isinstance(second, InputMediaVideo)
    assert second.media == "BAAD-known"


def test_materialize_reads_uploads_from_the_given_contents() -> None:
    path = Path("/course/media/diagram.png")
    call = only(part_calls(42, MediaPart(MediaKind.IMAGE, path, file_key="k")))
    kwargs = materialize(call, {path: b"png-bytes"})
    assert isinstance(kwargs["photo"], InputFile)
    assert kwargs["photo"].input_file_content == b"png-bytes"
    assert kwargs["photo"].filename == "diagram.png"
    assert call.kwargs["photo"] == Upload(path)  # the description itself is untouched


def test_native_quiz_is_a_non_anonymous_quiz_poll() -> None:
    quiz = QuizPart("2 + 2?", ("3", "4", "5"), 1, "Basic sums.", "quiz:9:", native=True)
    call = only(part_calls(42, quiz))
    assert call.method == "send_poll"
    assert call.kwargs["type"] == PollType.QUIZ
    assert call.kwargs["is_anonymous"] is False
    assert call.kwargs["correct_option_ids"] == [1]
    assert call.kwargs["options"] == ["3", "4", "5"]
    assert call.kwargs["explanation"] == "Basic sums."


def test_button_quiz_shows_the_question_with_one_button_per_option() -> None:
    quiz = QuizPart("Is <this> async?", ("Yes", "No"), 0, "", "quiz:9:", native=False)
    call = only(part_calls(42, quiz))
    assert call.method == "send_message"
    assert call.kwargs["text"] == "<b>Is &lt;this&gt; async?</b>"
    assert keyboard(call) == [
        [{"text": "Yes", "callback_data": "quiz:9:0"}, {"text": "No", "callback_data": "quiz:9:1"}]
    ]


def test_button_quiz_with_long_options_lists_them_and_numbers_the_buttons() -> None:
    long_option = "An option far too long to fit comfortably on a button " * 3
    quiz = QuizPart("Which?", ("Short", long_option), 1, "", "quiz:9:", native=False)
    call = only(part_calls(42, quiz))
    assert "1. Short" in call.kwargs["text"]
    assert "2. An option far too long" in call.kwargs["text"]
    assert [button["text"] for row in keyboard(call) for button in row] == ["1", "2"]


def test_file_part_sends_bytes_as_document_or_photo() -> None:
    document = only(part_calls(42, FilePart("progress.csv", b"a,b\n", caption="Your export")))
    assert document.method == "send_document"
    assert document.kwargs["document"].input_file_content == b"a,b\n"
    assert document.kwargs["document"].filename == "progress.csv"
    photo = only(part_calls(42, FilePart("chart.png", b"png", as_photo=True)))
    assert photo.method == "send_photo"
    assert photo.kwargs["photo"].filename == "chart.png"


def test_paid_broadcast_marks_every_send() -> None:
    parts: list[OutboundPart] = [
        TextPart("hi", (RequestLocationButton("📍"), Button("x", "done:1"))),
        MediaPart(MediaKind.IMAGE, Path("/a.png")),
        QuizPart("q", ("a", "b"), 0, "", "quiz:1:", native=True),
        FilePart("a.txt", b"a"),
    ]
    calls = [call for part in parts for call in part_calls(42, part, paid_broadcast=True)]
    assert len(calls) == 5
    assert all(call.kwargs["allow_paid_broadcast"] is True for call in calls)


def test_uploaded_file_id_takes_the_largest_photo_and_each_media_kind() -> None:
    base = {"message_id": 1, "date": 1_760_000_000, "chat": PRIVATE}
    photo = Message.de_json(
        {
            **base,
            "photo": [
                {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 90},
                {"file_id": "large", "file_unique_id": "l", "width": 1280, "height": 1280},
            ],
        },
        None,
    )
    assert uploaded_file_id(photo, MediaKind.IMAGE) == "large"
    video = Message.de_json(
        {**base, "video": {"file_id": "vid", "file_unique_id": "v", "width": 1, "height": 1, "duration": 1}},
        None,
    )
    assert uploaded_file_id(video, MediaKind.VIDEO) == "vid"
    document = Message.de_json({**base, "document": {"file_id": "doc", "file_unique_id": "d"}}, None)
    assert uploaded_file_id(document, MediaKind.DOCUMENT) == "doc"
    assert uploaded_file_id(document, MediaKind.IMAGE) is None
