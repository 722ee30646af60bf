"""Instructor commands: `dripcourse stats|learners|learner|broadcast|announce|export|reload|cohort|audit`.

The operator at the command line is trusted (they hold the database) and audited as platform "cli"
under their OS user name. Changes reach a running bot through the database: broadcasts through the
outbox, announcements and reloads through the rows it looks for every few seconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bot import broadcasts
from bot.admin import AdminError, parse_when
from bot.broadcasts import BroadcastProgress
from bot.learner_admin import LEARNER_ACTIONS
from dripcourse.commands.admin_runtime import admin_runtime
from dripcourse.commands.admin_tables import (
    audit_table,
    cohorts_table,
    progress_table,
    record_tables,
    roster_table,
    stats_tables,
)
from dripcourse.commands.common import CONFIG_OPTION

POLL_SECONDS = 0.5
REQUEST_PICKUP = "running bots pick this up within about 15 seconds"

cohort_app = typer.Typer(
    help="Cohorts: groups that join a course through one invite code.", no_args_is_help=True
)


def _console() -> Console:
    return Console(highlight=False)


def stats_command(
    course: str | None = typer.Argument(None, help="A course slug; every course when left out."),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Learners enrolled, active, paused, finished, unreachable; per lesson delivered, done, quiz accuracy."""
    with admin_runtime(config) as runtime:
        all_stats = runtime.run(lambda: runtime.tools.stats(runtime.actor, course))
    console = _console()
    if not all_stats:
        console.print("No course is loaded.")
    for stats in all_stats:
        for table in stats_tables(stats):
            console.print(table)


