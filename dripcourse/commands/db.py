"""`dripcourse db upgrade|current`: schema migrations (Alembic)."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.db import current_revision, head_revision, upgrade
from dripcourse.commands.common import CONFIG_OPTION, database_or_exit, settings_or_exit

db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade_command(config: Path | None = CONFIG_OPTION) -> None:
    """Migrate the database to the newest schema (safe to run any time)."""
    settings = settings_or_exit(config)
    with database_or_exit(settings) as engine:
        before, after = upgrade(engine)
    if before == after:
        typer.echo(f"database schema is up to date ({after})")
    else:
        typer.echo(f"database schema upgraded from {before or 'empty'} to {after}")


@db_app.command("current")
def current_command(config: Path | None = CONFIG_OPTION) -> None:
    """Show the database's schema revision and the newest one this version knows."""
    settings = settings_or_exit(config)
    with database_or_exit(settings) as engine:
        typer.echo(f"current: {current_revision(engine) or 'empty'}  newest: {head_revision(engine)}")
