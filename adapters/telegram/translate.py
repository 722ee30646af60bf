"""Pure translation between python-telegram-bot objects and the core's neutral events and parts.

Inbound: an `Update` becomes at most one neutral event. Outbound: a part becomes the Bot method calls
that deliver it, described as data (`BotCall`); files on disk stay `Upload` markers until the adapter
reads them, so nothing here touches the network or the disk.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from telegram import (
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    InputMediaAudio,
    InputMediaDocument,
    InputMediaPhoto,
    InputMediaVideo,
    KeyboardButton,
    LinkPreviewOptions,
    Message,
    ReplyKeyboardMarkup,
    Update,
    User,
)
from telegram.constants import ChatType, ParseMode, PollType

from bot.content import MediaKind
from bot.ports import (
    AlbumPart,
    AnyButton,
    Button,
    ButtonPressed,
    Command,
    FilePart,
    InboundEvent,
    LinkButton,
    LocationShared,
    MediaPart,
    OutboundPart,
    QuizAnswered,
    QuizPart,
    RequestLocationButton,
    Sender,
    TextPart,
    TextReceived,
)

PLATFORM = "telegram"

_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,64})(?:@([A-Za-z0-9_]{1,64}))?(?:\s+(.*))?$", re.DOTALL)
_DEEP_LINK_PAYLOAD = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_NUMERIC_CHAT = re.compile(r"^-?\d+$")
_NUMBER_OPTIONS_OVER = 30
"""Quiz options longer than this are listed in the text and their buttons show only the number."""
_PAIR_LABELS_UP_TO = 20
"""Buttons with labels this short share a row, two by two."""


@dataclass(frozen=True)
class BotIdentity:
    """Who the bot is (from getMe): needed to tell commands and replies addressed to it."""

    id: int
    username: str


@dataclass(frozen=True)
class TelegramSender(Sender):
    """A `Sender` that also remembers the group an event came from, so a reply can point there."""

    group_chat_id: str = ""
    """The group or supergroup the event came from; empty for a private chat."""
    start_payload: str = ""
    """A deep-link payload that resumes the request privately (`/start <payload>` sent in a group)."""
    group_thread_id: str = ""
    """The forum topic the event came from, so a pointer in the group lands in the same topic."""


# --- inbound -------------------------------------------------------------------------------------


def update_to_event(update: Update, me: BotIdentity) -> InboundEvent | None:
    """The neutral event for `update`, or None for anything the bot ignores."""
    if update.callback_query is not None:
        query = update.callback_query
        if query.data is None or query.from_user.is_bot:
            return None
        chat = query.message.chat if query.message is not None else None
        message_id = str(query.message.message_id) if query.message is not None else None
        return ButtonPressed(make_sender(query.from_user, chat), query.data, message_id)
    if update.poll_answer is not None:
        answer = update.poll_answer
        if answer.user is None or not answer.option_ids:
            return None  # an anonymous vote, or a vote taken back
        return QuizAnswered(make_sender(answer.user, None), answer.poll_id, answer.option_ids[0])
    if update.message is not None:
        return message_to_event(update.message, me)
    return None


def message_to_event(message: Message, me: BotIdentity) -> InboundEvent | None:
    """A command, text or location; in groups only commands for this bot and replies to it count."""
    user = message.from_user
    if user is None or user.is_bot or message.chat.type == ChatType.CHANNEL:
        return None
    private = message.chat.type == ChatType.PRIVATE
    # A forum topic is the learners' conversation (and every message in it replies to the topic's
    # creation, by the bot for lesson topics): there only commands are for the bot.
    replying_to_bot = (
        not message.is_topic_message
        and message.reply_to_message is not None
        and message.reply_to_message.from_user is not None
        and message.reply_to_message.from_user.id == me.id
    )
    if message.text is not None:
        command = parse_command(message.text)
        if command is not None:
            name, addressee, args = command
            if addressee and addressee.lower() != me.username.lower():
                return None
            sender = make_sender(
                user,
                message.chat,
                start_payload=_start_payload(name, args, private),
                thread_id=message.message_thread_id if message.is_topic_message else None,
            )
            return Command(sender, name, args)
        if private or replying_to_bot:
            return TextReceived(make_sender(user, message.chat), message.text)
        return None
    if message.location is not None and (private or replying_to_bot):
        location = message.location
        return LocationShared(make_sender(user, message.chat), location.latitude, location.longitude)
    return None


def parse_command(text: str) -> tuple[str, str, str] | None:
    """`/Name@bot args` as (lower-case name, addressed bot or "", stripped args); None if not a command."""
    match = _COMMAND.match(text.strip())
    if match is None:
        return None
    name, addressee, args = match.groups()
    return name.lower(), addressee or "", (args or "").strip()


def make_sender(
    user: User, chat: Chat | None, *, start_payload: str = "", thread_id: int | None = None
) -> TelegramSender:
    """The sender; its `chat_id` is always the user's private chat (a user's id is their chat's id)."""
    private = chat is None or chat.type == ChatType.PRIVATE
    return TelegramSender(
        platform=PLATFORM,
        user_id=str(user.id),
        chat_id=str(chat.id if chat is not None and private else user.id),
        display_name=user.full_name,
        language_code=user.language_code,
        is_private=private,
        group_chat_id="" if private or chat is None else str(chat.id),
        start_payload=start_payload,
        group_thread_id=str(thread_id) if thread_id is not None and not private else "",
    )


