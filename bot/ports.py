"""Ports between the core and the outside: chat adapters, their capabilities, neutral events and parts.

Adapters turn platform updates into the few neutral events below and hand them to one inbound
callback; the core answers with `OutboundPart`s rendered for the adapter's `Capabilities`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from bot.content import MediaKind


class Markup(StrEnum):
    """The text dialect a platform understands; the core renders lesson Markdown into it."""

    PLAIN = "plain"
    TELEGRAM_HTML = "telegram_html"
    DISCORD_MARKDOWN = "discord_markdown"


@dataclass(frozen=True)
class Capabilities:
    platform: str
    max_text_length: int
    max_caption_length: int
    markup: Markup
    native_quiz: bool
    threads: bool
    max_upload_bytes: int
    max_photo_bytes: int
    max_button_data: int
    """Bytes of callback data (Telegram 64) or characters of custom_id (Discord 100)."""
    max_quiz_question: int = 300
    max_quiz_option: int = 100
    max_quiz_explanation: int = 200
    albums: bool = False


# --- what the core sends -------------------------------------------------------------------------


@dataclass(frozen=True)
class Button:
    """A button that carries a short, stable action string back to the core (survives restarts)."""

    label: str
    action: str


@dataclass(frozen=True)
class LinkButton:
    label: str
    url: str


@dataclass(frozen=True)
class RequestLocationButton:
    """Asks the user to share their location (a Telegram reply-keyboard button; others ignore it)."""

    label: str


AnyButton = Button | LinkButton | RequestLocationButton


@dataclass(frozen=True)
class TextPart:
    text: str
    """Already rendered in the adapter's `Markup` dialect."""
    buttons: tuple[AnyButton, ...] = ()
    title: str = ""
    """A heading a platform may show specially (a Discord embed); empty when `text` carries it."""


@dataclass(frozen=True)
class MediaPart:
    kind: MediaKind
    path: Path
    caption: str = ""
    file_key: str = ""
    """Content hash: the key under which the platform's file id is remembered after the first upload."""
    file_id: str = ""
    """The platform's id of an earlier upload of this file; when set, the adapter sends it, not the file."""
    buttons: tuple[Button | LinkButton, ...] = ()


@dataclass(frozen=True)
class AlbumPart:
    """Several photos or videos sent together (Telegram sendMediaGroup)."""

    items: tuple[MediaPart, ...]


@dataclass(frozen=True)
class QuizPart:
    """A quiz. Native: `question` and `explanation` are plain text (the platform formats polls itself).
    Fallback: both are in the platform's `Markup` dialect. `options` are always plain labels."""

    question: str
    options: tuple[str, ...]
    correct_index: int
    explanation: str
    answer_action_prefix: str
    """Option i is answered by the action `f"{answer_action_prefix}{i}"` where buttons stand in for a quiz."""
    native: bool
    """True: a platform quiz poll. False: the question as text with one button per option."""


@dataclass(frozen=True)
class FilePart:
    """A generated file (export, chart, calendar) to send as a document or photo."""

    filename: str
    content: bytes
    caption: str = ""
    as_photo: bool = False


OutboundPart = TextPart | MediaPart | AlbumPart | QuizPart | FilePart


@dataclass(frozen=True)
class SentMessage:
    message_ids: tuple[str, ...]
    poll_id: str | None = None
    uploaded_file_ids: dict[str, str] = field(default_factory=dict)
    """file_key -> platform file id for files uploaded by this send."""


# --- what adapters report ------------------------------------------------------------------------


@dataclass(frozen=True)
class Sender:
    platform: str
    user_id: str
    chat_id: str
    """Where a private answer goes: the private chat (Telegram) or DM/interaction channel (Discord)."""
    display_name: str = ""
    language_code: str | None = None
    is_private: bool = True
    is_admin_hint: bool = False
    """The platform says this user holds an admin role; the core still checks its own admin list."""


@dataclass(frozen=True)
class Command:
    sender: Sender
    name: str
    """Lower-case, without the slash or a bot mention."""
    args: str = ""


@dataclass(frozen=True)
class ButtonPressed:
    sender: Sender
    action: str
    message_id: str | None = None


@dataclass(frozen=True)
class QuizAnswered:
    sender: Sender
    poll_id: str
    option_index: int


@dataclass(frozen=True)
class TextReceived:
    sender: Sender
    text: str


@dataclass(frozen=True)
class LocationShared:
    sender: Sender
    latitude: float
    longitude: float


InboundEvent = Command | ButtonPressed | QuizAnswered | TextReceived | LocationShared


@dataclass(frozen=True)
class Reply:
    """What the core answers to one inbound event, sent at once by the adapter (not via the outbox)."""

    parts: tuple[OutboundPart, ...]
    private: bool = True
    """Personal content: in a group, the adapter answers privately (Discord ephemeral, Telegram DM link)."""


InboundHandler = Callable[[InboundEvent], Awaitable[Reply]]


# --- platform errors, classified by the adapter --------------------------------------------------


class PlatformError(Exception):
    """A send failed; subclasses say what the sender should do about it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RetryAfter(PlatformError):
    """The platform asked us to wait. `chat_id` None means the whole bot, otherwise only that chat."""

    def __init__(self, reason: str, seconds: float, chat_id: str | None = None) -> None:
        super().__init__(reason)
        self.seconds = seconds
        self.chat_id = chat_id


class TransientError(PlatformError):
    """Safe to retry: the request did not take effect (5xx, reset before sending, timeout connecting)."""


class AmbiguousError(PlatformError):
    """The request may have reached the platform (timeout after sending); a resend may duplicate."""


class PermanentError(PlatformError):
    """Never retry. `unreachable` True means the learner can no longer be reached (blocked, chat gone)."""

    def __init__(self, reason: str, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.unreachable = unreachable


class ChatMigrated(PlatformError):
    """The chat moved (Telegram group to supergroup): retry at `new_chat_id` and remember it."""

    def __init__(self, reason: str, new_chat_id: str) -> None:
        super().__init__(reason)
        self.new_chat_id = new_chat_id


# --- the adapter port ----------------------------------------------------------------------------


class ChatAdapter(Protocol):
    """One chat platform. Sends raise a `PlatformError` subclass on failure, never a raw SDK error."""

    @property
    def capabilities(self) -> Capabilities: ...

    async def start(self, on_event: InboundHandler) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, chat_id: str, part: OutboundPart, *, idempotency_key: str = "") -> SentMessage:
        """Send one part. `idempotency_key` lets a platform drop a retried duplicate (Discord nonce)."""
        ...

    async def send_reply(self, sender: Sender, reply: Reply) -> None:
        """Answer an inbound event at once, privately where the reply is personal."""
        ...

    async def edit(self, chat_id: str, message_id: str, part: TextPart) -> None:
        """Replace the text and buttons of a message this bot sent to `chat_id`.

        Raises the same `PlatformError`s as `send`; an edit that changes nothing counts as done.
        """
        ...
