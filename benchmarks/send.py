"""Send throughput: the real Sender and Telegram adapter draining lessons into the Bot API emulator.

    python -m benchmarks.send --seconds 120 [--limit 30] [--in-flight 32]

The emulator (in this process) enforces Telegram's flood limits with real 429s. A worker process runs
the sender with its pacer at `--limit` messages per second (above 30: paid broadcast mode, which the
emulator allows up to 1000/s). Every learner has a private chat of their own, so the per-chat limit is
never the bottleneck; releases fall due as a stream at the limit with a two-second head start, so the
queue never empties and lateness shows how far the sender falls behind. After `--seconds` the worker is
stopped with SIGTERM (in-flight sends finish) and one JSON object is printed:
achieved_per_s, limit_per_s, n_429, lost, duplicates, p50_late_s, p99_late_s (and a few details).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import signal
import tempfile
import time
from pathlib import Path

from benchmarks._delivery_bench import (
    PLAIN_LESSON,
    WorkerCommand,
    finish_worker,
    lateness_seconds,
    percentile,
    seed_deliveries,
    spawn_worker,
    status_counts,
    tally,
)
from bot.db import create_db_engine, upgrade
from tests.emulators.telegram_bot_api import TelegramEmulator, TelegramLimits

HEAD_START_S = 2.0
TELEGRAM_FREE_LIMIT = 30.0


async def measure(seconds: float, limit: float, in_flight: int, workdir: Path) -> dict[str, object]:
    paid = limit > TELEGRAM_FREE_LIMIT
    database_url = f"sqlite:///{workdir / 'send.db'}"
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
        )
        process = await spawn_worker(command)
        await asyncio.sleep(max(0.0, (start_due - dt.datetime.now(dt.UTC)).total_seconds()))
        window_start = time.monotonic()
        await asyncio.sleep(seconds)
        window_end = time.monotonic()
        process.send_signal(signal.SIGTERM)
        report = await finish_worker(process)
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
        "max_in_flight": report.get("max_in_flight"),
        "head_start_s": HEAD_START_S,
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
    parser.add_argument("--in-flight", type=int, default=32, help="deliveries the worker may hold at once")
    arguments = parser.parse_args()
    if not 0 < arguments.limit <= 1000:
        parser.error("--limit must be in (0, 1000]")
    with tempfile.TemporaryDirectory(prefix="dripcourse-send-") as workdir:
        result = asyncio.run(measure(arguments.seconds, arguments.limit, arguments.in_flight, Path(workdir)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
