"""Learner use cases, platform-neutral: enrol, set the clock, pause, resume, pull, done, quiz, unenrol.

Each function runs inside the caller's transaction (a SQLModel `Session`) and either changes state
consistently or raises `UserError` with a friendly message and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from bot.cadence import Cadence, parse_cadence, parse_time_of_day
from bot.catalog import Catalog
from bot.content import Course, Lesson, Quiz
from bot.followups import learner_zone
from bot.followups import rearm as rearm_followups
from bot.models import (
    Cohort,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Enrollment,
    EnrollmentStatus,
    Learner,
    Nudge,
    QuizAnswer,
    QuizPoll,
    ReviewAnswer,
    ReviewCard,
)
from bot.pacing import upcoming_slots
from bot.ports import Sender
from bot.progression import (
    LearnerClock,
    advance_after_release,
    may_pull_next,
    release_date,
    schedule_upcoming,
)
from bot.timezones import load_zone

OPEN_STATUSES = (EnrollmentStatus.ONBOARDING, EnrollmentStatus.ACTIVE, EnrollmentStatus.PAUSED)


class UserError(Exception):
    """Something the learner asked for cannot be done; the message is the reply, in plain words."""


# --- learners ------------------------------------------------------------------------------------


def find_learner(session: Session, platform: str, user_id: str) -> Learner | None:
    statement = select(Learner).where(Learner.platform == platform, Learner.platform_user_id == user_id)
    return session.exec(statement).first()


def touch_learner(session: Session, catalog: Catalog, sender: Sender, now: dt.datetime) -> Learner:
    """The learner behind `sender`, created on first contact; a learner who writes again is reachable."""
    learner = find_learner(session, sender.platform, sender.user_id)
    if learner is None:
        learner = Learner(
            platform=sender.platform,
            platform_user_id=sender.user_id,
            chat_id=sender.chat_id,
            display_name=sender.display_name[:128],
            language=(sender.language_code or None),
            created_at=now,
        )
        session.add(learner)
        session.flush()
        return learner
    learner.last_seen_at = now
    if sender.is_private and sender.chat_id and learner.chat_id != sender.chat_id:
        learner.chat_id = sender.chat_id
    if sender.display_name:
        learner.display_name = sender.display_name[:128]
    if not learner.reachable:
        learner.reachable = True
        learner.unreachable_reason = None
        session.add(learner)
        _requeue_unreachable(session, learner, now)
        for enrollment in open_enrollments(session, learner):
            recompute(catalog, enrollment, learner, now)
    session.add(learner)
    return learner


def _requeue_unreachable(session: Session, learner: Learner, now: dt.datetime) -> None:
    session.execute(
        update(Delivery)
        .where(
            col(Delivery.learner_id) == learner.id,
            col(Delivery.status) == DeliveryStatus.FAILED,
            col(Delivery.error).startswith("unreachable"),
        )
        .values(status=DeliveryStatus.PENDING, next_attempt_at=now, error=None, attempts=0)
    )


def open_enrollments(session: Session, learner: Learner) -> list[Enrollment]:
    statement = (
        select(Enrollment)
        .where(Enrollment.learner_id == learner.id, col(Enrollment.status).in_(OPEN_STATUSES))
        .order_by(col(Enrollment.enrolled_at).desc(), col(Enrollment.id).desc())
    )
    return list(session.exec(statement).all())


def all_enrollments(session: Session, learner: Learner) -> list[Enrollment]:
    statement = select(Enrollment).where(Enrollment.learner_id == learner.id).order_by(col(Enrollment.id))
    return list(session.exec(statement).all())


def enrollment_of(session: Session, learner: Learner, enrollment_id: int) -> Enrollment:
    """The learner's own enrollment `enrollment_id`; anyone else's is refused as if it did not exist."""
    enrollment = session.get(Enrollment, enrollment_id)
    if enrollment is None or enrollment.learner_id != learner.id:
        raise UserError("That button is not for you, or it has expired. Try /progress.")
    return enrollment


def focus_enrollment(
    session: Session, catalog: Catalog, learner: Learner, course_hint: str = ""
) -> Enrollment:
    """The enrollment a command is about: the named course, else the most recent open one."""
    enrollments = open_enrollments(session, learner)
    if course_hint:
        for enrollment in enrollments:
            if enrollment.course_slug == course_hint:
                return enrollment
        raise UserError(f"You are not taking a course called “{course_hint}”. See /courses.")
    if not enrollments:
        raise UserError("You are not enrolled in a course yet. Send /courses to pick one.")
    return enrollments[0]


# --- the learner's clock -------------------------------------------------------------------------


def learner_clock(learner: Learner, enrollment: Enrollment) -> LearnerClock:
    zone = learner_zone(learner)
    return LearnerClock(
        zone=zone,
        wall=parse_time_of_day(enrollment.local_time),
        cadence=parse_cadence(enrollment.cadence),
        anchor=enrollment.anchor_date,
    )


def course_for(catalog: Catalog, enrollment: Enrollment) -> Course:
    course = catalog.get(enrollment.course_slug)
    if course is None:
        raise UserError("That course is not available right now. Please try again later.")
    return course


def recompute(catalog: Catalog, enrollment: Enrollment, learner: Learner, now: dt.datetime) -> None:
    """Set `next_release_at` from the enrollment's state, as every pause, resume and change requires."""
    course = catalog.get(enrollment.course_slug)
    rearm_followups(course, enrollment, learner, now)
    if (
        course is None
        or not learner.reachable
        or learner.time_zone is None
        or enrollment.status not in (EnrollmentStatus.ACTIVE, EnrollmentStatus.PAUSED)
        or enrollment.waiting_for is not None
        or enrollment.next_lesson_slug is None
    ):
        enrollment.next_release_at = None
        return
    after = now
    if enrollment.status is EnrollmentStatus.PAUSED:
        if enrollment.paused_until is None:
            enrollment.next_release_at = None
            return
        after = max(now, enrollment.paused_until)
    previous = course.lesson(enrollment.last_lesson_slug) if enrollment.last_lesson_slug else None
    upcoming = course.lesson(enrollment.next_lesson_slug)
    if upcoming is None:
        upcoming = course.lesson_after(enrollment.last_lesson_slug)
    clock = learner_clock(learner, enrollment)
    # A release uses up its local date: a new time, zone or pace never brings a second lesson that day.
    released = enrollment.last_release_at
    advance = schedule_upcoming(
        course,
        previous,
        upcoming,
        clock,
        previous_release_at=released,
        after=after,
        satisfied_gate=True,
        not_before_date=release_date(released, clock) + dt.timedelta(days=1) if released else None,
    )
    enrollment.next_lesson_slug = advance.next_lesson_slug
    enrollment.next_release_at = advance.next_release_at
    enrollment.anchor_date = advance.anchor


