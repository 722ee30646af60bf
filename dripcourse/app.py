"""The composition root: the one place that wires settings, database, catalog, adapters and scheduler."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.catalog import Catalog
from bot.clock import Clock
from bot.conversation import LEARNER_COMMANDS, Conversation
from bot.db import Database, create_db_engine, upgrade
from bot.ports import ChatAdapter
from bot.settings import Settings
from scheduler.heartbeat import Heartbeat
from scheduler.metrics import MetricsServer, create_metrics, start_metrics_server
from scheduler.pacer import Pacer, discord_pacer, telegram_pacer
from scheduler.sender import Sender

log = logging.getLogger("dripcourse")


def platform_adapters(settings: Settings) -> dict[str, ChatAdapter]:
    """The chat platforms whose tokens are configured; imported only when used."""
    adapters: dict[str, ChatAdapter] = {}
    if settings.telegram.token is not None:
        from adapters.telegram import TelegramAdapter

        adapters["telegram"] = TelegramAdapter(
            settings.telegram,
            admin_chat_ids=list(settings.telegram.admins),
            learner_commands=list(LEARNER_COMMANDS),
            admin_commands=[],
            paid_broadcast=settings.telegram.allow_paid_broadcast,
        )
    return adapters


def pacer_for(platform: str, settings: Settings) -> Pacer:
    if platform == "telegram":
        return telegram_pacer(settings.telegram)
    if platform == "discord":
        return discord_pacer(settings.discord)
    return Pacer(platform, 1000.0)


class App:
    """A running dripcourse: `await app.start()`, then `await app.stop()` (drains in-flight sends)."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock,
        adapters: Mapping[str, ChatAdapter],
        heartbeat_seconds: float | None = None,
        announce: Callable[[str], None] = log.info,
        background: bool = True,
    ) -> None:
        """`background=False` starts no scheduler and no send loop: the owner calls
        `heartbeat.tick()` and `sender.drain_once()` itself (the demo, tests)."""
        self.settings = settings
        self.clock = clock
        self.adapters = dict(adapters)
        self._heartbeat_seconds = heartbeat_seconds or settings.scheduler.heartbeat_seconds
        self._announce = announce
        self._background = background
        self._scheduler: AsyncIOScheduler | None = None
        self._metrics_server: MetricsServer | None = None
        self.database: Database | None = None
        self.catalog: Catalog | None = None
        self.sender: Sender | None = None
        self.heartbeat: Heartbeat | None = None
        self.conversation: Conversation | None = None

    async def start(self) -> None:
        settings = self.settings
        engine = create_db_engine(settings.database.url.get_secret_value(), echo=settings.database.echo)
        before, after = await asyncio.to_thread(upgrade, engine)
        if before != after:
            self._announce(f"database schema upgraded from {before or 'empty'} to {after}")
        self.database = database = Database(engine)
        catalog, problems = Catalog.load(Path(settings.courses.path))
        for problem in problems:
            log.warning("course problem: %s", problem)
        if not catalog.courses():
            self._announce(f"no valid course found under {settings.courses.path}; run `dripcourse check`")
        self.catalog = catalog
        metrics = create_metrics()
        self.sender = sender = Sender(
            database,
            catalog,
            self.adapters,
            {platform: pacer_for(platform, settings) for platform in self.adapters},
            self.clock,
            settings.sender,
            metrics=metrics,
            secrets=settings.secret_values(),
        )
        self.heartbeat = heartbeat = Heartbeat(
            database,
            catalog,
            self.clock,
            sender,
            heartbeat_seconds=self._heartbeat_seconds,
            batch_size=settings.scheduler.release_batch,
        )
        self.conversation = conversation = Conversation(
            database,
            catalog,
            self.clock,
            {platform: adapter.capabilities for platform, adapter in self.adapters.items()},
            on_change=heartbeat.poke,
        )
        if self._background:
            await sender.start()
            self._scheduler = AsyncIOScheduler(timezone="UTC")
            heartbeat.start(self._scheduler)
            self._scheduler.start()
        for platform, adapter in self.adapters.items():
            await adapter.start(conversation.handle)
            self._announce(f"{platform} adapter started")
        if settings.metrics.enabled:
            self._metrics_server = start_metrics_server(settings.metrics.host, settings.metrics.port, metrics.registry)

    async def stop(self) -> None:
        """Stop taking work, finish what is in flight, then close everything."""
        for adapter in self.adapters.values():
            with suppress(Exception):
                await adapter.stop()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        if self.sender is not None and self._background:
            await self.sender.stop(drain=True)
        if self._metrics_server is not None:
            self._metrics_server.close()
        if self.database is not None:
            await asyncio.to_thread(self.database.close)


async def run_until_signalled(app: App) -> None:
    """Run `app` until SIGINT or SIGTERM, then stop it gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await app.start()
    try:
        await stop.wait()
    finally:
        log.info("stopping: finishing in-flight sends")
        await app.stop()
