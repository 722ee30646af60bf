"""What each chat platform can show: the limits the renderer splits and falls back under."""

from __future__ import annotations

import dataclasses

from bot.actions import MAX_ACTION_BYTES
from bot.ports import Capabilities, Markup

TELEGRAM = Capabilities(
    platform="telegram",
    max_text_length=4096,
    max_caption_length=1024,
    markup=Markup.TELEGRAM_HTML,
    native_quiz=True,
    threads=True,
    max_upload_bytes=50 * 1000 * 1000,
    max_photo_bytes=10 * 1000 * 1000,
    max_button_data=64,
    max_quiz_question=300,
    max_quiz_option=100,
    max_quiz_explanation=200,
    albums=True,
)

# Discord has no captions: a file's text travels as the message content, under the same 2000 limit.
DISCORD = Capabilities(
    platform="discord",
    max_text_length=2000,
    max_caption_length=2000,
    markup=Markup.DISCORD_MARKDOWN,
    native_quiz=False,
    threads=True,
    max_upload_bytes=10 * 1024 * 1024,
    max_photo_bytes=10 * 1024 * 1024,
    max_button_data=100,
    albums=False,
)

_NO_LIMIT_BYTES = 2**63 - 1

CONSOLE = Capabilities(
    platform="console",
    max_text_length=100_000,
    max_caption_length=100_000,
    markup=Markup.PLAIN,
    native_quiz=False,
    threads=False,
    max_upload_bytes=_NO_LIMIT_BYTES,
    max_photo_bytes=_NO_LIMIT_BYTES,
    max_button_data=MAX_ACTION_BYTES,
    albums=False,
)

LOCAL_BOT_API_UPLOAD_BYTES = 2000 * 1000 * 1000


def telegram_capabilities(local_bot_api: bool) -> Capabilities:
    """Telegram's limits; a self-hosted Bot API server accepts uploads up to 2000 MB."""
    if local_bot_api:
        return dataclasses.replace(TELEGRAM, max_upload_bytes=LOCAL_BOT_API_UPLOAD_BYTES)
    return TELEGRAM
