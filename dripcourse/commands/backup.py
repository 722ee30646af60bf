"""`dripcourse backup PATH`: a consistent copy of the SQLite database, safe while the bot is running.

The copy is made with SQLite's online backup API in one step, so it is one snapshot of the database
however busy the bot is (in WAL mode the bot's writes carry on meanwhile). The copy is written next to
PATH first, checked, switched to a single-file journal mode and only then renamed into place. PostgreSQL
is backed up with its own tool, pg_dump.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import make_url

from dripcourse.commands.common import CONFIG_OPTION, settings_or_exit

PATH_ARGUMENT = typer.Argument(help="Where to write the copy (a new file).", dir_okay=False)
FORCE_OPTION = typer.Option("--force", "-f", help="Replace PATH if it exists.")
PG_DUMP_HINT = (
    "dripcourse backup copies SQLite databases. For PostgreSQL use pg_dump, for example:\n"
    "  pg_dump --format=custom --file dripcourse.dump <database name>\n"
    "and restore with pg_restore (see the README)."
)


class BackupError(Exception):
    """The copy could not be made; the message says why in one line."""


@dataclass(frozen=True)
class BackupReport:
    source: Path
    target: Path
    pages: int
    bytes: int
    schema_revision: str | None


def backup_sqlite(source: Path, target: Path, *, force: bool = False) -> BackupReport:
    """Copy the SQLite database `source` to `target` as one consistent snapshot, then check the copy."""
    if not source.is_file():
        raise BackupError(f"{source}: no such database file")
    if target.exists() and not force:
        raise BackupError(f"{target} already exists (use --force to replace it)")
    if target.resolve() == source.resolve():
        raise BackupError(f"{target} is the database itself")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    partial.unlink(missing_ok=True)
    try:
        with (
            contextlib.closing(sqlite3.connect(source, timeout=30)) as reader,
            contextlib.closing(sqlite3.connect(partial)) as copy,
        ):
            reader.backup(copy)  # every page in one step: a single read snapshot
            copy.execute("PRAGMA journal_mode=DELETE")
            problems = copy.execute("PRAGMA integrity_check").fetchall()
            if problems != [("ok",)]:
                raise BackupError(f"the copy failed its integrity check: {problems[0][0]}")
            pages = int(copy.execute("PRAGMA page_count").fetchone()[0])
            revision = _schema_revision(copy)
        partial.replace(target)
    except sqlite3.Error as error:
        raise BackupError(f"{source}: {error}") from None
    finally:
        partial.unlink(missing_ok=True)
    return BackupReport(source, target, pages, target.stat().st_size, revision)


def _schema_revision(connection: sqlite3.Connection) -> str | None:
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        return None
    return str(row[0]) if row else None


def backup_command(
    path: Annotated[Path, PATH_ARGUMENT],
    force: Annotated[bool, FORCE_OPTION] = False,
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Write a consistent copy of the running bot's SQLite database to PATH (PostgreSQL: use pg_dump)."""
    settings = settings_or_exit(config)
    url = make_url(settings.database.url.get_secret_value())
    if url.get_backend_name() != "sqlite":
        typer.echo(PG_DUMP_HINT, err=True)
        raise typer.Exit(2)
    if url.database in (None, "", ":memory:"):
        typer.echo("dripcourse: the database is in memory: there is nothing on disk to back up", err=True)
        raise typer.Exit(2)
    try:
        report = backup_sqlite(Path(url.database), path, force=force)
    except BackupError as error:
        typer.echo(f"dripcourse: backup failed: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"backed up {report.source} to {report.target}: {report.bytes} bytes, {report.pages} pages, "
        f"schema {report.schema_revision or 'unknown'}"
    )
