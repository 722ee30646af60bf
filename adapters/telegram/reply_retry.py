"""Replies ride out a short hiccup: a reply that never reached Telegram is tried again, briefly.

Lessons go through the outbox, which retries for as long as it takes; a reply is sent at once, so a
single 5xx, reset or short flood wait would otherwise leave a learner unanswered. A failure that may
have reached Telegram (a timeout after sending) is not retried: a learner should not read an answer twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bot.ports import RetryAfter, TransientError

log = logging.getLogger(__name__)
T = TypeVar("T")

REPLY_BACKOFF_SECONDS = (0.25, 1.0)
"""The waits before the second and third try."""
MAX_REPLY_WAIT_SECONDS = 3.0
"""A longer flood wait is not worth holding an answer for; the learner can ask again."""


async def send_retrying(
    send: Callable[[], Awaitable[T]], *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
) -> T:
    """`send()`, tried again after a transient failure or a short retry_after, at most three times."""
    for wait in REPLY_BACKOFF_SECONDS:
        try:
            return await send()
        except RetryAfter as error:
            if error.seconds > MAX_REPLY_WAIT_SECONDS:
                raise
            log.info("reply held back %gs by Telegram's flood control; trying again", error.seconds)
            await sleep(error.seconds)
        except TransientError as error:
            log.info("reply not sent (%s); trying again in %gs", error.reason, wait)
            await sleep(wait)
    return await send()
