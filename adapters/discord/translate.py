"""Pure translation between Discord and the core: who acted where -> neutral events; parts -> messages.

Where lessons go is one string, `Learner.chat_id`, in one of these forms:

    dm:<user id>                   a learner whose DM channel is not known yet (the adapter opens it)
    dm:<user id>:<channel id>      the learner's DM channel
    thread:<user id>:<thread id>   the learner's private thread in the fallback channel (DMs closed)
    <channel id>                   any other channel, used as it is

A learner first seen in a server starts as `dm:<user id>`; one seen in a DM with the bot starts with the
DM channel. The adapter moves a learner on (`ChatMigrated`) when it opens the DM or falls back to a thread.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import quote

from bot.actions import decode
from bot.capabilities import DISCORD
from bot.markup import escape_user_text, split_message
from bot.ports import (
    AlbumPart,
    AnyButton,
    Button,
    ButtonPressed,
    Command,
    LinkButton,
    Markup,
    MediaPart,
    OutboundPart,
    QuizPart,
    Sender,
    TextPart,
    TextReceived,
)

PLATFORM = "discord"
MAX_CONTENT = 2000
MAX_EMBED_TITLE = 256
MAX_EMBED_DESCRIPTION = 4096
MAX_BUTTON_LABEL = 80
MAX_CUSTOM_ID = 100
MAX_BUTTONS = 25
MAX_ATTACHMENTS = 10
MAX_NONCE = 25
MAX_THREAD_NAME = 100
ATTACHMENT_LIMIT_BYTES = DISCORD.max_upload_bytes
"""What a bot may attach in any channel (servers with boosts allow more, DMs do not)."""

# --- where lessons go ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DirectMessage:
    user_id: int
    channel_id: int | None = None
    """None until the DM channel is opened."""


@dataclass(frozen=True)
class PrivateThread:
    user_id: int
    thread_id: int


@dataclass(frozen=True)
class PlainChannel:
    channel_id: int


Destination = DirectMessage | PrivateThread | PlainChannel

_SNOWFLAKE = r"[1-9][0-9]{0,19}"
_DM = re.compile(rf"^dm:({_SNOWFLAKE})(?::({_SNOWFLAKE}))?$")
_THREAD = re.compile(rf"^thread:({_SNOWFLAKE}):({_SNOWFLAKE})$")
_CHANNEL = re.compile(rf"^{_SNOWFLAKE}$")


def parse_chat_id(chat_id: str) -> Destination:
    """The destination a stored chat id names; ValueError for anything else."""
    if match := _DM.match(chat_id):
        channel = match.group(2)
        return DirectMessage(int(match.group(1)), int(channel) if channel else None)
    if match := _THREAD.match(chat_id):
        return PrivateThread(int(match.group(1)), int(match.group(2)))
    if _CHANNEL.match(chat_id):
        return PlainChannel(int(chat_id))
    raise ValueError(f"not a Discord chat id: {chat_id[:80]!r}")


def chat_id_of(destination: Destination) -> str:
    """The stored form of `destination`; `parse_chat_id(chat_id_of(d)) == d`."""
    if isinstance(destination, DirectMessage):
        if destination.channel_id is None:
            return f"dm:{destination.user_id}"
        return f"dm:{destination.user_id}:{destination.channel_id}"
    if isinstance(destination, PrivateThread):
        return f"thread:{destination.user_id}:{destination.thread_id}"
    return str(destination.channel_id)


def channel_of(destination: Destination) -> int | None:
    """The channel to post in, or None while a DM channel still has to be opened."""
    if isinstance(destination, DirectMessage):
        return destination.channel_id
    if isinstance(destination, PrivateThread):
        return destination.thread_id
    return destination.channel_id


# --- who acted, and where --------------------------------------------------------------------------


@dataclass(frozen=True)
class Origin:
    """The facts of one interaction or message the core needs, read off discord.py's objects."""

    user_id: int
    display_name: str
    locale: str | None
    guild_id: int | None
    channel_id: int | None
    in_bot_dm: bool
    """The event happened in the user's DM with the bot (not in a server, group DM or other DM)."""
    role_ids: tuple[int, ...] = ()
    role_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class AdminRule:
    """Who the config names as instructors: user ids, and optionally one role."""

    user_ids: frozenset[str] = frozenset()
    role: str = ""
    """A role id, or a role name; a name counts only in `guild_ids`, since anyone can name a role so in a
    server of their own."""
    guild_ids: frozenset[int] = frozenset()

    def holds_role(self, origin: Origin) -> bool:
        if not self.role:
            return False
        if self.role.isdigit() and int(self.role) in origin.role_ids:
            return True
        return origin.guild_id in self.guild_ids and self.role in origin.role_names


