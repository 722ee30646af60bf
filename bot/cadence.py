"""Cadences and times of day: the notation learners, instructors and the CLI share.

Cadence: `daily`, `weekdays`, a list of day names such as `mon,wed,fri`, or `every-N-days` (N 1-14).
Time of day: a local wall time such as `08:05`, `8am`, `8:30 pm` or `20h30`.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from rapidfuzz.distance import OSA

from bot.learner_input import echo

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
ALL_DAYS = frozenset(range(7))
MONDAY_TO_FRIDAY = frozenset(range(5))
MAX_EVERY_N_DAYS = 14
MAX_INPUT_LENGTH = 100

CADENCE_FORMS = "daily, weekdays, mon,wed,fri (any three-letter days), every-N-days (N 1-14)"
TIME_FORMS = "08:05, 8:05, 0805, 8am, 8:30 pm, 20h30 (hours 0-23, minutes 0-59)"

_DAILY_WORDS = frozenset({"daily", "every day", "everyday", "each day"})
_WEEKDAY_WORDS = frozenset({"weekdays", "weekday", "workdays", "every weekday", "mon to fri"})
_WEEKEND_WORDS = frozenset({"weekends", "weekend"})
_EVERY_OTHER = frozenset({"every other day", "every second day", "every 2nd day"})
_EVERY_N = re.compile(r"^every ?(\d{1,6}) ?days?$")
_DAY_SEPARATORS = re.compile(r"[\s,;/+&]+|\band\b")
_EVERY_WEEKS = re.compile(r"^every ?(\d{1,6}) ?weeks?$")
# what a near miss most likely meant -> the form to suggest
_SUGGESTIONS = {
    "daily": "daily",
    "every-day": "daily",
    "weekdays": "weekdays",
    "weekends": "weekends",
    "weekly": "weekly",
    "every-2-days": "every-2-days",
    "every-other-day": "every-other-day",
    **{name: name for name in DAY_NAMES},
    **dict(zip(FULL_DAY_NAMES, DAY_NAMES, strict=True)),
}


class CadenceError(ValueError):
    """A cadence that cannot be read; the message lists the valid forms."""


class TimeOfDayError(ValueError):
    """A time of day that cannot be read; the message lists the valid forms."""


def _next_qualifying_offsets(weekdays: frozenset[int]) -> tuple[int, ...]:
    """For each weekday, how many days ahead the next qualifying weekday is (0 when it qualifies)."""
    offsets = []
    for weekday in range(7):
        ahead = next((step for step in range(7) if (weekday + step) % 7 in weekdays), 0)
        offsets.append(ahead)
    return tuple(offsets)


@dataclass(frozen=True)
class Cadence:
    """Which local dates get a slot: a set of weekdays (0=Mon..6=Sun), or every N days from an anchor."""

    weekdays: frozenset[int] = ALL_DAYS
    every_n_days: int = 0
    _offsets: tuple[int, ...] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "weekdays", frozenset(self.weekdays))
        if self.every_n_days == 1 and not self.weekdays:
            object.__setattr__(self, "weekdays", ALL_DAYS)
            object.__setattr__(self, "every_n_days", 0)
        if self.every_n_days == 0:
            if not self.weekdays or not self.weekdays <= ALL_DAYS:
                raise CadenceError(f"a cadence needs at least one weekday in 0-6. Use: {CADENCE_FORMS}")
        elif self.weekdays or not 2 <= self.every_n_days <= MAX_EVERY_N_DAYS:
            raise CadenceError(f"every-N-days needs N from 1 to {MAX_EVERY_N_DAYS} and no weekdays")
        object.__setattr__(self, "_offsets", _next_qualifying_offsets(self.weekdays))

    @classmethod
    def every(cls, days: int) -> Cadence:
        """Every `days` local dates (1 is daily)."""
        return cls(frozenset(), days)

    def __str__(self) -> str:
        if self.every_n_days:
            return f"every-{self.every_n_days}-days"
        if self.weekdays == ALL_DAYS:
            return "daily"
        if self.weekdays == MONDAY_TO_FRIDAY:
            return "weekdays"
        return ",".join(DAY_NAMES[day] for day in sorted(self.weekdays))

    def qualifies(self, day: dt.date, anchor: dt.date | None) -> bool:
        """Whether local `day` gets a slot; for every-N-days without an anchor any date may start the run."""
        if self.every_n_days:
            return anchor is None or (day - anchor).days % self.every_n_days == 0
        return day.weekday() in self.weekdays

    def first_on_or_after(self, day: dt.date, anchor: dt.date | None) -> dt.date:
        """The first qualifying local date on or after `day`, found without scanning day by day."""
        if self.every_n_days:
            if anchor is None:
                return day
            behind = (day - anchor).days % self.every_n_days
            return day if behind == 0 else day + dt.timedelta(days=self.every_n_days - behind)
        return day + dt.timedelta(days=self._offsets[day.weekday()])


DAILY = Cadence()
WEEKDAYS = Cadence(MONDAY_TO_FRIDAY)


def _normalise(text: str) -> str:
    return " ".join(text.strip().lower().replace("_", " ").split())


def _closest(word: str, candidates: Iterable[str]) -> str | None:
    best = max(candidates, key=lambda candidate: OSA.normalized_similarity(word, candidate))
    return best if OSA.normalized_similarity(word, best) >= 0.6 else None


def _suggest(word: str) -> str | None:
    closest = _closest(word, _SUGGESTIONS)
    return _SUGGESTIONS[closest] if closest else None


def _cadence_error(text: str, reason: str = "", suggestion: str | None = None) -> CadenceError:
    detail = f" ({reason})" if reason else ""
    hint = f"; did you mean {suggestion!r}?" if suggestion else ""
    return CadenceError(f"unknown cadence {echo(text)}{detail}. Use: {CADENCE_FORMS}{hint}")


def _day_index(token: str) -> int | None:
    if token in DAY_NAMES:
        return DAY_NAMES.index(token)
    if token == "weds":
        return 2
    if len(token) >= 2:
        matches = [index for index, name in enumerate(FULL_DAY_NAMES) if name.startswith(token)]
        if len(matches) == 1:
            return matches[0]
    return None


def _parse_day_list(text: str, compact: str) -> frozenset[int]:
    days: set[int] = set()
    for token in filter(None, _DAY_SEPARATORS.split(compact)):
        if "-" in token:
            first_text, _, last_text = token.partition("-")
            first, last = _day_index(first_text), _day_index(last_text)
            if first is None or last is None:
                bad = first_text if first is None else last_text
                raise _cadence_error(text, f"unknown day {bad!r}", _suggest(bad))
            span = (last - first) % 7
            days.update((first + step) % 7 for step in range(span + 1))
            continue
        day = _day_index(token)
        if day is None:
            whole = _suggest(compact.replace(" ", "-"))
            raise _cadence_error(text, f"unknown day {token!r}", whole or _suggest(token))
        days.add(day)
    if not days:
        raise _cadence_error(text)
    return frozenset(days)


def parse_cadence(text: str) -> Cadence:
    """Read a cadence (case-insensitive, spaces tolerated); raises CadenceError with the valid forms.

    Results are memoized: the release planner reads every enrollment's stored cadence.
    """
    if isinstance(text, str) and len(text) <= MAX_INPUT_LENGTH:
        return _parse_cadence_memo(text)
    return _parse_cadence(text)


def _parse_cadence(text: str) -> Cadence:
    if not isinstance(text, str) or not text.strip():
        raise CadenceError(f"no cadence given. Use: {CADENCE_FORMS}")
    if len(text) > MAX_INPUT_LENGTH:
        raise _cadence_error(text, "too long")
    compact = _normalise(text)
    spaced = compact.replace("-", " ")
    if compact in _DAILY_WORDS or spaced in _DAILY_WORDS:
        return DAILY
    if compact in _WEEKDAY_WORDS or spaced in _WEEKDAY_WORDS:
        return WEEKDAYS
    if compact in _WEEKEND_WORDS:
        return Cadence(frozenset({5, 6}))
    if spaced in _EVERY_OTHER:
        return Cadence.every(2)
    if compact == "weekly":
        return Cadence.every(7)
    weeks = _EVERY_WEEKS.match(spaced)
    if weeks:
        if int(weeks.group(1)) in (1, 2):
            return Cadence.every(7 * int(weeks.group(1)))
        raise _cadence_error(text, f"at most every 2 weeks, that is every-{MAX_EVERY_N_DAYS}-days")
    every = _EVERY_N.match(spaced)
    if every:
        days = int(every.group(1))
        if not 1 <= days <= MAX_EVERY_N_DAYS:
            raise _cadence_error(text, f"N must be 1-{MAX_EVERY_N_DAYS}, got {days}")
        return Cadence.every(days)
    if spaced.startswith("every"):
        number = re.search(r"\d+", spaced)
        if number and 1 <= int(number.group()) <= MAX_EVERY_N_DAYS:
            raise _cadence_error(text, suggestion=str(Cadence.every(int(number.group()))))
        raise _cadence_error(text, suggestion=_suggest(compact.replace(" ", "-")))
    if not re.fullmatch(r"[a-z ,;/+&-]+", compact):
        raise _cadence_error(text, suggestion=_suggest(compact))
    if " " not in compact and "," not in compact and _day_index(compact.partition("-")[0]) is None:
        raise _cadence_error(text, suggestion=_suggest(compact))
    return Cadence(_parse_day_list(text, compact))


_TWELVE_HOUR = re.compile(r"^(\d{1,2})(?:[:.h ]?(\d{2}))? ?(am|pm|a|p)$")
_TWENTY_FOUR_HOUR = re.compile(r"^(\d{1,2})(?:[:.h](\d{2})(?::(\d{2}))?|h)$")
_DIGITS = re.compile(r"^\d{1,4}$")
_NAMED_TIMES = {"noon": dt.time(12, 0), "midday": dt.time(12, 0), "midnight": dt.time(0, 0)}


def _time_error(text: str, reason: str = "") -> TimeOfDayError:
    detail = f" ({reason})" if reason else ""
    return TimeOfDayError(f"unknown time of day {echo(text)}{detail}. Use: {TIME_FORMS}")


def _wall_time(text: str, hour: int, minute: int) -> dt.time:
    if not 0 <= hour <= 23:
        raise _time_error(text, f"hour {hour} is not in 0-23")
    if not 0 <= minute <= 59:
        raise _time_error(text, f"minute {minute} is not in 0-59")
    return dt.time(hour, minute)


def parse_time_of_day(text: str) -> dt.time:
    """Read a local wall time (24-hour or am/pm); seconds are always 0. Raises TimeOfDayError.

    Results are memoized, like `parse_cadence`.
    """
    if isinstance(text, str) and len(text) <= MAX_INPUT_LENGTH:
        return _parse_time_of_day_memo(text)
    return _parse_time_of_day(text)


def _parse_time_of_day(text: str) -> dt.time:
    if not isinstance(text, str) or not text.strip():
        raise TimeOfDayError(f"no time of day given. Use: {TIME_FORMS}")
    if len(text) > MAX_INPUT_LENGTH:
        raise _time_error(text, "too long")
    compact = _normalise(text).replace("a.m.", "am").replace("p.m.", "pm").replace("o'clock", "").strip()
    if compact in _NAMED_TIMES:
        return _NAMED_TIMES[compact]
    twelve = _TWELVE_HOUR.match(compact)
    if twelve:
        hour, minute = int(twelve.group(1)), int(twelve.group(2) or 0)
        if not 1 <= hour <= 12:
            raise _time_error(text, f"hour {hour} is not in 1-12 with am/pm")
        afternoon = twelve.group(3).startswith("p")
        return _wall_time(text, hour % 12 + (12 if afternoon else 0), minute)
    twenty_four = _TWENTY_FOUR_HOUR.match(compact)
    if twenty_four:
        hour, minute = int(twenty_four.group(1)), int(twenty_four.group(2) or 0)
        if twenty_four.group(3) not in (None, "00"):
            raise _time_error(text, "seconds are not supported")
        return _wall_time(text, hour, minute)
    if _DIGITS.match(compact):
        if len(compact) <= 2:
            return _wall_time(text, int(compact), 0)
        return _wall_time(text, int(compact[:-2]), int(compact[-2:]))
    raise _time_error(text)


_parse_cadence_memo = functools.lru_cache(maxsize=4096)(_parse_cadence)
_parse_time_of_day_memo = functools.lru_cache(maxsize=4096)(_parse_time_of_day)


def format_time_of_day(wall: dt.time) -> str:
    """`HH:MM`, the stored and displayed form."""
    return f"{wall.hour:02d}:{wall.minute:02d}"
