"""Crash safety of the real sender process: kill -9 twenty times and SIGTERM once, nothing lost.

A worker process runs the real Sender with the real Telegram adapter against the Bot API emulator
(in this process), as `python -m benchmarks.crash` does; this is that benchmark at test size.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from benchmarks.crash import run_crash_benchmark

IN_FLIGHT = 4


@pytest.mark.slow
def test_twenty_kills_and_a_sigterm_lose_nothing_and_duplicate_at_most_the_in_flight_window(
    tmp_path: Path,
) -> None:
    report = asyncio.run(run_crash_benchmark(20, lessons=2000, in_flight=IN_FLIGHT, seed=7, workdir=tmp_path))

    assert report["trials"] == 20
    assert report["lost"] == 0, report
    # Every learner's stored progress matches what Telegram received: each part recorded once, as sent.
    assert report["inconsistent_positions"] == 0, report
    # A kill can only repeat the parts in flight at that moment: one per delivery held.
    assert report["duplicates_before_any_crash"] == 0, report
    assert isinstance(report["duplicates_max_per_crash"], int)
    assert report["duplicates_max_per_crash"] <= IN_FLIGHT, report
    assert isinstance(report["in_flight_max"], int)
    assert 1 <= report["in_flight_max"] <= IN_FLIGHT, report
    # The graceful stop finishes its in-flight sends and hands the rest back: no loss, no duplicate.
    assert report["sigterm_lost"] == 0, report
    assert report["sigterm_duplicates"] == 0, report
    assert report["sigterm_left_in_flight"] == 0, report
    assert report["n_429"] == 0, report