# --- enrolment and onboarding --------------------------------------------------------------------


@dataclass(frozen=True)
class Enrolment:
    enrollment: Enrollment
    already: bool


def enrol(
    session: Session,
    catalog: Catalog,
    learner: Learner,
    course_slug: str,
    now: dt.datetime,
    *,
    cohort: Cohort | None = None,
) -> Enrolment:
    """Enrol `learner` in a course (several at once are fine); re-enrolling after /stop starts over."""
    course = catalog.get(course_slug)
    if course is None:
        raise UserError("There is no course by that name. Send /courses to see the list.")
    existing = session.exec(
        select(Enrollment).where(Enrollment.learner_id == learner.id, Enrollment.course_slug == course_slug)
    ).first()
    if existing is not None and existing.status in OPEN_STATUSES:
        return Enrolment(existing, already=True)
    if existing is not None:
        # Starting over: the old enrollment's outbox rows and answers go with it.
        for table in (ReviewAnswer, ReviewCard, Nudge, QuizPoll, QuizAnswer, Delivery):
            session.execute(delete(table).where(col(table.enrollment_id) == existing.id))
        session.delete(existing)
        session.flush()
    enrollment = Enrollment(
        learner_id=learner.id or 0,
        course_slug=course_slug,
        cohort_id=cohort.id if cohort else None,
        status=EnrollmentStatus.ONBOARDING,
        cadence=(cohort.cadence if cohort and cohort.cadence else course.default_cadence),
        local_time=(cohort.local_time if cohort and cohort.local_time else course.default_time),
        next_lesson_slug=course.lessons[0].slug if course.lessons else None,
        enrolled_at=now,
        last_activity_at=now,
    )
    session.add(enrollment)
    session.flush()
    return Enrolment(enrollment, already=False)


