"""Cadence and time-of-day notation: what learners may type, and the messages when they slip."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.cadence import (
    CADENCE_FORMS,
    DAILY,
    WEEKDAYS,
    Cadence,
    CadenceError,
    TimeOfDayError,
    format_time_of_day,
    parse_cadence,
    parse_time_of_day,
)

JUNK = [
    "",
    "   ",
    "x" * 10_000,
    "\x00",
    "daily\x00",
    "mon\twed\x07",
    "\u202edaily",
    "🙂",
    "📅 daily 📅",
    "'; DROP TABLE enrollment; --",
    "1=1 OR 'a'='a'",
    "../../etc/passwd",
    "every--days",
    "every-0-days",
    "every-15-days",
    "every-99999999999-days",
    "every -3 days",
    "mon,xyz",
    "mon-",
    "-fri",
    "monday,funday",
    "every 3 weeks",
]


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("daily", "daily"),
        ("DAILY", "daily"),
        ("  Daily ", "daily"),
        ("every day", "daily"),
        ("weekdays", "weekdays"),
        ("Weekdays", "weekdays"),
        ("mon-fri", "weekdays"),
        ("mon,tue,wed,thu,fri", "weekdays"),
        ("mon,wed,fri", "mon,wed,fri"),
        ("Mon, Wed, Fri", "mon,wed,fri"),
        ("mon wed fri", "mon,wed,fri"),
        ("fri,mon,wed", "mon,wed,fri"),
        ("MON,MON,wed", "mon,wed"),
        ("monday, wednesday and friday", "mon,wed,fri"),
        ("tues, thurs", "tue,thu"),
        ("sat,sun", "sat,sun"),
        ("weekends", "sat,sun"),
        ("fri-mon", "mon,fri,sat,sun"),
        ("sun,mon,tue,wed,thu,fri,sat", "daily"),
        ("every-2-days", "every-2-days"),
        ("every 2 days", "every-2-days"),
        ("Every 3 Days", "every-3-days"),
        ("every_4_days", "every-4-days"),
        ("every-other-day", "every-2-days"),
        ("every other day", "every-2-days"),
        ("every-1-days", "daily"),
        ("every 1 day", "daily"),
        ("every-14-days", "every-14-days"),
        ("weekly", "every-7-days"),
        ("every 2 weeks", "every-14-days"),
    ],
)
def test_parse_cadence(text: str, canonical: str) -> None:
    cadence = parse_cadence(text)
    assert str(cadence) == canonical
    assert parse_cadence(canonical) == cadence


def test_cadence_values() -> None:
    assert parse_cadence("daily") == DAILY == Cadence(frozenset(range(7)), 0) == Cadence.every(1)
    assert parse_cadence("weekdays") == WEEKDAYS
    assert parse_cadence("mon,wed,fri").weekdays == frozenset({0, 2, 4})
    assert parse_cadence("mon,wed,fri").every_n_days == 0
    assert parse_cadence("every-3-days") == Cadence(frozenset(), 3)
    assert parse_cadence("every-3-days").weekdays == frozenset()
    assert hash(parse_cadence("Mon Wed")) == hash(parse_cadence("wed,mon"))
    with pytest.raises(CadenceError):
        Cadence(frozenset())
    with pytest.raises(CadenceError):
        Cadence(frozenset({7}))
    with pytest.raises(CadenceError):
        Cadence(frozenset({1}), 3)
    with pytest.raises(CadenceError):
        Cadence.every(15)


def test_cadence_error_lists_the_forms_and_suggests_the_nearest() -> None:
    with pytest.raises(CadenceError) as caught:
        parse_cadence("dialy")
    message = str(caught.value)
    assert message.startswith("unknown cadence 'dialy'. Use: daily, weekdays, mon,wed,fri")
    assert "every-N-days (N 1-14)" in message
    assert "did you mean 'daily'?" in message
    for typed, suggestion in [
        ("weekdyas", "weekdays"),
        ("every-3-dys", "every-3-days"),
        ("evry day", "daily"),
        ("mon,tuesdya", "tue"),
        ("mon-frj", "fri"),
        ("wekly", "weekly"),
    ]:
        with pytest.raises(CadenceError, match=f"did you mean '{suggestion}'"):
            parse_cadence(typed)
    with pytest.raises(CadenceError, match="N must be 1-14, got 15"):
        parse_cadence("every-15-days")


@pytest.mark.parametrize("junk", JUNK)
def test_junk_cadence_is_a_cadence_error_with_the_forms(junk: str) -> None:
    with pytest.raises(CadenceError) as caught:
        parse_cadence(junk)
    message = str(caught.value)
    assert CADENCE_FORMS in message
    assert len(message) < 300
    assert message.isprintable()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_gives_a_cadence_or_a_cadence_error(text: str) -> None:
    try:
        cadence = parse_cadence(text)
    except CadenceError as error:
        message = str(error)
    else:
        assert parse_cadence(str(cadence)) == cadence
        return
    assert message.isprintable()


cadences = st.one_of(
    st.frozensets(st.integers(0, 6), min_size=1).map(Cadence), st.integers(1, 14).map(Cadence.every)
)


@settings(max_examples=200, deadline=None)
@given(cadences)
def test_canonical_text_round_trips(cadence: Cadence) -> None:
    text = str(cadence)
    assert parse_cadence(text) == cadence
    assert parse_cadence(text.upper().replace(",", ", ")) == cadence


@settings(max_examples=200, deadline=None)
@given(
    cadences,
    st.dates(dt.date(2020, 1, 1), dt.date(2037, 12, 31)),
    st.one_of(st.none(), st.dates(dt.date(2019, 1, 1), dt.date(2038, 12, 31))),
)
def test_first_qualifying_date_is_the_first_that_qualifies(
    cadence: Cadence, day: dt.date, anchor: dt.date | None
) -> None:
    first = cadence.first_on_or_after(day, anchor)
    scanned = next(
        day + dt.timedelta(days=k) for k in range(15) if cadence.qualifies(day + dt.timedelta(days=k), anchor)
    )
    assert first == scanned
    if cadence.every_n_days and anchor is not None:
        assert (first - anchor).days % cadence.every_n_days == 0
    elif not cadence.every_n_days:
        assert first.weekday() in cadence.weekdays


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("08:05", dt.time(8, 5)),
        ("8:05", dt.time(8, 5)),
        ("0805", dt.time(8, 5)),
        ("805", dt.time(8, 5)),
        ("8", dt.time(8, 0)),
        ("20", dt.time(20, 0)),
        ("8am", dt.time(8, 0)),
        ("8 AM", dt.time(8, 0)),
        ("8:30 pm", dt.time(20, 30)),
        ("8:30pm", dt.time(20, 30)),
        ("8.30 p.m.", dt.time(20, 30)),
        ("12am", dt.time(0, 0)),
        ("12:15 am", dt.time(0, 15)),
        ("12pm", dt.time(12, 0)),
        ("20h30", dt.time(20, 30)),
        ("20h", dt.time(20, 0)),
        ("00:00", dt.time(0, 0)),
        ("23:59", dt.time(23, 59)),
        ("07:00:00", dt.time(7, 0)),
        ("noon", dt.time(12, 0)),
        ("midnight", dt.time(0, 0)),
        (" 9:00 ", dt.time(9, 0)),
    ],
)
def test_parse_time_of_day(text: str, expected: dt.time) -> None:
    parsed = parse_time_of_day(text)
    assert parsed == expected
    assert parsed.second == 0 and parsed.microsecond == 0 and parsed.tzinfo is None


@pytest.mark.parametrize(
    ("junk", "reason"),
    [
        ("25:00", "hour 25 is not in 0-23"),
        ("24:00", "hour 24 is not in 0-23"),
        ("12:60", "minute 60 is not in 0-59"),
        ("13pm", "hour 13 is not in 1-12"),
        ("0am", "hour 0 is not in 1-12"),
        ("2400", "hour 24"),
        ("08:00:30", "seconds"),
        ("", "no time of day given"),
        ("   ", "no time of day given"),
        ("x" * 10_000, "too long"),
        ("\x00", ""),
        ("8:00\x00", ""),
        ("🙂", ""),
        ("'; DROP TABLE learner; --", ""),
        ("-1:00", ""),
        ("8:5", ""),
        ("eight", ""),
        ("12345", ""),
    ],
)
def test_junk_time_is_a_time_error_with_the_forms(junk: str, reason: str) -> None:
    with pytest.raises(TimeOfDayError) as caught:
        parse_time_of_day(junk)
    message = str(caught.value)
    assert reason in message
    assert "08:05, 8:05, 0805, 8am, 8:30 pm, 20h30" in message
    assert message.isprintable() and len(message) < 300


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_any_text_gives_a_time_or_a_time_error(text: str) -> None:
    try:
        parsed = parse_time_of_day(text)
    except TimeOfDayError as error:
        message = str(error)
    else:
        assert parsed.second == 0 and parse_time_of_day(format_time_of_day(parsed)) == parsed
        return
    assert message.isprintable()


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 23), st.integers(0, 59))
def test_format_time_of_day_round_trips(hour: int, minute: int) -> None:
    text = format_time_of_day(dt.time(hour, minute))
    assert text == f"{hour:02d}:{minute:02d}"
    assert parse_time_of_day(text) == dt.time(hour, minute)
