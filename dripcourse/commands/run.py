"""`dripcourse run`: start every configured chat platform, the scheduler and the sender."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import typer

from bot.clock import SystemClock
from bot.logs import configure_logging
from dripcourse.app import platform_adapters, run_until_signalled
from dripcourse.commands.common import CONFIG_OPTION, database_errors_exit, settings_or_exit

NO_PLATFORM = """No chat platform is configured, so there is nothing to run.
  Telegram: create a bot with @BotFather, then  export DRIPCOURSE_TELEGRAM_TOKEN=<token>
  Discord:  create an application and bot,  then  export DRIPCOURSE_DISCORD_TOKEN=<token>
  (the README's "Run it on Telegram" section walks through it)
To take a course right here in the terminal instead:  dripcourse chat"""


def run_command(config: Path | None = CONFIG_OPTION) -> None:
    """Run the bot on every configured platform until Ctrl-C or SIGTERM."""
    settings = settings_or_exit(config)
    configure_logging(
        settings.logging.level, json_lines=settings.logging.json_lines, secrets=settings.secret_values()
    )
    adapters = platform_adapters(settings)
    if not adapters:
        typer.echo(NO_PLATFORM, err=True)
        raise typer.Exit(2)
    clock = SystemClock(dt.timedelta(seconds=settings.scheduler.time_offset_seconds))
    with database_errors_exit():
        asyncio.run(run_until_signalled(settings, clock, adapters))