def sender_for(origin: Origin, admins: AdminRule = AdminRule()) -> Sender:
    """The neutral sender: in the bot's DM its channel is the learner's chat, elsewhere the learner's DM."""
    if origin.in_bot_dm and origin.channel_id is not None:
        chat = DirectMessage(origin.user_id, origin.channel_id)
    else:
        chat = DirectMessage(origin.user_id)
    admin_hint = str(origin.user_id) in admins.user_ids or admins.holds_role(origin)
    return Sender(
        platform=PLATFORM,
        user_id=str(origin.user_id),
        chat_id=chat_id_of(chat),
        display_name=origin.display_name,
        language_code=origin.locale or None,
        is_private=origin.in_bot_dm,
        is_admin_hint=admin_hint,
    )


class SlashCommand(StrEnum):
    """The slash commands; each maps onto the core command of `CORE_COMMANDS`."""

    ENROLL = "enroll"
    COURSES = "courses"
    TIMEZONE = "timezone"
    TIME = "time"
    PACE = "pace"
    SCHEDULE = "schedule"
    PROGRESS = "progress"
    SETTINGS = "settings"
    PAUSE = "pause"
    RESUME = "resume"
    NEXT = "next"
    REPEAT = "repeat"
    STOP = "stop"
    HELP = "help"
    REVIEW = "review"
    CALENDAR = "calendar"
    LANGUAGE = "language"
    MYDATA = "mydata"
    FORGETME = "forgetme"


CORE_COMMANDS: Mapping[SlashCommand, str] = {
    command: ("start" if command is SlashCommand.ENROLL else command.value) for command in SlashCommand
}

# The option that carries a command's own argument; a `course` option, where given, goes first.
_VALUE_OPTIONS: Mapping[SlashCommand, tuple[str, ...]] = {
    SlashCommand.ENROLL: ("course",),
    SlashCommand.TIMEZONE: ("zone",),
    SlashCommand.TIME: ("course", "at"),
    SlashCommand.PACE: ("course", "every", "custom"),
    SlashCommand.PAUSE: ("course", "until"),
    SlashCommand.RESUME: ("course",),
    SlashCommand.NEXT: ("course",),
    SlashCommand.REPEAT: ("course",),
    SlashCommand.STOP: ("course",),
    SlashCommand.LANGUAGE: ("language",),
}


def command_event(sender: Sender, command: SlashCommand, options: Mapping[str, object]) -> Command:
    """`/enroll course:x` -> Command("start", "x"); `/pause course:x until:3` -> Command("pause", "x 3").

    Of `/pace every:` and `/pace custom:`, the typed custom cadence wins.
    """
    values: list[str] = []
    for name in _VALUE_OPTIONS.get(command, ()):
        value = options.get(name)
        text = " ".join(str(value).split()) if value is not None else ""
        if name == "every" and " ".join(str(options.get("custom") or "").split()):
            continue
        if text:
            values.append(text)
    return Command(sender, CORE_COMMANDS[command], " ".join(values))


def instructor_event(sender: Sender, name: str, arguments: str) -> Command:
    """`/broadcast arguments:x  Hello` -> Command("broadcast", "x Hello"): the core parses the arguments."""
    return Command(sender, name, " ".join(arguments.split()))


