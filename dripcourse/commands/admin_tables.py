"""Rich tables for the instructor commands."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from rich.table import Table

from bot.admin import CohortInfo
from bot.broadcasts import BroadcastProgress
from bot.clock import ensure_utc
from bot.models import AdminAction
from bot.roster import LearnerRecord, RosterPage
from bot.stats import CourseStats, format_accuracy, format_days


def utc(moment: dt.datetime | None) -> str:
    return "-" if moment is None else ensure_utc(moment).strftime("%Y-%m-%d %H:%MZ")


def stats_tables(stats: CourseStats) -> tuple[Table, Table]:
    totals = Table(title=f"{stats.title} ({stats.slug})", show_header=True)
    totals.add_column("learners")
    totals.add_column("count", justify="right")
    for label, value in (
        ("enrolled", stats.enrolled),
        ("active", stats.active),
        ("paused", stats.paused),
        ("finished", stats.finished),
        ("unreachable", stats.unreachable),
        ("onboarding", stats.onboarding),
        ("left the course", stats.stopped),
    ):
        totals.add_row(label, str(value))
    totals.add_row("median days to finish", format_days(stats.median_days_to_finish))
    lessons = Table(title="per lesson", show_header=True)
    lessons.add_column("#", justify="right")
    lessons.add_column("lesson")
    lessons.add_column("delivered", justify="right")
    lessons.add_column("done", justify="right")
    lessons.add_column("quiz")
    for lesson in stats.lessons:
        quiz = format_accuracy(lesson) if lesson.has_quiz else "-"
        lessons.add_row(str(lesson.number), lesson.title, str(lesson.delivered), str(lesson.done), quiz)
    return totals, lessons


def roster_table(found: RosterPage) -> Table:
    table = Table(
        title=f"learners: page {found.page} of {found.pages}, {found.total} in all", show_header=True
    )
    for column in ("id", "name", "platform", "course", "status", "lessons", "reachable", "next release"):
        table.add_column(column, justify="right" if column == "id" else "left")
    for row in found.rows:
        total = "?" if row.lessons_total is None else str(row.lessons_total)
        table.add_row(
            str(row.learner_id),
            row.display_name,
            row.platform,
            row.course_slug,
            row.status.value,
            f"{row.lessons_released}/{total}",
            "yes" if row.reachable else "no",
            utc(row.next_release_at),
        )
    return table


def record_tables(record: LearnerRecord) -> list[Table]:
    learner = record.learner
    about = Table(title=f"learner {learner.id}", show_header=False)
    about.add_column("what")
    about.add_column("value")
    for label, value in (
        ("name", learner.display_name),
        ("platform", f"{learner.platform} {learner.platform_user_id}"),
        ("time zone", learner.time_zone or "not set"),
        ("language", learner.language or "-"),
        ("reachable", "yes" if learner.reachable else f"no ({learner.unreachable_reason or '-'})"),
        ("first seen", utc(learner.created_at)),
        ("last seen", utc(learner.last_seen_at)),
    ):
        about.add_row(label, value)
    courses = Table(title="enrollments", show_header=True)
    for column in (
        "course",
        "status",
        "pace",
        "time",
        "released",
        "waiting for",
        "next",
        "enrolled",
        "finished",
    ):
        courses.add_column(column)
    for enrollment in record.enrollments:
        courses.add_row(
            enrollment.course_slug,
            enrollment.status.value,
            enrollment.cadence,
            enrollment.local_time,
            str(enrollment.lessons_released),
            enrollment.waiting_for or "-",
            f"{enrollment.next_lesson_slug or '-'} at {utc(enrollment.next_release_at)}",
            utc(enrollment.enrolled_at),
            utc(enrollment.finished_at),
        )
    history = Table(title="history", show_header=True)
    for column in ("due", "course", "what", "status", "sent", "done"):
        history.add_column(column)
    for delivery in record.deliveries:
        what = delivery.lesson_slug or f"broadcast #{delivery.broadcast_id}"
        history.add_row(
            utc(delivery.due_at),
            delivery.course_slug,
            what,
            delivery.status.value,
            utc(delivery.sent_at),
            utc(delivery.done_at),
        )
    answers = Table(title="quiz answers", show_header=True)
    for column in ("course", "lesson", "option", "right", "answered"):
        answers.add_column(column)
    for answer in record.quiz_answers:
        answers.add_row(
            answer.course_slug,
            answer.lesson_slug,
            str(answer.option_index + 1),
            "yes" if answer.correct else "no",
            utc(answer.answered_at),
        )
    return [about, courses, history, answers]


def progress_table(progress: BroadcastProgress) -> Table:
    audience = progress.course_slug + (f", cohort {progress.cohort_name}" if progress.cohort_name else "")
    table = Table(title=f"broadcast #{progress.broadcast_id} ({audience}, {progress.status.value})")
    table.add_column("deliveries")
    table.add_column("count", justify="right")
    for label, value in (
        ("sent", progress.sent),
        ("failed", progress.failed),
        ("unreachable", progress.unreachable + progress.skipped),
        ("waiting", progress.waiting),
        ("scheduled at learners' own times", progress.scheduled),
        ("cancelled", progress.cancelled),
    ):
        table.add_row(label, str(value))
    return table


def audit_table(rows: Sequence[AdminAction]) -> Table:
    table = Table(title="instructor actions, newest first", show_header=True)
    for column in ("id", "at", "who", "action", "arguments", "allowed", "outcome"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            str(row.id),
            utc(row.at),
            f"{row.platform}:{row.user_id}",
            row.action,
            row.arguments,
            "yes" if row.allowed else "no",
            row.outcome,
        )
    return table


def cohorts_table(found: Sequence[CohortInfo]) -> Table:
    table = Table(title="cohorts", show_header=True)
    for column in ("course", "name", "invite", "starts", "pace", "time", "learners"):
        table.add_column(column)
    for info in found:
        cohort = info.cohort
        table.add_row(
            cohort.course_slug,
            cohort.name,
            f"/start {cohort.code}",
            cohort.start_date.isoformat() if cohort.start_date else "-",
            cohort.cadence or "-",
            cohort.local_time or "-",
            str(info.members),
        )
    return table