def set_zone(session: Session, catalog: Catalog, learner: Learner, zone_name: str, now: dt.datetime) -> None:
    """Store the learner's zone (already resolved) and recompute every open enrollment's next release."""
    load_zone(zone_name)
    learner.time_zone = zone_name
    session.add(learner)
    for enrollment in open_enrollments(session, learner):
        enrollment.anchor_date = None
        recompute(catalog, enrollment, learner, now)
        session.add(enrollment)


def set_time(
    catalog: Catalog, learner: Learner, enrollment: Enrollment, wall: dt.time, now: dt.datetime
) -> None:
    enrollment.local_time = f"{wall.hour:02d}:{wall.minute:02d}"
    enrollment.anchor_date = None
    recompute(catalog, enrollment, learner, now)


def set_cadence(
    catalog: Catalog, learner: Learner, enrollment: Enrollment, cadence: Cadence, now: dt.datetime
) -> None:
    enrollment.cadence = str(cadence)
    enrollment.anchor_date = None
    recompute(catalog, enrollment, learner, now)


def activate(catalog: Catalog, learner: Learner, enrollment: Enrollment, now: dt.datetime) -> None:
    """Finish onboarding: lesson 1 now (or at the first slot, if the course says so), then the cadence."""
    course = course_for(catalog, enrollment)
    enrollment.status = EnrollmentStatus.ACTIVE
    if enrollment.lessons_released == 0 and course.first_lesson_immediately and learner.reachable:
        enrollment.next_release_at = now
    else:
        recompute(catalog, enrollment, learner, now)


# --- pace ----------------------------------------------------------------------------------------


def pause(
    catalog: Catalog,
    learner: Learner,
    enrollment: Enrollment,
    until: dt.datetime | None,
    now: dt.datetime,
) -> None:
    if enrollment.status is not EnrollmentStatus.ACTIVE and enrollment.status is not EnrollmentStatus.PAUSED:
        raise UserError("Only a running course can be paused. See /progress.")
    enrollment.status = EnrollmentStatus.PAUSED
    enrollment.paused_until = until
    recompute(catalog, enrollment, learner, now)


def resume(catalog: Catalog, learner: Learner, enrollment: Enrollment, now: dt.datetime) -> None:
    if enrollment.status is not EnrollmentStatus.PAUSED:
        raise UserError("This course is not paused.")
    enrollment.status = EnrollmentStatus.ACTIVE
    enrollment.paused_until = None
    recompute(catalog, enrollment, learner, now)


