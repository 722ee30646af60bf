"""Three sender processes on one real PostgreSQL: no delivery sent twice, the budget shared among them.

The test runs this module as a script for each worker (`python -m tests.test_sender_postgres worker ...`):
a real `Sender` with a recording chat adapter, which appends every accepted part to a JSON-lines file.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlmodel import Session, col

from bot.clock import SystemClock
from bot.content import Course, Lesson
from bot.db import Database, create_db_engine, upgrade
from bot.models import (
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Enrollment,
    EnrollmentStatus,
    Learner,
    SenderWorker,
)
from bot.ports import OutboundPart, SentMessage
from bot.settings import SenderSettings
from scheduler import outbox
from scheduler.pacer import Pacer
from scheduler.sender import Sender
from tests.conftest import REPO_ROOT
from tests.fakes import FakeChat

WORKERS = 3
RATE = 90.0
"""Messages per second for all workers together."""
LEARNERS = 300
LESSONS_EACH = 2


def course() -> Course:
    return Course(
        slug="pg",
        title="PostgreSQL course",
        description="",
        language="en",
        default_cadence="daily",
        default_time="08:00",
        lessons=tuple(
            Lesson(slug=f"lesson-{number}", number=number, title=f"Lesson {number}", body_markdown="Text.")
            for number in range(1, LESSONS_EACH + 1)
        ),
    )


class Catalog:
    def get(self, slug: str) -> Course | None:
        return course() if slug == "pg" else None


class RecordingChat(FakeChat):
    """FakeChat that takes a couple of milliseconds per send and remembers when each send started (when a
    request would leave for the platform) and which parts were accepted."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[dict[str, object]] = []

    async def send(self, chat_id: str, part: OutboundPart, *, idempotency_key: str = "") -> SentMessage:
        started = time.time()
        await asyncio.sleep(0.002)
        sent = await super().send(chat_id, part, idempotency_key=idempotency_key)
        self.log.append({"key": idempotency_key, "chat": chat_id, "at": started})
        return sent


async def run_worker(url: str, worker_id: str) -> list[dict[str, object]]:
    engine = create_db_engine(url)
    database = Database(engine)
    clock = SystemClock()
    # Join the pool first and wait for the peers, as long-running workers would already have done.
    deadline = time.monotonic() + 60
    while True:
        with Session(engine) as session:
            live = outbox.heartbeat(
                session,
                worker_id=worker_id,
                now=clock.now(),
                live_within=dt.timedelta(seconds=10),
                forget_after=dt.timedelta(hours=1),
            )
            session.commit()
        if live >= WORKERS or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    chat = RecordingChat()
    sender = Sender(
        database,
        Catalog(),
        {"fake": chat},
        {"fake": Pacer("fake", RATE)},
        clock,
        SenderSettings(in_flight=8, lease_seconds=10),
        worker_id=worker_id,
    )
    await sender.start()
    while True:
        await asyncio.sleep(0.2)
        with Session(engine) as session:
            unfinished = session.execute(
                select(func.count())
                .select_from(Delivery)
                .where(col(Delivery.status).in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]))
            ).scalar_one()
        if unfinished == 0:
            break
    await sender.stop()
    database.close()
    return chat.log


def seed(url: str) -> list[int]:
    engine = create_db_engine(url)
    upgrade(engine)
    now = dt.datetime.now(dt.UTC)
    ids: list[int] = []
    with Session(engine) as session:
        for number in range(LEARNERS):
            learner = Learner(platform="fake", platform_user_id=str(number), chat_id=str(1000 + number))
            session.add(learner)
            session.flush()
            enrollment = Enrollment(
                learner_id=learner.id or 0, course_slug="pg", status=EnrollmentStatus.ACTIVE
            )
            session.add(enrollment)
            session.flush()
            for lesson in range(1, LESSONS_EACH + 1):
                delivery = Delivery(
                    enrollment_id=enrollment.id or 0,
                    learner_id=learner.id or 0,
                    course_slug="pg",
                    kind=DeliveryKind.LESSON,
                    lesson_slug=f"lesson-{lesson}",
                    due_at=now,
                    next_attempt_at=now,
                )
                session.add(delivery)
                session.flush()
                ids.append(delivery.id or 0)
        session.commit()
    engine.dispose()
    return ids


def most_in_one_second(times: list[float]) -> int:
    ordered = sorted(times)
    best, start = 0, 0
    for end, moment in enumerate(ordered):
        while ordered[start] <= moment - 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


@pytest.mark.postgres
@pytest.mark.slow
def test_three_sender_processes_share_the_work_and_the_budget_and_never_send_twice(
    postgres_schema: str, tmp_path: Path
) -> None:
    delivery_ids = seed(postgres_schema)
    outputs = [tmp_path / f"worker-{number}.jsonl" for number in range(WORKERS)]
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.test_sender_postgres",
                postgres_schema,
                f"pg-worker-{number}",
                str(out),
            ],
            cwd=REPO_ROOT,
            env=environment,
        )
        for number, out in enumerate(outputs)
    ]
    try:
        for process in processes:
            assert process.wait(timeout=120) == 0
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()

    logs = [[json.loads(line) for line in out.read_text().splitlines() if line] for out in outputs]
    entries = list(itertools.chain.from_iterable(logs))
    keys = [str(entry["key"]) for entry in entries]
    assert len(keys) == len(set(keys)), "a part was sent twice"
    assert {int(key.split(".")[0]) for key in keys} == set(delivery_ids), "a delivery was lost"
    assert sum(1 for log in logs if len(log) > len(entries) // 10) == WORKERS, "the work was not shared"

    by_chat: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for entry in entries:
        by_chat[str(entry["chat"])].append((float(entry["at"]), int(str(entry["key"]).split(".")[0])))
    for sends in by_chat.values():
        assert [delivery for _, delivery in sorted(sends)] == sorted(delivery for _, delivery in sends)

    # Each worker paces at RATE / 3, so together they stay within RATE (each may round up by one).
    assert most_in_one_second([float(entry["at"]) for entry in entries]) <= RATE + WORKERS

    engine = create_db_engine(postgres_schema)
    with Session(engine) as session:
        statuses = session.execute(
            select(col(Delivery.status), func.count()).group_by(col(Delivery.status))
        ).all()
        workers_left = session.execute(select(func.count()).select_from(SenderWorker)).scalar_one()
        session.execute(text("SELECT 1"))
    engine.dispose()
    assert dict(statuses) == {DeliveryStatus.SENT: len(delivery_ids)}
    assert workers_left == 0  # every worker retired on stop


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("worker_id")
    parser.add_argument("out", type=Path)
    arguments = parser.parse_args()
    log = asyncio.run(run_worker(arguments.url, arguments.worker_id))
    arguments.out.write_text("\n".join(json.dumps(entry) for entry in log))


if __name__ == "__main__":
    main()
