"""Three planner processes on one PostgreSQL database split the due set and release each lesson once."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest
from sqlalchemy import func, select, update
from sqlmodel import Session

from benchmarks.seed import generated_course, seed_learners
from bot.db import create_db_engine, upgrade
from bot.models import Delivery, Enrollment
from tests.conftest import REPO_ROOT
from tests.release_helpers import released_counts

pytestmark = pytest.mark.postgres

LEARNERS = 3000
PROCESSES = 3
MINUTE = dt.datetime(2026, 3, 2, 7, 0, tzinfo=dt.UTC)

# Each process connects, says it is ready, waits for "go" so all three claim at once, then releases.
PLANNER_PROCESS = """
import datetime as dt, json, sys
from benchmarks.seed import generated_course
from bot.catalog import Catalog
from bot.db import create_db_engine
from scheduler.planner import release_due

engine = create_db_engine(sys.argv[1])
with engine.connect():
    pass
print("ready", flush=True)
sys.stdin.readline()
now = dt.datetime.fromisoformat(sys.argv[2])
report = release_due(engine, Catalog([generated_course()]), now, batch_size=25)
print(json.dumps(report.as_dict()), flush=True)
"""


def test_three_planner_processes_release_every_due_lesson_exactly_once(postgres_schema: str) -> None:
    engine = create_db_engine(postgres_schema)
    upgrade(engine)
    seed_learners(engine, generated_course(), LEARNERS, MINUTE - dt.timedelta(days=1))
    with engine.begin() as connection:
        connection.execute(update(Enrollment).values(next_release_at=MINUTE))  # type: ignore[arg-type]
    before = released_counts(engine)
    now = MINUTE + dt.timedelta(seconds=30)

    processes = [
        subprocess.Popen(
            [sys.executable, "-c", PLANNER_PROCESS, postgres_schema, now.isoformat()],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready"
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        outputs = [process.communicate(timeout=120)[0] for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    assert [process.returncode for process in processes] == [0] * PROCESSES
    reports = [json.loads(output.strip().splitlines()[-1]) for output in outputs]

    assert sum(report["released"] for report in reports) == LEARNERS
    assert sum(1 for report in reports if report["released"] > 0) >= 2, reports
    with Session(engine) as session:
        rows = session.execute(select(Delivery.enrollment_id, Delivery.lesson_slug)).all()  # type: ignore[call-overload]
        still_due = session.execute(
            select(func.count()).select_from(Enrollment).where(Enrollment.next_release_at <= now)  # type: ignore[operator]
        ).scalar_one()
    assert len(rows) == LEARNERS
    assert len(set(rows)) == LEARNERS
    assert still_due == 0
    assert released_counts(engine) == {key: value + 1 for key, value in before.items()}
    engine.dispose()
