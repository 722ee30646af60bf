"""What every command shares: loading settings and the database, or stopping with one clear line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from bot.db import create_db_engine
from bot.settings import Settings, SettingsError, load_settings


def settings_or_exit(config: Path | None) -> Settings:
    """The validated settings; a bad setting stops the command with one line naming it (exit 2)."""
    try:
        return load_settings(config)
    except SettingsError as error:
        typer.echo(f"dripcourse: bad setting: {error}", err=True)
        raise typer.Exit(2) from None


@contextmanager
def database_errors_exit() -> Iterator[None]:
    """A database that cannot be reached or read stops the command with what went wrong and where to
    look (exit 1), not a traceback."""
    try:
        yield
    except DBAPIError as error:
        reason = (str(error.orig).strip() or type(error.orig).__name__).splitlines()[0]
        typer.echo(f"dripcourse: database error: {reason}", err=True)
        typer.echo("  check database.url; `dripcourse db upgrade` creates the schema", err=True)
        raise typer.Exit(1) from None


@contextmanager
def database_or_exit(settings: Settings) -> Iterator[Engine]:
    """An engine for the configured database, disposed afterwards; database errors as in
    `database_errors_exit`."""
    engine = create_db_engine(settings.database.url.get_secret_value())
    try:
        with database_errors_exit():
            yield engine
    finally:
        engine.dispose()


CONFIG_OPTION = typer.Option(
    None,
    "--config",
    "-c",
    help="TOML settings file (default: $DRIPCOURSE_CONFIG or ./config.toml; none at all is fine).",
    dir_okay=False,
)