def _start_payload(name: str, args: str, private: bool) -> str:
    if name == "start" and not private and _DEEP_LINK_PAYLOAD.match(args):
        return args
    return ""


def private_chat_link(bot_username: str, payload: str = "") -> str:
    """The t.me link that opens the bot's private chat, starting it with `payload` when given."""
    link = f"https://t.me/{bot_username}"
    return f"{link}?start={payload}" if payload else link


# --- outbound ------------------------------------------------------------------------------------


def chat_ref(chat_id: str) -> int | str:
    """A chat id as the Bot API takes it: numeric ids as integers; `@channelname` stays a string."""
    return int(chat_id) if _NUMERIC_CHAT.match(chat_id) else chat_id


@dataclass(frozen=True)
class Upload:
    """A file on disk to upload; the adapter reads it just before the call."""

    path: Path


@dataclass(frozen=True)
class AlbumItem:
    kind: MediaKind
    source: str | Upload
    """A file id of an earlier upload, or the file to upload."""
    caption: str = ""


@dataclass(frozen=True)
class BotCall:
    """One Bot API call: the `telegram.Bot` coroutine's name and its keyword arguments."""

    method: str
    kwargs: Mapping[str, Any]
    upload_keys: tuple[tuple[str, MediaKind], ...] = field(default=())
    """(file_key, kind) per message this call returns, in order; "" where nothing new is uploaded."""

    def uploads(self) -> list[Path]:
        """Every file this call uploads."""
        sources: list[str | Upload] = [value for value in self.kwargs.values() if isinstance(value, Upload)]
        sources += [item.source for item in self.kwargs.get("media", ()) if isinstance(item, AlbumItem)]
        return [source.path for source in sources if isinstance(source, Upload)]


_MEDIA_METHODS: dict[MediaKind, tuple[str, str]] = {
    MediaKind.IMAGE: ("send_photo", "photo"),
    MediaKind.AUDIO: ("send_audio", "audio"),
    MediaKind.VOICE: ("send_voice", "voice"),
    MediaKind.VIDEO: ("send_video", "video"),
    MediaKind.DOCUMENT: ("send_document", "document"),
}


