"""course.toml's `languages`, `[review]` and `[nudges]`: read and checked, defaults for anything invalid.

```toml
languages = ["en", "de"]          # the course's own language first; lessons may have NN-slug.de.md
[review]
enabled = true                    # answered quizzes come back as spaced-review cards
per_day = 3                       # at most this many cards a day per learner
[nudges]
after_days = 3                    # quiet days before a friendly reminder
max = 2                           # reminders per quiet stretch (0: none)
quiet_start = "21:00"             # never between these local times
quiet_end = "08:00"
```
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.cadence import TimeOfDayError, parse_time_of_day
from bot.content import NudgeRules, ReviewRules
from bot.course_check import unknown_key_message

REVIEW_KEYS = frozenset({"enabled", "per_day"})
NUDGE_KEYS = frozenset({"after_days", "max", "quiet_start", "quiet_end"})
MAX_REVIEWS_PER_DAY = 20
MAX_NUDGE_DAYS = 60
MAX_NUDGES = 10
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")

ReportError = Callable[..., None]
"""`error(message, *key_path)`: report a problem on the line of that key."""


@dataclass(frozen=True)
class LearningSettings:
    languages: tuple[str, ...] = ()
    review: ReviewRules = field(default_factory=ReviewRules)
    nudges: NudgeRules = field(default_factory=NudgeRules)


def read_learning_settings(data: dict[str, object], language: str, error: ReportError) -> LearningSettings:
    """The three settings from a parsed course.toml; `language` is the course's own language."""
    return LearningSettings(
        languages=_languages(data, language, error),
        review=_review(data, error),
        nudges=_nudges(data, error),
    )


def _languages(data: dict[str, object], language: str, error: ReportError) -> tuple[str, ...]:
    value = data.get("languages")
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        error('languages must be a list of language codes, e.g. languages = ["en", "de"]', "languages")
        return ()
    found: list[str] = []
    for item in value:
        code = str(item).strip()
        if not LANGUAGE.match(code):
            error(f"languages: {code!r} is not a language code such as 'de' or 'pt-BR'", "languages")
        elif code in found:
            error(f"languages: {code!r} is listed twice", "languages")
        else:
            found.append(code)
    if found and found[0] != language:
        error(
            f"languages must start with the course's language {language!r} (its lessons' own language)",
            "languages",
        )
        return ()
    return tuple(found)


def _table(data: dict[str, object], name: str, keys: frozenset[str], error: ReportError) -> dict[str, object]:
    table = data.get(name)
    if table is None:
        return {}
    if not isinstance(table, dict):
        error(f"{name} must be a table: [{name}] with {', '.join(sorted(keys))}", name)
        return {}
    for key in table:
        if key not in keys:
            error(unknown_key_message(key, keys), name, key)
    return table


def _whole(
    table: dict[str, object], name: str, key: str, low: int, high: int, default: int, error: ReportError
) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        error(f"{name}.{key} must be a whole number from {low} to {high}", name, key)
        return default
    return value


def _review(data: dict[str, object], error: ReportError) -> ReviewRules:
    table = _table(data, "review", REVIEW_KEYS, error)
    defaults = ReviewRules()
    enabled = table.get("enabled", defaults.enabled)
    if not isinstance(enabled, bool):
        error("review.enabled must be true or false", "review", "enabled")
        enabled = defaults.enabled
    per_day = _whole(table, "review", "per_day", 1, MAX_REVIEWS_PER_DAY, defaults.per_day, error)
    return ReviewRules(enabled=enabled, per_day=per_day)


def _nudges(data: dict[str, object], error: ReportError) -> NudgeRules:
    table = _table(data, "nudges", NUDGE_KEYS, error)
    defaults = NudgeRules()
    return NudgeRules(
        after_days=_whole(table, "nudges", "after_days", 1, MAX_NUDGE_DAYS, defaults.after_days, error),
        max=_whole(table, "nudges", "max", 0, MAX_NUDGES, defaults.max, error),
        quiet_start=_time(table, "quiet_start", defaults.quiet_start, error),
        quiet_end=_time(table, "quiet_end", defaults.quiet_end, error),
    )


def _time(table: dict[str, object], key: str, default: dt.time, error: ReportError) -> dt.time:
    value = table.get(key)
    if value is None:
        return default
    if isinstance(value, dt.time):
        return value.replace(second=0, microsecond=0, tzinfo=None)
    if not isinstance(value, str):
        error(f'nudges.{key} must be a time such as "21:00"', "nudges", key)
        return default
    try:
        return parse_time_of_day(value)
    except TimeOfDayError as problem:
        error(f"nudges.{key}: {problem}", "nudges", key)
        return default
