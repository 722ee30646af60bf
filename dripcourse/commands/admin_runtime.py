"""What the instructor commands share: the database, the courses, the operator and the way to fail."""

from __future__ import annotations

import asyncio
import datetime as dt
import getpass
import os
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import typer

from bot.admin import Actor, AdminError, AdminPolicy, AdminTools
from bot.catalog import Catalog
from bot.clock import Clock, SystemClock
from bot.course_check import Problem
from bot.db import Database, upgrade
from bot.settings import Settings
from dripcourse.commands.common import database_or_exit, settings_or_exit
from scheduler.announcements import StoredAnnouncements

T = TypeVar("T")


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    database: Database
    catalog: Catalog
    problems: list[Problem]
    clock: Clock
    tools: AdminTools
    actor: Actor

    def run(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run one operation; an `AdminError` ends the command with its message (exit 1)."""
        try:
            return asyncio.run(_awaited(make))
        except AdminError as error:
            typer.echo(f"dripcourse: {error}", err=True)
            raise typer.Exit(1) from None


async def _awaited(make: Callable[[], Awaitable[T]]) -> T:
    return await make()


def operator_name() -> str:
    """The OS user running the command, the name the audit trail records for the command line."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return os.environ.get("USER") or f"uid-{os.getuid()}"


@contextmanager
def admin_runtime(config: Path | None) -> Iterator[Runtime]:
    """Settings, a migrated database and the courses as a running bot would load them."""
    settings = settings_or_exit(config)
    with database_or_exit(settings) as engine:
        before, after = upgrade(engine)
        if before != after:
            typer.echo(f"database schema upgraded from {before or 'empty'} to {after}", err=True)
        database = Database(engine)
        try:
            catalog, problems = Catalog.load(Path(settings.courses.path))
            clock = SystemClock(dt.timedelta(seconds=settings.scheduler.time_offset_seconds))
            tools = AdminTools(
                database,
                catalog,
                clock,
                AdminPolicy(),
                courses_root=Path(settings.courses.path),
                announcements=StoredAnnouncements(database, clock),
            )
            yield Runtime(
                settings, database, catalog, problems, clock, tools, Actor.operator(operator_name())
            )
        finally:
            database.close()
