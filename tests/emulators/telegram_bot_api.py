"""A Telegram Bot API emulator over HTTP on loopback, for tests and benchmarks of the real bot stack.

python-telegram-bot talks to it unchanged through `base_url=emu.base_url` and
`base_file_url=emu.file_base_url`. It answers with Telegram's JSON, enforces Telegram's flood limits
with real 429s, injects faults on demand, records every accepted message, and plays the users' side
(messages, commands, button presses, poll answers) as Update objects for getUpdates or a webhook.

    async with TelegramEmulator() as emu:
        bot = telegram.Bot(emu.token, base_url=emu.base_url, base_file_url=emu.file_base_url)
        ...
        await emu.wait_for(lambda: emu.sent_to(42), timeout=5)

Run standalone with `python -m tests.emulators.telegram_bot_api --port 8081`.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from tests.emulators.telegram_backend import Backend
from tests.emulators.telegram_faults import Fault, FaultKind, FaultPlan
from tests.emulators.telegram_files import FileStore
from tests.emulators.telegram_http import BotApiHttp
from tests.emulators.telegram_limits import SendBudget, TelegramLimits
from tests.emulators.telegram_management import ManagementMethods
from tests.emulators.telegram_messaging import MessagingMethods
from tests.emulators.telegram_params import MAX_UPLOAD_BYTES
from tests.emulators.telegram_records import ActionRecord, Journal, RequestRecord, SentRecord, WebhookAttempt
from tests.emulators.telegram_user_side import UserSide
from tests.emulators.telegram_users import TelegramUser
from tests.emulators.telegram_webhook import WebhookPusher, cancel_task
from tests.emulators.telegram_world import AdminRights, BotAccount, Chat, World

__all__ = [
    "DEFAULT_TOKEN",
    "ActionRecord",
    "AdminRights",
    "EmulatorThread",
    "Fault",
    "FaultKind",
    "RequestRecord",
    "SentRecord",
    "TelegramEmulator",
    "TelegramLimits",
    "TelegramUser",
    "WebhookAttempt",
]

DEFAULT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
T = TypeVar("T")


class TelegramEmulator(UserSide):
    """The Bot API for one or more bots, and the Telegram users who talk to them."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: TelegramLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        token: str = DEFAULT_TOKEN,
        bot_username: str = "dripcourse_bot",
        bot_name: str = "Dripcourse",
        accept_any_token: bool = True,
        strict_chats: bool = False,
        webhook_retry_delays: Iterable[float] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0),
        webhook_timeout: float = 10.0,
    ) -> None:
        """`strict_chats` False lets bots message any chat id; True answers "chat not found" until added."""
        self.host = host
        self.limits = limits or TelegramLimits()
        self.faults = FaultPlan()
        self._requested_port = port
        self._port: int | None = None
        self._clock = clock
        self._wall_clock = wall_clock
        self._journal = Journal()
        self._world = World(strict_chats=strict_chats)
        self._files = FileStore()
        self._url_content: dict[str, bytes] = {}
        self._backend = Backend(
            world=self._world,
            files=self._files,
            journal=self._journal,
            budget=SendBudget(self.limits, clock),
            clock=clock,
            wall_clock=wall_clock,
            fetch_url=self._fetch_url,
            on_webhook_change=self._webhook_changed,
        )
        self._http = BotApiHttp(
            world=self._world,
            files=self._files,
            journal=self._journal,
            faults=self.faults,
            handlers={
                **MessagingMethods(self._backend).handlers(),
                **ManagementMethods(self._backend).handlers(),
            },
            clock=clock,
            wall_clock=wall_clock,
            accept_any_token=accept_any_token,
        )
        self._webhook_retry_delays = tuple(webhook_retry_delays)
        self._webhook_timeout = webhook_timeout
        self._pushers: dict[int, asyncio.Task[None]] = {}
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        primary_bot = self._world.add_bot(token, bot_username, bot_name)
        super().__init__(
            world=self._world, backend=self._backend, wall_clock=wall_clock, primary_bot=primary_bot
        )

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> TelegramEmulator:
        self._http.stopping = asyncio.Event()
        for queue in self._backend.queues.values():
            queue.closed = False
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES + 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self._http.dispatch)
        # Cancelling a handler when its client disconnects is what lets a held call vanish unrecorded.
        self._runner = web.AppRunner(
            app, handle_signals=False, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._requested_port, reuse_address=True)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        self._session = aiohttp.ClientSession()
        for bot in self._world.bots.values():
            self._webhook_changed(bot)
        return self

    async def stop(self) -> None:
        if self._http.stopping is not None:
            self._http.stopping.set()
        for queue in self._backend.queues.values():
            queue.close()
        for task in list(self._pushers.values()):
            await cancel_task(task)
        self._pushers.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> TelegramEmulator:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def run_in_thread(self) -> EmulatorThread:
        """Serve from a daemon thread with its own event loop; returns once the port is listening."""
        return EmulatorThread(self)

    # --- addresses -------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the emulator is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """What python-telegram-bot takes as base_url: it appends `<token>/<method>`."""
        return f"http://{self.host}:{self.port}/bot"

    @property
    def file_base_url(self) -> str:
        return f"http://{self.host}:{self.port}/file/bot"

    @property
    def token(self) -> str:
        return self.bot.token

    @property
    def accept_any_token(self) -> bool:
        """Serve any well-formed token as a new bot (True), or answer 401 to tokens never added."""
        return self._http.accept_any_token

    @accept_any_token.setter
    def accept_any_token(self, value: bool) -> None:
        self._http.accept_any_token = value

    # --- configuration ---------------------------------------------------------------------------

    def add_bot(self, token: str, username: str, first_name: str = "Bot") -> BotAccount:
        return self._world.add_bot(token, username, first_name)

    def add_user(self, user: TelegramUser) -> TelegramUser:
        self._world.add_user(user)
        return user

    def add_group(
        self,
        chat_id: int,
        title: str = "",
        *,
        supergroup: bool | None = None,
        forum: bool = False,
        username: str | None = None,
        bot_rights: AdminRights | None = None,
        owner_id: int | None = None,
        admin_ids: Iterable[int] = (),
        bot: str | None = None,
    ) -> Chat:
        """A group (negative id); `bot_rights` makes the bot an administrator with those rights."""
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        is_super = supergroup if supergroup is not None else (forum or str(chat_id).startswith("-100"))
        chat = Chat(
            id=chat_id,
            type="supergroup" if is_super else "group",
            title=title or f"Group {chat_id}",
            username=username,
            is_forum=forum,
            owner_id=owner_id,
            admin_ids=set(admin_ids),
        )
        if bot_rights is not None:
            chat.bot_rights[self._bot(bot).id] = bot_rights
        return self._world.add_group(chat)

    def set_bot_rights(self, chat_id: int, rights: AdminRights | None, *, bot: str | None = None) -> None:
        """Make the bot an administrator of a group with `rights`, or (None) a plain member."""
        chat = self._group(chat_id)
        bot_id = self._bot(bot).id
        if rights is None:
            chat.bot_rights.pop(bot_id, None)
        else:
            chat.bot_rights[bot_id] = rights

    def serve_url(self, url: str, content: bytes) -> None:
        """Content Telegram "downloads" when a bot sends this URL as media (other URLs are fetched)."""
        self._url_content[url] = content

    # --- records ---------------------------------------------------------------------------------

    @property
    def sent(self) -> list[SentRecord]:
        return self._journal.sent

    @property
    def actions(self) -> list[ActionRecord]:
        return self._journal.actions

    @property
    def requests(self) -> list[RequestRecord]:
        return self._journal.requests

    @property
    def webhook_attempts(self) -> list[WebhookAttempt]:
        return self._journal.webhook_attempts

    @property
    def count_429(self) -> int:
        return self._journal.count_429

    def sent_to(self, chat_id: int | str) -> list[SentRecord]:
        return [record for record in self._journal.sent if str(record.chat_id) == str(chat_id)]

    def texts_to(self, chat_id: int | str) -> list[str]:
        """The text or caption of every message accepted for a chat, in order."""
        return [record.body for record in self.sent_to(chat_id) if record.body is not None]

    def callback_answer(self, callback_query_id: str) -> dict[str, Any] | None:
        """The parameters of the bot's answerCallbackQuery for this query, once it answered."""
        pending = self._world.callbacks.get(callback_query_id)
        return pending.answer if pending else None

    def message(self, chat_id: int, message_id: int, *, bot: str | None = None) -> dict[str, Any] | None:
        """A message as it stands now in the bot's chat (after edits), or None once deleted."""
        dialog = self._world.dialogs.get((self._bot(bot).id, chat_id))
        return dialog.messages.get(message_id) if dialog else None

    def pending_updates(self, *, bot: str | None = None) -> list[dict[str, Any]]:
        return list(self._queue(bot).pending)

    def clear(self) -> None:
        """Forget the records (sent, actions, requests, webhook attempts, 429 count); state stays."""
        self._journal.clear()

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:  # noqa: ASYNC109
        """The first truthy `predicate()`, re-checked each time something is recorded; TimeoutError after."""
        return await self._journal.wait_for(predicate, within=timeout)

    async def wait_for_sent(
        self,
        count: int,
        *,
        chat_id: int | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[SentRecord]:
        def enough() -> list[SentRecord] | None:
            records = self.sent if chat_id is None else self.sent_to(chat_id)
            return records if len(records) >= count else None

        result = await self.wait_for(enough, timeout)
        return list(result or [])

    # --- internals -------------------------------------------------------------------------------

    def _webhook_changed(self, bot: BotAccount) -> None:
        """Start delivering to a newly set webhook; a removed one stops its pusher by itself."""
        queue = self._backend.queue(bot.id)
        running = self._pushers.get(bot.id)
        if queue.webhook is None or self._session is None or (running is not None and not running.done()):
            return
        pusher = WebhookPusher(
            bot_id=bot.id,
            queue=queue,
            session=self._session,
            journal=self._journal,
            retry_delays=self._webhook_retry_delays,
            timeout=self._webhook_timeout,
            clock=self._clock,
            wall_clock=self._wall_clock,
        )
        self._pushers[bot.id] = asyncio.get_running_loop().create_task(pusher.run())

    async def _fetch_url(self, url: str) -> bytes | None:
        if url in self._url_content:
            return self._url_content[url]
        if self._session is None:
            return None
        try:
            async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
                if response.status != 200:
                    return None
                return await response.read()
        except (aiohttp.ClientError, TimeoutError):
            return None


class EmulatorThread:
    """An emulator serving from its own event loop in a daemon thread (for a bot in another process)."""

    def __init__(self, emulator: TelegramEmulator) -> None:
        self.emulator = emulator
        self.loop = asyncio.new_event_loop()
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._serve, args=(ready,), name="telegram-emulator", daemon=True
        )
        self._thread.start()
        ready.result(timeout=30)

    def _serve(self, ready: concurrent.futures.Future[None]) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.emulator.start())
        except BaseException as error:
            ready.set_exception(error)
            return
        ready.set_result(None)
        self.loop.run_forever()
        self.loop.run_until_complete(self.emulator.stop())
        self.loop.close()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine on the emulator's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call an emulator method (user actions, faults, configuration) safely from another thread."""

        async def invoke() -> T:
            return function(*args, **kwargs)

        return self.run(invoke())

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=30)

    def __enter__(self) -> EmulatorThread:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a Telegram Bot API emulator on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument(
        "--token", default=DEFAULT_TOKEN, help="the primary bot's token (others are accepted too)"
    )
    parser.add_argument("--username", default="dripcourse_bot")
    parser.add_argument("--no-limits", action="store_true", help="never answer 429")
    parser.add_argument("--global-per-second", type=float, default=30.0)
    parser.add_argument("--per-chat-per-second", type=float, default=1.0)
    arguments = parser.parse_args(argv)
    limits = TelegramLimits(
        global_per_second=arguments.global_per_second,
        global_burst=max(1, int(arguments.global_per_second)),
        per_chat_per_second=arguments.per_chat_per_second,
        enabled=not arguments.no_limits,
    )
    emulator = TelegramEmulator(
        host=arguments.host,
        port=arguments.port,
        limits=limits,
        token=arguments.token,
        bot_username=arguments.username,
    )

    async def serve() -> None:
        async with emulator:
            print(
                f"Telegram Bot API emulator at {emulator.base_url}  (files: {emulator.file_base_url})",
                flush=True,
            )
            print(f"token: {emulator.token}", flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
