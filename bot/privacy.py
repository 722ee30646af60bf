"""A learner's own data: everything stored about them as one JSON file, and its deletion on request.

Rows belong to a learner through a `learner_id` column or, for tables without one, an `enrollment_id`
of one of their enrollments; any table added later that follows this convention is covered too. The
audit trail of instructor commands is reported but kept: it is the record of who tried what.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, Delete, Table, delete
from sqlalchemy import select as select_rows
from sqlmodel import Session, SQLModel, col, select

from bot.models import AdminAction, Enrollment, Learner

MY_DATA_FILENAME = "my-data.json"
MY_DATA_NOTE = (
    "Here is everything I store about you, as a JSON file: your profile, courses, lessons sent, "
    "quiz answers and reviews. Send /forgetme to have it deleted."
)
FORGET_QUESTION = (
    "Delete everything I store about you? Your courses, progress, quiz answers and certificates go "
    "for good and lessons stop. This cannot be undone."
)
FORGOTTEN = "Done: I have deleted everything I stored about you. Send /start if you ever want to come back."
KEPT = "Nothing was deleted. Your courses carry on as before."
NOT_YOURS = "That button is not for you, or it has expired. Send /forgetme again."


def personal_data(session: Session, learner: Learner, now: dt.datetime) -> bytes:
    """Every row stored about `learner`, grouped by table, as indented UTF-8 JSON."""
    learner_id = learner.id or 0
    enrollment_ids = _enrollment_ids(session, learner_id)
    data: dict[str, Any] = {
        "exported_at": now.isoformat(),
        "learner": _row(session.get_one(Learner, learner_id).model_dump()),
    }
    for table in SQLModel.metadata.sorted_tables:
        condition = _owned_by(table, learner_id, enrollment_ids)
        if condition is None:
            continue
        rows = session.execute(select_rows(table).where(condition).order_by(*table.primary_key.columns))
        data[table.name] = [_row(dict(row._mapping)) for row in rows]
    audit = session.exec(
        select(AdminAction)
        .where(
            col(AdminAction.platform) == learner.platform,
            col(AdminAction.user_id) == learner.platform_user_id,
        )
        .order_by(col(AdminAction.id))
    ).all()
    data["instructor_commands_tried"] = [_row(action.model_dump()) for action in audit]
    return json.dumps(data, ensure_ascii=False, indent=2).encode()


def forget(session: Session, learner: Learner) -> int:
    """Delete `learner` and every row that belongs to them, in this transaction; returns the rows deleted.

    The session's objects are detached afterwards: none of them may be written back.
    """
    session.flush()
    learner_id = learner.id or 0
    enrollment_ids = _enrollment_ids(session, learner_id)
    deleted = 0
    for table in reversed(SQLModel.metadata.sorted_tables):
        condition = _owned_by(table, learner_id, enrollment_ids)
        if condition is not None:
            deleted += _delete(session, delete(table).where(condition))
    deleted += _delete(session, delete(Learner).where(col(Learner.id) == learner_id))
    session.expunge_all()
    return deleted


def _delete(session: Session, statement: Delete) -> int:
    result = session.execute(statement)
    return result.rowcount if isinstance(result, CursorResult) else 0


def _enrollment_ids(session: Session, learner_id: int) -> list[int]:
    return [
        enrollment_id
        for enrollment_id in session.exec(
            select(col(Enrollment.id)).where(col(Enrollment.learner_id) == learner_id)
        ).all()
        if enrollment_id is not None
    ]


def _owned_by(table: Table, learner_id: int, enrollment_ids: list[int]) -> ColumnElement[bool] | None:
    if table is Learner.__table__:  # type: ignore[attr-defined]
        return None
    if "learner_id" in table.c:
        return table.c.learner_id == learner_id
    if "enrollment_id" in table.c:
        return table.c.enrollment_id.in_(enrollment_ids)
    return None


def _row(values: dict[str, Any]) -> dict[str, Any]:
    return {name: _plain(value) for name, value in values.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value
