"""The learner commands that make learning stick: /review, /calendar and /language, and review answers.

Each function runs inside the conversation's transaction and returns the `Reply` to send at once.
"""

from __future__ import annotations

import datetime as dt

from babel.core import Locale, UnknownLocaleError
from sqlmodel import Session, col, select

from bot import review, usecases
from bot.actions import encode
from bot.calendar_ics import FILENAME, build_calendar, learner_entries
from bot.catalog import Catalog
from bot.followups import learner_zone
from bot.i18n import _, base_language, course_languages, lesson_language, local_date_text, shipped_languages
from bot.models import Delivery, Enrollment, EnrollmentStatus, Learner, ReviewCard
from bot.ports import AnyButton, Button, Capabilities, FilePart, OutboundPart, Reply
from bot.render import render_quiz_feedback, say

COMMANDS = ("review", "calendar", "language")
VERBS = ("rev", "lang")
PULL_LIMIT = 5
"""Cards one /review shows at most."""
REVIEWING = (EnrollmentStatus.ACTIVE, EnrollmentStatus.PAUSED, EnrollmentStatus.FINISHED)


def handle_command(
    session: Session,
    catalog: Catalog,
    learner: Learner,
    name: str,
    args: str,
    caps: Capabilities,
    now: dt.datetime,
) -> Reply:
    if name == "review":
        return review_now(session, catalog, learner, caps, now)
    if name == "calendar":
        return calendar(session, catalog, learner, caps, now)
    return language(session, catalog, learner, args, caps)


def handle_button(
    session: Session,
    catalog: Catalog,
    learner: Learner,
    verb: str,
    args: tuple[str, ...],
    caps: Capabilities,
    now: dt.datetime,
) -> Reply:
    if verb == "rev" and len(args) == 2 and all(arg.isdigit() and len(arg) <= 12 for arg in args):
        return review_answer(session, catalog, learner, int(args[0]), int(args[1]), caps, now)
    if verb == "lang" and len(args) == 1:
        return language(session, catalog, learner, args[0], caps)
    raise usecases.UserError("That button has expired. Send /help to see what I can do.")


# --- reviews -------------------------------------------------------------------------------------


def _reviewing(session: Session, learner: Learner) -> list[Enrollment]:
    return list(
        session.exec(
            select(Enrollment)
            .where(col(Enrollment.learner_id) == learner.id, col(Enrollment.status).in_(REVIEWING))
            .order_by(col(Enrollment.id))
        ).all()
    )


def review_now(
    session: Session, catalog: Catalog, learner: Learner, caps: Capabilities, now: dt.datetime
) -> Reply:
    """Up to `PULL_LIMIT` due cards at once, whatever the time of day."""
    lang = learner.language
    zone = learner_zone(learner)
    parts: list[OutboundPart] = []
    shown: list[ReviewCard] = []
    upcoming: list[dt.datetime] = []
    for enrollment in _reviewing(session, learner):
        course = catalog.get(enrollment.course_slug)
        if course is None or not course.review.enabled:
            continue
        for card, lesson in review.due_cards(session, course, enrollment, zone, now, PULL_LIMIT - len(shown)):
            shown.append(card)
            parts.append(review.render_card(lesson.in_language(lesson_language(course, lang)), card, caps))
        if enrollment.review_due_at is not None:
            upcoming.append(enrollment.review_due_at)
        if len(shown) >= PULL_LIMIT:
            break
    if not shown:
        if not upcoming:
            return say(caps, _(lang, "You have no review cards yet: every quiz you answer becomes one."))
        when = local_date_text(max(min(upcoming), now), zone, lang)
        return say(
            caps, _(lang, "Nothing to review right now. Your next review is due on {date}.", date=when)
        )
    review.show(shown, now)
    session.add_all(shown)
    intro = say(caps, _(lang, "Answer from memory, then check: {count} review card(s).", count=len(shown)))
    return Reply((*intro.parts, *parts), private=True)


