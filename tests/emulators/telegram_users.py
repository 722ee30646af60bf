"""Simulated Telegram users and the Update payloads their actions produce."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tests.emulators.telegram_markup import utf16_length

_LEADING_COMMAND = re.compile(r"^/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]{3,32})?")


@dataclass(frozen=True)
class TelegramUser:
    id: int
    first_name: str
    username: str | None = None
    language_code: str | None = "en"
    last_name: str | None = None

    def to_json(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            user["last_name"] = self.last_name
        if self.username:
            user["username"] = self.username
        if self.language_code:
            user["language_code"] = self.language_code
        return user

    def private_chat_json(self) -> dict[str, Any]:
        """The private chat between this user and a bot: its id is the user's id."""
        chat: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            chat["last_name"] = self.last_name
        if self.username:
            chat["username"] = self.username
        return chat


def command_entities(text: str) -> list[dict[str, Any]]:
    """The bot_command entity Telegram detects at the start of a message, if any."""
    match = _LEADING_COMMAND.match(text)
    if match is None:
        return []
    return [{"type": "bot_command", "offset": 0, "length": utf16_length(match.group(0))}]


def user_message(
    *,
    message_id: int,
    date: int,
    user: TelegramUser,
    chat: dict[str, Any],
    text: str | None = None,
    message_thread_id: int | None = None,
    **content: Any,
) -> dict[str, Any]:
    """A Message sent by `user`; `content` adds fields such as location, poll or reply_to_message."""
    message: dict[str, Any] = {"message_id": message_id, "from": user.to_json(), "chat": chat, "date": date}
    if message_thread_id is not None:
        message["message_thread_id"] = message_thread_id
        message["is_topic_message"] = True
    if text is not None:
        message["text"] = text
        entities = command_entities(text)
        if entities:
            message["entities"] = entities
    message.update(content)
    return message
