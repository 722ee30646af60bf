"""`dripcourse check`: every problem as file:line: message, a summary, exit 1 only for errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from dripcourse.commands.check import check_command

SAMPLE = Path(__file__).resolve().parent.parent / "courses" / "async-learning"


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    app.command("check")(check_command)
    return app


@pytest.fixture
def courses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A courses root holding a copy of the sample course, as the current directory's `courses`."""
    root = tmp_path / "courses"
    shutil.copytree(SAMPLE, root / "async-learning")
    monkeypatch.chdir(tmp_path)
    return root


def run(app: typer.Typer, *args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.output.splitlines()


def test_a_clean_course_exits_0_with_a_summary(app: typer.Typer, courses: Path) -> None:
    code, lines = run(app)
    assert code == 0
    assert lines == ["1 course, 8 lessons: no problems"]


def test_errors_exit_1_each_printed_as_file_line_message(app: typer.Typer, courses: Path) -> None:
    lesson = courses / "async-learning" / "lessons" / "02-time-and-cadence.md"
    lesson.write_text(lesson.read_text().replace("\ntitle:", "\ntitel:"))
    toml = courses / "async-learning" / "course.toml"
    toml.write_text(toml.read_text().replace('default_time = "08:00"', 'default_time = "25:00"'))
    code, lines = run(app, "courses")
    assert code == 1
    assert lines[0].startswith("courses/async-learning/course.toml:12: default_time: ")
    assert lines[1] == (
        "courses/async-learning/lessons/02-time-and-cadence.md:2: unknown key 'titel' (did you mean 'title'?)"
    )
    assert lines[-1] == "2 errors, 0 warnings in 1 course"


def test_warnings_alone_exit_0(app: typer.Typer, courses: Path) -> None:
    (courses / "async-learning" / "lessons" / "notes.txt").write_text("draft")
    code, lines = run(app, "courses/async-learning")
    assert code == 0
    assert lines == [
        "courses/async-learning/lessons/notes.txt:1: not a lesson (lessons are NN-slug.md files); ignored"
        " (warning)",
        "0 errors, 1 warning in 1 course",
    ]


@pytest.mark.parametrize("target", ["nowhere", "courses/async-learning/media/forgetting-curve.png"])
def test_a_bad_path_is_one_error_line_not_a_traceback(app: typer.Typer, courses: Path, target: str) -> None:
    code, lines = run(app, target)
    assert code == 1
    assert lines[0].startswith(f"{target}:1: ")
    assert lines[-1] == "1 error, 0 warnings in 0 courses"


def test_hostile_lesson_is_reported_not_crashed_on(app: typer.Typer, courses: Path) -> None:
    bomb = "---\na: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
        for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
    )
    (courses / "async-learning" / "lessons" / "09-bomb.md").write_text(bomb + "---\n")
    (courses / "async-learning" / "lessons" / "10-junk.md").write_bytes(b"\xff\xfe\x00junk")
    code, lines = run(app, "courses")
    assert code == 1
    assert any(line.startswith("courses/async-learning/lessons/09-bomb.md:") for line in lines)
    assert any(line.startswith("courses/async-learning/lessons/10-junk.md:1: not UTF-8") for line in lines)
