"""`dripcourse status`: the delivery engine's health, read straight from the database."""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from bot.clock import SystemClock, ensure_utc
from bot.models import Delivery, DeliveryStatus, Enrollment, EnrollmentStatus, Learner
from dripcourse.commands.common import CONFIG_OPTION, database_or_exit, settings_or_exit

LATENESS_WINDOW = dt.timedelta(hours=24)


@dataclass(frozen=True)
class DeliveryStatusReport:
    at: str
    due_now: int
    """Active enrollments whose next release time has passed (the planner has not released them yet)."""
    pending: int
    in_flight: int
    failed: int
    ambiguous: int
    unreachable_learners: int
    sent_24h: int
    late_p50_s: float | None
    late_p90_s: float | None
    late_p99_s: float | None


def percentile(ordered: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of an ascending list; None when it is empty."""
    if not ordered:
        return None
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def collect_status(engine: Engine, now: dt.datetime) -> DeliveryStatusReport:
    """Counts and lateness percentiles (sent_at - due_at, deliveries sent in the last 24 h) at `now`."""
    with Session(engine) as session:
        due_now = session.execute(
            select(func.count())
            .select_from(Enrollment)
            .where(
                col(Enrollment.next_release_at) <= now,
                col(Enrollment.status) == EnrollmentStatus.ACTIVE,
            )
        ).scalar_one()
        by_status = dict(
            session.execute(select(col(Delivery.status), func.count()).group_by(col(Delivery.status))).all()
        )
        unreachable = session.execute(
            select(func.count()).select_from(Learner).where(col(Learner.reachable).is_(False))
        ).scalar_one()
        rows = session.execute(
            select(col(Delivery.due_at), col(Delivery.sent_at)).where(
                col(Delivery.status) == DeliveryStatus.SENT,
                col(Delivery.sent_at) >= now - LATENESS_WINDOW,
            )
        ).all()
    lateness = sorted(
        max(0.0, (ensure_utc(sent_at) - ensure_utc(due_at)).total_seconds()) for due_at, sent_at in rows
    )

    def count(status: DeliveryStatus) -> int:
        return int(by_status.get(status, 0))

    return DeliveryStatusReport(
        at=now.isoformat(timespec="seconds"),
        due_now=int(due_now),
        pending=count(DeliveryStatus.PENDING),
        in_flight=count(DeliveryStatus.SENDING),
        failed=count(DeliveryStatus.FAILED),
        ambiguous=count(DeliveryStatus.AMBIGUOUS),
        unreachable_learners=int(unreachable),
        sent_24h=len(lateness),
        late_p50_s=percentile(lateness, 0.50),
        late_p90_s=percentile(lateness, 0.90),
        late_p99_s=percentile(lateness, 0.99),
    )


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def render_table(report: DeliveryStatusReport) -> Table:
    table = Table(title=f"dripcourse delivery status at {report.at}", show_header=True)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("due now (not yet released)", str(report.due_now))
    table.add_row("pending deliveries", str(report.pending))
    table.add_row("in flight", str(report.in_flight))
    table.add_row("failed", str(report.failed))
    table.add_row("ambiguous", str(report.ambiguous))
    table.add_row("unreachable learners", str(report.unreachable_learners))
    table.add_row("sent in the last 24 h", str(report.sent_24h))
    table.add_row("lateness p50", _seconds(report.late_p50_s))
    table.add_row("lateness p90", _seconds(report.late_p90_s))
    table.add_row("lateness p99", _seconds(report.late_p99_s))
    return table


def status_command(
    config: Path | None = CONFIG_OPTION,
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
) -> None:
    """Show the outbox: due, pending, in flight, failed, ambiguous, unreachable learners, lateness."""
    settings = settings_or_exit(config)
    with database_or_exit(settings) as engine:
        now = SystemClock(dt.timedelta(seconds=settings.scheduler.time_offset_seconds)).now()
        report = collect_status(engine, now)
    if json_output:
        typer.echo(json.dumps(asdict(report)))
    else:
        Console().print(render_table(report))
