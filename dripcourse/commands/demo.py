"""`dripcourse demo`: three simulated learners around the world take the sample course at speed.

It runs the real core, database, planner and sender; only time is simulated, jumping from one due
release to the next, and each arrival is printed in the learner's own local time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

import typer
from pydantic import SecretStr
from sqlmodel import Session, col, select

from adapters.console import ConsoleAdapter, console_sender
from bot.actions import encode
from bot.clock import ManualClock
from bot.followups import learner_zone
from bot.logs import configure_logging
from bot.models import Delivery, DeliveryStatus, Enrollment, EnrollmentStatus, Learner
from bot.ports import ButtonPressed
from bot.render import quiz_action
from bot.settings import DatabaseSettings, Settings
from dripcourse.app import App
from dripcourse.commands.common import CONFIG_OPTION, settings_or_exit

DEMO_COURSE = "async-learning"
DEMO_START = dt.datetime(2026, 3, 5, 12, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class DemoLearner:
    name: str
    zone: str
    local_time: str
    cadence: str


LEARNERS = (
    DemoLearner("Aiko", "Asia/Tokyo", "07:30", "daily"),
    DemoLearner("Lena", "Europe/Berlin", "08:00", "weekdays"),
    DemoLearner("Sam", "America/New_York", "06:45", "mon,wed,fri"),
)


def demo_command(
    course: str = typer.Option(DEMO_COURSE, "--course", help="The course the learners take."),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Simulate learners in Tokyo, Berlin and New York taking a course; prints each lesson's arrival."""
    settings = settings_or_exit(config)
    configure_logging("WARNING", json_lines=False, secrets=settings.secret_values())
    with tempfile.TemporaryDirectory(prefix="dripcourse-demo-") as folder:
        database = DatabaseSettings(url=SecretStr(f"sqlite:///{Path(folder) / 'demo.db'}"))
        finished = asyncio.run(run_demo(settings.model_copy(update={"database": database}), course))
    if not finished:
        raise typer.Exit(1)


async def run_demo(settings: Settings, course_slug: str, *, max_steps: int = 500) -> bool:
    """Run the simulation; True when every learner finished the course."""
    clock = ManualClock(DEMO_START)
    console = ConsoleAdapter(io.StringIO())
    app = await App.open(
        settings,
        clock=clock,
        adapters={"console": console},
        background=False,
        announce=lambda message: typer.echo(f"· {message}"),
    )
    await app.start()
    try:
        course = app.catalog.get(course_slug)
        if course is None:
            typer.echo(f"no course {course_slug!r} under {settings.courses.path}", err=True)
            return False
        start = f"{DEMO_START:%a %d %b %Y %H:%M} UTC"
        typer.echo(f"{course.title}: {len(course.lessons)} lessons, simulated from {start}\n")
        for learner in LEARNERS:
            sender = console_sender(learner.name.lower(), learner.name)
            for line in (f"/start {course_slug}", learner.zone, learner.local_time, learner.cadence):
                await console.type_line(sender, line)
            typer.echo(
                f"{learner.name:<5} enrolled: {learner.cadence} at {learner.local_time} in {learner.zone}"
            )
        typer.echo("")
        last_seen = 0
        for _ in range(max_steps):
            await app.heartbeat.tick()
            while await app.sender.drain_once():
                pass
            last_seen = await _report_and_react(app, console, last_seen)
            upcoming = await app.heartbeat.earliest_due()
            if upcoming is None:
                break
            clock.at = max(upcoming, clock.at)
        return await _summary(app, course_slug)
    finally:
        await app.stop()


async def _report_and_react(app: App, console: ConsoleAdapter, last_seen: int) -> int:
    """Print deliveries sent since `last_seen`; each learner answers the quiz and presses Done."""

    def fetch(session: Session) -> list[tuple[Delivery, Learner]]:
        rows = session.exec(
            select(Delivery, Learner)
            .join(Learner, col(Learner.id) == Delivery.learner_id)
            .where(Delivery.status == DeliveryStatus.SENT, col(Delivery.id) > last_seen)
            .order_by(col(Delivery.sent_at), col(Delivery.id))
        ).all()
        return [(delivery, learner) for delivery, learner in rows]

    for delivery, learner in await app.database.run(fetch):
        last_seen = max(last_seen, delivery.id or 0)
        course = app.catalog.get(delivery.course_slug)
        lesson = course.lesson(delivery.lesson_slug or "") if course else None
        if course is None or lesson is None or delivery.sent_at is None:
            continue
        local = delivery.sent_at.astimezone(learner_zone(learner))
        number = (course.index_of(lesson.slug) or 0) + 1
        typer.echo(
            f"{local:%a %d %b %H:%M} {local.tzname() or '':<5} {learner.display_name:<5} "
            f"({learner.time_zone}) <- lesson {number}/{len(course.lessons)}: {lesson.title}"
        )
        sender = console_sender(learner.platform_user_id, learner.display_name)
        if lesson.quiz is not None:
            await console.event(
                ButtonPressed(sender, quiz_action(delivery.id or 0, lesson.quiz.correct_index))
            )
        await console.event(ButtonPressed(sender, encode("done", delivery.id or 0)))
    return last_seen


async def _summary(app: App, course_slug: str) -> bool:
    def count(session: Session) -> tuple[int, int]:
        enrollments = session.exec(select(Enrollment).where(Enrollment.course_slug == course_slug)).all()
        done = sum(1 for enrollment in enrollments if enrollment.status is EnrollmentStatus.FINISHED)
        return done, len(enrollments)

    finished, total = await app.database.run(count)
    typer.echo(f"\n{finished} of {total} learners finished the course, each on their own clock.")
    return finished == total == len(LEARNERS)
