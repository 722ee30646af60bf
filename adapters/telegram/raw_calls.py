"""Bot API calls whose answer is read as raw JSON, not built into a `telegram.Message`.

Building a `Message` from Telegram's answer costs more CPU than everything else python-telegram-bot does
for a send, and a text message needs only its id back. The call still goes through
`Bot.do_api_request`: PTB encodes the parameters and turns failures into the same `TelegramError`s as
`Bot.send_message` does.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from typing import Any

from telegram import Bot
from telegram.error import TelegramError
from telegram.warnings import PTBUserWarning

RAW_ENDPOINTS: Mapping[str, str] = {"send_message": "sendMessage"}
"""`telegram.Bot` method -> the Bot API endpoint called raw in its place."""


def quiet_raw_endpoint_warnings() -> None:
    """Silence PTB's advice to call `Bot.send_message` instead: here the raw call is the point."""
    endpoints = "|".join(re.escape(endpoint) for endpoint in RAW_ENDPOINTS.values())
    warnings.filterwarnings(
        "ignore", message=rf"Please use 'Bot\.({endpoints})' instead of", category=PTBUserWarning
    )


async def send_raw(bot: Bot, method: str, kwargs: Mapping[str, Any]) -> tuple[str, ...]:
    """Call `method` (a key of RAW_ENDPOINTS) with `kwargs`; the id of the message Telegram created."""
    result = await bot.do_api_request(RAW_ENDPOINTS[method], api_kwargs=dict(kwargs))
    message_id = result.get("message_id") if isinstance(result, dict) else None
    if not isinstance(message_id, int):
        raise TelegramError(f"Invalid server response: {RAW_ENDPOINTS[method]} returned no message_id")
    return (str(message_id),)