def component_event(sender: Sender, custom_id: str, message_id: int | None) -> ButtonPressed:
    """Any button press, whenever its message was sent: the custom_id is the core's action string."""
    return ButtonPressed(sender, custom_id[:MAX_CUSTOM_ID], str(message_id) if message_id else None)


def direct_message_event(sender: Sender, text: str) -> Command | TextReceived | None:
    """A message typed in the bot's DM: `/name args` as a command, anything else as text; None if empty."""
    typed = text.strip()
    if not typed:
        return None
    if typed.startswith("/") and len(typed) > 1 and not typed[1].isspace():
        name, _, args = typed[1:].partition(" ")
        return Command(sender, name.lower(), args.strip())
    return TextReceived(sender, typed)


# --- what goes out ---------------------------------------------------------------------------------


class ButtonStyle(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"
    SUCCESS = "success"
    LINK = "link"


@dataclass(frozen=True)
class ButtonSpec:
    label: str
    style: ButtonStyle
    custom_id: str = ""
    url: str = ""


@dataclass(frozen=True)
class Attachment:
    filename: str
    path: Path | None = None
    content: bytes | None = None
    """Exactly one of `path` (read when sent) and `content` is set."""


@dataclass(frozen=True)
class OutgoingMessage:
    """One Discord message: content and/or an embed, attachments and a row or more of buttons."""

    content: str = ""
    embed_title: str = ""
    embed_description: str = ""
    attachments: tuple[Attachment, ...] = ()
    buttons: tuple[ButtonSpec, ...] = ()


@dataclass(frozen=True)
class MediaLinks:
    """Files too large to attach are linked as `base_url` + their path under `root` (or their name)."""

    base_url: str = ""
    root: Path | None = None

    def url_for(self, path: Path) -> str | None:
        if not self.base_url:
            return None
        relative = path.name
        if self.root is not None:
            try:
                relative = path.resolve().relative_to(self.root.resolve()).as_posix()
            except ValueError:
                relative = path.name
        return f"{self.base_url.rstrip('/')}/{quote(relative)}"


SizeOf = Callable[[Path], int]


def part_messages(part: OutboundPart, *, media_links: MediaLinks, size_of: SizeOf) -> list[OutgoingMessage]:
    """The messages that carry one part, in order; buttons ride on the last one.

    `size_of` tells a media file's size (an OSError from it propagates: the file is unreadable).
    """
    if isinstance(part, TextPart):
        return _text_messages(part.text, part.title, _buttons(part.buttons))
    if isinstance(part, MediaPart):
        return _media_messages((part,), part.caption, _buttons(part.buttons), media_links, size_of)
    if isinstance(part, AlbumPart):
        caption = next((item.caption for item in part.items if item.caption), "")
        return _media_messages(part.items, caption, (), media_links, size_of)
    if isinstance(part, QuizPart):
        buttons = tuple(
            ButtonSpec(_label(option), ButtonStyle.SECONDARY, custom_id=f"{part.answer_action_prefix}{index}")
            for index, option in enumerate(part.options)
        )
        return _text_messages(part.question, "", buttons)
    attachment = Attachment(part.filename, content=part.content)
    messages = _text_messages(part.caption, "", ()) if part.caption else [OutgoingMessage()]
    messages[0] = OutgoingMessage(messages[0].content, attachments=(attachment,))
    return messages


def _text_messages(text: str, title: str, buttons: tuple[ButtonSpec, ...]) -> list[OutgoingMessage]:
    if title and len(text) <= MAX_EMBED_DESCRIPTION:
        return [
            OutgoingMessage(
                embed_title=_clip(title, MAX_EMBED_TITLE), embed_description=text, buttons=buttons
            )
        ]
    chunks = split_content(text)
    messages = [OutgoingMessage(content=chunk) for chunk in chunks]
    if title:
        messages[0] = OutgoingMessage(messages[0].content, embed_title=_clip(title, MAX_EMBED_TITLE))
    last = messages[-1]
    messages[-1] = OutgoingMessage(last.content, last.embed_title, buttons=buttons)
    return messages


def _media_messages(
    items: tuple[MediaPart, ...],
    caption: str,
    buttons: tuple[ButtonSpec, ...],
    media_links: MediaLinks,
    size_of: SizeOf,
) -> list[OutgoingMessage]:
    attachments: list[Attachment] = []
    notes: list[str] = []
    for item in items:
        if size_of(item.path) <= ATTACHMENT_LIMIT_BYTES:
            attachments.append(Attachment(item.path.name, path=item.path))
            continue
        url = media_links.url_for(item.path)
        if url is not None:
            notes.append(f"📎 {escape_user_text(item.path.name, Markup.DISCORD_MARKDOWN)}: <{url}>")
        else:
            notes.append(
                escape_user_text(f"📎 {item.path.name} is too large to send here.", Markup.DISCORD_MARKDOWN)
            )
    text = "\n".join(filter(None, [caption, *notes]))
    chunks = split_content(text) if text else [""]
    messages = [OutgoingMessage(content=chunk) for chunk in chunks]
    for start in range(0, len(attachments), MAX_ATTACHMENTS):
        group = tuple(attachments[start : start + MAX_ATTACHMENTS])
        if start == 0:
            messages[0] = OutgoingMessage(messages[0].content, attachments=group)
        else:
            messages.append(OutgoingMessage(attachments=group))
    last = messages[-1]
    messages[-1] = OutgoingMessage(last.content, attachments=last.attachments, buttons=buttons)
    return messages


def _buttons(buttons: tuple[AnyButton, ...]) -> tuple[ButtonSpec, ...]:
    """Action and link buttons; a request-location button has no Discord counterpart and is left out."""
    specs: list[ButtonSpec] = []
    for button in buttons:
        if isinstance(button, LinkButton):
            specs.append(ButtonSpec(_label(button.label), ButtonStyle.LINK, url=button.url))
        elif isinstance(button, Button) and len(button.action) <= MAX_CUSTOM_ID:
            specs.append(ButtonSpec(_label(button.label), _style(button.action), custom_id=button.action))
    return tuple(specs[:MAX_BUTTONS])


def _style(action: str) -> ButtonStyle:
    parsed = decode(action)
    if parsed is not None and parsed.verb == "done":
        return ButtonStyle.SUCCESS
    if parsed is not None and parsed.verb == "next":
        return ButtonStyle.PRIMARY
    return ButtonStyle.SECONDARY


def _label(text: str) -> str:
    return _clip(" ".join(text.split()) or "·", MAX_BUTTON_LABEL)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def split_content(text: str, limit: int = MAX_CONTENT) -> list[str]:
    """`text` in messages of at most `limit` characters, cut at block, line or word boundaries."""
    if len(text) <= limit:
        return [text]
    return [chunk for chunk in split_message([text], limit, Markup.DISCORD_MARKDOWN) if chunk] or [
        text[:limit]
    ]


def nonce_for(idempotency_key: str, index: int) -> str | None:
    """A stable nonce (<= 25 characters) for message `index` of a send; None when there is no key.

    The same key and index give the same nonce in every process, so Discord drops a resent duplicate.
    """
    if not idempotency_key:
        return None
    return hashlib.sha256(f"{idempotency_key}#{index}".encode()).hexdigest()[:MAX_NONCE]


# --- the DM fallback -------------------------------------------------------------------------------


def fallback_thread_name(display_name: str, user_id: int) -> str:
    name = " ".join(display_name.split()) or str(user_id)
    return _clip(f"Lessons for {name}", MAX_THREAD_NAME)


def fallback_notice(user_id: int) -> str:
    """Told once, in the new thread: why lessons arrive here and how to get them by DM again."""
    return (
        f"<@{user_id}> I could not send you a direct message, so your lessons will arrive here, in a "
        "private thread for you. To get them by DM instead, allow direct messages from this server's "
        "members in your privacy settings, then use any of my commands in a DM with me."
    )
