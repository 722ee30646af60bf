"""One delivery worker process for the send and crash benchmarks: the real Sender, the real Telegram adapter.

    python -m benchmarks._sender_worker --database URL --api-base-url URL --file-base-url URL --token T
        [--rate R] [--paid] [--per-chat R] [--in-flight N] [--lease S] [--exit-when-done]
        [--worker-id ID] [--expect-workers N]

Prints "ready" once it is sending. SIGTERM stops it gracefully (in-flight sends finish, the rest goes
back to the queue); with `--exit-when-done` it also stops by itself once nothing is pending or in flight.
At exit it prints one JSON line: {"max_in_flight": n}.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import signal
import sys
import time

from pydantic import SecretStr
from sqlalchemy import func, select
from sqlmodel import Session, col

from adapters.telegram import TelegramAdapter
from benchmarks._delivery_bench import bench_catalog
from bot.clock import SystemClock
from bot.db import Database, create_db_engine
from bot.models import Delivery, DeliveryStatus
from bot.ports import InboundEvent, Reply
from bot.settings import SenderSettings, TelegramSettings
from scheduler import outbox
from scheduler.pacer import telegram_pacer
from scheduler.sender import Sender


async def ignore_inbound(_event: InboundEvent) -> Reply:
    return Reply(())


def unfinished(database: Database) -> int:
    with Session(database.engine) as session:
        return int(
            session.execute(
                select(func.count())
                .select_from(Delivery)
                .where(col(Delivery.status).in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]))
            ).scalar_one()
        )


async def wait_for_peers(database: Database, worker_id: str, expected: int) -> None:
    """Join the pool of workers and wait until `expected` are live, so none starts on the whole budget."""
    clock = SystemClock()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        live = await database.run(
            lambda session: outbox.heartbeat(
                session,
                worker_id=worker_id,
                now=clock.now(),
                live_within=dt.timedelta(seconds=10),
                forget_after=dt.timedelta(hours=1),
            )
        )
        if live >= expected:
            return
        await asyncio.sleep(0.2)


async def serve(arguments: argparse.Namespace) -> int:
    telegram = TelegramSettings(
        token=SecretStr(arguments.token),
        api_base_url=arguments.api_base_url,
        file_base_url=arguments.file_base_url,
        messages_per_second=min(arguments.rate, 1000.0),
        paid_broadcast_per_second=min(arguments.rate, 1000.0),
        allow_paid_broadcast=arguments.paid,
        per_chat_per_second=arguments.per_chat,
        # As in a real deployment, one process per token receives updates; the others only send.
        receive_updates=arguments.expect_workers <= 1 or arguments.worker_id.endswith("-0"),
    )
    adapter = TelegramAdapter(telegram, learner_commands=[], admin_commands=[])
    database = Database(create_db_engine(arguments.database))
    sender = Sender(
        database,
        bench_catalog(),
        {"telegram": adapter},
        {"telegram": telegram_pacer(telegram)},
        SystemClock(),
        SenderSettings(in_flight=arguments.in_flight, lease_seconds=arguments.lease),
        worker_id=arguments.worker_id,
        secrets=[arguments.token],
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await adapter.start(ignore_inbound)
    if arguments.expect_workers > 1:
        await wait_for_peers(database, sender.worker_id, arguments.expect_workers)
    await sender.start()
    print("ready", flush=True)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=0.2)
        except TimeoutError:
            if arguments.exit_when_done and await database.call(lambda: unfinished(database)) == 0:
                break
    await sender.stop(drain=True)
    await adapter.stop()
    database.close()
    print(json.dumps({"max_in_flight": sender.max_in_flight_seen}), flush=True)
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", required=True)
    parser.add_argument("--api-base-url", required=True)
    parser.add_argument("--file-base-url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--rate", type=float, default=30.0, help="messages per second for the pacer")
    parser.add_argument("--paid", action="store_true", help="paid broadcast mode (rate up to 1000/s)")
    parser.add_argument("--per-chat", type=float, default=1.0, help="messages per second to one private chat")
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--lease", type=float, default=60.0)
    parser.add_argument("--worker-id", default="")
    parser.add_argument("--exit-when-done", action="store_true")
    parser.add_argument("--expect-workers", type=int, default=1, help="wait for this many live workers first")
    parser.add_argument("--log-level", default="WARNING")
    arguments = parser.parse_args()
    logging.basicConfig(
        level=arguments.log_level, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    sys.exit(asyncio.run(serve(arguments)))


if __name__ == "__main__":
    main()
