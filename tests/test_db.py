"""The database layer on every backend: migrations and aware-UTC datetimes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, inspect
from sqlmodel import Session, select

from bot.db import current_revision, head_revision, upgrade
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
