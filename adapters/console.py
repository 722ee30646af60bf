"""A chat in the terminal: take a course with no bot token, or watch scripted learners (the demo).

Buttons are shown numbered; typing the number presses the button. Media are shown as file paths and
quizzes as numbered options. It speaks the same neutral events as the real platforms.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import Callable
from typing import TextIO

from bot.capabilities import CONSOLE
from bot.ports import (
    AlbumPart,
    AnyButton,
    Button,
    ButtonPressed,
    Capabilities,
    Command,
    FilePart,
    InboundEvent,
    InboundHandler,
    LinkButton,
    MediaPart,
    OutboundPart,
    QuizPart,
    Reply,
    RequestLocationButton,
    Sender,
    SentMessage,
    TextPart,
    TextReceived,
)

PLATFORM = "console"


def console_sender(user_id: str, display_name: str = "", language_code: str | None = "en") -> Sender:
    return Sender(PLATFORM, user_id, user_id, display_name or user_id, language_code, is_private=True)


def parse_line(line: str, sender: Sender, choices: list[str]) -> InboundEvent | None:
    """A typed line as the event a chat platform would report; None for an empty line."""
    text = line.strip()
    if not text:
        return None
    if text.startswith("/"):
        name, _, args = text[1:].partition(" ")
        return Command(sender, name.lower(), args.strip())
    if text.isdigit() and 1 <= int(text) <= len(choices):
        return ButtonPressed(sender, choices[int(text) - 1])
    return TextReceived(sender, text)


class ConsoleAdapter:
    """Prints what the core sends; turns typed lines into events. One terminal, any number of learners."""

    def __init__(
        self,
        output: TextIO | None = None,
        *,
        capabilities: Capabilities = CONSOLE,
        prefix: Callable[[str], str] = lambda chat_id: "",
    ) -> None:
        self._output = output or sys.stdout
        self._capabilities = capabilities
        self._prefix = prefix
        self._on_event: InboundHandler | None = None
        self._ids = itertools.count(1)
        self.choices: dict[str, list[str]] = {}
        """chat id -> the actions of the numbered buttons shown last."""

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    async def start(self, on_event: InboundHandler) -> None:
        self._on_event = on_event

    async def stop(self) -> None:
        self._on_event = None

    async def send(self, chat_id: str, part: OutboundPart, *, idempotency_key: str = "") -> SentMessage:
        self._show(chat_id, part)
        message_id = str(next(self._ids))
        poll_id = f"console-{message_id}" if isinstance(part, QuizPart) and part.native else None
        return SentMessage((message_id,), poll_id=poll_id)

    async def send_reply(self, sender: Sender, reply: Reply) -> None:
        for part in reply.parts:
            self._show(sender.chat_id, part)

    async def edit(self, chat_id: str, message_id: str, part: TextPart) -> None:
        """A terminal cannot change what it printed: the new text is printed again, marked as an update."""
        self._write(chat_id, f"(message {message_id} updated)")
        self._show(chat_id, part)

    async def event(self, event: InboundEvent) -> Reply:
        """Hand an event to the core and print its reply, as a platform would."""
        if self._on_event is None:
            raise RuntimeError("console adapter not started")
        reply = await self._on_event(event)
        await self.send_reply(event.sender, reply)
        return reply

    async def type_line(self, sender: Sender, line: str) -> Reply | None:
        event = parse_line(line, sender, self.choices.get(sender.chat_id, []))
        return await self.event(event) if event is not None else None

    async def repl(self, sender: Sender, *, read_line: Callable[[], str] = input) -> None:
        """Read lines until end of input or /quit, handing each to the core."""
        self._write(sender.chat_id, "Type /help for commands, a number to press a button, /quit to leave.")
        while True:
            try:
                line = await asyncio.to_thread(read_line)
            except (EOFError, KeyboardInterrupt):
                return
            if line.strip() in ("/quit", "/exit"):
                return
            await self.type_line(sender, line)

    # --- printing ----------------------------------------------------------------------------------

    def _show(self, chat_id: str, part: OutboundPart) -> None:
        if isinstance(part, TextPart):
            if part.title:
                self._write(chat_id, f"== {part.title} ==")
            self._write(chat_id, part.text)
            self._buttons(chat_id, part.buttons)
        elif isinstance(part, MediaPart):
            caption = f" – {part.caption}" if part.caption else ""
            self._write(chat_id, f"[{part.kind.value}] {part.path}{caption}")
            self._buttons(chat_id, part.buttons)
        elif isinstance(part, AlbumPart):
            for item in part.items:
                self._show(chat_id, item)
        elif isinstance(part, QuizPart):
            self._write(chat_id, f"Quiz: {part.question}")
            actions = [f"{part.answer_action_prefix}{index}" for index in range(len(part.options))]
            self._buttons(
                chat_id,
                tuple(Button(option, action) for option, action in zip(part.options, actions, strict=True)),
            )
        elif isinstance(part, FilePart):
            self._write(
                chat_id, f"[file] {part.filename} ({len(part.content)} bytes) {part.caption}".rstrip()
            )

    def _buttons(self, chat_id: str, buttons: tuple[AnyButton, ...]) -> None:
        actions: list[str] = []
        for button in buttons:
            if isinstance(button, Button):
                actions.append(button.action)
                self._write(chat_id, f"  [{len(actions)}] {button.label}")
            elif isinstance(button, LinkButton):
                self._write(chat_id, f"  ({button.label}: {button.url})")
            elif isinstance(button, RequestLocationButton):
                continue
        if actions:
            self.choices[chat_id] = actions

    def _write(self, chat_id: str, text: str) -> None:
        prefix = self._prefix(chat_id)
        for line in text.splitlines() or [""]:
            self._output.write(f"{prefix}{line}\n")
        self._output.flush()