def learners_command(
    words: list[str] | None = typer.Argument(
        None, help="[course] [active|paused|finished|onboarding|stopped|unreachable|name fragment]"
    ),
    page: int = typer.Option(1, "--page", min=1, help="20 learners a page."),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """List learners, 20 a page, by course and status or a name fragment."""
    terms = list(words or [])
    with admin_runtime(config) as runtime:
        course = None
        if terms and runtime.catalog.get(terms[0].lower()) is not None:
            course = terms.pop(0).lower()
        found = runtime.run(lambda: runtime.tools.learners(runtime.actor, course, " ".join(terms), page))
    _console().print(roster_table(found))


def learner_command(
    learner_id: int = typer.Argument(..., help="The learner's id (see `dripcourse learners`)."),
    action: str | None = typer.Argument(None, help=" | ".join(LEARNER_ACTIONS)),
    lesson: str | None = typer.Argument(None, help="The lesson slug for `move`."),
    course: str | None = typer.Option(None, "--course", help="Which course, for a learner taking several."),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Show one learner (settings, history, quiz answers), or pause|resume|move|unlock|reset|remove them."""
    with admin_runtime(config) as runtime:
        if action is None:
            record = runtime.run(lambda: runtime.tools.learner(runtime.actor, learner_id))
            console = _console()
            for table in record_tables(record):
                console.print(table)
            return
        done = runtime.run(
            lambda: runtime.tools.learner_action(
                runtime.actor, learner_id, action.lower(), course_slug=course, lesson_slug=lesson
            )
        )
    typer.echo(done)


def broadcast_command(
    target: str = typer.Argument(..., help="A course slug, cohort:<name>, or `status`/`cancel` and an id."),
    text: str = typer.Argument(..., help="The message (Markdown), or the broadcast id after status/cancel."),
    at_local_time: bool = typer.Option(
        False, "--at-local-time", help="Deliver at each learner's own next delivery time instead of now."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Send without asking for confirmation."),
    wait: bool = typer.Option(False, "--wait", help="Show a progress bar until the sender has delivered it."),
    timeout: float = typer.Option(600.0, "--timeout", min=0.0, help="Seconds --wait waits at most."),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Message every reachable learner of a course or cohort through the outbox, after a preview."""
    console = _console()
    with admin_runtime(config) as runtime:
        tools, actor = runtime.tools, runtime.actor
        if target.lower() in ("status", "cancel") and text.strip().isdigit():
            broadcast_id = int(text)
            if target.lower() == "cancel":
                progress = runtime.run(lambda: tools.cancel_broadcast(actor, broadcast_id))
            else:
                progress = runtime.run(lambda: tools.broadcast_status(actor, broadcast_id))
        else:
            draft = runtime.run(lambda: tools.prepare_broadcast(actor, target, text))
            audience = draft.course_title + (f", cohort {draft.cohort_name}" if draft.cohort_name else "")
            typer.echo(f"Broadcast #{draft.broadcast_id} to {audience}:")
            typer.echo(draft.text)
            typer.echo(
                f"{draft.reachable} learner(s) will get it"
                + (f"; {draft.unreachable} cannot be reached" if draft.unreachable else "")
                + (", each at their own next delivery time." if at_local_time else ", now.")
            )
            if not yes and not typer.confirm("Send it?", default=False):
                runtime.run(lambda: tools.cancel_broadcast(actor, draft.broadcast_id))
                typer.echo(f"Broadcast #{draft.broadcast_id} cancelled; nothing was sent.")
                return
            progress, _ = runtime.run(
                lambda: tools.confirm_broadcast(actor, draft.broadcast_id, at_local_time=at_local_time)
            )
            typer.echo(
                f"Broadcast #{progress.broadcast_id} queued: {progress.total} delivery(ies); "
                f"the running bot's sender sends them. `dripcourse broadcast status {progress.broadcast_id}`"
            )
        if wait and progress.status.value == "queued":
            progress = runtime.run(
                lambda: wait_for_broadcast(
                    lambda: runtime.database.run(
                        lambda session: broadcasts.broadcast_progress(
                            session, progress.broadcast_id, runtime.clock.now()
                        )
                    ),
                    limit_seconds=timeout,
                    console=console,
                )
            )
    console.print(progress_table(progress))
    if wait and progress.waiting:
        typer.echo(
            f"dripcourse: {progress.waiting} delivery(ies) still waiting after {timeout:g} s", err=True
        )
        raise typer.Exit(1)


async def wait_for_broadcast(
    read: Callable[[], Awaitable[BroadcastProgress]],
    *,
    limit_seconds: float,
    console: Console,
    poll_seconds: float = POLL_SECONDS,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> BroadcastProgress:
    """Poll the broadcast's progress with a progress bar until nothing due now is left or time runs out.

    Deliveries scheduled for learners' own times are not waited for.
    """
    deadline = monotonic() + limit_seconds
    progress = await read()
    columns = (
        TextColumn("broadcast #{task.fields[number]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(
            "sending", total=progress.total - progress.scheduled, number=progress.broadcast_id
        )
        while True:
            due_now = progress.total - progress.scheduled
            bar.update(task, total=due_now, completed=due_now - progress.waiting)
            if progress.waiting == 0 or monotonic() >= deadline:
                return progress
            await sleep(poll_seconds)
            progress = await read()


def announce_command(
    when: str = typer.Argument(
        ..., help='"2026-05-01 07:00" (UTC) or ISO with offset, 2026-05-01T09:00+02:00'
    ),
    course: str = typer.Argument(..., help="The course slug."),
    text: str = typer.Argument(..., help="The announcement (Markdown)."),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Schedule a dated announcement to a course; it survives restarts."""
    with admin_runtime(config) as runtime:
        try:
            run_at, rest = parse_when(when)
        except AdminError as error:
            typer.echo(f"dripcourse: {error}", err=True)
            raise typer.Exit(2) from None
        if rest.strip():
            typer.echo(f'dripcourse: quote the time: "{when}"', err=True)
            raise typer.Exit(2)
        announcement_id = runtime.run(
            lambda: runtime.tools.announce(runtime.actor, course.lower(), text, run_at)
        )
    typer.echo(
        f"Announcement #{announcement_id} to {course.lower()} at {run_at:%Y-%m-%d %H:%M} UTC stored; "
        f"{REQUEST_PICKUP}."
    )


def export_command(
    course: str | None = typer.Argument(None, help="A course slug; every course when left out."),
    out: Path = typer.Option(
        Path("."), "--out", help="Folder to write the two CSV files to.", file_okay=False
    ),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Write enrollments and quiz answers as two CSV files (spreadsheet-safe)."""
    console = _console()
    columns = (TextColumn("exporting"), BarColumn(), MofNCompleteColumn())
    with admin_runtime(config) as runtime, Progress(*columns, console=console) as bar:
        task = bar.add_task("export", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, total=total, completed=done)

        export = runtime.run(lambda: runtime.tools.export(runtime.actor, course, progress=advance))
    out.mkdir(parents=True, exist_ok=True)
    for csv_file in (export.enrollments, export.quiz_answers):
        path = out / csv_file.filename
        path.write_bytes(csv_file.content)
        typer.echo(f"{path}: {csv_file.rows} row(s)")


def reload_command(config: Path | None = CONFIG_OPTION) -> None:
    """Check the course files and ask running bots to reload them; an invalid course keeps its old version."""
    console = _console()
    with console.status("reading the course files"), admin_runtime(config) as runtime:
        problems = runtime.problems
        errors = sum(problem.is_error for problem in problems)
        runtime.run(lambda: runtime.tools.request_reload(runtime.actor, errors))
        courses = [course.slug for course in runtime.catalog.courses()]
    for problem in problems:
        typer.echo(f"{problem.severity}: {problem}")
    typer.echo(f"valid courses: {', '.join(courses) or 'none'}")
    typer.echo(
        f"Reload requested; {REQUEST_PICKUP}."
        + (" Courses with errors keep their running version." if errors else "")
    )
    if errors:
        raise typer.Exit(1)


@cohort_app.command("create")
def cohort_create_command(
    course: str = typer.Argument(..., help="The course slug."),
    name: str = typer.Argument(..., help="The cohort's name, e.g. spring-2026."),
    start: str | None = typer.Option(None, "--start", help="First day, YYYY-MM-DD (learner's local date)."),
    pace: str | None = typer.Option(
        None, "--pace", help="Default cadence: daily, weekdays, mon,wed,fri, every-2-days."
    ),
    at: str | None = typer.Option(None, "--at", help="Default local time of day, e.g. 08:00."),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Create a cohort and print its invite."""
    try:
        start_date = dt.date.fromisoformat(start) if start else None
    except ValueError:
        typer.echo(f"dripcourse: --start {start!r} is not a date (YYYY-MM-DD)", err=True)
        raise typer.Exit(2) from None
    with admin_runtime(config) as runtime:
        cohort = runtime.run(
            lambda: runtime.tools.create_cohort(
                runtime.actor, course.lower(), name, start_date=start_date, cadence=pace, local_time=at
            )
        )
    typer.echo(f"Cohort {cohort.name} of {cohort.course_slug} created.")
    typer.echo(f"Invite: /start {cohort.code}")
    typer.echo(f"Telegram link: https://t.me/<bot username>?start={cohort.code}")


@cohort_app.command("list")
def cohort_list_command(
    course: str | None = typer.Argument(None, help="Only this course's cohorts."),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """List cohorts with their invites and sizes."""
    with admin_runtime(config) as runtime:
        found = runtime.run(lambda: runtime.tools.cohorts(runtime.actor, course.lower() if course else None))
    _console().print(cohorts_table(found))


def audit_command(
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=1000, help="How many rows."),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """The audit trail of instructor actions, newest first."""
    with admin_runtime(config) as runtime:
        rows = runtime.run(lambda: runtime.tools.audit_log(runtime.actor, limit))
    _console().print(audit_table(rows))


def register(app: typer.Typer) -> None:
    """Add the instructor commands to the `dripcourse` command line."""
    app.command("stats")(stats_command)
    app.command("learners")(learners_command)
    app.command("learner")(learner_command)
    app.command("broadcast")(broadcast_command)
    app.command("announce")(announce_command)
    app.command("export")(export_command)
    app.command("reload")(reload_command)
    app.add_typer(cohort_app, name="cohort")
    app.command("audit")(audit_command)
