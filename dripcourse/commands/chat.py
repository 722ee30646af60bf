"""`dripcourse chat`: take a course in the terminal, with the same core, database and scheduler."""

from __future__ import annotations

import asyncio
import datetime as dt
import getpass
import logging
from pathlib import Path

import typer

from adapters.console import ConsoleAdapter, console_sender
from bot.clock import ScaledClock, SystemClock
from bot.logs import configure_logging
from bot.settings import Settings
from dripcourse.app import App
from dripcourse.commands.common import CONFIG_OPTION, database_errors_exit, settings_or_exit


def chat_command(
    course: str = typer.Option("", "--course", help="Enrol straight into this course (its folder name)."),
    speed: float = typer.Option(
        1.0,
        "--speed",
        min=1.0,
        max=1_000_000.0,
        help="Time runs this many times faster (3600: an hour each second).",
    ),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Chat with the bot in this terminal as a learner; /quit to leave."""
    settings = settings_or_exit(config)
    configure_logging("WARNING", json_lines=False, secrets=settings.secret_values())
    clock = ScaledClock(dt.datetime.now(dt.UTC), speed) if speed > 1 else SystemClock()
    with database_errors_exit():
        asyncio.run(_chat(settings, clock, course, speed))


async def _chat(settings: Settings, clock: ScaledClock | SystemClock, course: str, speed: float) -> None:
    console = ConsoleAdapter()
    app = await App.open(
        settings,
        clock=clock,
        adapters={"console": console},
        heartbeat_seconds=min(settings.scheduler.heartbeat_seconds, max(0.2, 60.0 / speed)),
        announce=lambda message: typer.echo(f"· {message}"),
    )
    await app.start()
    learner = console_sender(getpass.getuser() or "learner")
    try:
        if course:
            await console.type_line(learner, f"/start {course}")
        else:
            await console.type_line(learner, "/start")
        await console.repl(learner)
    finally:
        logging.getLogger("dripcourse").info("leaving chat")
        await app.stop()
