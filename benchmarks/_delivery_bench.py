"""What the send and crash benchmarks share: their course, fast seeding, the worker process, the tallies."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, func, insert, select
from sqlmodel import Session, col

from bot.content import Course, Lesson, Quiz
from bot.models import Delivery, DeliveryKind, DeliveryStatus, Enrollment, EnrollmentStatus, Learner

if TYPE_CHECKING:
    from tests.emulators.telegram_bot_api import SentRecord

REPO_ROOT = Path(__file__).resolve().parent.parent
FIRST_CHAT = 10_000_000
PLAIN_LESSON = "plain"
"""One message: heading, body and the lesson's buttons."""
QUIZ_LESSON = "quiz"
"""Three messages: the text, a native quiz poll, then the buttons."""
MESSAGES_PER_LESSON = {PLAIN_LESSON: 1, QUIZ_LESSON: 3}


def bench_course() -> Course:
    return Course(
        slug="bench",
        title="Benchmark course",
        description="Lessons for the delivery benchmarks.",
        language="en",
        default_cadence="daily",
        default_time="08:00",
        lessons=(
            Lesson(slug=PLAIN_LESSON, number=1, title="A plain lesson", body_markdown="Some *text* to read."),
            Lesson(
                slug=QUIZ_LESSON,
                number=2,
                title="A lesson with a quiz",
                body_markdown="Read this, then answer.",
                quiz=Quiz("Which is right?", ("this one", "that one"), 0, "The first."),
            ),
        ),
    )


class BenchCatalog:
    """The one benchmark course, found by slug as the running catalog would find it."""

    def __init__(self) -> None:
        self._course = bench_course()

    def get(self, slug: str) -> Course | None:
        return self._course if slug == self._course.slug else None


def bench_catalog() -> BenchCatalog:
    return BenchCatalog()


def seed_deliveries(
    engine: Engine,
    count: int,
    lesson_for: Callable[[int], str],
    due_at: Callable[[int], dt.datetime],
    *,
    chunk: int = 20_000,
) -> None:
    """`count` Telegram learners n in private chats FIRST_CHAT + n, each with one pending `lesson_for(n)`."""
    now = dt.datetime.now(dt.UTC)
    learner_table = Learner.__table__  # type: ignore[attr-defined]
    enrollment_table = Enrollment.__table__  # type: ignore[attr-defined]
    delivery_table = Delivery.__table__  # type: ignore[attr-defined]
    with engine.begin() as connection:
        for start in range(0, count, chunk):
            numbers = range(start, min(count, start + chunk))
            connection.execute(
                insert(learner_table),
                [
                    {
                        "id": n + 1,
                        "platform": "telegram",
                        "platform_user_id": str(FIRST_CHAT + n),
                        "chat_id": str(FIRST_CHAT + n),
                        "display_name": "",
                        "reachable": True,
                        "created_at": now,
                    }
                    for n in numbers
                ],
            )
            connection.execute(
                insert(enrollment_table),
                [
                    {
                        "id": n + 1,
                        "learner_id": n + 1,
                        "course_slug": "bench",
                        "status": EnrollmentStatus.ACTIVE.value,
                        "cadence": "daily",
                        "local_time": "08:00",
                        "lessons_released": 1,
                        "enrolled_at": now,
                    }
                    for n in numbers
                ],
            )
            connection.execute(
                insert(delivery_table),
                [
                    {
                        "id": n + 1,
                        "enrollment_id": n + 1,
                        "learner_id": n + 1,
                        "course_slug": "bench",
                        "kind": DeliveryKind.LESSON.value,
                        "lesson_slug": lesson_for(n),
                        "status": DeliveryStatus.PENDING.value,
                        "due_at": due_at(n),
                        "next_attempt_at": due_at(n),
                        "created_at": now,
                        "attempts": 0,
                        "parts_sent": 0,
                        "message_ids": "",
                    }
                    for n in numbers
                ],
            )


