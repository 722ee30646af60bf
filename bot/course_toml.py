"""course.toml: a course's title, defaults, discussion channels, lesson order and instructors.

Read with tomllib; since tomllib keeps no positions, `TomlLines` finds the line a key was written on.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from bot.cadence import CadenceError, TimeOfDayError, parse_cadence, parse_time_of_day
from bot.content import DiscussionChannels
from bot.course_check import MAX_COURSE_TOML_BYTES, ProblemLog, read_course_text, unknown_key_message
from bot.course_toml_learning import LearningSettings, read_learning_settings

COURSE_KEYS = frozenset(
    {
        "title",
        "description",
        "language",
        "default_cadence",
        "default_time",
        "first_lesson_immediately",
        "discussion",
        "lessons",
        "instructors",
        "languages",
        "review",
        "nudges",
    }
)
DISCUSSION_KEYS = frozenset({"telegram_chat_id", "discord_channel_id", "per_cohort"})
DEFAULT_CADENCE = "daily"
DEFAULT_TIME = "08:00"

LESSON_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_TELEGRAM_CHAT = re.compile(r"^(-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31})$")
_DISCORD_SNOWFLAKE = re.compile(r"^[0-9]{15,21}$")


@dataclass(frozen=True)
class LessonOrderItem:
    slug: str
    line: int


@dataclass(frozen=True)
class CourseToml:
    """course.toml's values; invalid ones are reported and replaced by their defaults."""

    path: Path
    title: str
    description: str = ""
    language: str = "en"
    default_cadence: str = DEFAULT_CADENCE
    default_time: str = DEFAULT_TIME
    first_lesson_immediately: bool = True
    discussion: DiscussionChannels = field(default_factory=DiscussionChannels)
    lesson_order: tuple[LessonOrderItem, ...] | None = None
    instructors: tuple[str, ...] = ()
    learning: LearningSettings = field(default_factory=LearningSettings)
    """Lesson languages, spaced review and nudges."""