def review_answer(
    session: Session,
    catalog: Catalog,
    learner: Learner,
    card_id: int,
    option_index: int,
    caps: Capabilities,
    now: dt.datetime,
) -> Reply:
    lang = learner.language
    card = session.get(ReviewCard, card_id)
    if card is None:
        raise usecases.UserError(
            "That review is not for you, or it has expired. Send /review for your due cards."
        )
    enrollment = usecases.enrollment_of(session, learner, card.enrollment_id)
    course = usecases.course_for(catalog, enrollment)
    result = review.answer(session, course, enrollment, learner, card_id, option_index, now)
    lesson = course.lesson(card.lesson_slug)
    quiz = result.quiz
    if lesson is not None:
        quiz = lesson.in_language(lesson_language(course, lang)).quiz or quiz
    feedback = render_quiz_feedback(quiz, option_index, caps)
    if not result.counted:
        note = _(lang, "You already answered this card; it comes back when it is due again.")
    else:
        note = _(
            lang,
            "Next review of this lesson: {date}.",
            date=local_date_text(result.next_due, learner_zone(learner), lang),
        )
    return Reply((feedback, *say(caps, note).parts), private=True)


def start_card_for_answer(
    session: Session, catalog: Catalog, learner: Learner, delivery: Delivery, correct: bool, now: dt.datetime
) -> None:
    """A first quiz answer becomes a review card (when the course has review on)."""
    enrollment = usecases.enrollment_of(session, learner, delivery.enrollment_id)
    course = catalog.get(enrollment.course_slug)
    if course is not None and delivery.lesson_slug is not None:
        review.start_card(session, course, enrollment, learner, delivery.lesson_slug, correct, now)


# --- calendar ------------------------------------------------------------------------------------


def calendar_file(session: Session, catalog: Catalog, learner: Learner, now: dt.datetime) -> FilePart | None:
    """The learner's upcoming lessons as an `.ics` file, or None when nothing is scheduled."""
    if learner.time_zone is None:
        return None
    entries = learner_entries(catalog, learner, usecases.open_enrollments(session, learner), now)
    if not entries:
        return None
    content = build_calendar(entries, learner.time_zone, now, name=_(learner.language, "My lessons"))
    caption = _(
        learner.language,
        "Your upcoming lessons in {zone}. Open the file to add them to your calendar.",
        zone=learner.time_zone,
    )
    return FilePart(FILENAME, content, caption=caption)


def calendar(
    session: Session, catalog: Catalog, learner: Learner, caps: Capabilities, now: dt.datetime
) -> Reply:
    part = calendar_file(session, catalog, learner, now)
    if part is None:
        return say(
            caps,
            _(learner.language, "No lessons are scheduled yet, so there is nothing to put in a calendar."),
        )
    learner.calendar_sent_at = now
    session.add(learner)
    return Reply((part,), private=True)


def with_fresh_calendar(
    session: Session, catalog: Catalog, learner: Learner, reply: Reply, now: dt.datetime
) -> Reply:
    """`reply` plus an updated calendar file, for a learner who took one before a settings change."""
    if learner.calendar_sent_at is None:
        return reply
    part = calendar_file(session, catalog, learner, now)
    if part is None:
        return reply
    learner.calendar_sent_at = now
    session.add(learner)
    return Reply((*reply.parts, part), private=reply.private)


# --- language ------------------------------------------------------------------------------------


def offered_languages(catalog: Catalog) -> list[str]:
    """The bot's own languages, then every other language a course offers lessons in."""
    offered = list(shipped_languages())
    for course in catalog.courses():
        offered.extend(code for code in course_languages(course) if code not in offered)
    return offered


def language_name(code: str) -> str:
    try:
        name = Locale.parse(code.replace("-", "_")).get_display_name(code.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return code
    return f"{name[:1].upper()}{name[1:]}" if name else code


def language(session: Session, catalog: Catalog, learner: Learner, args: str, caps: Capabilities) -> Reply:
    offered = offered_languages(catalog)
    wanted = args.strip().replace("_", "-")
    if not wanted:
        current = learner.language or "en"
        buttons: tuple[AnyButton, ...] = tuple(
            Button(language_name(code), encode("lang", code)) for code in offered[:8]
        )
        return say(
            caps,
            _(
                learner.language,
                "Your language: {language}. Pick another, or type /language followed by a code such as de.",
                language=language_name(current),
            ),
            buttons,
        )
    chosen = next((code for code in offered if code.lower() == wanted.lower()), None)
    if chosen is None:
        chosen = next((code for code in offered if base_language(code) == base_language(wanted)), None)
    if chosen is None:
        raise usecases.UserError(
            _(learner.language, "I can speak {languages}.", languages=", ".join(offered))
        )
    learner.language = chosen
    session.add(learner)
    return say(caps, _(chosen, "From now on I write to you in {language}.", language=language_name(chosen)))
