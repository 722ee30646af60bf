"""When the follow-up planner next looks at an enrollment: its due reviews and a possible nudge.

Both instants are lower bounds the planner re-checks against fresh state, so an early value costs one
look and a late one is never stored: every pause, resume and change of zone, time or pace re-arms them
(`rearm`, called from `usecases.recompute`).
"""

from __future__ import annotations

import datetime as dt

from bot.cadence import parse_time_of_day
from bot.content import Course
from bot.models import Enrollment, EnrollmentStatus, Learner
from bot.pacing import local_date
from bot.timezones import load_zone
from bot.windows import next_window_instant

REVIEWING_STATUSES = (EnrollmentStatus.ACTIVE, EnrollmentStatus.FINISHED, EnrollmentStatus.PAUSED)
"""Reviews go on after the last lesson; a paused course holds them until the pause ends."""


def learner_zone(learner: Learner) -> dt.tzinfo:
    return load_zone(learner.time_zone or "UTC")


def review_check_at(
    course: Course | None, enrollment: Enrollment, learner: Learner, now: dt.datetime
) -> dt.datetime | None:
    """The first instant in the learner's window on or after the day their earliest review card is due,
    or None when no review can be sent (off for the course, no cards, paused until /resume...)."""
    if (
        course is None
        or not course.review.enabled
        or enrollment.review_due_at is None
        or learner.time_zone is None
        or not learner.reachable
        or enrollment.status not in REVIEWING_STATUSES
    ):
        return None
    after = now
    if enrollment.status is EnrollmentStatus.PAUSED:
        if enrollment.paused_until is None:
            return None
        after = max(now, enrollment.paused_until)
    zone = learner_zone(learner)
    return next_window_instant(
        zone,
        parse_time_of_day(enrollment.local_time),
        after=after,
        earliest_day=local_date(enrollment.review_due_at, zone),
    )


def rearm(course: Course | None, enrollment: Enrollment, learner: Learner, now: dt.datetime) -> None:
    """Re-plan the enrollment's follow-ups after its state or the learner's clock changed."""
    check_at = review_check_at(course, enrollment, learner, now)
    stored = enrollment.next_review_at
    # Already due and still due: keep the stored instant, so a change that moves nothing writes nothing.
    if not (stored is not None and check_at is not None and stored <= now and check_at <= now):
        enrollment.next_review_at = check_at
    if enrollment.status is EnrollmentStatus.ACTIVE:
        # NULL on an active enrollment: the planner arms the nudge afresh from the current settings
        # (only active enrollments are nudged, so the value of any other one is never read).
        enrollment.next_nudge_at = None