class TomlLines:
    """Where each key of a simple TOML file was written (tables, `key = value`, multi-line arrays)."""

    _TABLE = re.compile(r"^\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
    _KEY = re.compile(r"""^(?:"([^"]+)"|'([^']+)'|([A-Za-z0-9_-]+))\s*=""")

    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")
        self.keys: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        in_string = False
        for number, raw in enumerate(self.lines, 1):
            line = raw.strip()
            quotes = line.count('"""') + line.count("'''")
            if not in_string:
                header = self._TABLE.match(line)
                key = self._KEY.match(line)
                if header:
                    table = tuple(part.strip().strip("\"'") for part in header.group(1).split("."))
                    self.keys.setdefault(table, number)
                elif key:
                    name = next(group for group in key.groups() if group)
                    self.keys.setdefault((*table, name), number)
            if quotes % 2:
                in_string = not in_string

    def key(self, *path: str) -> int:
        """The line of `path` (or of its nearest enclosing table); 1 when not found."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.keys:
                return self.keys[path[:end]]
        return 1

    def item(self, needle: str, *path: str) -> int:
        """The first line at or after key `path` that holds the quoted string `needle`."""
        start = self.key(*path)
        quoted = (f'"{needle}"', f"'{needle}'")
        for number in range(start, len(self.lines) + 1):
            if any(form in self.lines[number - 1] for form in quoted):
                return number
        return start


def read_course_toml(path: Path, log: ProblemLog) -> CourseToml | None:
    """The course settings; None (logged) when the file is missing or not TOML at all."""
    text = read_course_text(path, MAX_COURSE_TOML_BYTES, log)
    if text is None:
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        log.error(path, _toml_error_line(str(error), text), f"TOML syntax error: {_toml_error_text(error)}")
        return None
    except RecursionError:
        log.error(path, 1, "TOML nests too deeply")
        return None
    return _CourseTomlReader(path, text, log).read(data)


class _CourseTomlReader:
    def __init__(self, path: Path, text: str, log: ProblemLog) -> None:
        self.path = path
        self.lines = TomlLines(text)
        self.log = log

    def error(self, message: str, *key: str) -> None:
        self.log.error(self.path, self.lines.key(*key), message)

    def read(self, data: dict[str, object]) -> CourseToml:
        for key in data:
            if key not in COURSE_KEYS:
                self.error(unknown_key_message(key, COURSE_KEYS), key)
        title = self.text(data, "title")
        if title is None and "title" not in data:
            self.log.error(
                self.path, 1, 'course.toml needs a title, e.g. title = "Learning on your own clock"'
            )
        elif title is not None and not title.strip():
            self.error("the title is empty", "title")
        first_immediately = data.get("first_lesson_immediately", True)
        if not isinstance(first_immediately, bool):
            self.error("first_lesson_immediately must be true or false", "first_lesson_immediately")
            first_immediately = True
        language = self.language(data)
        return CourseToml(
            path=self.path,
            title=(title or "").strip(),
            description=(self.text(data, "description") or "").strip(),
            language=language,
            default_cadence=self.cadence(data),
            default_time=self.time_of_day(data),
            first_lesson_immediately=first_immediately,
            discussion=self.discussion(data),
            lesson_order=self.lesson_order(data),
            instructors=self.instructors(data),
            learning=read_learning_settings(data, language, self.error),
        )

    def text(self, data: dict[str, object], key: str) -> str | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.error(f"{key} must be text in quotes, not {_toml_kind(value)}", key)
            return None
        return value

    def language(self, data: dict[str, object]) -> str:
        language = self.text(data, "language")
        if language is None:
            return "en"
        if not _LANGUAGE.match(language):
            self.error(f"language {language!r} is not a language code such as 'en' or 'pt-BR'", "language")
            return "en"
        return language

    def cadence(self, data: dict[str, object]) -> str:
        cadence = self.text(data, "default_cadence")
        if cadence is None:
            return DEFAULT_CADENCE
        try:
            return str(parse_cadence(cadence))
        except CadenceError as error:
            self.error(f"default_cadence: {error}", "default_cadence")
            return DEFAULT_CADENCE

    def time_of_day(self, data: dict[str, object]) -> str:
        value = data.get("default_time")
        if value is None:
            return DEFAULT_TIME
        if isinstance(value, dt.time) and not isinstance(value, bool):
            return f"{value:%H:%M}"
        if not isinstance(value, str):
            self.error(
                f'default_time must be a time such as "08:00", not {_toml_kind(value)}', "default_time"
            )
            return DEFAULT_TIME
        try:
            return f"{parse_time_of_day(value):%H:%M}"
        except TimeOfDayError as error:
            self.error(f"default_time: {error}", "default_time")
            return DEFAULT_TIME

    def discussion(self, data: dict[str, object]) -> DiscussionChannels:
        table = data.get("discussion")
        if table is None:
            return DiscussionChannels()
        if not isinstance(table, dict):
            self.error("discussion must be a table: [discussion] with telegram_chat_id, discord_channel_id")
            return DiscussionChannels()
        for key in table:
            if key not in DISCUSSION_KEYS:
                self.error(unknown_key_message(key, DISCUSSION_KEYS), "discussion", key)
        telegram = self.channel(table, "telegram_chat_id", _TELEGRAM_CHAT, "a chat id such as -1001234567890")
        discord = self.channel(table, "discord_channel_id", _DISCORD_SNOWFLAKE, "a channel id (digits)")
        per_cohort = table.get("per_cohort", False)
        if not isinstance(per_cohort, bool):
            self.error("discussion.per_cohort must be true or false", "discussion", "per_cohort")
            per_cohort = False
        return DiscussionChannels(
            telegram_chat_id=telegram, discord_channel_id=discord, per_cohort=per_cohort
        )

    def channel(self, table: dict[str, object], key: str, pattern: re.Pattern[str], shape: str) -> str | None:
        value = table.get(key)
        if value is None:
            return None
        text = str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else None
        if text is None or not pattern.match(text):
            self.error(f"discussion.{key} must be {shape}", "discussion", key)
            return None
        return text

    def lesson_order(self, data: dict[str, object]) -> tuple[LessonOrderItem, ...] | None:
        value = data.get("lessons")
        if value is None:
            return None
        if not isinstance(value, list):
            self.error(
                'lessons must be a list of lesson slugs, e.g. lessons = ["welcome", "routine"]', "lessons"
            )
            return None
        order: list[LessonOrderItem] = []
        seen: set[str] = set()
        for item in value:
            if not isinstance(item, str):
                self.error(
                    f"lessons: each entry is a lesson slug in quotes, not {_toml_kind(item)}", "lessons"
                )
                continue
            line = self.lines.item(item, "lessons")
            if not LESSON_SLUG.match(item):
                self.log.error(
                    self.path, line, f"lessons: {item!r} is not a lesson slug (e.g. 'spaced-review')"
                )
            elif item in seen:
                self.log.error(self.path, line, f"lessons: {item!r} is listed twice")
            else:
                seen.add(item)
                order.append(LessonOrderItem(item, line))
        return tuple(order)

    def instructors(self, data: dict[str, object]) -> tuple[str, ...]:
        value = data.get("instructors")
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.error(
                'instructors must be a list of names or contacts, e.g. ["Ada <ada@example.org>"]',
                "instructors",
            )
            return ()
        return tuple(str(item).strip() for item in value if str(item).strip())


def _toml_kind(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, dt.date | dt.time):
        return "a date or time"
    return "text"


_AT_LINE = re.compile(r"\(at line (\d+), column \d+\)$")


def _toml_error_line(message: str, text: str) -> int:
    match = _AT_LINE.search(message)
    if match:
        return int(match.group(1))
    return max(text.count("\n") + (0 if text.endswith("\n") else 1), 1)


def _toml_error_text(error: tomllib.TOMLDecodeError) -> str:
    message = _AT_LINE.sub("", str(error)).replace("(at end of document)", "").strip()
    return message or "unreadable"
