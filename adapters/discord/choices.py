"""Autocomplete suggestions: courses from the courses folder, time zones and cities, times of day."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bot.conversation import TIME_CHOICES
from bot.course_check import ProblemLog
from bot.course_loader import course_folders
from bot.course_toml import read_course_toml
from bot.timezones import search_zones

MAX_SUGGESTIONS = 25


class CourseChoices:
    """(title, slug) of every course under `root` matching what was typed; read afresh on each call, so a
    course added or retitled shows up without a restart (the core still checks the slug on enrolment)."""

    def __init__(self, root: Path | None) -> None:
        self._root = root

    def __call__(self, typed: str) -> Sequence[tuple[str, str]]:
        if self._root is None:
            return []
        folders, _problems = course_folders(self._root)
        wanted = typed.strip().casefold()
        found: list[tuple[str, str]] = []
        for folder in folders:
            settings = read_course_toml(folder / "course.toml", ProblemLog())
            slug = folder.resolve().name
            title = settings.title if settings is not None and settings.title else slug
            if not wanted or wanted in slug.casefold() or wanted in title.casefold():
                found.append((title, slug))
        return found[:MAX_SUGGESTIONS]


def zone_choices(typed: str) -> Sequence[tuple[str, str]]:
    """Ranked IANA zones and cities (labels say which city or zone); values are what /timezone stores."""
    return [(choice.label, choice.name) for choice in search_zones(typed, limit=MAX_SUGGESTIONS)]


def time_choices(typed: str) -> Sequence[tuple[str, str]]:
    """Common lesson times starting with what was typed, and the typed text itself when it is new."""
    wanted = typed.strip()
    found = [(choice, choice) for choice in TIME_CHOICES if choice.startswith(wanted)]
    if wanted and wanted not in TIME_CHOICES:
        found.insert(0, (wanted, wanted))
    return found[:MAX_SUGGESTIONS]
