"""The Telegram `ChatAdapter`: python-telegram-bot hosted in the application's own event loop.

Updates arrive by long polling or by webhook, become neutral events, and the core's `Reply` goes back at
once. Sends raise only the core's `PlatformError` classes. The bot token never reaches a log record.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import html
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    CallbackQuery,
    Message,
    Update,
)
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler

from adapters.telegram.aiohttp_request import AiohttpRequest
from adapters.telegram.errors import classify, is_not_modified
from adapters.telegram.forum import MAX_TOPIC_NAME, ForumTopics
from adapters.telegram.group_budget import GroupBudget
from adapters.telegram.raw_calls import RAW_ENDPOINTS, quiet_raw_endpoint_warnings, send_raw
from adapters.telegram.reply_retry import send_retrying
from adapters.telegram.translate import (
    BotCall,
    BotIdentity,
    TelegramSender,
    chat_ref,
    edit_call,
    materialize,
    part_calls,
    private_chat_link,
    update_to_event,
    uploaded_file_id,
)
from bot.capabilities import telegram_capabilities
from bot.discussion import CreatedThread
from bot.logs import SecretScrubber
from bot.ports import (
    AmbiguousError,
    Capabilities,
    InboundHandler,
    LinkButton,
    OutboundPart,
    PermanentError,
    PlatformError,
    Reply,
    Sender,
    SentMessage,
    TextPart,
    TransientError,
)
from bot.settings import TelegramSettings

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ("message", "callback_query", "poll_answer")
# Loggers that may print request URLs (which contain the token) or webhook paths.
SCRUBBED_LOGGERS = ("telegram", "httpx", "httpcore", "aiohttp", "tornado", __name__.rsplit(".", 1)[0])


@dataclass(frozen=True)
class HttpOptions:
    """Timeouts (seconds) and connection pool of the Bot API client."""

    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    write_timeout: float = 10.0
    media_write_timeout: float = 60.0
    pool_timeout: float = 3.0
    pool_size: int = 64
    poll_timeout: float = 10.0
    """How long one getUpdates long poll waits for updates."""
    concurrent_updates: int = 16
    """Inbound updates handled at once."""
    stop_grace_seconds: float = 10.0
    """How long `stop` waits for sends in flight before closing the connection."""


class TelegramAdapter:
    """A `ChatAdapter` for one Telegram bot."""

    def __init__(
        self,
        settings: TelegramSettings,
        *,
        admin_chat_ids: Sequence[str] = (),
        learner_commands: Sequence[tuple[str, str]],
        admin_commands: Sequence[tuple[str, str]],
        paid_broadcast: bool = False,
        http: HttpOptions = HttpOptions(),
    ) -> None:
        if settings.token is None:
            raise ValueError("telegram.token is not set (DRIPCOURSE_TELEGRAM_TOKEN)")
        if settings.mode == "webhook" and not settings.webhook_url:
            raise ValueError("telegram.webhook_url must be set in webhook mode")
        self._settings = settings
        self._token = settings.token.get_secret_value()
        # Without a configured secret a fresh one per run still lets only Telegram reach the webhook.
        self._webhook_secret = (
            settings.webhook_secret.get_secret_value()
            if settings.webhook_secret
            else secrets.token_urlsafe(32)
        )
        self._admin_chat_ids = list(dict.fromkeys([*admin_chat_ids, *settings.admins]))
        self._learner_commands = list(learner_commands)
        self._admin_commands = list(admin_commands)
        self._paid_broadcast = paid_broadcast or settings.allow_paid_broadcast
        self._http = http
        self._capabilities = telegram_capabilities(settings.local_bot_api)
        self._scrubber = SecretScrubber([self._token, self._webhook_secret])
        self._application: Application | None = None  # type: ignore[type-arg]
        self._opening = asyncio.Lock()
        self._me: BotIdentity | None = None
        self._on_event: InboundHandler | None = None
        self._stopped = False
        self._sends_in_flight = 0
        self._no_sends_in_flight = asyncio.Event()
        self._no_sends_in_flight.set()
        self._group_budget = GroupBudget(settings.per_group_per_minute)
        self._forum = ForumTopics(self._bot, self._classify, self._group_budget)

    # --- ChatAdapter -------------------------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    @property
    def identity(self) -> BotIdentity:
        """The bot's id and username, known once connected."""
        if self._me is None:
            raise RuntimeError("the Telegram adapter is not connected")
        return self._me

    async def start(self, on_event: InboundHandler) -> None:
        """Connect (getMe), publish the command menus, then receive updates by polling or webhook."""
        if self._on_event is not None:
            raise RuntimeError("the Telegram adapter is already started")
        self._stopped = False
        application = await self._open()
        self._on_event = on_event
        try:
            await self._publish_commands()
            await application.start()
            updater = application.updater
            assert updater is not None
            if not self._settings.receive_updates:
                log.info(
                    "Telegram bot @%s sending only: another worker receives updates", self.identity.username
                )
                return
            if self._settings.mode == "webhook":
                await updater.start_webhook(
                    listen=self._settings.webhook_listen,
                    port=self._settings.webhook_port,
                    url_path=urlparse(self._settings.webhook_url).path.strip("/"),
                    webhook_url=self._settings.webhook_url,
                    secret_token=self._webhook_secret,
                    allowed_updates=list(ALLOWED_UPDATES),
                )
            else:
                await updater.start_polling(
                    timeout=dt.timedelta(seconds=self._http.poll_timeout),
                    allowed_updates=list(ALLOWED_UPDATES),
                    error_callback=self._log_polling_error,
                )
            self._install_log_scrubbing()  # the webhook server's loggers exist only now
        except TelegramError as error:
            await self.stop()
            raise self._classify(error) from None
        except BaseException:
            await self.stop()
            raise
        log.info("Telegram bot @%s receiving updates by %s", self.identity.username, self._settings.mode)

    async def stop(self) -> None:
        """Stop receiving, let sends in flight finish, then close the HTTP clients; safe to call twice.

        Sends after this raise `TransientError` until the next `start`.
        """
        application = self._application
        if application is not None:
            if application.updater is not None and application.updater.running:
                await application.updater.stop()
            if application.running:
                await application.stop()  # replies to the updates in hand still go out
        self._stopped = True
        if application is not None:
            try:
                await asyncio.wait_for(self._no_sends_in_flight.wait(), self._http.stop_grace_seconds)
            except TimeoutError:
                log.warning("closing the Telegram connection with %d sends in flight", self._sends_in_flight)
            await application.shutdown()
        self._application, self._me, self._on_event = None, None, None
        self._remove_log_scrubbing()

    async def send(self, chat_id: str, part: OutboundPart, *, idempotency_key: str = "") -> SentMessage:
        """Send one part (connecting first if needed). Telegram has no idempotency key: it is not used."""
        return await self._send_tracked(chat_id, part)

    async def _send_tracked(self, chat_id: str, part: OutboundPart, thread_id: str = "") -> SentMessage:
        if self._stopped:
            raise TransientError("the Telegram adapter is stopped")
        self._sends_in_flight += 1
        self._no_sends_in_flight.clear()
        try:
            application = await self._open()
            return await self._send(application.bot, chat_id, part, thread_id)
        except RuntimeError as error:
            if not self._stopped:
                raise
            # The connection closed under a send that outlived stop's grace period.
            raise AmbiguousError("the Telegram adapter stopped during the send") from error
        finally:
            self._sends_in_flight -= 1
            if self._sends_in_flight == 0:
                self._no_sends_in_flight.set()

    async def send_reply(self, sender: Sender, reply: Reply) -> None:
        """Answer where the event came from; personal answers from a group go privately, with a pointer."""
        if not reply.parts:
            return
        group = sender.group_chat_id if isinstance(sender, TelegramSender) else ""
        if not group or not reply.private:
            for part in reply.parts:
                await send_retrying(functools.partial(self.send, group or sender.chat_id, part))
            return
        delivered = True
        try:
            for part in reply.parts:
                await send_retrying(functools.partial(self.send, sender.chat_id, part))
        except PermanentError as error:
            if not error.unreachable:
                raise
            delivered = False  # never started a private chat with the bot, or blocked it
        if not await self._group_budget.try_take(group, within=self._group_budget.interval):
            log.info("no pointer to the private answer in group %s: its message budget is used up", group)
            return
        payload = sender.start_payload if isinstance(sender, TelegramSender) else ""
        topic = sender.group_thread_id if isinstance(sender, TelegramSender) else ""
        await self._send_tracked(group, self._private_pointer(sender, delivered, payload), topic)

    async def edit(self, chat_id: str, message_id: str, part: TextPart) -> None:
        """Replace a text message's text and inline buttons; "message is not modified" is success."""
        if not message_id.isdigit():
            raise PermanentError(f"not a Telegram message id: {message_id[:20]!r}")
        bot = await self._bot()
        call = edit_call(chat_ref(chat_id), int(message_id), part)
        try:
            await getattr(bot, call.method)(**call.kwargs)
        except TelegramError as error:
            if is_not_modified(error):
                return
            raise self._classify(error, chat_id) from error

    # --- ThreadHost: lesson topics in a forum supergroup -------------------------------------------

    @property
    def max_thread_title(self) -> int:
        return MAX_TOPIC_NAME

    async def create_thread(self, chat_id: str, title: str, opening: str) -> CreatedThread:
        """A new topic; the opening is posted (and pinned) by `post`, not here."""
        return await self._forum.create(chat_id, title)

    async def post(self, chat_id: str, thread_id: str, text: str, *, pin: bool) -> str:
        return await self._forum.post(chat_id, thread_id, text, pin=pin)

    async def close_thread(self, chat_id: str, thread_id: str) -> None:
        await self._forum.set_closed(chat_id, thread_id, True)

    async def reopen_thread(self, chat_id: str, thread_id: str) -> None:
        await self._forum.set_closed(chat_id, thread_id, False)

    async def thread_stats(self, chat_id: str, thread_id: str) -> int | None:
        """Always None: the Bot API does not count a topic's messages."""
        return None

    async def check_rights(self, chat_id: str) -> list[str]:
        return await self._forum.check_rights(chat_id)

    # --- inbound -----------------------------------------------------------------------------------

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.callback_query is not None:
            await self._stop_spinner(update.callback_query)
        if self._me is None or self._on_event is None:
            return
        event = update_to_event(update, self._me)
        if event is None:
            return
        try:
            reply = await self._on_event(event)
            await self.send_reply(event.sender, reply)
        except PlatformError as error:
            log.warning(
                "reply to %s from Telegram user %s not delivered: %s",
                type(event).__name__,
                event.sender.user_id,
                error.reason,
            )
        except Exception:
            log.exception(
                "handling %s from Telegram user %s failed", type(event).__name__, event.sender.user_id
            )

    async def _stop_spinner(self, query: CallbackQuery) -> None:
        try:
            await query.answer()
        except TelegramError as error:
            # An old query (after a restart) can no longer be answered; the press itself still counts.
            log.info("answerCallbackQuery failed: %s", self._classify(error).reason)

    async def _log_update_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        update_id = update.update_id if isinstance(update, Update) else None
        log.error("Telegram update %s failed", update_id, exc_info=context.error)

    def _log_polling_error(self, error: TelegramError) -> None:
        log.warning("polling Telegram for updates failed: %s", self._classify(error).reason)

    # --- outbound ----------------------------------------------------------------------------------

    async def _open(self) -> Application:  # type: ignore[type-arg]
        """The initialized application (getMe done), built on first use by `start` or `send`."""
        async with self._opening:
            if self._stopped:
                raise TransientError("the Telegram adapter is stopped")
            if self._application is None:
                self._install_log_scrubbing()
                application = self._build_application()
                try:
                    await application.initialize()
                except TelegramError as error:
                    raise self._classify(error) from None
                self._application = application
                self._me = BotIdentity(application.bot.id, application.bot.username)
            return self._application

    async def _send(self, bot: Bot, chat_id: str, part: OutboundPart, thread_id: str = "") -> SentMessage:
        message_ids: list[str] = []
        poll_id: str | None = None
        uploaded: dict[str, str] = {}
        for call in part_calls(chat_ref(chat_id), part, paid_broadcast=self._paid_broadcast):
            if thread_id:
                call = dataclasses.replace(call, kwargs={**call.kwargs, "message_thread_id": int(thread_id)})
            if call.method in RAW_ENDPOINTS:
                message_ids += await self._call_raw(bot, call, chat_id)
                continue
            messages = await self._call(bot, call, chat_id)
            message_ids += [str(message.message_id) for message in messages]
            for message, (file_key, kind) in zip(messages, call.upload_keys, strict=False):
                file_id = uploaded_file_id(message, kind) if file_key else None
                if file_key and file_id:
                    uploaded[file_key] = file_id
            if call.method == "send_poll" and messages and messages[0].poll is not None:
                poll_id = messages[0].poll.id
        return SentMessage(tuple(message_ids), poll_id=poll_id, uploaded_file_ids=uploaded)

    async def _call(self, bot: Bot, call: BotCall, chat_id: str) -> tuple[Message, ...]:
        contents: dict[Path, bytes] = {}
        for path in call.uploads():
            try:
                contents[path] = await asyncio.to_thread(path.read_bytes)
            except OSError as error:
                raise PermanentError(f"cannot read {path.name}: {error.strerror}") from None
        try:
            result = await getattr(bot, call.method)(**materialize(call, contents))
        except TelegramError as error:
            raise self._classify(error, chat_id) from error
        return tuple(result) if isinstance(result, tuple | list) else (result,)

    async def _call_raw(self, bot: Bot, call: BotCall, chat_id: str) -> tuple[str, ...]:
        """A call that uploads nothing, answered with the new messages' ids only (see `raw_calls`)."""
        try:
            return await send_raw(bot, call.method, call.kwargs)
        except TelegramError as error:
            raise self._classify(error, chat_id) from error

    def _private_pointer(self, sender: Sender, delivered: bool, payload: str) -> TextPart:
        if delivered:
            text = "I have answered you in our private chat."
        else:
            text = "Please open a private chat with me and press Start, then ask again there."
        if sender.display_name:
            opening = text if text.startswith("I ") else text[0].lower() + text[1:]
            text = f"{html.escape(sender.display_name)}, {opening}"
        link = private_chat_link(self.identity.username, payload)
        return TextPart(text, (LinkButton("Open private chat", link),))

    async def _publish_commands(self) -> None:
        bot = (await self._open()).bot
        learner = [BotCommand(name, description) for name, description in self._learner_commands]
        admin = learner + [BotCommand(name, description) for name, description in self._admin_commands]
        scopes: list[tuple[str, list[BotCommand], BotCommandScopeDefault | BotCommandScopeChat]] = [
            ("everyone", learner, BotCommandScopeDefault())
        ]
        scopes += [
            (f"admin chat {chat}", admin, BotCommandScopeChat(chat_ref(chat)))
            for chat in self._admin_chat_ids
        ]
        for label, commands, scope in scopes:
            try:
                await bot.set_my_commands(commands, scope=scope)
            except TelegramError as error:
                # An admin who never opened the bot has no chat yet; the menu is a convenience.
                reason = self._classify(error).reason
                log.warning("could not set the command menu for %s: %s", label, reason)

    # --- plumbing ----------------------------------------------------------------------------------

    def _build_application(self) -> Application:  # type: ignore[type-arg]
        http = self._http
        quiet_raw_endpoint_warnings()
        # Every call but getUpdates (one long poll at a time: PTB's own client is fine there).
        request = AiohttpRequest(
            connection_pool_size=http.pool_size,
            connect_timeout=http.connect_timeout,
            read_timeout=http.read_timeout,
            write_timeout=http.write_timeout,
            media_write_timeout=http.media_write_timeout,
            pool_timeout=http.pool_timeout,
        )
        application = (
            ApplicationBuilder()
            .token(self._token)
            .base_url(self._settings.api_base_url)
            .base_file_url(self._settings.file_base_url)
            .request(request)
            .concurrent_updates(http.concurrent_updates)
            .job_queue(None)
            .build()
        )
        application.add_handler(TypeHandler(Update, self._on_update))
        application.add_error_handler(self._log_update_error)
        return application

    async def _bot(self) -> Bot:
        bot: Bot = (await self._open()).bot
        return bot

    def _classify(self, error: TelegramError, chat_id: str | None = None) -> PlatformError:
        """`error` classified, with the token and the webhook secret kept out of its reason."""
        return classify(error, chat_id, secrets=(self._token, self._webhook_secret))

    def _install_log_scrubbing(self) -> None:
        # A logger's filters see only its own records, not its children's: filter every logger by name.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        # PTB logs every error page it cannot parse (an nginx 502) at ERROR with a traceback, then raises
        # the same failure, which the sender logs once, classified: one line per incident is enough.
        logging.getLogger("telegram.request").setLevel(logging.CRITICAL)
        for logger in _loggers_under(SCRUBBED_LOGGERS):
            if self._scrubber not in logger.filters:
                logger.addFilter(self._scrubber)

    def _remove_log_scrubbing(self) -> None:
        for logger in _loggers_under(SCRUBBED_LOGGERS):
            logger.removeFilter(self._scrubber)


def _loggers_under(prefixes: Sequence[str]) -> list[logging.Logger]:
    def under(name: str) -> bool:
        return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)

    names = [name for name in list(logging.root.manager.loggerDict) if under(name)]
    names += [name for name in prefixes if name not in names]
    return [logging.getLogger(name) for name in names]
