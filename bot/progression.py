"""How an enrollment moves through a course: the next lesson, the drip rules and the next release.

Pure functions over the learner's clock and the course content; the planner applies them in bulk and
the use cases one at a time, so both follow exactly the same rules.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from bot.cadence import Cadence
from bot.content import Course, Lesson, Unlock
from bot.pacing import local_date, next_slot, slot_date, slot_instant


@dataclass(frozen=True)
class LearnerClock:
    """A learner's pace in one course: zone, wall time, cadence and the every-N-days anchor."""

    zone: dt.tzinfo
    wall: dt.time
    cadence: Cadence
    anchor: dt.date | None = None


@dataclass(frozen=True)
class Advance:
    """Where an enrollment stands after a release (or a pause, resume or settings change)."""

    next_lesson_slug: str | None
    next_release_at: dt.datetime | None
    waiting_for: str | None
    """"done" or "quiz" when the next lesson is gated on the learner acting on the last one."""
    anchor: dt.date | None

    @property
    def finished(self) -> bool:
        return self.next_lesson_slug is None


def release_date(released_at: dt.datetime, clock: LearnerClock) -> dt.date:
    """The local date a release used up: its slot's date, or the plain local date of an off-slot release.

    (A slot pushed past midnight by a DST gap still belongs to the date before.)
    """
    candidate = slot_date(released_at, clock.zone, clock.wall)
    if slot_instant(clock.zone, candidate, clock.wall) == released_at:
        return candidate
    return local_date(released_at, clock.zone)


def gate_for(course: Course, previous: Lesson | None, upcoming: Lesson) -> str | None:
    """What the learner must do on `previous` before `upcoming` may be released, if anything."""
    if previous is None or upcoming.drip.unlock is Unlock.ON_SCHEDULE:
        return None
    if upcoming.drip.unlock is Unlock.AFTER_QUIZ and previous.quiz is not None:
        return "quiz"
    return "done"


def earliest_local_date(
    upcoming: Lesson, previous_release_at: dt.datetime | None, zone: dt.tzinfo
) -> dt.date | None:
    """The first local date `upcoming` may be released on, from `min_days_after_previous` and `not_before`."""
    candidates: list[dt.date] = []
    if upcoming.drip.not_before is not None:
        candidates.append(upcoming.drip.not_before)
    if upcoming.drip.min_days_after_previous > 0 and previous_release_at is not None:
        previous_day = local_date(previous_release_at, zone)
        candidates.append(previous_day + dt.timedelta(days=upcoming.drip.min_days_after_previous))
    return max(candidates) if candidates else None


def schedule_upcoming(
    course: Course,
    previous: Lesson | None,
    upcoming: Lesson | None,
    clock: LearnerClock,
    *,
    previous_release_at: dt.datetime | None,
    after: dt.datetime,
    satisfied_gate: bool = False,
    not_before_date: dt.date | None = None,
) -> Advance:
    """When `upcoming` is due: the first slot strictly after `after` that the drip rules allow.

    `satisfied_gate` is True once the learner has done what the gate asks (pressed Done, answered).
    `not_before_date` is a further lower bound on the slot's local date.
    """
    if upcoming is None:
        return Advance(None, None, None, clock.anchor)
    gate = None if satisfied_gate else gate_for(course, previous, upcoming)
    if gate is not None:
        return Advance(upcoming.slug, None, gate, clock.anchor)
    earliest = earliest_local_date(upcoming, previous_release_at, clock.zone)
    if not_before_date is not None:
        earliest = not_before_date if earliest is None else max(earliest, not_before_date)
    slot = next_slot(clock.zone, clock.wall, clock.cadence, after, clock.anchor, earliest)
    anchor = clock.anchor
    if anchor is None and clock.cadence.every_n_days > 1:
        anchor = slot_date(slot, clock.zone, clock.wall)
    return Advance(upcoming.slug, slot, None, anchor)


def advance_after_release(
    course: Course,
    released: Lesson,
    clock: LearnerClock,
    *,
    released_at: dt.datetime,
    now: dt.datetime,
) -> Advance:
    """The enrollment's next step after `released` went out at `released_at` (its slot, or now).

    The next slot is taken strictly after `now` as well as after the release, so a learner back from
    downtime gets at most one overdue lesson and the cadence resumes from the next slot. A release uses
    up its local date: after lesson 1 at enrolment or a lesson pulled early, the next one comes on a
    later date, never an hour after.
    """
    upcoming = course.lesson_after(released.slug)
    not_before_date = release_date(released_at, clock) + dt.timedelta(days=1)
    return schedule_upcoming(
        course,
        released,
        upcoming,
        clock,
        previous_release_at=released_at,
        after=max(now, released_at),
        not_before_date=not_before_date,
    )


def may_pull_next(
    course: Course,
    previous: Lesson | None,
    upcoming: Lesson | None,
    clock: LearnerClock,
    *,
    previous_release_at: dt.datetime | None,
    waiting_for: str | None,
    now: dt.datetime,
) -> tuple[bool, str]:
    """Whether the learner may pull `upcoming` now, ahead of schedule; if not, why (a short reason code).

    Reasons: "finished", "gated_done", "gated_quiz", "not_before", "min_days".
    """
    if upcoming is None:
        return False, "finished"
    if waiting_for == "quiz":
        return False, "gated_quiz"
    if waiting_for == "done":
        return False, "gated_done"
    earliest = earliest_local_date(upcoming, previous_release_at, clock.zone)
    if earliest is not None and local_date(now, clock.zone) < earliest:
        if upcoming.drip.not_before is not None and earliest == upcoming.drip.not_before:
            return False, "not_before"
        return False, "min_days"
    return True, ""
