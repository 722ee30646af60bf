"""Long fuzz runs: the hostile-input properties of the test suite, with many more examples each.

    python -m benchmarks.fuzz [--examples 2000] [--only NAME ...]

Runs every property of `tests/test_hostile_input.py` (chat commands, typed answers, forged buttons,
quiz answers, locations, Telegram updates, Discord messages and commands, instructor commands, course
files) against one learner bed, `--examples` cases each, and prints one JSON object: per property the
cases run, whether it held (or the falsifying case's first lines), and the seconds it took; then the
totals, including every event the bed checked for a helpful answer and an unchanged state.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROPERTIES = (
    "test_every_command_with_hostile_arguments_gets_a_helpful_answer_and_changes_nothing",
    "test_typed_answers_at_every_step_get_a_helpful_answer_and_change_nothing",
    "test_forged_and_garbage_buttons_are_refused_and_change_nothing",
    "test_quiz_answers_out_of_range_or_for_unknown_polls_change_nothing",
    "test_shared_locations_anywhere_or_nowhere_get_an_answer",
    "test_telegram_updates_with_hostile_content_are_answered_safely",
    "test_discord_messages_commands_and_buttons_with_hostile_content_are_answered_safely",
    "test_instructor_commands_with_hostile_arguments_answer_without_crashing",
    "test_hostile_course_files_are_reported_by_file_and_line_and_valid_ones_render",
)


def counted(function: Any, counter: list[int]) -> None:
    """Count the examples hypothesis runs through a @given test (its documented `inner_test` hook)."""
    inner: Callable[..., Any] = function.hypothesis.inner_test

    def counting(*args: Any, **kwargs: Any) -> Any:
        counter[0] += 1
        return inner(*args, **kwargs)

    function.hypothesis.inner_test = counting


def run(examples: int, only: list[str], workdir: Path) -> dict[str, object]:
    # The tests read their example count when imported.
    os.environ["DRIPCOURSE_FUZZ_EXAMPLES"] = str(examples)
    from tests import test_hostile_input as properties
    from tests.hostile import FuzzBed

    bed = FuzzBed(workdir / "bed")
    courses = workdir / "courses"
    courses.mkdir()
    (courses / "outside.png").write_bytes(b"\x89PNG\r\n\x1a\nsecret")
    results: dict[str, dict[str, object]] = {}
    try:
        for name in PROPERTIES:
            if only and not any(part in name for part in only):
                continue
            function = getattr(properties, name)
            counter = [0]
            counted(function, counter)
            started = time.monotonic()
            held: bool | str = True
            try:
                if "course_files" in name:
                    function(hostile_course_root=courses)
                else:
                    function(bed=bed)
            except Exception as error:
                held = "\n".join(line[:300] for line in str(error).splitlines()[:6])
            results[name.removeprefix("test_")] = {
                "cases": counter[0],
                "held": held,
                "seconds": round(time.monotonic() - started, 1),
            }
    finally:
        bed.close()
    return {
        "examples_per_property": examples,
        "properties": results,
        "cases_total": sum(int(str(result["cases"])) for result in results.values()),
        "failures": sum(1 for result in results.values() if result["held"] is not True),
        "events_checked": bed.cases,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=2000, help="cases per property")
    parser.add_argument("--only", nargs="*", default=[], help="run the properties whose names contain these")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dripcourse-fuzz-") as workdir:
        (Path(workdir) / "bed").mkdir()
        print(json.dumps(run(arguments.examples, arguments.only, Path(workdir))))


if __name__ == "__main__":
    main()