def release_now(
    session: Session,
    course: Course,
    learner: Learner,
    enrollment: Enrollment,
    lesson: Lesson,
    now: dt.datetime,
) -> Delivery:
    """Release `lesson` at once: insert its outbox row and advance the enrollment, in this transaction."""
    delivery = Delivery(
        enrollment_id=enrollment.id or 0,
        learner_id=learner.id or 0,
        course_slug=course.slug,
        kind=DeliveryKind.LESSON,
        lesson_slug=lesson.slug,
        due_at=now,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(delivery)
    session.flush()
    advance = advance_after_release(
        course, lesson, learner_clock(learner, enrollment), released_at=now, now=now
    )
    enrollment.last_lesson_slug = lesson.slug
    enrollment.lessons_released += 1
    enrollment.last_release_at = now
    enrollment.last_activity_at = now
    enrollment.next_lesson_slug = advance.next_lesson_slug
    enrollment.next_release_at = advance.next_release_at
    enrollment.waiting_for = advance.waiting_for
    enrollment.anchor_date = advance.anchor
    if enrollment.status is EnrollmentStatus.PAUSED:
        enrollment.status = EnrollmentStatus.ACTIVE
        enrollment.paused_until = None
    if advance.finished:
        enrollment.status = EnrollmentStatus.FINISHED
        enrollment.finished_at = now
        enrollment.next_release_at = None
    session.add(enrollment)
    return delivery


@dataclass(frozen=True)
class PullRefused:
    reason: str
    unlocks_at: dt.datetime | None


def pull_next(
    session: Session, catalog: Catalog, learner: Learner, enrollment: Enrollment, now: dt.datetime
) -> Delivery | PullRefused:
    """Release the next lesson ahead of schedule when the drip rules allow, else say why and when."""
    if enrollment.status is EnrollmentStatus.ONBOARDING:
        raise UserError("Finish choosing your time zone, time and pace first.")
    if enrollment.status is EnrollmentStatus.FINISHED:
        return PullRefused("finished", None)
    course = course_for(catalog, enrollment)
    previous = course.lesson(enrollment.last_lesson_slug) if enrollment.last_lesson_slug else None
    upcoming = course.lesson(enrollment.next_lesson_slug) if enrollment.next_lesson_slug else None
    clock = learner_clock(learner, enrollment)
    allowed, reason = may_pull_next(
        course,
        previous,
        upcoming,
        clock,
        previous_release_at=enrollment.last_release_at,
        waiting_for=enrollment.waiting_for,
        now=now,
    )
    if not allowed or upcoming is None:
        return PullRefused(reason, enrollment.next_release_at)
    return release_now(session, course, learner, enrollment, upcoming, now)


def unenrol(session: Session, enrollment: Enrollment, now: dt.datetime) -> None:
    enrollment.status = EnrollmentStatus.STOPPED
    enrollment.next_release_at = None
    enrollment.waiting_for = None
    session.add(enrollment)
    session.execute(
        update(Delivery)
        .where(
            col(Delivery.enrollment_id) == enrollment.id,
            col(Delivery.status).in_((DeliveryStatus.PENDING,)),
        )
        .values(status=DeliveryStatus.CANCELLED, error="learner unenrolled")
    )


# --- done and quizzes ----------------------------------------------------------------------------


def delivery_of(session: Session, learner: Learner, delivery_id: int) -> Delivery:
    delivery = session.get(Delivery, delivery_id)
    if delivery is None or delivery.learner_id != learner.id or delivery.lesson_slug is None:
        raise UserError("That button is not for you, or it has expired. Try /progress.")
    return delivery


def _unlock_if_gated(
    catalog: Catalog, learner: Learner, enrollment: Enrollment, lesson_slug: str, gate: str, now: dt.datetime
) -> bool:
    if enrollment.waiting_for is None or enrollment.last_lesson_slug != lesson_slug:
        return False
    if gate == "done" or enrollment.waiting_for == gate:
        enrollment.waiting_for = None
        recompute(catalog, enrollment, learner, now)
        return True
    return False


def mark_done(
    session: Session, catalog: Catalog, learner: Learner, delivery_id: int, now: dt.datetime
) -> tuple[Delivery, bool]:
    """Record "Done" on a delivered lesson; returns the delivery and whether that unlocked the next one."""
    delivery = delivery_of(session, learner, delivery_id)
    enrollment = enrollment_of(session, learner, delivery.enrollment_id)
    if delivery.done_at is None:
        delivery.done_at = now
        session.add(delivery)
    enrollment.last_activity_at = now
    unlocked = False
    if enrollment.waiting_for == "done":
        unlocked = _unlock_if_gated(catalog, learner, enrollment, delivery.lesson_slug or "", "done", now)
    session.add(enrollment)
    return delivery, unlocked


@dataclass(frozen=True)
class QuizResult:
    quiz: Quiz
    chosen_index: int
    correct: bool
    first_answer: bool
    unlocked: bool


def answer_quiz(
    session: Session,
    catalog: Catalog,
    learner: Learner,
    delivery: Delivery,
    option_index: int,
    now: dt.datetime,
) -> QuizResult:
    """Record the learner's answer to the quiz of `delivery` (the first answer is the one that counts)."""
    enrollment = enrollment_of(session, learner, delivery.enrollment_id)
    course = course_for(catalog, enrollment)
    lesson = course.lesson(delivery.lesson_slug or "")
    if lesson is None or lesson.quiz is None:
        raise UserError("That quiz is no longer part of the course.")
    quiz = lesson.quiz
    if not 0 <= option_index < len(quiz.options):
        raise UserError(f"Please pick one of the {len(quiz.options)} options.")
    existing = session.exec(
        select(QuizAnswer).where(
            QuizAnswer.enrollment_id == enrollment.id, QuizAnswer.lesson_slug == lesson.slug
        )
    ).first()
    correct = option_index == quiz.correct_index
    if existing is None:
        session.add(
            QuizAnswer(
                enrollment_id=enrollment.id or 0,
                learner_id=learner.id or 0,
                course_slug=course.slug,
                lesson_slug=lesson.slug,
                option_index=option_index,
                correct=correct,
                answered_at=now,
            )
        )
    enrollment.last_activity_at = now
    unlocked = _unlock_if_gated(catalog, learner, enrollment, lesson.slug, "quiz", now)
    session.add(enrollment)
    return QuizResult(quiz, option_index, correct, existing is None, unlocked)


def delivery_for_poll(session: Session, learner: Learner, platform: str, poll_id: str) -> Delivery:
    poll = session.get(QuizPoll, f"{platform}:{poll_id}")
    if poll is None:
        raise UserError("I could not match that answer to a quiz of yours.")
    return delivery_of(session, learner, poll.delivery_id)


# --- reports -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    enrollment: Enrollment
    course: Course
    released: int
    total: int
    quiz_right: int
    quiz_answered: int
    next_release_at: dt.datetime | None


def progress(session: Session, catalog: Catalog, learner: Learner) -> list[Progress]:
    reports = []
    for enrollment in all_enrollments(session, learner):
        course = catalog.get(enrollment.course_slug)
        if course is None or enrollment.status is EnrollmentStatus.STOPPED:
            continue
        answers = session.exec(select(QuizAnswer).where(QuizAnswer.enrollment_id == enrollment.id)).all()
        reports.append(
            Progress(
                enrollment=enrollment,
                course=course,
                released=enrollment.lessons_released,
                total=len(course.lessons),
                quiz_right=sum(1 for answer in answers if answer.correct),
                quiz_answered=len(answers),
                next_release_at=enrollment.next_release_at,
            )
        )
    return reports


def upcoming_releases(
    catalog: Catalog, learner: Learner, enrollment: Enrollment, now: dt.datetime, count: int = 5
) -> list[tuple[str, dt.datetime]]:
    """The next lessons and when they are expected, assuming the learner keeps up with any gates."""
    course = catalog.get(enrollment.course_slug)
    if course is None or enrollment.next_lesson_slug is None or learner.time_zone is None:
        return []
    clock = learner_clock(learner, enrollment)
    start = course.index_of(enrollment.next_lesson_slug)
    if start is None:
        return []
    remaining: Sequence[Lesson] = course.lessons[start : start + count]
    if enrollment.next_release_at is not None:
        first = enrollment.next_release_at
    elif enrollment.status is EnrollmentStatus.ONBOARDING:
        first = (
            now
            if course.first_lesson_immediately
            else upcoming_slots(clock.zone, clock.wall, clock.cadence, now, 1, clock.anchor)[0]
        )
    else:
        return []
    plan = [(remaining[0].slug, first)]
    previous_at = first
    anchor = clock.anchor
    for previous, lesson in itertools.pairwise(remaining):
        step_clock = LearnerClock(clock.zone, clock.wall, clock.cadence, anchor)
        advance = schedule_upcoming(
            course,
            previous,
            lesson,
            step_clock,
            previous_release_at=previous_at,
            after=previous_at,
            satisfied_gate=True,
            not_before_date=release_date(previous_at, step_clock) + dt.timedelta(days=1),
        )
        if advance.next_release_at is None:
            break
        plan.append((lesson.slug, advance.next_release_at))
        previous_at = advance.next_release_at
        anchor = advance.anchor
    return plan
