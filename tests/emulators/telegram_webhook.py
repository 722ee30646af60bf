"""Webhook delivery: each pending update is POSTed in order until the bot's endpoint answers 2xx."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Sequence
from http import HTTPStatus

import aiohttp

from tests.emulators.telegram_records import Journal, WebhookAttempt
from tests.emulators.telegram_updates import UpdateQueue, WebhookConfig

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class WebhookPusher:
    """Delivers one bot's updates to its webhook, retrying a failed update before any later one."""

    def __init__(
        self,
        *,
        bot_id: int,
        queue: UpdateQueue,
        session: aiohttp.ClientSession,
        journal: Journal,
        retry_delays: Sequence[float],
        timeout: float,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
    ) -> None:
        self._bot_id = bot_id
        self._queue = queue
        self._session = session
        self._journal = journal
        self._retry_delays = tuple(retry_delays) or (1.0,)
        self._timeout = timeout
        self._clock = clock
        self._wall_clock = wall_clock

    async def run(self) -> None:
        failures = 0
        while (update := await self._queue.next_for_webhook()) is not None:
            webhook = self._queue.webhook
            if webhook is None:
                return
            status, error = await self._post(webhook, update)
            self._journal.webhook_attempts.append(
                WebhookAttempt(
                    bot_id=self._bot_id,
                    update_id=update["update_id"],
                    url=webhook.url,
                    status=status,
                    error=error,
                    secret_token_sent=webhook.secret_token is not None,
                    at=self._clock(),
                )
            )
            await self._journal.notify()
            if status is not None and HTTPStatus.OK <= status < HTTPStatus.MULTIPLE_CHOICES:
                self._queue.delivered(update)
                failures = 0
                continue
            webhook.last_error_date = int(self._wall_clock())
            webhook.last_error_message = error or _wrong_response(status)
            delay = self._retry_delays[min(failures, len(self._retry_delays) - 1)]
            failures += 1
            await self._queue.pause(delay)

    async def _post(self, webhook: WebhookConfig, update: dict[str, object]) -> tuple[int | None, str | None]:
        headers = {"Content-Type": "application/json"}
        if webhook.secret_token is not None:
            headers[SECRET_HEADER] = webhook.secret_token
        try:
            async with self._session.post(
                webhook.url,
                data=json.dumps(update),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                ssl=False,
            ) as response:
                await response.read()
                return response.status, None
        except TimeoutError:
            return None, "Read timeout expired"
        except aiohttp.ClientConnectorError:
            return None, "Connection refused"
        except aiohttp.ClientError as error:
            return None, f"Connection error: {error.__class__.__name__}"


def _wrong_response(status: int | None) -> str:
    try:
        phrase = HTTPStatus(status or 0).phrase
    except ValueError:
        phrase = "Unknown"
    return f"Wrong response from the webhook: {status} {phrase}"


async def cancel_task(task: asyncio.Task[None] | None) -> None:
    if task is None or task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
