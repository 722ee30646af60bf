"""Scale of the delivery engine: many learners, one heartbeat, releases planned into the outbox.

    python -m benchmarks.scale --learners N [--baseline] [--database-url URL] [--burst 100000]

Seeds N learners (a SQLite file in a temporary folder unless a URL is given; a PostgreSQL URL gets a
schema of its own, dropped afterwards) and prints ONE JSON object:

- `seed_s`: seeding time.
- `start_s`: a fresh process, from spawn to heartbeat ready: open and migrate the database, load the
  catalog, create the scheduler and the heartbeat, run the first tick that computes the first wake-up.
- `rss_mb`: that process's maximum resident memory, after its idle ticks too.
- `idle_tick_ms`: the median heartbeat tick with nothing due, in that process.
- `burst`, `burst_s`, `burst_missed`: `--burst` enrollments spread over the whole table all due in the
  same minute, one heartbeat tick; missed = still due afterwards, or released without a delivery.
- `releases_per_s`: `release_due` on everything due in the next 24 hours (most of the learners), per
  wall-clock second; `releases_per_cpu_s` per second of this process's CPU time (the wall figure drops
  when other work shares the machine).
- With `--baseline`: the figures of `shared/baselines/ptb_jobqueue.py` (python-telegram-bot's
  JobQueue, one job per learner, min(N, 100000) learners, a 5,000-job burst) and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import functools
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from benchmarks.seed import REPO_ROOT, benchmark_course, seed_learners
from bot.catalog import Catalog
from bot.clock import UTC, SystemClock
from bot.db import Database, create_db_engine, upgrade
from bot.models import Enrollment
from scheduler.heartbeat import Heartbeat
from scheduler.planner import release_due
from scheduler.review_planner import plan_followups

BASELINE = REPO_ROOT.parent / "shared" / "baselines" / "ptb_jobqueue.py"
BASELINE_MAX_LEARNERS = 100_000
BASELINE_BURST = 5000
IDLE_TICKS = 25
READY = "heartbeat-ready"

log = logging.getLogger("benchmarks.scale")


class FixedClock:
    """A clock stopped at one instant: the benchmark decides what is due."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def now(self) -> dt.datetime:
        return self.at


class IdleSender:
    """Stands in for the outbox sender: the benchmark measures planning, not sending."""

    async def wake(self) -> None:
        return None


def whole_minute(moment: dt.datetime) -> dt.datetime:
    return moment.replace(second=0, microsecond=0)


# --- the started process -----------------------------------------------------------------------------