def status_counts(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        rows = session.execute(
            select(col(Delivery.status), func.count()).group_by(col(Delivery.status))
        ).all()
    return {str(status): int(count) for status, count in rows}


def in_flight_now(engine: Engine) -> int:
    with Session(engine) as session:
        return int(
            session.execute(
                select(func.count())
                .select_from(Delivery)
                .where(col(Delivery.status) == DeliveryStatus.SENDING)
            ).scalar_one()
        )


def lateness_seconds(engine: Engine) -> list[float]:
    """sent_at - due_at of every sent delivery, ascending."""
    with Session(engine) as session:
        rows = session.execute(
            select(col(Delivery.due_at), col(Delivery.sent_at)).where(
                col(Delivery.status) == DeliveryStatus.SENT
            )
        ).all()
    return sorted((sent - due).total_seconds() for due, sent in rows if sent is not None)


def percentile(ordered: Sequence[float], fraction: float) -> float | None:
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return round(ordered[index], 3)


def message_identity(record: SentRecord) -> tuple[object, ...]:
    """What makes a message one of a kind: chat, method, text, poll question and button data."""
    question = record.poll.question if record.poll is not None else None
    return (str(record.chat_id), record.method, record.body, question, record.callback_data)


@dataclass(frozen=True)
class Tally:
    messages: int
    distinct: int
    duplicates: int
    """Messages beyond the first copy of each."""
    complete_chats: int


def tally(records: Sequence[SentRecord], lesson_for: Callable[[int], str]) -> Tally:
    """Count copies; a chat is complete once every message of learner n's lesson arrived at least once."""
    copies = Counter(message_identity(record) for record in records)
    per_chat = Counter(str(identity[0]) for identity in copies)
    return Tally(
        messages=len(records),
        distinct=len(copies),
        duplicates=sum(count - 1 for count in copies.values()),
        complete_chats=sum(
            1
            for chat, count in per_chat.items()
            if count >= MESSAGES_PER_LESSON[lesson_for(int(chat) - FIRST_CHAT)]
        ),
    )


@dataclass(frozen=True)
class WorkerCommand:
    database_url: str
    api_base_url: str
    file_base_url: str
    token: str
    rate: float
    paid: bool
    per_chat: float
    in_flight: int
    lease: float = 60.0
    workers: int = 1
    """Workers sharing the budget; each waits for the others before sending."""

    def argv(self, *, exit_when_done: bool = False, worker_id: str = "") -> list[str]:
        argv = [
            sys.executable,
            "-m",
            "benchmarks._sender_worker",
            "--database",
            self.database_url,
            "--api-base-url",
            self.api_base_url,
            "--file-base-url",
            self.file_base_url,
            "--token",
            self.token,
            "--rate",
            str(self.rate),
            "--per-chat",
            str(self.per_chat),
            "--in-flight",
            str(self.in_flight),
            "--lease",
            str(self.lease),
            "--expect-workers",
            str(self.workers),
        ]
        if self.paid:
            argv.append("--paid")
        if exit_when_done:
            argv.append("--exit-when-done")
        if worker_id:
            argv += ["--worker-id", worker_id]
        return argv


async def start_worker(
    command: WorkerCommand, *, exit_when_done: bool = False, worker_id: str = ""
) -> asyncio.subprocess.Process:
    """Start a worker process (it says "ready" on stdout once it is sending)."""
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return await asyncio.create_subprocess_exec(
        *command.argv(exit_when_done=exit_when_done, worker_id=worker_id),
        cwd=REPO_ROOT,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
    )


async def until_ready(process: asyncio.subprocess.Process) -> asyncio.subprocess.Process:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout=90)
    if line.strip() != b"ready":
        await process.wait()
        raise RuntimeError(f"the sender worker did not start (exit code {process.returncode})")
    return process


async def spawn_worker(command: WorkerCommand, *, exit_when_done: bool = False) -> asyncio.subprocess.Process:
    """Start a worker process and return once it says it is sending."""
    return await until_ready(await start_worker(command, exit_when_done=exit_when_done))


async def finish_worker(process: asyncio.subprocess.Process, within: float = 120) -> dict[str, int]:
    """Wait for a worker to exit cleanly and return its closing report."""
    assert process.stdout is not None
    output = await asyncio.wait_for(process.stdout.read(), timeout=within)
    code = await process.wait()
    if code != 0:
        raise RuntimeError(f"the sender worker exited with {code}")
    lines = [line for line in output.decode().splitlines() if line.startswith("{")]
    return dict(json.loads(lines[-1])) if lines else {}
