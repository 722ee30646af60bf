"""Gentle nudges: when a learner who went quiet gets a short reminder, and what it says.

A learner is quiet when a lesson arrived after their last "Done", answer, pulled lesson or message. After
`after_days` local days of quiet they get one nudge in their window (never in the quiet hours), then
another `after_days` days later, at most `max` per quiet stretch; acting again starts a new stretch.
Paused, finished and unreachable learners get none. Nudges never touch the lesson schedule.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from bot.cadence import parse_time_of_day
from bot.content import Course, NudgeRules
from bot.followups import learner_zone
from bot.i18n import _
from bot.models import Enrollment, EnrollmentStatus, Learner
from bot.pacing import local_date
from bot.windows import QuietHours, next_window_instant

RECHECK = dt.timedelta(days=1)
"""How soon an enrollment that cannot be nudged (nudges off, no zone, unreachable) is looked at again."""


@dataclass(frozen=True)
class NudgeDecision:
    send: bool
    check_at: dt.datetime
    """When to look at this enrollment again (after the nudge, if one is sent now)."""
    quiet_since: dt.datetime
    sent_in_stretch: int
    """Nudges already sent in this quiet stretch, before this one."""


def quiet_hours(rules: NudgeRules) -> QuietHours:
    return QuietHours(rules.quiet_start, rules.quiet_end)


def decide(rules: NudgeRules, enrollment: Enrollment, learner: Learner, now: dt.datetime) -> NudgeDecision:
    """Whether to nudge this enrollment now, and when to look at it next. Pure: reads, never writes."""
    quiet_since = enrollment.last_activity_at or enrollment.enrolled_at
    if learner.last_seen_at is not None:
        # Any message to the bot is a sign of life: nobody is nudged right after writing.
        quiet_since = max(quiet_since, learner.last_seen_at)
    in_stretch = enrollment.last_nudge_at is not None and enrollment.last_nudge_at >= quiet_since
    sent = enrollment.nudges_sent if in_stretch else 0
    if (
        rules.max <= 0
        or enrollment.status is not EnrollmentStatus.ACTIVE
        or learner.time_zone is None
        or not learner.reachable
    ):
        return NudgeDecision(False, now + RECHECK, quiet_since, sent)
    zone = learner_zone(learner)
    wall = parse_time_of_day(enrollment.local_time)
    quiet = quiet_hours(rules)
    today = local_date(now, zone)
    days = dt.timedelta(days=rules.after_days)

    def window_from(day: dt.date) -> dt.datetime:
        return next_window_instant(zone, wall, after=now, earliest_day=day, quiet=quiet)

    if sent >= rules.max:
        # They did not answer: no more nudges until they act again (looked at now and then).
        return NudgeDecision(False, window_from(today + days), quiet_since, sent)
    counted_from = enrollment.last_nudge_at if sent and enrollment.last_nudge_at else quiet_since
    due_day = local_date(counted_from, zone) + days
    waiting = enrollment.last_release_at is not None and enrollment.last_release_at > quiet_since
    if not waiting:
        # Nothing has arrived since they last acted: they are waiting for us, not the other way round.
        return NudgeDecision(
            False, window_from(max(due_day, today + dt.timedelta(days=1))), quiet_since, sent
        )
    at = window_from(due_day)
    if at > now:
        return NudgeDecision(False, at, quiet_since, sent)
    return NudgeDecision(True, window_from(today + days), quiet_since, sent)


def nudge_text(course: Course, lesson_title: str | None, language: str | None, name: str = "") -> str:
    """The nudge itself: short, friendly, no guilt."""
    greeting = _(language, "Hi {name}!", name=name) if name else _(language, "Hi!")
    if lesson_title:
        body = _(
            language,
            "“{lesson}” from {course} is waiting for you whenever you have ten minutes. "
            "Press “Done” once you have read it.",
            lesson=lesson_title,
            course=course.title,
        )
    else:
        body = _(
            language,
            "Your next step in {course} is waiting for you whenever you have ten minutes.",
            course=course.title,
        )
    return f"{greeting} {body}"
