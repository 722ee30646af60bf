"""Prometheus metrics on a private registry, served over HTTP, and the `dripcourse status` report."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from bot.models import Delivery, DeliveryStatus, Enrollment, EnrollmentStatus, Learner
from dripcourse.cli import app
from dripcourse.commands.status import collect_status, percentile
from scheduler.metrics import create_metrics, start_metrics_server

NOW = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)


def test_each_metrics_object_has_its_own_registry() -> None:
    first, second = create_metrics(), create_metrics()
    first.sends.labels(platform="telegram", outcome="sent").inc()
    first.rate_limited.labels(platform="telegram").inc(2)
    first.lateness.labels(platform="telegram").observe(3.0)
    first.queue_depth.set(7)
    first.releases.inc(5)
    assert (
        first.registry.get_sample_value("dripcourse_sends_total", {"platform": "telegram", "outcome": "sent"})
        == 1
    )
    assert first.registry.get_sample_value("dripcourse_rate_limited_total", {"platform": "telegram"}) == 2
    assert first.registry.get_sample_value("dripcourse_lateness_seconds_count", {"platform": "telegram"}) == 1
    assert (
        first.registry.get_sample_value(
            "dripcourse_lateness_seconds_bucket", {"platform": "telegram", "le": "5.0"}
        )
        == 1
    )
    assert first.registry.get_sample_value("dripcourse_queue_depth") == 7
    assert first.registry.get_sample_value("dripcourse_releases_total") == 5
    assert second.registry.get_sample_value("dripcourse_releases_total") == 0


def test_the_metrics_server_serves_the_registry() -> None:
    metrics = create_metrics()
    metrics.queue_depth.set(42)
    server = start_metrics_server("127.0.0.1", 0, metrics.registry)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as response:
            body = response.read().decode()
    finally:
        server.close()
    assert "dripcourse_queue_depth 42.0" in body


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.9) == 90
    assert percentile(values, 0.99) == 99
    assert percentile([], 0.5) is None
    assert percentile([4.0], 0.99) == 4


def seed_status(engine: Engine) -> None:
    """Three learners (one unreachable), one enrollment due, and deliveries in every state."""
    with Session(engine) as session:
        learners = [Learner(platform="telegram", platform_user_id=str(n), chat_id=str(n)) for n in range(3)]
        learners[2].reachable = False
        session.add_all(learners)
        session.flush()
        enrollments = [
            Enrollment(
                learner_id=learner.id or 0,
                course_slug="course",
                status=EnrollmentStatus.ACTIVE,
                next_release_at=NOW + dt.timedelta(minutes=offset),
            )
            for learner, offset in zip(learners, (-5, 60, -1), strict=True)
        ]
        enrollments[2].status = EnrollmentStatus.PAUSED  # due in the past but paused: not "due now"
        session.add_all(enrollments)
        session.flush()
        states = [
            (DeliveryStatus.PENDING, None),
            (DeliveryStatus.SENDING, None),
            (DeliveryStatus.FAILED, None),
            (DeliveryStatus.AMBIGUOUS, None),
            *[(DeliveryStatus.SENT, dt.timedelta(seconds=seconds)) for seconds in range(1, 11)],
            (DeliveryStatus.SENT, dt.timedelta(days=3)),  # sent long ago: outside the 24 h window
        ]
        for number, (status, late) in enumerate(states):
            recent = late is None or late < dt.timedelta(days=1)
            due = NOW - dt.timedelta(hours=1) if recent else NOW - dt.timedelta(days=5)
            session.add(
                Delivery(
                    enrollment_id=enrollments[0].id or 0,
                    learner_id=learners[0].id or 0,
                    course_slug="course",
                    lesson_slug=f"lesson-{number}",
                    status=status,
                    due_at=due,
                    next_attempt_at=due,
                    sent_at=(due + late) if late is not None else None,
                )
            )
        session.commit()


def test_status_counts_everything_an_operator_asks_about(sqlite_engine: Engine) -> None:
    seed_status(sqlite_engine)
    report = collect_status(sqlite_engine, NOW)
    assert report.due_now == 1
    assert (report.pending, report.in_flight, report.failed, report.ambiguous) == (1, 1, 1, 1)
    assert report.unreachable_learners == 1
    assert report.sent_24h == 10
    assert (report.late_p50_s, report.late_p90_s, report.late_p99_s) == (5.0, 9.0, 10.0)


def test_status_command_prints_json_and_a_table(tmp_path: Path) -> None:
    from bot.db import create_db_engine, upgrade

    database = tmp_path / "status.db"
    engine = create_db_engine(f"sqlite:///{database}")
    upgrade(engine)
    seed_status(engine)
    engine.dispose()
    config = tmp_path / "config.toml"
    config.write_text("")
    environment = {"DRIPCOURSE_DATABASE_URL": f"sqlite:///{database}"}
    runner = CliRunner()
    as_json = runner.invoke(app, ["status", "--config", str(config), "--json"], env=environment)
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.stdout)
    assert report["pending"] == 1
    assert report["unreachable_learners"] == 1
    assert set(report) >= {
        "due_now",
        "in_flight",
        "failed",
        "ambiguous",
        "late_p50_s",
        "late_p90_s",
        "late_p99_s",
    }
    as_table = runner.invoke(app, ["status", "--config", str(config)], env=environment)
    assert as_table.exit_code == 0, as_table.output
    assert "pending deliveries" in as_table.stdout
    assert "lateness p99" in as_table.stdout
