"""What course validation reports: problems with a file and a line, and the platform limits checked.

A `ProblemLog` collects every problem of one course; nothing in validation raises on bad input.
"""

from __future__ import annotations

import difflib
import os
import stat
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Severity = Literal["error", "warning"]

# Platform limits a course must fit (Telegram Bot API and Discord without boosts).
TELEGRAM_MAX_UPLOAD_BYTES = 50_000_000
TELEGRAM_MAX_PHOTO_BYTES = 10_000_000
DISCORD_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
TELEGRAM_MAX_CAPTION = 1024
QUIZ_MAX_QUESTION = 300
QUIZ_MAX_OPTION = 100
QUIZ_MAX_EXPLANATION = 200
QUIZ_MIN_OPTIONS = 2
QUIZ_MAX_OPTIONS = 10

# Limits that keep hostile files from costing more than a glance.
MAX_LESSON_FILE_BYTES = 1_000_000
MAX_COURSE_TOML_BYTES = 256_000
MAX_FRONT_MATTER_CHARS = 64_000


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int
    message: str
    severity: Severity = "error"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        return f"{display_path(self.path)}:{self.line}: {self.message}"


def display_path(path: Path) -> str:
    """`path` relative to the current directory when it lies below it, else as given."""
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except (ValueError, OSError):
        return str(path)


@dataclass
class ProblemLog:
    """Every problem found in one course, in the order found."""

    problems: list[Problem] = field(default_factory=list)

    def error(self, path: Path, line: int, message: str) -> None:
        self.problems.append(Problem(path, max(line, 1), message, "error"))

    def warning(self, path: Path, line: int, message: str) -> None:
        self.problems.append(Problem(path, max(line, 1), message, "warning"))

    def extend(self, problems: Iterable[Problem]) -> None:
        self.problems.extend(problems)

    @property
    def has_errors(self) -> bool:
        return any(problem.is_error for problem in self.problems)

    def sorted(self) -> list[Problem]:
        return sorted(self.problems, key=lambda problem: (os.fspath(problem.path), problem.line))


def closest(word: str, choices: Collection[str]) -> str | None:
    """The choice `word` is most likely a misspelling of, if any is close enough."""
    close = difflib.get_close_matches(word.lower(), sorted(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def unknown_key_message(key: str, allowed: Collection[str]) -> str:
    """`unknown key 'titel' (did you mean 'title'?)`, or the allowed keys when nothing is close."""
    suggestion = closest(key, allowed)
    if suggestion:
        return f"unknown key {key!r} (did you mean {suggestion!r}?)"
    return f"unknown key {key!r}; allowed keys: {', '.join(sorted(allowed))}"


def unknown_value_message(what: str, value: str, allowed: Collection[str]) -> str:
    suggestion = closest(value, allowed)
    hint = f" (did you mean {suggestion!r}?)" if suggestion else ""
    return f"unknown {what} {value!r}{hint}; one of: {', '.join(sorted(allowed))}"


def line_of_offset(data: bytes | str, offset: int) -> int:
    """1-based line number of the character (or byte) at `offset`."""
    end = max(offset, 0)
    if isinstance(data, bytes):
        return data.count(b"\n", 0, end) + 1
    return data.count("\n", 0, end) + 1


def human_size(size: int) -> str:
    if size >= 1_000_000:
        return f"{size / 1_000_000:.1f} MB"
    if size >= 1_000:
        return f"{size / 1_000:.0f} KB"
    return f"{size} bytes"


def read_course_text(path: Path, limit: int, log: ProblemLog) -> str | None:
    """The file's text if it is a regular UTF-8 text file of at most `limit` bytes; else None (logged)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        log.error(path, 1, "file not found")
        return None
    except (OSError, ValueError) as error:
        log.error(path, 1, f"cannot read this file: {getattr(error, 'strerror', None) or error}")
        return None
    if not stat.S_ISREG(info.st_mode):
        log.error(path, 1, "not a regular file")
        return None
    if info.st_size > limit:
        log.error(path, 1, f"the file is {human_size(info.st_size)}; the limit is {human_size(limit)}")
        return None
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as error:
        log.error(path, 1, f"cannot read this file: {error.strerror or error}")
        return None
    if len(data) > limit:
        log.error(path, 1, f"the file is over the limit of {human_size(limit)}")
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        log.error(
            path,
            line_of_offset(data, error.start),
            f"not UTF-8 text (byte 0x{data[error.start]:02x}); save the file as UTF-8",
        )
        return None
    nul = text.find("\x00")
    if nul >= 0:
        log.error(path, line_of_offset(text, nul), "contains a NUL character: is this a binary file?")
        return None
    return text.removeprefix("\ufeff")


def resolve_inside(root: Path, path: Path) -> Path | None:
    """`path` with every symlink resolved, if it stays inside the already resolved `root`; else None."""
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    return resolved if resolved.is_relative_to(root) else None