async def serve_probe(url: str, epoch: dt.datetime, spawned_at: float) -> dict[str, Any]:
    """What `dripcourse run` does up to a ready heartbeat, then idle ticks; runs in a fresh process."""
    stages = {"imports": time.time() - spawned_at}
    mark = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal mark
        stages[name] = time.perf_counter() - mark
        mark = time.perf_counter()

    engine = create_db_engine(url)
    upgrade(engine)
    stage("database")
    catalog = Catalog([benchmark_course()])
    stage("catalog")
    database = Database(engine)
    clock = SystemClock(offset=epoch - dt.datetime.now(UTC))
    scheduler = AsyncIOScheduler(timezone=UTC)
    heartbeat = Heartbeat(database, catalog, clock, IdleSender())
    heartbeat.start(scheduler)
    scheduler.start()
    stage("scheduler")
    first = await heartbeat.tick()
    stage("first_tick")
    print(READY, flush=True)
    ticks = []
    for _ in range(IDLE_TICKS):
        started = time.perf_counter()
        tick = await heartbeat.tick()
        ticks.append((time.perf_counter() - started) * 1000)
        assert tick.releases.released == 0
    followups_started = time.perf_counter()
    await database.call(functools.partial(plan_followups, engine, catalog, clock.now()))
    followups_ms = (time.perf_counter() - followups_started) * 1000
    scheduler.shutdown(wait=False)
    database.close()
    return {
        "rss_mb": round(peak_rss_mb(), 1),
        "idle_tick_ms": round(statistics.median(ticks), 3),
        "idle_followups_ms": round(followups_ms, 1),
        "start_stages_s": {name: round(seconds, 3) for name, seconds in stages.items()},
        "first_wake": first.next_wake.isoformat(),
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory.

    Linux's ru_maxrss survives exec: a child spawned by a big parent reports the parent's peak, so
    the kernel's VmHWM (peak of this very address space) is read where there is one.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_start(url: str, epoch: dt.datetime) -> dict[str, Any]:
    """Spawn the probe process; start_s is spawn to its ready line."""
    started = time.perf_counter()
    spawned_at = time.time()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.scale",
            "--probe",
            url,
            "--epoch",
            epoch.isoformat(),
            "--spawned-at",
            repr(spawned_at),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.strip() == READY:
            break
    else:
        raise RuntimeError(f"the probe process ended before its heartbeat was ready (exit {process.wait()})")
    start_s = time.perf_counter() - started
    output, _ = process.communicate(timeout=300)
    if process.returncode != 0:
        raise RuntimeError(f"the probe process failed with exit code {process.returncode}")
    probe = json.loads(output.strip().splitlines()[-1])
    return {"start_s": round(start_s, 3), **probe}


# --- in this process ---------------------------------------------------------------------------------


def spread_burst(engine: Engine, size: int, minute: dt.datetime) -> int:
    """Make `size` enrollments, spread evenly over the table, all due at `minute`; returns how many."""
    column = Enrollment.__table__.c.next_release_at  # type: ignore[attr-defined]
    stored = column.type.dialect_impl(engine.dialect).bind_processor(engine.dialect)
    value = stored(minute) if stored else minute
    with engine.begin() as connection:
        total = int(connection.execute(text("SELECT count(*) FROM enrollment")).scalar_one())
        step = max(total // max(size, 1), 1)
        result = connection.execute(
            text(
                "UPDATE enrollment SET next_release_at = :due WHERE id IN"
                " (SELECT id FROM enrollment WHERE id % :step = 0 ORDER BY id LIMIT :size)"
            ).execution_options(preserve_rowcount=True),
            {"due": value, "step": step, "size": size},
        )
        return int(result.rowcount)


async def measure_burst(engine: Engine, catalog: Catalog, epoch: dt.datetime, size: int) -> dict[str, Any]:
    """`size` releases due in the minute before `epoch`; one heartbeat tick at `epoch` must release all."""
    minute = epoch - dt.timedelta(minutes=1)
    burst = spread_burst(engine, size, minute)
    database = Database(engine)
    heartbeat = Heartbeat(database, catalog, FixedClock(epoch), IdleSender())
    started = time.perf_counter()
    tick = await heartbeat.tick()
    burst_s = time.perf_counter() - started
    database._executor.shutdown(wait=True)
    column = Enrollment.__table__.c.next_release_at  # type: ignore[attr-defined]
    stored = column.type.dialect_impl(engine.dialect).bind_processor(engine.dialect)
    with engine.connect() as connection:
        still_due = int(
            connection.execute(
                text("SELECT count(*) FROM enrollment WHERE next_release_at <= :epoch"),
                {"epoch": stored(epoch) if stored else epoch},
            ).scalar_one()
        )
        delivered = int(
            connection.execute(
                text("SELECT count(*) FROM delivery WHERE due_at = :minute"),
                {"minute": stored(minute) if stored else minute},
            ).scalar_one()
        )
    return {
        "burst": burst,
        "burst_s": round(burst_s, 3),
        "burst_released": tick.releases.released,
        "burst_missed": max(still_due, burst - delivered),
    }


def measure_releases(engine: Engine, catalog: Catalog, epoch: dt.datetime) -> dict[str, Any]:
    """Plan everything due in the 24 hours after `epoch` into the outbox in one `release_due` call."""
    wall, cpu = time.perf_counter(), time.process_time()
    report = release_due(engine, catalog, epoch + dt.timedelta(days=1))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "releases": report.released,
        "releases_s": round(wall, 3),
        "releases_per_s": round(report.released / wall) if wall else 0,
        "releases_per_cpu_s": round(report.released / cpu) if cpu else 0,
    }


def run_baseline(learners: int) -> dict[str, Any]:
    count = min(learners, BASELINE_MAX_LEARNERS)
    completed = subprocess.run(
        [sys.executable, str(BASELINE), "--learners", str(count), "--burst", str(BASELINE_BURST)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


# --- databases ---------------------------------------------------------------------------------------


class BenchDatabase:
    """The benchmark's own database: a SQLite file in a temp folder, or a fresh PostgreSQL schema."""

    def __init__(self, url: str | None, folder: Path) -> None:
        self._admin: Engine | None = None
        self._schema = ""
        if url is None:
            self.url = f"sqlite:///{folder / 'scale.db'}"
        elif make_url(url).get_backend_name() == "postgresql":
            self._schema = f"bench_{uuid.uuid4().hex[:10]}"
            self._admin = create_db_engine(url)
            with self._admin.begin() as connection:
                connection.execute(text(f"CREATE SCHEMA {self._schema}"))
            separator = "&" if "?" in url else "?"
            self.url = f"{url}{separator}options=-csearch_path%3D{self._schema}"
        else:
            self.url = url

    def drop(self) -> None:
        if self._admin is not None:
            with self._admin.begin() as connection:
                connection.execute(text(f"DROP SCHEMA {self._schema} CASCADE"))
            self._admin.dispose()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    baseline = None
    if args.baseline:
        # First, while this process is small: the baseline reads ru_maxrss, which a child inherits.
        log.info("running the JobQueue baseline")
        baseline = run_baseline(args.learners)
    with tempfile.TemporaryDirectory(prefix="dripcourse-scale-") as folder:
        bench = BenchDatabase(args.database_url, Path(folder))
        try:
            engine = create_db_engine(bench.url)
            upgrade(engine)
            course = benchmark_course()
            catalog = Catalog([course])
            epoch = whole_minute(dt.datetime.now(UTC))
            log.info("seeding %d learners into %s", args.learners, engine.dialect.name)
            seeded = seed_learners(
                engine,
                course,
                args.learners,
                epoch,
                on_progress=lambda done: log.info("seeded %d", done),
            )
            results: dict[str, Any] = {
                "learners": args.learners,
                "database": engine.dialect.name,
                "course": course.slug,
                "seed_s": round(seeded.seconds, 3),
            }
            log.info("starting a fresh process")
            probe = measure_start(bench.url, epoch)
            results.update(probe)
            log.info("burst of %d", args.burst)
            results.update(await measure_burst(engine, catalog, epoch, min(args.burst, args.learners)))
            log.info("planning the next 24 hours")
            results.update(measure_releases(engine, catalog, epoch))
            engine.dispose()
        finally:
            bench.drop()
    if baseline is not None:
        results["baseline"] = baseline
        results["comparison"] = {
            "start_speedup": round(baseline["schedule_s"] / results["start_s"], 2),
            "memory_ratio": round(baseline["rss_mb"] / results["rss_mb"], 2),
            "burst_missed": {"dripcourse": results["burst_missed"], "baseline": baseline["burst_missed"]},
            "note": f"baseline at {baseline['learners']} learners, a {baseline['burst']}-job burst",
        }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--learners", type=int, default=100_000)
    parser.add_argument("--burst", type=int, default=100_000)
    parser.add_argument("--baseline", action="store_true", help="also run the PTB JobQueue baseline")
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in a temp folder")
    parser.add_argument("--probe", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--epoch", help=argparse.SUPPRESS)
    parser.add_argument("--spawned-at", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    if args.probe:
        result = asyncio.run(serve_probe(args.probe, dt.datetime.fromisoformat(args.epoch), args.spawned_at))
        print(json.dumps(result), flush=True)
        return 0
    log.setLevel(logging.INFO if os.environ.get("DRIPCOURSE_BENCH_VERBOSE") else logging.WARNING)
    print(json.dumps(asyncio.run(run(args))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
