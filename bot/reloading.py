"""What a course reload means for learners, and how a reload asked for elsewhere reaches a running bot.

A reload keeps every learner's position (lessons are keyed by slug); a learner whose next lesson was
removed gets the next one in course order when it is due (the release planner logs each one). A
reload is an audited admin action, so the audit trail doubles as the request queue: a running bot
looks for reload rows newer than the last one it saw.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from bot.catalog import ReloadReport
from bot.models import AdminAction, Enrollment
from bot.usecases import OPEN_STATUSES

log = logging.getLogger(__name__)

RELOAD_ACTION = "reload"
MAX_PROBLEMS_SHOWN = 20


@dataclass(frozen=True)
class ReloadOutcome:
    report: ReloadReport
    stranded: Mapping[str, Mapping[str, int]]
    """course -> removed lesson -> open enrollments that were due it next (they get the next one)."""

    def lines(self, max_problems: int = MAX_PROBLEMS_SHOWN) -> list[str]:
        """The change summary, the learners affected, then each problem as `file:line: message`."""
        lines = self.report.summary().splitlines()
        for course, lessons in self.stranded.items():
            for lesson, count in lessons.items():
                lines.append(
                    f"{course}: {count} learner(s) were due “{lesson}”; they get the next lesson instead"
                )
        problems = list(self.report.problems)
        lines.extend(f"{problem.severity}: {problem}" for problem in problems[:max_problems])
        if len(problems) > max_problems:
            lines.append(f"… and {len(problems) - max_problems} more (run `dripcourse check`)")
        return lines

    def audit_outcome(self) -> str:
        kept = (*self.report.kept_old, *self.report.rejected)
        return f"ok, kept the running version of: {', '.join(kept)}" if kept else "ok"


def stranded_learners(session: Session, report: ReloadReport) -> dict[str, dict[str, int]]:
    """Open enrollments per course and removed lesson that were due that lesson next."""
    stranded: dict[str, dict[str, int]] = {}
    for change in report.changed:
        if not change.lessons_removed:
            continue
        rows = session.execute(
            select(col(Enrollment.next_lesson_slug), func.count())
            .where(
                col(Enrollment.course_slug) == change.slug,
                col(Enrollment.status).in_(OPEN_STATUSES),
                col(Enrollment.next_lesson_slug).in_(change.lessons_removed),
            )
            .group_by(col(Enrollment.next_lesson_slug))
        ).all()
        counts = {str(slug): int(count) for slug, count in rows if slug is not None}
        if counts:
            stranded[change.slug] = counts
    return stranded


def log_reload(outcome: ReloadOutcome) -> None:
    log.info("courses reloaded: %s", "; ".join(outcome.report.summary().splitlines()))
    for problem in outcome.report.errors:
        log.warning("course problem: %s", problem)
    for course, lessons in outcome.stranded.items():
        for lesson, count in lessons.items():
            log.warning(
                "lesson %r was removed from %r: %d learner(s) due it get the next lesson instead",
                lesson,
                course,
                count,
            )


def latest_reload_request(session: Session) -> int:
    """The id of the newest allowed reload in the audit trail; 0 when there is none."""
    latest = session.execute(
        select(func.max(col(AdminAction.id))).where(
            col(AdminAction.action) == RELOAD_ACTION, col(AdminAction.allowed).is_(True)
        )
    ).scalar_one()
    return int(latest or 0)
