"""Database engine and schema migrations.

SQLite runs in WAL mode with a busy timeout (one process); PostgreSQL is for several processes.
`Database.run` executes a synchronous unit of work off the event loop, so SQLite's file I/O never
blocks a chat adapter.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from importlib.resources import files
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Dialect, Engine, Insert, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool
from sqlmodel import Session

log = logging.getLogger(__name__)
T = TypeVar("T")

SQLITE_CACHE_MB = 64
"""SQLite's page cache per connection (its default is 2 MB). It fills only as pages are read, so it
costs memory only where the work needs it: the release planner at scale, whose batches touch a few
thousand pages of the enrollment and delivery indexes, runs about a third faster with 64 MB."""


def create_db_engine(url: str, *, echo: bool = False, sqlite_cache_mb: int = SQLITE_CACHE_MB) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys, a busy timeout and a page cache of
    `sqlite_cache_mb` on every connection."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        memory = parsed.database in (None, "", ":memory:")
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=StaticPool if memory else None,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute(f"PRAGMA cache_size=-{int(sqlite_cache_mb) * 1024}")
            cursor.close()

        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=5, max_overflow=5)


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("bot") / "migrations"))
    config.attributes["engine"] = engine
    return config


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate the schema to `revision`; returns (revision before, revision after)."""
    before = current_revision(engine)
    command.upgrade(alembic_config(engine), revision)
    return before, current_revision(engine)


class Database:
    """The engine plus the worker threads that run units of work off the event loop: one on SQLite (a
    single writer), four on PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        threads = 1 if engine.dialect.name == "sqlite" else 4
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="db")

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def transact(self, work: Callable[[Session], T]) -> T:
        with self.session() as session:
            return work(session)

    async def run(self, work: Callable[[Session], T]) -> T:
        """Run `work(session)` in one transaction on the database thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.transact, work)

    async def call(self, function: Callable[[], T]) -> T:
        """Run a blocking database function on the database thread, without opening a session."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.engine.dispose()


def insert_ignoring_duplicates(table: Any, dialect: Dialect) -> Insert:
    """INSERT into `table` (a table or a model) that skips rows clashing with a unique key, on either
    backend: `ON CONFLICT DO NOTHING`."""
    if dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()
