"""What an instructor can do to one learner's enrollment: pause, resume, move, unlock, reset, remove.

Runs in the caller's transaction; raises `UserError` with a plain message when the action does not
apply. Lessons are named by slug, so a move survives any later reordering of the course.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete
from sqlmodel import Session, col, select

from bot import usecases
from bot.catalog import Catalog
from bot.models import Delivery, DeliveryKind, Enrollment, EnrollmentStatus, Learner, QuizAnswer, QuizPoll
from bot.usecases import OPEN_STATUSES, UserError

LEARNER_ACTIONS = ("pause", "resume", "move", "unlock", "reset", "remove")


def apply_learner_action(
    session: Session,
    catalog: Catalog,
    learner_id: int,
    action: str,
    now: dt.datetime,
    *,
    course_slug: str | None = None,
    lesson_slug: str | None = None,
) -> str:
    """Carry out `action` on the learner's enrollment (the named course, else their only one); returns
    a sentence saying what was done."""
    if action not in LEARNER_ACTIONS:
        raise UserError(f"Unknown action “{action[:20]}”; use one of: {', '.join(LEARNER_ACTIONS)}.")
    learner = session.get(Learner, learner_id)
    if learner is None:
        raise UserError(f"There is no learner {learner_id}.")
    enrollment = enrollment_for(session, learner, course_slug)
    who = f"learner {learner_id} ({learner.display_name or learner.platform_user_id})"
    where = f"in {enrollment.course_slug}"
    if action == "pause":
        usecases.pause(catalog, learner, enrollment, None, now)
        result = f"Paused {who} {where} until resumed."
    elif action == "resume":
        usecases.resume(catalog, learner, enrollment, now)
        result = f"Resumed {who} {where}."
    elif action == "move":
        result = _move(session, catalog, learner, enrollment, lesson_slug, now, who)
    elif action == "unlock":
        if enrollment.waiting_for is None:
            raise UserError(f"{who} is not waiting for a “Done” or a quiz answer {where}.")
        enrollment.waiting_for = None
        usecases.recompute(catalog, enrollment, learner, now)
        result = f"Unlocked the next lesson for {who} {where}."
    elif action == "reset":
        _reset(session, catalog, learner, enrollment, now)
        result = f"Reset {who} {where}: the course starts again from lesson 1."
    else:
        usecases.unenrol(session, enrollment, now)
        result = f"Removed {who} from {enrollment.course_slug}."
    session.add(enrollment)
    return result


def enrollment_for(session: Session, learner: Learner, course_slug: str | None) -> Enrollment:
    """The enrollment in `course_slug`, else the learner's only open one (or only one at all)."""
    enrollments = usecases.all_enrollments(session, learner)
    if course_slug:
        for enrollment in enrollments:
            if enrollment.course_slug == course_slug:
                return enrollment
        raise UserError(f"Learner {learner.id} is not enrolled in {course_slug[:64]}.")
    open_ones = [enrollment for enrollment in enrollments if enrollment.status in OPEN_STATUSES]
    candidates = open_ones or enrollments
    if not candidates:
        raise UserError(f"Learner {learner.id} is not enrolled in any course.")
    if len(candidates) > 1:
        courses = ", ".join(enrollment.course_slug for enrollment in candidates)
        raise UserError(f"Learner {learner.id} takes several courses ({courses}): name one after the id.")
    return candidates[0]


def _move(
    session: Session,
    catalog: Catalog,
    learner: Learner,
    enrollment: Enrollment,
    lesson_slug: str | None,
    now: dt.datetime,
    who: str,
) -> str:
    """The next lesson becomes `lesson_slug`; only a lesson the learner has not had (reset repeats all)."""
    course = usecases.course_for(catalog, enrollment)
    if not lesson_slug:
        raise UserError("Name the lesson to move to: move <lesson-slug>.")
    lesson = course.lesson(lesson_slug)
    if lesson is None:
        known = ", ".join(lesson.slug for lesson in course.lessons[:12])
        raise UserError(f"{course.slug} has no lesson “{lesson_slug[:64]}”. Lessons: {known}.")
    if enrollment.status is EnrollmentStatus.STOPPED:
        raise UserError(f"{who} has left {course.slug}; reset starts them again.")
    had_it = session.exec(
        select(Delivery).where(
            col(Delivery.enrollment_id) == enrollment.id, col(Delivery.lesson_slug) == lesson.slug
        )
    ).first()
    if had_it is not None:
        raise UserError(f"{who} already had “{lesson.slug}”; they can see it again with /repeat.")
    enrollment.next_lesson_slug = lesson.slug
    enrollment.waiting_for = None
    if enrollment.status is EnrollmentStatus.FINISHED:
        enrollment.status = EnrollmentStatus.ACTIVE
        enrollment.finished_at = None
    usecases.recompute(catalog, enrollment, learner, now)
    return f"Moved {who}: the next lesson in {course.slug} is {lesson.number}. {lesson.title}."


def _reset(
    session: Session, catalog: Catalog, learner: Learner, enrollment: Enrollment, now: dt.datetime
) -> None:
    """Start the course over: its lesson deliveries and quiz answers go, lesson 1 comes next."""
    course = usecases.course_for(catalog, enrollment)
    lesson_deliveries = select(col(Delivery.id)).where(
        col(Delivery.enrollment_id) == enrollment.id, col(Delivery.kind) == DeliveryKind.LESSON
    )
    session.execute(delete(QuizPoll).where(col(QuizPoll.delivery_id).in_(lesson_deliveries)))
    session.execute(delete(QuizAnswer).where(col(QuizAnswer.enrollment_id) == enrollment.id))
    session.execute(
        delete(Delivery).where(
            col(Delivery.enrollment_id) == enrollment.id, col(Delivery.kind) == DeliveryKind.LESSON
        )
    )
    enrollment.last_lesson_slug = None
    enrollment.next_lesson_slug = course.lessons[0].slug if course.lessons else None
    enrollment.lessons_released = 0
    enrollment.waiting_for = None
    enrollment.last_release_at = None
    enrollment.finished_at = None
    enrollment.paused_until = None
    enrollment.anchor_date = None
    enrollment.next_release_at = None
    enrollment.last_activity_at = now
    if learner.time_zone is None:
        enrollment.status = EnrollmentStatus.ONBOARDING
    else:
        usecases.activate(catalog, learner, enrollment, now)
