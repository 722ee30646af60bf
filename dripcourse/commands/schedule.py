"""`dripcourse schedule`: the next release slots for a time zone, wall time and cadence."""

from __future__ import annotations

import datetime as dt
import json

import typer
from rich.console import Console
from rich.table import Table

from bot.cadence import CadenceError, TimeOfDayError, format_time_of_day, parse_cadence, parse_time_of_day
from bot.clock import ensure_utc
from bot.pacing import upcoming_slots
from bot.timezones import ZoneChoice, ZoneNotFound, load_zone, resolve_zone, utc_offset_label
from bot.zone_index import zone_index

MAX_COUNT = 1000
UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class _BadOption(ValueError):
    """An option the command cannot use; the message is the one line shown."""


def _parse_from(text: str | None) -> dt.datetime:
    if text is None or not text.strip():
        return dt.datetime.now(dt.UTC).replace(microsecond=0)
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise _BadOption(
            f"--from {text[:40]!r} is not an ISO date and time (for example 2026-03-08T00:00:00Z)"
        ) from None
    return ensure_utc(moment)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"dripcourse: {message}", err=True)
    return typer.Exit(2)


def _zone(typed: str) -> ZoneChoice:
    """An exact IANA name means exactly that zone here (an operator's tool); anything else is searched."""
    if typed in zone_index().names:
        return ZoneChoice(typed, "exact", typed, None)
    return resolve_zone(typed)


def schedule_command(
    tz: str = typer.Option(..., "--tz", help="Time zone: Europe/Berlin, a city such as Munich, or +05:30."),
    at: str = typer.Option("08:00", "--at", help="Local time of day: 08:00, 8am, 20h30."),
    cadence: str = typer.Option("daily", "--cadence", help="daily, weekdays, mon,wed,fri or every-N-days."),
    from_: str | None = typer.Option(
        None, "--from", help="Show slots strictly after this instant (ISO, UTC by default; default now)."
    ),
    count: int = typer.Option(10, "--count", "-n", help=f"How many slots to show (1-{MAX_COUNT})."),
    json_output: bool = typer.Option(False, "--json", help="Print a JSON array of UTC instants."),
) -> None:
    """Show the next release slots a learner with these settings would get."""
    try:
        choice = _zone(tz)
        zone = load_zone(choice.name)
        wall = parse_time_of_day(at)
        pace = parse_cadence(cadence)
        after = _parse_from(from_)
        if not 1 <= count <= MAX_COUNT:
            raise _BadOption(f"--count must be 1-{MAX_COUNT}, got {count}")
    except ZoneNotFound as error:
        raise _fail(f"bad --tz: {error}") from None
    except TimeOfDayError as error:
        raise _fail(f"bad --at: {error}") from None
    except CadenceError as error:
        raise _fail(f"bad --cadence: {error}") from None
    except _BadOption as error:
        raise _fail(str(error)) from None
    slots = upcoming_slots(zone, wall, pace, after, count)
    if json_output:
        typer.echo(json.dumps([slot.strftime(UTC_FORMAT) for slot in slots]))
        return
    if choice.warning:
        typer.echo(choice.warning, err=True)
    table = Table(
        title=f"{choice.label} · {format_time_of_day(wall)} · {pace}",
        caption=f"slots strictly after {after.strftime(UTC_FORMAT)}",
    )
    table.add_column("#", justify="right")
    table.add_column("UTC")
    table.add_column("Local")
    table.add_column("Offset")
    for number, slot in enumerate(slots, start=1):
        local = slot.astimezone(zone)
        table.add_row(
            str(number),
            slot.strftime(UTC_FORMAT),
            local.strftime("%a %Y-%m-%d %H:%M"),
            utc_offset_label(zone, slot),
        )
    Console().print(table, highlight=False)
