"""Shared fixtures: a migrated database per test (SQLite, and PostgreSQL when configured) and a clock."""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from bot.db import Database, create_db_engine, upgrade
from tests.fakes import FakeChat, FakeClock

POSTGRES_ENV = "DRIPCOURSE_TEST_POSTGRES_URL"
REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_COURSES = REPO_ROOT / "courses"


def postgres_url_or_skip() -> str:
    """The PostgreSQL URL for tests: skip without the variable, fail loudly if it is set but unreachable."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV} (make test in CI sets it)")
    probe = create_db_engine(url)
    try:
        with probe.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        pytest.fail(f"{POSTGRES_ENV} is set but the server is unreachable: {error}")
    finally:
        probe.dispose()
    return url


def free_port() -> int:
    """A local TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def postgres_schema_url(base_url: str, schema: str) -> str:
    separator = "&" if "?" in base_url else "?"
    return f"{base_url}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema for one test, dropped afterwards; yields a URL bound to it."""
    base_url = postgres_url_or_skip()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_db_engine(base_url)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield postgres_schema_url(base_url, schema)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database on every backend (SQLite file, PostgreSQL schema) that several engines can open."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'dripcourse.db'}"
    else:
        url = str(request.getfixturevalue("postgres_schema"))
    migrating = create_db_engine(url)
    upgrade(migrating)
    migrating.dispose()
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated database on every backend: the same test runs against SQLite and PostgreSQL."""
    db_engine = create_db_engine(database_url)
    yield db_engine
    db_engine.dispose()


@pytest.fixture
def open_database(database_url: str) -> Iterator[Callable[[], Database]]:
    """Opens the database on a new engine of its own each time, as another worker process would."""
    opened: list[Database] = []

    def opener() -> Database:
        database = Database(create_db_engine(database_url))
        opened.append(database)
        return database

    yield opener
    for database in opened:
        database.close()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite database in a temp file, for tests that need only the embedded default."""
    db_engine = create_db_engine(f"sqlite:///{tmp_path / 'dripcourse.db'}")
    upgrade(db_engine)
    yield db_engine
    db_engine.dispose()


@pytest.fixture
def database(sqlite_engine: Engine) -> Iterator[Database]:
    db = Database(sqlite_engine)
    yield db
    db._executor.shutdown(wait=True)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC))


@pytest.fixture
def fake_chat(clock: FakeClock) -> FakeChat:
    return FakeChat(clock=clock)
