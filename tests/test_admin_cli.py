"""The instructor commands on the command line, through typer's CliRunner against a temp SQLite file."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import Engine, update
from sqlmodel import Session, select
from typer.testing import CliRunner, Result

from bot.broadcasts import BroadcastProgress
from bot.db import create_db_engine, upgrade
from bot.models import (
    AdminAction,
    Announcement,
    BroadcastStatus,
    Cohort,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Enrollment,
    EnrollmentStatus,
    Learner,
)
from dripcourse.cli import app
from dripcourse.commands.admin import wait_for_broadcast
from dripcourse.commands.admin_runtime import operator_name

ENROLLED = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)


def lesson_file(title: str, quiz: bool = False) -> str:
    quiz_block = "quiz:\n  question: Which?\n  options: [a, b]\n  answer: 2\n" if quiz else ""
    return f"---\ntitle: {title}\n{quiz_block}---\nSome words about {title.lower()}.\n"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "courses" / "habits" / "lessons"
    folder.mkdir(parents=True)
    (folder.parent / "course.toml").write_text('title = "Good habits"\n', encoding="utf-8")
    (folder / "01-one.md").write_text(lesson_file("One"), encoding="utf-8")
    (folder / "02-two.md").write_text(lesson_file("Two", quiz=True), encoding="utf-8")
    (folder / "03-three.md").write_text(lesson_file("Three"), encoding="utf-8")
    (tmp_path / "config.toml").write_text("", encoding="utf-8")
    return tmp_path


@pytest.fixture
def engine(home: Path) -> Iterator[Engine]:
    db_engine = create_db_engine(f"sqlite:///{home / 'cli.db'}")
    upgrade(db_engine)
    yield db_engine
    db_engine.dispose()


@pytest.fixture
def cli(home: Path, engine: Engine) -> CliRunner:
    return CliRunner(
        env={
            "DRIPCOURSE_CONFIG": str(home / "config.toml"),
            "DRIPCOURSE_DATABASE_URL": f"sqlite:///{home / 'cli.db'}",
            "DRIPCOURSE_COURSES_PATH": str(home / "courses"),
        }
    )


def run(cli: CliRunner, *args: str, stdin: str | None = None) -> Result:
    return cli.invoke(app, list(args), input=stdin)


def add_learner(
    engine: Engine,
    user: str,
    name: str,
    status: EnrollmentStatus,
    sent: int,
    *,
    reachable: bool = True,
    done: int = 0,
    finished_after_days: float | None = None,
) -> int:
    """A learner in "habits" who has had the first `sent` lessons; returns the learner id."""
    with Session(engine) as session:
        learner = Learner(
            platform="telegram",
            platform_user_id=user,
            chat_id=user,
            display_name=name,
            time_zone="Europe/Berlin",
            reachable=reachable,
        )
        session.add(learner)
        session.flush()
        enrollment = Enrollment(
            learner_id=learner.id or 0,
            course_slug="habits",
            status=status,
            lessons_released=sent,
            enrolled_at=ENROLLED,
            last_lesson_slug=["one", "two", "three"][sent - 1] if sent else None,
            next_lesson_slug=["one", "two", "three", None][sent],
            finished_at=ENROLLED + dt.timedelta(days=finished_after_days) if finished_after_days else None,
        )
        session.add(enrollment)
        session.flush()
        for index, slug in enumerate(["one", "two", "three"][:sent]):
            at = ENROLLED + dt.timedelta(days=index)
            session.add(
                Delivery(
                    enrollment_id=enrollment.id or 0,
                    learner_id=learner.id or 0,
                    course_slug="habits",
                    lesson_slug=slug,
                    status=DeliveryStatus.SENT,
                    due_at=at,
                    next_attempt_at=at,
                    sent_at=at,
                    done_at=at if index < done else None,
                )
            )
        session.commit()
        return learner.id or 0


def rows(engine: Engine, model: type) -> list:  # type: ignore[type-arg]
    with Session(engine) as session:
        found = list(session.exec(select(model).order_by(model.id)).all())  # type: ignore[attr-defined]
        for row in found:
            session.expunge(row)
        return found


def cell(output: str, label: str) -> str:
    """The value next to `label` in a two-column rich table."""
    match = re.search(rf"│ {re.escape(label)}\s*│\s*(\S+)\s*│", output)
    assert match, f"{label!r} not in\n{output}"
    return match.group(1)


@pytest.fixture
def seeded(engine: Engine) -> dict[str, int]:
    return {
        "ada": add_learner(engine, "1", "Ada", EnrollmentStatus.ACTIVE, 2, done=1),
        "ben": add_learner(engine, "2", "Ben", EnrollmentStatus.FINISHED, 3, done=3, finished_after_days=4),
        "cy": add_learner(engine, "3", "Cy", EnrollmentStatus.PAUSED, 1, reachable=False),
        "dee": add_learner(engine, "4", "Dee", EnrollmentStatus.FINISHED, 3, finished_after_days=10),
    }


def test_stats_prints_the_numbers_of_the_database(cli: CliRunner, seeded: dict[str, int]) -> None:
    result = run(cli, "stats", "habits")
    assert result.exit_code == 0, result.output
    out = result.output
    expected = {"enrolled": "4", "active": "1", "paused": "1", "finished": "2", "unreachable": "1"}
    assert {label: cell(out, label) for label in expected} == expected
    assert cell(out, "median days to finish") == "7.0"
    # per lesson: delivered to 4, 3 and 2 learners; marked done by 2 (Ada, Ben), 1 (Ben) and 1 (Ben).
    lines = [line for line in out.splitlines() if re.match(r"│ [123] │", line)]
    numbers = [re.findall(r"│\s+(\d+)\s+", line)[1:3] for line in lines]
    assert numbers == [["4", "2"], ["3", "1"], ["2", "1"]]


def test_learners_learner_and_an_action_are_audited_as_the_operator(
    cli: CliRunner, engine: Engine, seeded: dict[str, int]
) -> None:
    result = run(cli, "learners", "habits", "finished")
    assert result.exit_code == 0, result.output
    assert "2 in all" in result.output and "Ben" in result.output and "Dee" in result.output
    assert "Ada" not in result.output
    result = run(cli, "learner", str(seeded["ada"]))
    assert result.exit_code == 0, result.output
    assert "Europe/Berlin" in result.output and "history" in result.output
    result = run(cli, "learner", str(seeded["ada"]), "pause")
    assert result.exit_code == 0, result.output
    assert "Paused learner" in result.output
    [ada] = [row for row in rows(engine, Enrollment) if row.learner_id == seeded["ada"]]
    assert ada.status is EnrollmentStatus.PAUSED
    result = run(cli, "learner", str(seeded["ada"]), "move", "nowhere")
    assert result.exit_code == 1
    assert "habits has no lesson “nowhere”" in result.output
    audit = rows(engine, AdminAction)
    assert [(row.platform, row.user_id, row.action, row.outcome.split(":")[0]) for row in audit] == [
        ("cli", operator_name(), "learners", "ok"),
        ("cli", operator_name(), "learner", "ok"),
        ("cli", operator_name(), "learner.pause", "ok"),
        ("cli", operator_name(), "learner.move", "failed"),
    ]


def test_broadcast_asks_first_then_queues_once_per_reachable_learner(
    cli: CliRunner, engine: Engine, seeded: dict[str, int]
) -> None:
    result = run(cli, "broadcast", "habits", "Office hours at **17:00**", stdin="n\n")
    assert result.exit_code == 0, result.output
    assert "1 learner(s) will get it; 1 cannot be reached, now." in result.output
    assert "cancelled; nothing was sent" in result.output
    assert [row for row in rows(engine, Delivery) if row.kind is DeliveryKind.BROADCAST] == []

    result = run(cli, "broadcast", "habits", "Office hours at **17:00**", stdin="y\n")
    assert result.exit_code == 0, result.output
    [delivery] = [row for row in rows(engine, Delivery) if row.kind is DeliveryKind.BROADCAST]
    assert (delivery.learner_id, delivery.broadcast_id) == (seeded["ada"], 2)

    result = run(cli, "broadcast", "status", "2", "--wait", "--timeout", "0")
    assert result.exit_code == 1
    assert "1 delivery(ies) still waiting" in result.output

    with Session(engine) as session:
        session.execute(update(Delivery).where(Delivery.broadcast_id == 2).values(status=DeliveryStatus.SENT))
        session.commit()
    result = run(cli, "broadcast", "status", "2", "--wait")
    assert result.exit_code == 0, result.output
    assert "1/1" in result.output
    assert (cell(result.output, "sent"), cell(result.output, "unreachable")) == ("1", "1")


def test_broadcast_at_local_time_with_yes_needs_no_prompt(
    cli: CliRunner, engine: Engine, seeded: dict[str, int]
) -> None:
    result = run(cli, "broadcast", "habits", "Hello", "--at-local-time", "--yes")
    assert result.exit_code == 0, result.output
    assert "each at their own next delivery time" in result.output
    assert len([row for row in rows(engine, Delivery) if row.broadcast_id == 1]) == 1


async def test_waiting_for_a_broadcast_follows_the_sender_with_a_progress_bar() -> None:
    states = iter([(3, 0), (3, 2), (3, 3)])
    polls: list[float] = []

    def progress(total: int, settled: int) -> BroadcastProgress:
        return BroadcastProgress(
            7, "habits", None, BroadcastStatus.QUEUED, False, total, settled, total - settled, 0, 0, 0, 0, 0
        )

    async def read() -> BroadcastProgress:
        return progress(*next(states))

    async def sleep(seconds: float) -> None:
        polls.append(seconds)

    console = Console(record=True, width=80)
    final = await wait_for_broadcast(
        read, limit_seconds=60, console=console, sleep=sleep, monotonic=lambda: 0.0
    )
    assert (final.sent, final.waiting) == (3, 0)
    assert polls == [0.5, 0.5]
    assert "3/3" in console.export_text()
    assert asyncio.iscoroutinefunction(wait_for_broadcast)


def test_announce_stores_the_announcement_for_the_running_bot(cli: CliRunner, engine: Engine) -> None:
    result = run(cli, "announce", "2099-05-01 07:00", "habits", "Live session on Friday")
    assert result.exit_code == 0, result.output
    [stored] = rows(engine, Announcement)
    assert (stored.course_slug, stored.text, stored.run_at, stored.created_by) == (
        "habits",
        "Live session on Friday",
        dt.datetime(2099, 5, 1, 7, 0, tzinfo=dt.UTC),
        f"cli:{operator_name()}",
    )
    result = run(cli, "announce", "2001-05-01T07:00+02:00", "habits", "Too late")
    assert result.exit_code == 1
    assert "must be in the future" in result.output
    result = run(cli, "announce", "tomorrow", "habits", "Unreadable")
    assert result.exit_code == 2
    assert len(rows(engine, Announcement)) == 1


def test_export_writes_two_csv_files(cli: CliRunner, home: Path, seeded: dict[str, int]) -> None:
    result = run(cli, "export", "habits", "--out", str(home / "out"))
    assert result.exit_code == 0, result.output
    [enrollments] = list((home / "out").glob("enrollments-habits-*.csv"))
    [answers] = list((home / "out").glob("quiz-answers-habits-*.csv"))
    lines = enrollments.read_text(encoding="utf-8-sig").splitlines()
    assert len(lines) == 1 + 4
    assert lines[1].startswith(
        f"1,{seeded['ada']},telegram,1,Ada,habits,,Europe/Berlin,daily,08:00,active,yes,2,3,"
    )
    assert answers.read_text(encoding="utf-8-sig").count("\n") == 1
    assert f"{enrollments}: 4 row(s)" in result.output


def test_reload_reports_broken_files_by_line_and_records_the_request(
    cli: CliRunner, engine: Engine, home: Path
) -> None:
    broken = home / "courses" / "habits" / "lessons" / "02-two.md"
    broken.write_text("---\ntitle: Two\ntitel: oops\n---\nText.\n", encoding="utf-8")
    result = run(cli, "reload")
    assert result.exit_code == 1
    assert f"error: {broken}:3: unknown key 'titel'" in result.output
    assert "keep their running version" in result.output
    [request] = rows(engine, AdminAction)
    assert (request.action, request.outcome) == ("reload", "requested; the files have 1 error(s)")


def test_cohort_create_and_list(cli: CliRunner, engine: Engine) -> None:
    result = run(cli, "cohort", "create", "habits", "autumn", "--start", "2026-10-01", "--pace", "weekdays")
    assert result.exit_code == 0, result.output
    [cohort] = rows(engine, Cohort)
    assert (cohort.start_date, cohort.cadence) == (dt.date(2026, 10, 1), "weekdays")
    assert f"Invite: /start {cohort.code}" in result.output
    result = run(cli, "cohort", "list")
    assert result.exit_code == 0 and "autumn" in result.output
    assert run(cli, "cohort", "create", "habits", "x", "--pace", "sometimes").exit_code == 1


def test_audit_shows_the_newest_first_and_honours_the_limit(cli: CliRunner, seeded: dict[str, int]) -> None:
    run(cli, "stats")
    run(cli, "learners")
    result = run(cli, "audit", "--limit", "2")
    assert result.exit_code == 0, result.output
    ids = [int(match) for match in re.findall(r"^│ (\d+)\s+│", result.output, flags=re.MULTILINE)]
    assert ids == [2, 1]
    assert "learners" in result.output.split("│ 1 ")[0]