def part_calls(chat_id: int | str, part: OutboundPart, *, paid_broadcast: bool = False) -> list[BotCall]:
    """The calls that deliver `part` to `chat_id`, in order."""
    common: dict[str, Any] = {"chat_id": chat_id}
    if paid_broadcast:
        common["allow_paid_broadcast"] = True
    if isinstance(part, TextPart):
        return _text_calls(common, part)
    if isinstance(part, MediaPart):
        return [_media_call(common, part)]
    if isinstance(part, AlbumPart):
        return [_album_call(common, part)]
    if isinstance(part, QuizPart):
        return [_native_quiz_call(common, part)] if part.native else _text_calls(common, quiz_as_text(part))
    return [_file_call(common, part)]


def quiz_as_text(quiz: QuizPart) -> TextPart:
    """A quiz for chats without a native poll: the question as text and one button per option."""
    long_options = any(len(option) > _NUMBER_OPTIONS_OVER for option in quiz.options)
    lines = [f"<b>{html.escape(quiz.question)}</b>"]
    if long_options:
        lines.append("")
        lines += [f"{i}. {html.escape(option)}" for i, option in enumerate(quiz.options, start=1)]
    buttons = tuple(
        Button(str(i + 1) if long_options else option, f"{quiz.answer_action_prefix}{i}")
        for i, option in enumerate(quiz.options)
    )
    return TextPart("\n".join(lines), buttons)


def edit_call(chat_id: int | str, message_id: int, part: TextPart) -> BotCall:
    """The call that replaces a text message's text and inline buttons (a reply keyboard cannot be edited)."""
    inline = [button for button in part.buttons if not isinstance(button, RequestLocationButton)]
    message = _text_message({"chat_id": chat_id, "message_id": message_id}, part)
    return BotCall("edit_message_text", {**message, "reply_markup": inline_keyboard(inline)})


def _text_message(common: dict[str, Any], part: TextPart) -> dict[str, Any]:
    text = f"<b>{html.escape(part.title)}</b>\n\n{part.text}" if part.title else part.text
    return {
        **common,
        "text": text,
        "parse_mode": ParseMode.HTML,
        "link_preview_options": LinkPreviewOptions(is_disabled=True),
    }


def _text_calls(common: dict[str, Any], part: TextPart) -> list[BotCall]:
    inline = [button for button in part.buttons if not isinstance(button, RequestLocationButton)]
    location = [button for button in part.buttons if isinstance(button, RequestLocationButton)]
    message = _text_message(common, part)
    if inline or not location:
        calls = [BotCall("send_message", {**message, "reply_markup": inline_keyboard(inline)})]
        if not location:
            return calls
        # A message carries one keyboard: the location button goes on a short message of its own.
        prompt = "Or tap “" + html.escape(location[0].label) + "” below."
        return [
            *calls,
            BotCall("send_message", {**message, "text": prompt, "reply_markup": _location(location)}),
        ]
    return [BotCall("send_message", {**message, "reply_markup": _location(location)})]


def inline_keyboard(buttons: Sequence[AnyButton]) -> InlineKeyboardMarkup | None:
    """Callback and link buttons; short labels share a row two by two, long ones get their own."""
    keys = [
        InlineKeyboardButton(button.label, url=button.url)
        if isinstance(button, LinkButton)
        else InlineKeyboardButton(button.label, callback_data=button.action)
        for button in buttons
        if isinstance(button, Button | LinkButton)
    ]
    if not keys:
        return None
    rows: list[list[InlineKeyboardButton]] = []
    for key in keys:
        short = len(key.text) <= _PAIR_LABELS_UP_TO
        if rows and short and len(rows[-1]) == 1 and len(rows[-1][0].text) <= _PAIR_LABELS_UP_TO:
            rows[-1].append(key)
        else:
            rows.append([key])
    return InlineKeyboardMarkup(rows)


def _location(buttons: Sequence[RequestLocationButton]) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        [[KeyboardButton(button.label, request_location=True)] for button in buttons],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


