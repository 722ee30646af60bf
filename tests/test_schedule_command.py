"""`dripcourse schedule`: the next slots as JSON or a table, and one clear line for bad options."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dripcourse.commands.schedule import schedule_command
from tests.zone_oracle import all_zone_names, brute_force_slot, wall_at

UTC = dt.UTC


def build_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """dripcourse (test build)."""

    app.command("schedule")(schedule_command)
    return app


APP = build_app()
RUNNER = CliRunner()


def schedule(*args: str) -> tuple[int, str, str]:
    result = RUNNER.invoke(APP, ["schedule", *args])
    return result.exit_code, result.stdout, result.stderr


def slots_json(*args: str) -> list[str]:
    code, out, err = schedule(*args, "--json")
    assert code == 0, err
    parsed = json.loads(out)
    assert isinstance(parsed, list)
    return parsed


def test_json_slots_across_spring_forward() -> None:
    slots = slots_json(
        "--tz", "America/New_York", "--at", "02:30", "--cadence", "daily", "--from", "2026-03-07T00:00:00Z",
        "--count", "3",
    )  # fmt: skip
    assert slots == ["2026-03-07T07:30:00Z", "2026-03-08T07:30:00Z", "2026-03-09T06:30:00Z"]


def test_json_slots_across_fall_back_one_per_date() -> None:
    slots = slots_json(
        "--tz", "America/New_York", "--at", "1:30am", "--from", "2026-10-31T00:00:00Z", "--count", "3"
    )  # fmt: skip
    assert slots == ["2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]


def test_json_with_city_cadence_and_strictly_after() -> None:
    slots = slots_json(
        "--tz", "munich", "--at", "8am", "--cadence", "Mon, Wed, Fri", "--from", "2026-06-01T06:00:00Z",
        "-n", "4",
    )  # fmt: skip
    # Monday 1 June 08:00 in Munich is exactly 06:00Z: strictly after skips it
    assert slots == [
        "2026-06-03T06:00:00Z",
        "2026-06-05T06:00:00Z",
        "2026-06-08T06:00:00Z",
        "2026-06-10T06:00:00Z",
    ]


def test_every_n_days_starts_from_the_first_slot() -> None:
    slots = slots_json(
        "--tz", "Asia/Kolkata", "--at", "20h30", "--cadence", "every 3 days",
        "--from", "2026-01-01T16:00:00Z", "-n", "3",
    )  # fmt: skip
    assert slots == ["2026-01-02T15:00:00Z", "2026-01-05T15:00:00Z", "2026-01-08T15:00:00Z"]


def test_from_defaults_to_now_and_accepts_offsets() -> None:
    before = dt.datetime.now(UTC)
    slots = slots_json("--tz", "UTC", "--at", "12:00")
    assert len(slots) == 10
    first = dt.datetime.strptime(slots[0], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before - dt.timedelta(seconds=1) < first <= before + dt.timedelta(days=1)
    assert slots_json("--tz", "UTC", "--at", "12:00", "--from", "2026-03-08T12:59:00+01:00", "-n", "1") == [
        "2026-03-08T12:00:00Z"
    ]
    assert slots_json("--tz", "UTC", "--at", "12:00", "--from", "2026-03-08", "-n", "1") == [
        "2026-03-08T12:00:00Z"
    ]


def test_table_shows_utc_local_offset_and_weekday() -> None:
    code, out, err = schedule(
        "--tz", "America/New_York", "--at", "02:30", "--from", "2026-03-07T00:00:00Z", "--count", "3"
    )  # fmt: skip
    assert code == 0, err
    assert "America/New_York" in out and "02:30" in out and "daily" in out
    assert "2026-03-08T07:30:00Z" in out
    assert "Sun 2026-03-08 03:30" in out
    assert "UTC-04:00" in out and "UTC-05:00" in out
    assert "2026-03-09T06:30:00Z" in out and "Mon 2026-03-09 02:30" in out


def test_fixed_offset_warns_on_stderr_only() -> None:
    code, out, err = schedule("--tz", "+5:30", "--from", "2026-03-08T00:00:00Z", "-n", "2")
    assert code == 0
    assert "daylight saving" in err
    assert "UTC+05:30" in out
    code, out, err = schedule("--tz", "+5:30", "--from", "2026-03-08T00:00:00Z", "-n", "2", "--json")
    assert json.loads(out) == ["2026-03-08T02:30:00Z", "2026-03-09T02:30:00Z"]


@pytest.mark.parametrize(
    ("args", "start"),
    [
        (["--tz", "Narnia/Cair_Paravel"], "dripcourse: bad --tz: no time zone matches"),
        (["--tz", "x" * 10_000], "dripcourse: bad --tz: "),
        (["--tz", "bad\x00zone"], "dripcourse: bad --tz: "),
        (["--tz", "+25:00"], "dripcourse: bad --tz: "),
        (["--tz", ""], "dripcourse: bad --tz: no time zone given"),
        (["--tz", "Europe/Berlin", "--at", "25:00"], "dripcourse: bad --at: unknown time of day '25:00'"),
        (["--tz", "Europe/Berlin", "--at", "12:60"], "dripcourse: bad --at: "),
        (["--tz", "Europe/Berlin", "--at", "🙂"], "dripcourse: bad --at: "),
        (
            ["--tz", "Europe/Berlin", "--cadence", "dialy"],
            "dripcourse: bad --cadence: unknown cadence 'dialy'",
        ),
        (["--tz", "Europe/Berlin", "--cadence", "every-30-days"], "dripcourse: bad --cadence: "),
        (["--tz", "Europe/Berlin", "--from", "yesterday"], "dripcourse: --from 'yesterday' is not an ISO"),
        (["--tz", "Europe/Berlin", "--from", "2026-13-40T00:00:00Z"], "dripcourse: --from "),
        (["--tz", "Europe/Berlin", "--count", "0"], "dripcourse: --count must be 1-1000"),
        (["--tz", "Europe/Berlin", "--count", "5000"], "dripcourse: --count must be 1-1000"),
    ],
)
def test_bad_options_print_one_line_and_exit_2(args: list[str], start: str) -> None:
    for extra in ([], ["--json"]):
        code, out, err = schedule(*args, *extra)
        assert code == 2
        assert out == ""
        assert err.startswith(start)
        assert err.count("\n") == 1
        assert "Traceback" not in err
    if args[0] == "--tz" and args[1] == "Narnia/Cair_Paravel":
        assert "Use a zone like Europe/Berlin" in err


# --- the command against the brute-force oracle, across every zone ---------------------------------------

cadence_texts = st.one_of(
    st.sampled_from(["daily", "weekdays", "mon,wed,fri", "sat,sun", "tue"]),
    st.integers(2, 14).map(lambda days: f"every-{days}-days"),
)
DAY_OF_WEEK = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


def qualifying(cadence: str, day: dt.date, anchor: dt.date | None) -> bool:
    if cadence.startswith("every-"):
        every = int(cadence.split("-")[1])
        return anchor is None or (day - anchor).days % every == 0
    if cadence == "daily":
        return True
    if cadence == "weekdays":
        return day.weekday() < 5
    return day.weekday() in {DAY_OF_WEEK[name] for name in cadence.split(",")}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(all_zone_names()),
    moment=st.datetimes(dt.datetime(2020, 1, 1), dt.datetime(2037, 12, 20)),
    hour=st.sampled_from([0, 1, 2, 3, 8, 12, 23]),
    minute=st.sampled_from([0, 15, 30, 59]),
    cadence=cadence_texts,
)
def test_schedule_agrees_with_the_oracle_in_every_zone(
    name: str, moment: dt.datetime, hour: int, minute: int, cadence: str
) -> None:
    after = moment.replace(microsecond=0, tzinfo=UTC)
    slots = slots_json(
        "--tz", name, "--at", f"{hour:02d}:{minute:02d}", "--cadence", cadence,
        "--from", after.strftime("%Y-%m-%dT%H:%M:%SZ"), "--count", "3",
    )  # fmt: skip
    zone, wall = zoneinfo.ZoneInfo(name), dt.time(hour, minute)
    expected: list[str] = []
    anchor: dt.date | None = None
    day = wall_at(zone, after).date() - dt.timedelta(days=2)
    while len(expected) < 3:
        if qualifying(cadence, day, anchor):
            slot = brute_force_slot(zone, day, wall)
            if slot > after:
                expected.append(slot.strftime("%Y-%m-%dT%H:%M:%SZ"))
                anchor = anchor or day
        day += dt.timedelta(days=1)
    assert slots == expected
