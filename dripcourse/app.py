"""The composition root: the one place that wires settings, database, catalog, adapters and scheduler."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.admin import AdminPolicy, AdminTools
from bot.admin_conversation import ADMIN_COMMANDS
from bot.catalog import Catalog
from bot.clock import Clock
from bot.conversation import LEARNER_COMMANDS, Conversation
from bot.db import Database, create_db_engine, upgrade
from bot.discussion import DiscussionService, ThreadHost
from bot.discussion_admin import THREAD_COMMANDS, DiscussionAdminConversation, ThreadModeration
from bot.ports import ChatAdapter
from bot.settings import Settings
from bot.throttle import Throttle
from bot.timezones import warm_up
from scheduler.announcements import Announcements
from scheduler.heartbeat import Heartbeat
from scheduler.metrics import MetricsServer, create_metrics, start_metrics_server
from scheduler.pacer import Pacer, discord_pacer, telegram_pacer
from scheduler.progress_messages import ProgressMessages
from scheduler.sender import Sender

log = logging.getLogger("dripcourse")

REQUEST_POLL_SECONDS = 15.0
"""How often a running bot looks for announcements and reloads asked for from the command line."""


def platform_adapters(settings: Settings) -> dict[str, ChatAdapter]:
    """The chat platforms whose tokens are configured; imported only when used."""
    adapters: dict[str, ChatAdapter] = {}
    if settings.telegram.token is not None:
        from adapters.telegram import TelegramAdapter

        adapters["telegram"] = TelegramAdapter(
            settings.telegram,
            admin_chat_ids=list(settings.telegram.admins),
            learner_commands=list(LEARNER_COMMANDS),
            admin_commands=[*ADMIN_COMMANDS, *THREAD_COMMANDS],
            paid_broadcast=settings.telegram.allow_paid_broadcast,
        )
    if settings.discord.token is not None:
        from adapters.discord import DiscordAdapter

        adapters["discord"] = DiscordAdapter(settings.discord, courses_root=Path(settings.courses.path))
    return adapters


def admin_policy(settings: Settings) -> AdminPolicy:
    """Instructors from the config; on Discord the configured admin role counts too."""
    return AdminPolicy(
        {"telegram": settings.telegram.admins, "discord": settings.discord.admins},
        role_hint_platforms=("discord",) if settings.discord.admin_role else (),
    )


def pacer_for(platform: str, settings: Settings) -> Pacer:
    if platform == "telegram":
        return telegram_pacer(settings.telegram)
    if platform == "discord":
        return discord_pacer(settings.discord)
    return Pacer(platform, 1000.0)


class App:
    """A wired dripcourse: build with `await App.open(...)`, then `start()`, and `stop()` to drain."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        adapters: Mapping[str, ChatAdapter],
        database: Database,
        catalog: Catalog,
        *,
        heartbeat_seconds: float,
        announce: Callable[[str], None],
        background: bool,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.adapters = dict(adapters)
        self.database = database
        self.catalog = catalog
        self.metrics = create_metrics()
        hosts = {platform: host for platform, host in self.adapters.items() if isinstance(host, ThreadHost)}
        self.discussion = DiscussionService(database, hosts, clock)
        pacers = {platform: pacer_for(platform, settings) for platform in self.adapters}
        self.sender = Sender(
            database,
            catalog,
            self.adapters,
            pacers,
            clock,
            settings.sender,
            metrics=self.metrics,
            secrets=settings.secret_values(),
            discuss_url=self.discussion.lesson_link,
        )
        self.heartbeat = Heartbeat(
            database,
            catalog,
            clock,
            self.sender,
            heartbeat_seconds=heartbeat_seconds,
            batch_size=settings.scheduler.release_batch,
            on_released=self.metrics.releases.inc,
        )
        self.announcements = Announcements(database, clock, self.sender)
        self.admin = AdminTools(
            database,
            catalog,
            clock,
            admin_policy(settings),
            courses_root=Path(settings.courses.path),
            announcements=self.announcements,
            wake_sender=self.sender.wake,
        )
        self.progress = ProgressMessages(
            database,
            clock,
            self.adapters,
            pacers,
            edit_every=settings.scheduler.progress_edit_seconds,
            local_edit_every=settings.scheduler.progress_local_edit_seconds,
        )
        capabilities = {platform: adapter.capabilities for platform, adapter in self.adapters.items()}
        self.conversation = Conversation(
            database,
            catalog,
            clock,
            capabilities,
            on_change=self.heartbeat.poke,
            throttle=Throttle(),
            lesson_link=self.discussion.lesson_link,
            admin=DiscussionAdminConversation(
                self.admin,
                capabilities,
                ThreadModeration(self.admin, self.discussion, database, clock, capabilities),
                progress=self.progress,
            ),
        )
        self._announce = announce
        self._background = background
        self._scheduler: AsyncIOScheduler | None = None
        self._warm_up: asyncio.Task[None] | None = None
        self._metrics_server: MetricsServer | None = None

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        clock: Clock,
        adapters: Mapping[str, ChatAdapter],
        heartbeat_seconds: float | None = None,
        announce: Callable[[str], None] = log.info,
        background: bool = True,
    ) -> App:
        """Migrate the database (saying so when it changes) and load the courses.

        `background=False` starts no scheduler and no send loop: the owner calls `heartbeat.tick()` and
        `sender.drain_once()` itself (the demo, tests).
        """
        engine = create_db_engine(
            settings.database.url.get_secret_value(),
            echo=settings.database.echo,
            sqlite_cache_mb=settings.database.sqlite_cache_mb,
        )
        before, after = await asyncio.to_thread(upgrade, engine)
        if before != after:
            announce(f"database schema upgraded from {before or 'empty'} to {after}")
        catalog, problems = await asyncio.to_thread(Catalog.load, Path(settings.courses.path))
        for problem in problems:
            log.warning("course problem: %s", problem)
        if not catalog.courses():
            announce(f"no valid course found under {settings.courses.path}; run `dripcourse check`")
        return cls(
            settings,
            clock,
            adapters,
            Database(engine),
            catalog,
            heartbeat_seconds=heartbeat_seconds or settings.scheduler.heartbeat_seconds,
            announce=announce,
            background=background,
        )

    async def start(self) -> None:
        if self._background:
            # The city index takes ~2 s to build; built lazily, the first learner who types a city would
            # hold the database thread (and every other learner) for that long.
            self._warm_up = asyncio.create_task(asyncio.to_thread(warm_up))
            await self.sender.start()
            await self.progress.start()
            self._scheduler = AsyncIOScheduler(timezone="UTC")
            self.heartbeat.start(self._scheduler)
            await self.announcements.start(self._scheduler)
            await self.admin.apply_requested_reloads()
            self._scheduler.add_job(
                self._follow_requests,
                "interval",
                seconds=REQUEST_POLL_SECONDS,
                id="instructor-requests",
                replace_existing=True,
                misfire_grace_time=None,
                coalesce=True,
                max_instances=1,
            )
            self._scheduler.start()
        for platform, adapter in self.adapters.items():
            await adapter.start(self.conversation.handle)
            self._announce(f"{platform} adapter started")
        await self.discussion.check_rights(self.catalog.courses())
        metrics = self.settings.metrics
        if metrics.enabled:
            self._metrics_server = start_metrics_server(metrics.host, metrics.port, self.metrics.registry)

    async def _follow_requests(self) -> None:
        """Carry out what the command line (or another worker) asked for: announcements, course reloads."""
        try:
            if self._scheduler is not None:
                await self.announcements.start(self._scheduler)
            await self.admin.apply_requested_reloads()
        except Exception:
            log.exception("could not pick up instructor requests; trying again in %ss", REQUEST_POLL_SECONDS)

    async def stop(self) -> None:
        """Stop planning, let the sender finish what is in flight, then stop the adapters and close."""
        if self._scheduler is not None:
            # Shutting APScheduler down cancels a running job: let a tick's database work finish first.
            self._scheduler.pause()
            await self.heartbeat.stop()
            self._scheduler.shutdown(wait=False)
        if self._background:
            await self.sender.stop(drain=True)
        await self.progress.stop()
        for adapter in self.adapters.values():
            with suppress(Exception):
                await adapter.stop()
        if self._metrics_server is not None:
            self._metrics_server.close()
        if self._warm_up is not None:
            await self._warm_up
        await asyncio.to_thread(self.database.close)


async def run_until_signalled(settings: Settings, clock: Clock, adapters: Mapping[str, ChatAdapter]) -> None:
    """Run until SIGINT or SIGTERM, then stop gracefully (in-flight sends finish, nothing new starts)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    app = await App.open(settings, clock=clock, adapters=adapters)
    await app.start()
    try:
        await stop.wait()
    finally:
        log.info("stopping: finishing in-flight sends")
        await app.stop()