def _media_call(common: dict[str, Any], part: MediaPart) -> BotCall:
    method, argument = _MEDIA_METHODS[part.kind]
    kwargs: dict[str, Any] = {**common, argument: part.file_id or Upload(part.path)}
    if part.caption:
        kwargs |= {"caption": part.caption, "parse_mode": ParseMode.HTML}
    if part.buttons:
        kwargs["reply_markup"] = inline_keyboard(part.buttons)
    if part.kind == MediaKind.VIDEO:
        kwargs["supports_streaming"] = True
    return BotCall(method, kwargs, ((_new_upload_key(part), part.kind),))


def _album_call(common: dict[str, Any], part: AlbumPart) -> BotCall:
    items = tuple(
        AlbumItem(item.kind, item.file_id or Upload(item.path), item.caption) for item in part.items
    )
    keys = tuple((_new_upload_key(item), item.kind) for item in part.items)
    return BotCall("send_media_group", {**common, "media": items}, keys)


def _new_upload_key(part: MediaPart) -> str:
    return "" if part.file_id else part.file_key


def _native_quiz_call(common: dict[str, Any], quiz: QuizPart) -> BotCall:
    kwargs: dict[str, Any] = {
        **common,
        "question": quiz.question,
        "options": list(quiz.options),
        "type": PollType.QUIZ,
        "is_anonymous": False,
        "correct_option_ids": [quiz.correct_index],
    }
    if quiz.explanation:
        kwargs["explanation"] = quiz.explanation
    return BotCall("send_poll", kwargs)


def _file_call(common: dict[str, Any], part: FilePart) -> BotCall:
    method, argument = ("send_photo", "photo") if part.as_photo else ("send_document", "document")
    kwargs: dict[str, Any] = {**common, argument: InputFile(part.content, filename=part.filename)}
    if part.caption:
        kwargs |= {"caption": part.caption, "parse_mode": ParseMode.HTML}
    return BotCall(method, kwargs)


def materialize(call: BotCall, contents: Mapping[Path, bytes]) -> dict[str, Any]:
    """The call's keyword arguments with every `Upload` replaced by the file's bytes from `contents`."""

    def source(value: str | Upload, *, attach: bool = False) -> str | InputFile:
        if isinstance(value, Upload):
            return InputFile(contents[value.path], filename=value.path.name, attach=attach)
        return value

    kwargs = {
        key: source(value) if isinstance(value, Upload) else value for key, value in call.kwargs.items()
    }
    if call.method == "send_media_group":
        # Album files travel as multipart fields named in the media JSON (attach://...).
        kwargs["media"] = [
            _input_media(item, source(item.source, attach=True)) for item in call.kwargs["media"]
        ]
    return kwargs


def _input_media(
    item: AlbumItem, media: str | InputFile
) -> InputMediaPhoto | InputMediaVideo | InputMediaAudio | InputMediaDocument:
    caption: dict[str, Any] = {"caption": item.caption, "parse_mode": ParseMode.HTML} if item.caption else {}
    if item.kind == MediaKind.IMAGE:
        return InputMediaPhoto(media, **caption)
    if item.kind == MediaKind.VIDEO:
        return InputMediaVideo(media, supports_streaming=True, **caption)
    if item.kind in (MediaKind.AUDIO, MediaKind.VOICE):
        return InputMediaAudio(media, **caption)
    return InputMediaDocument(media, **caption)


def uploaded_file_id(message: Message, kind: MediaKind) -> str | None:
    """The file id Telegram assigned to the media in `message` (the largest size of a photo)."""
    if kind == MediaKind.IMAGE:
        return message.photo[-1].file_id if message.photo else None
    attachment = {
        MediaKind.AUDIO: message.audio,
        MediaKind.VOICE: message.voice,
        MediaKind.VIDEO: message.video,
        MediaKind.DOCUMENT: message.document,
    }[kind]
    if attachment is None and kind in (MediaKind.AUDIO, MediaKind.VOICE):
        attachment = message.audio or message.voice  # a voice note in an album goes as audio
    return attachment.file_id if attachment is not None else None
