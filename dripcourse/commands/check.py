"""`dripcourse check [PATH]`: validate courses against the format and every platform's limits."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bot.course_check import Problem
from bot.course_loader import course_folders, load_course

PATH_ARGUMENT = typer.Argument(
    help="A courses folder (every subfolder with a course.toml), one course folder, or its course.toml.",
    show_default=True,
)


def check_command(path: Annotated[Path, PATH_ARGUMENT] = Path("courses")) -> None:
    """Print every problem as file:line: message, then a summary; exit 1 if any is an error."""
    try:
        problems, courses, lessons = _check(path)
    except Exception as error:  # the checker must answer, never print a traceback
        typer.echo(f"{path}:1: the checker failed unexpectedly: {type(error).__name__}: {error}")
        raise typer.Exit(1) from None
    for problem in problems:
        typer.echo(str(problem) if problem.is_error else f"{problem} (warning)")
    errors = sum(problem.is_error for problem in problems)
    warnings = len(problems) - errors
    if problems:
        typer.echo(f"{_count(errors, 'error')}, {_count(warnings, 'warning')} in {_count(courses, 'course')}")
    else:
        typer.echo(f"{_count(courses, 'course')}, {_count(lessons, 'lesson')}: no problems")
    raise typer.Exit(1 if errors else 0)


def _check(path: Path) -> tuple[list[Problem], int, int]:
    folders, problems = course_folders(path)
    lessons = 0
    for folder in folders:
        course, course_problems = load_course(folder)
        problems.extend(course_problems)
        lessons += len(course.lessons) if course is not None else 0
    return problems, len(folders), lessons


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
