"""Send throughput: the real Sender and Telegram adapter draining lessons into the Bot API emulator.

    python -m benchmarks.send --seconds 120 [--limit 30] [--in-flight 32]
        [--workers N --database postgresql+psycopg://...]

The emulator (in this process) enforces Telegram's flood limits with real 429s. A worker process runs
the sender with its pacer at `--limit` messages per second (above 30: paid broadcast mode, which the
emulator allows up to 1000/s). Every learner has a private chat of their own, so the per-chat limit is
never the bottleneck; releases fall due as a stream at the limit with a two-second head start, so the
queue never empties and lateness shows how far the sender falls behind. With `--workers N` (PostgreSQL
only: SQLite serves one process) N worker processes share the queue and the budget. After `--seconds`
the workers are stopped with SIGTERM (in-flight sends finish) and one JSON object is printed:
achieved_per_s, limit_per_s, n_429, lost, duplicates, p50_late_s, p99_late_s (and a few details).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import resource
import signal
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text

from benchmarks._delivery_bench import (
    PLAIN_LESSON,
    WorkerCommand,
    finish_worker,
    lateness_seconds,
    percentile,
    seed_deliveries,
    start_worker,
    status_counts,
    tally,
    until_ready,
)
from bot.db import create_db_engine, upgrade
from tests.emulators.telegram_bot_api import TelegramEmulator, TelegramLimits

HEAD_START_S = 2.0
TELEGRAM_FREE_LIMIT = 30.0


def _cpu_seconds(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


@contextmanager
def bench_database(postgres_url: str | None, workdir: Path) -> Iterator[str]:
    """A fresh SQLite file, or a fresh schema on the PostgreSQL server (dropped afterwards)."""
    if not postgres_url:
        yield f"sqlite:///{workdir / 'send.db'}"
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_db_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        separator = "&" if "?" in postgres_url else "?"
        yield f"{postgres_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


async def measure(
    seconds: float, limit: float, in_flight: int, workers: int, database_url: str
) -> dict[str, object]:
    paid = limit > TELEGRAM_FREE_LIMIT
    engine = create_db_engine(database_url)
    upgrade(engine)
    count = int(limit * (seconds + HEAD_START_S) * 1.2) + 100
    start_due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)  # about when the worker is up

    def due_at(n: int) -> dt.datetime:
        return start_due + dt.timedelta(seconds=max(0.0, n / limit - HEAD_START_S))

    seed_deliveries(engine, count, lambda _n: PLAIN_LESSON, due_at)
    emulator = TelegramEmulator(limits=TelegramLimits())
    thread = emulator.run_in_thread()
    try:
        command = WorkerCommand(
            database_url=database_url,
            api_base_url=emulator.base_url,
            file_base_url=emulator.file_base_url,
            token=emulator.token,
            rate=limit,
            paid=paid,
            per_chat=1.0,
            in_flight=in_flight,
            workers=workers,
        )
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        self_before = resource.getrusage(resource.RUSAGE_SELF)
        started = [await start_worker(command, worker_id=f"send-bench-{n}") for n in range(workers)]
        processes = [await until_ready(process) for process in started]
        await asyncio.sleep(max(0.0, (start_due - dt.datetime.now(dt.UTC)).total_seconds()))
        window_start = time.monotonic()
        await asyncio.sleep(seconds)
        window_end = time.monotonic()
        for process in processes:
            process.send_signal(signal.SIGTERM)
        reports = [await finish_worker(process) for process in processes]
        children_cpu = _cpu_seconds(resource.getrusage(resource.RUSAGE_CHILDREN)) - _cpu_seconds(
            children_before
        )
        self_cpu = _cpu_seconds(resource.getrusage(resource.RUSAGE_SELF)) - _cpu_seconds(self_before)
        records = thread.call(lambda: list(emulator.sent))
        n_429 = thread.call(lambda: emulator.count_429)
    finally:
        thread.stop()
    in_window = [record for record in records if window_start <= record.received_at < window_end]
    counts = status_counts(engine)
    sent_deliveries = counts.get("sent", 0)
    result = tally(records, lambda _n: PLAIN_LESSON)
    lateness = lateness_seconds(engine)
    engine.dispose()
    return {
        "achieved_per_s": round(len(in_window) / seconds, 2),
        "limit_per_s": limit,
        "n_429": n_429,
        # A delivery the database calls sent that never reached Telegram, or one that failed.
        "lost": max(0, sent_deliveries - result.complete_chats)
        + counts.get("failed", 0)
        + counts.get("ambiguous", 0),
        "duplicates": result.duplicates,
        "p50_late_s": percentile(lateness, 0.50),
        "p99_late_s": percentile(lateness, 0.99),
        "seconds": seconds,
        "messages": result.messages,
        "paid_broadcast": paid,
        "in_flight": in_flight,
        "workers": workers,
        "max_in_flight": max(report.get("max_in_flight", 0) for report in reports),
        "head_start_s": HEAD_START_S,
        # CPU spent per accepted message over the whole run (start-up included): the workers (sender,
        # python-telegram-bot, database) and this process (mostly the emulator serving them).
        "worker_cpu_ms_per_message": round(children_cpu * 1000 / max(1, result.messages), 2),
        "emulator_cpu_ms_per_message": round(self_cpu * 1000 / max(1, result.messages), 2),
        "left_pending": counts.get("pending", 0),
        "left_sending": counts.get("sending", 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--limit", type=float, default=TELEGRAM_FREE_LIMIT, help="messages per second (<= 1000)"
    )
    parser.add_argument("--in-flight", type=int, default=32, help="deliveries a worker may hold at once")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (more than one: PostgreSQL)")
    parser.add_argument("--database", default="", help="a PostgreSQL URL; default: a temporary SQLite file")
    arguments = parser.parse_args()
    if not 0 < arguments.limit <= 1000:
        parser.error("--limit must be in (0, 1000]")
    if arguments.workers > 1 and not arguments.database.startswith("postgresql"):
        parser.error("several --workers need a PostgreSQL --database (SQLite serves one process)")
    with (
        tempfile.TemporaryDirectory(prefix="dripcourse-send-") as workdir,
        bench_database(arguments.database or None, Path(workdir)) as database_url,
    ):
        result = asyncio.run(
            measure(arguments.seconds, arguments.limit, arguments.in_flight, arguments.workers, database_url)
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
