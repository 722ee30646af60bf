"""Crash safety: kill -9 a real sender process at random moments and check nothing is lost.

    python -m benchmarks.crash --trials 20 [--lessons 3000] [--in-flight 8] [--seed 1]

A worker process runs the real Sender with the real Telegram adapter against the Bot API emulator,
which runs in this process and records every message it accepts. Every third lesson is three messages
(text, native quiz poll, buttons), the others one. The benchmark kills the worker with SIGKILL at a
random moment, starts a new one, and repeats `--trials` times; then one worker is stopped with SIGTERM
mid-send (graceful: no loss, no duplicate expected); then a last worker drains the rest. It prints one
JSON object: lost, duplicates_max_per_crash (extra copies caused by one kill; at most the in-flight
window), in_flight_max (deliveries seen in flight at once), trials, the SIGTERM trial's lost and
duplicates, and inconsistent_positions (learners whose stored progress disagrees with their chat).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import dataclasses
import datetime as dt
import json
import random
import signal
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from benchmarks._delivery_bench import (
    MESSAGES_PER_LESSON,
    PLAIN_LESSON,
    QUIZ_LESSON,
    WorkerCommand,
    finish_worker,
    in_flight_now,
    message_identity,
    seed_deliveries,
    spawn_worker,
    status_counts,
    tally,
)
from bot.db import create_db_engine, upgrade
from bot.models import Delivery, DeliveryStatus, Learner
from tests.emulators.telegram_bot_api import EmulatorThread, SentRecord, TelegramEmulator, TelegramLimits

QUIZ_EVERY = 3
RATE = 400.0
"""Paid-broadcast pacing, so a trial sends a few hundred messages between restarts."""
PER_CHAT = 30.0
"""A lesson's three parts go to one chat; at Telegram's 1/s a trial would barely move."""


def lesson_for(n: int) -> str:
    return QUIZ_LESSON if n % QUIZ_EVERY == 0 else PLAIN_LESSON


def inconsistent_positions(engine: Engine, records: Sequence[SentRecord]) -> int:
    """Learners whose stored progress disagrees with what Telegram holds for their chat: a delivery not
    marked sent with every part, a part recorded twice or never, or a message id Telegram never accepted."""
    accepted: dict[str, set[str]] = defaultdict(set)
    kinds: dict[str, set[tuple[object, ...]]] = defaultdict(set)
    for record in records:
        accepted[str(record.chat_id)].add(str(record.message_id))
        kinds[str(record.chat_id)].add(message_identity(record))
    with Session(engine) as session:
        rows = session.execute(
            select(
                col(Learner.chat_id),
                col(Delivery.lesson_slug),
                col(Delivery.status),
                col(Delivery.parts_sent),
                col(Delivery.message_ids),
            ).join(Learner, col(Learner.id) == col(Delivery.learner_id))
        ).all()
    wrong = 0
    for (
        chat,
        lesson,
        status,
        parts_sent,
        message_ids,
    ) in rows:
        parts = MESSAGES_PER_LESSON[str(lesson)]
        stored = message_ids.split()
        if (
            status != DeliveryStatus.SENT
            or parts_sent != parts
            or len(stored) != parts
            or not set(stored) <= accepted[chat]
            or len(kinds[chat]) != parts
        ):
            wrong += 1
    return wrong


async def sample_in_flight(engine_url: str, stop: asyncio.Event, seen: list[int]) -> None:
    """Record the largest number of deliveries in status `sending` at any one look."""
    engine = create_db_engine(engine_url)
    try:
        while not stop.is_set():
            seen.append(await asyncio.to_thread(in_flight_now, engine))
            await asyncio.sleep(0.02)
    finally:
        engine.dispose()


async def run_crash_benchmark(
    trials: int,
    *,
    lessons: int = 3000,
    in_flight: int = 8,
    drain_in_flight: int = 32,
    seed: int = 1,
    workdir: Path,
) -> dict[str, object]:
    rng = random.Random(seed)
    started = time.monotonic()
    database_url = f"sqlite:///{workdir / 'crash.db'}"
    engine = create_db_engine(database_url)
    upgrade(engine)
    now = dt.datetime.now(dt.UTC)
    seed_deliveries(engine, lessons, lesson_for, lambda _n: now)
    limits = TelegramLimits(per_chat_per_second=PER_CHAT, per_chat_burst=MESSAGES_PER_LESSON[QUIZ_LESSON])
    emulator = TelegramEmulator(limits=limits)
    thread: EmulatorThread = emulator.run_in_thread()
    stop_sampling = asyncio.Event()
    in_flight_seen: list[int] = []
    sampler = asyncio.create_task(sample_in_flight(database_url, stop_sampling, in_flight_seen))
    kill_times: list[float] = []
    kills = 0
    try:
        command = WorkerCommand(
            database_url=database_url,
            api_base_url=emulator.base_url,
            file_base_url=emulator.file_base_url,
            token=emulator.token,
            rate=RATE,
            paid=True,
            per_chat=PER_CHAT,
            in_flight=in_flight,
        )
        for _ in range(trials):
            process = await spawn_worker(command)
            await asyncio.sleep(rng.uniform(0.05, 0.5))
            process.send_signal(signal.SIGKILL)
            await process.wait()
            kill_times.append(time.monotonic())
            kills += 1
            if process.stdout is not None:
                await process.stdout.read()
        process = await spawn_worker(command)
        await asyncio.sleep(rng.uniform(0.1, 0.5))
        process.send_signal(signal.SIGTERM)
        await finish_worker(process)
        sigterm_at = time.monotonic()
        left_sending_after_sigterm = await asyncio.to_thread(in_flight_now, engine)
        sent_at_sigterm = (await asyncio.to_thread(status_counts, engine)).get("sent", 0)
        complete_at_sigterm = thread.call(lambda: tally(list(emulator.sent), lesson_for).complete_chats)
        stop_sampling.set()
        await sampler
        # The clean-up drain is not under test: a wider window just gets it done sooner.
        drain_started = time.monotonic()
        final = await spawn_worker(
            dataclasses.replace(command, in_flight=drain_in_flight), exit_when_done=True
        )
        await finish_worker(final, within=600)
        drain_seconds = time.monotonic() - drain_started
        records = thread.call(lambda: list(emulator.sent))
        n_429 = thread.call(lambda: emulator.count_429)
    finally:
        stop_sampling.set()
        if not sampler.done():
            await sampler
        thread.stop()

    # Attribute every extra copy of a message to the stop just before it was received.
    epochs = [*kill_times, sigterm_at]
    first_seen: set[tuple[object, ...]] = set()
    extra_by_epoch: dict[int, int] = defaultdict(int)
    for record in sorted(records, key=lambda record: record.received_at):
        identity = message_identity(record)
        if identity in first_seen:
            extra_by_epoch[bisect.bisect_right(epochs, record.received_at)] += 1
        first_seen.add(identity)
    result = tally(records, lesson_for)
    counts = status_counts(engine)
    inconsistent = inconsistent_positions(engine, records)
    engine.dispose()
    crash_duplicates = [extra_by_epoch.get(epoch, 0) for epoch in range(1, kills + 1)]
    return {
        "lost": lessons - result.complete_chats + sum(v for k, v in counts.items() if k != "sent"),
        "duplicates_max_per_crash": max(crash_duplicates, default=0),
        "duplicates_total": sum(crash_duplicates),
        "duplicates_before_any_crash": extra_by_epoch.get(0, 0),
        "in_flight_max": max(in_flight_seen, default=0),
        "in_flight": in_flight,
        "trials": kills,
        # Deliveries the database called sent after the graceful stop that Telegram did not fully have.
        "sigterm_lost": max(0, sent_at_sigterm - complete_at_sigterm),
        "sigterm_duplicates": extra_by_epoch.get(kills + 1, 0),
        "sigterm_left_in_flight": left_sending_after_sigterm,
        "inconsistent_positions": inconsistent,
        "lessons": lessons,
        "messages": result.messages,
        "n_429": n_429,
        "seconds": round(time.monotonic() - started, 1),
        "final_drain_seconds": round(drain_seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--lessons", type=int, default=3000)
    parser.add_argument("--in-flight", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dripcourse-crash-") as workdir:
        result = asyncio.run(
            run_crash_benchmark(
                arguments.trials,
                lessons=arguments.lessons,
                in_flight=arguments.in_flight,
                seed=arguments.seed,
                workdir=Path(workdir),
            )
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
