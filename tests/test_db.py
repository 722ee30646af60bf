"""The database layer on every backend: migrations and aware-UTC datetimes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, select

from bot.db import create_db_engine, current_revision, head_revision, upgrade
from bot.models import Broadcast, Delivery, DeliveryKind, Enrollment, Learner


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


def test_the_migrated_schema_matches_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"render_as_batch": engine.dialect.name == "sqlite", "compare_type": True}
        )
        assert compare_metadata(context, SQLModel.metadata) == []


def test_only_broadcast_deliveries_are_keyed_by_their_broadcast(engine: Engine) -> None:
    """Two lesson deliveries (no broadcast) of one enrollment coexist; a broadcast reaches it once."""
    due = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
    with Session(engine) as session:
        learner = Learner(platform="fake", platform_user_id="1", chat_id="1")
        session.add(learner)
        session.flush()
        enrollment = Enrollment(learner_id=learner.id or 0, course_slug="c")
        broadcast = Broadcast(course_slug="c", text="hello", created_by="test")
        session.add_all([enrollment, broadcast])
        session.flush()

        def delivery(**values: object) -> Delivery:
            return Delivery(
                enrollment_id=enrollment.id or 0,
                learner_id=learner.id or 0,
                course_slug="c",
                due_at=due,
                next_attempt_at=due,
                **values,
            )

        session.add_all([delivery(lesson_slug="one"), delivery(lesson_slug="two")])
        session.add(delivery(kind=DeliveryKind.BROADCAST, broadcast_id=broadcast.id))
        session.commit()
        session.add(delivery(kind=DeliveryKind.BROADCAST, broadcast_id=broadcast.id))
        with pytest.raises(IntegrityError):
            session.commit()
