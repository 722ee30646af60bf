"""The database layer on every backend: migrations and aware-UTC datetimes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, inspect
from sqlmodel import Session, select

from bot.db import create_db_engine, current_revision, head_revision, upgrade
from bot.models import Enrollment, Learner


def test_migrations_reach_the_newest_schema_and_are_idempotent(engine: Engine) -> None:
    assert current_revision(engine) == head_revision(engine)
    assert upgrade(engine) == (head_revision(engine), head_revision(engine))
    tables = set(inspect(engine).get_table_names())
    assert {"learner", "enrollment", "delivery", "quizanswer", "adminaction"} <= tables
    indexes = {index["name"] for index in inspect(engine).get_indexes("enrollment")}
    assert "ix_enrollment_next_release_at" in indexes


def test_datetimes_go_in_aware_and_come_back_aware_utc(engine: Engine) -> None:
    seoul = dt.datetime(2026, 3, 2, 8, 0, tzinfo=ZoneInfo("Asia/Seoul"))
    with Session(engine) as session:
        learner = Learner(platform="fake", platform_user_id="1", chat_id="1")
        session.add(learner)
        session.flush()
        session.add(Enrollment(learner_id=learner.id or 0, course_slug="c", next_release_at=seoul))
        session.commit()
    with Session(engine) as session:
        stored = session.exec(select(Enrollment)).one().next_release_at
    assert stored == dt.datetime(2026, 3, 1, 23, 0, tzinfo=dt.UTC)
    assert stored is not None
    assert stored.tzinfo == dt.UTC


def test_a_naive_datetime_is_refused(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(
            Learner(platform="fake", platform_user_id="1", chat_id="1", created_at=dt.datetime(2026, 1, 1))
        )
        with pytest.raises(Exception, match="naive datetime"):
            session.commit()


@pytest.mark.parametrize(("configured", "expected_kib"), [(None, 64 * 1024), (8, 8 * 1024)])
def test_sqlite_connections_get_the_configured_page_cache(
    tmp_path: Path, configured: int | None, expected_kib: int
) -> None:
    url = f"sqlite:///{tmp_path / 'cache.db'}"
    engine = (
        create_db_engine(url) if configured is None else create_db_engine(url, sqlite_cache_mb=configured)
    )
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA cache_size").scalar() == -expected_kib
    finally:
        engine.dispose()
