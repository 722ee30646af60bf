"""The learner's side of the chat, platform-neutral: one inbound event in, one `Reply` out.

Adapters hand every neutral event to `Conversation.handle`. All state changes of one event happen in
one transaction; a learner's mistake (`UserError`) rolls it back and is answered in plain words, and
an unexpected fault is logged once and answered with an apology, never a traceback.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlmodel import Session, select

from bot import cohorts, privacy, study_commands, usecases
from bot.actions import decode, encode
from bot.admin_conversation import AdminConversation
from bot.cadence import Cadence, CadenceError, TimeOfDayError, parse_cadence, parse_time_of_day
from bot.catalog import Catalog
from bot.clock import Clock
from bot.content import Course, Lesson
from bot.db import Database
from bot.followups import learner_zone
from bot.i18n import N_, _, lesson_language, local_date_text
from bot.models import Cohort, Delivery, Enrollment, EnrollmentStatus, Learner
from bot.ports import (
    AnyButton,
    Button,
    ButtonPressed,
    Capabilities,
    Command,
    FilePart,
    InboundEvent,
    LocationShared,
    OutboundPart,
    QuizAnswered,
    Reply,
    RequestLocationButton,
    Sender,
)
from bot.render import render_lesson, render_quiz_feedback, say
from bot.throttle import THROTTLE_NOTICE, Throttle, Verdict
from bot.timezones import ZoneNotFound, likely_zones, load_zone, resolve_zone, zone_for_location
from bot.usecases import UserError

log = logging.getLogger(__name__)

TIME_CHOICES = ("07:00", "08:00", "12:30", "18:00", "21:00")
CADENCE_CHOICES = (
    (N_("Every day"), "daily"),
    (N_("Weekdays"), "weekdays"),
    (N_("Mon, Wed, Fri"), "mon,wed,fri"),
    (N_("Every 2 days"), "every-2-days"),
)
TIME_FORMS = N_("Type a time like 08:00, 7:30, 18:45 or 8am.")
CADENCE_FORMS = N_(
    "Type one of: daily, weekdays, mon,wed,fri (any three-letter days), every-2-days (2 to 14)."
)
PAUSE_FORMS = N_("Use /pause (until you /resume), /pause 3 (days, 1 to 365) or /pause 2026-12-24 (a date).")
MAX_INPUT = 200

LEARNER_COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", "Start, or enrol in a course"),
    ("courses", "The courses you can take"),
    ("progress", "Where you are and your quiz score"),
    ("schedule", "Your next lessons in your local time"),
    ("timezone", "Change your time zone"),
    ("time", "Change the time lessons arrive"),
    ("pace", "Change how often lessons arrive"),
    ("pause", "Pause for some days or until a date"),
    ("resume", "Carry on after a pause"),
    ("next", "Get the next lesson now, if allowed"),
    ("repeat", "See the last lesson again"),
    ("settings", "Your time zone, time and pace"),
    ("stop", "Leave a course"),
    ("review", "Review what you learned, now"),
    ("calendar", "Your next lessons as a calendar file"),
    ("language", "Change your language"),
    ("mydata", "Everything I store about you"),
    ("forgetme", "Delete everything I store about you"),
    ("help", "What I can do"),
)

HELP = N_("""Here is what I understand:
/courses – the courses you can take
/progress – where you are, your quiz score and your next lesson
/schedule – your next lessons in your local time
/timezone Berlin – change your time zone (a city, a zone or +5:30)
/time 08:00 – change the time of day your lessons arrive
/pace weekdays – daily, weekdays, mon,wed,fri or every-2-days
/pause 3 – pause for 3 days (or /pause 2026-12-24, or just /pause)
/resume – carry on after a pause
/next – get the next lesson now, if the course allows it
/repeat – see the last lesson again
/settings – your time zone, time and pace
/stop – leave a course
/review – answer your due review cards now
/calendar – your next lessons as a calendar file
/language de – lessons and messages in another language
/mydata – everything I store about you, as a file
/forgetme – delete everything I store about you
/help – this list""")


LessonLink = Callable[[str, Course, Lesson, int], Awaitable[str | None]]
"""(platform, course, lesson, enrollment id) -> the lesson's discussion link, or None."""


@dataclass(frozen=True)
class _LessonAgain:
    """A /repeat found in the database, rendered after the session closes (its link may need the network)."""

    course: Course
    lesson: Lesson
    language: str | None
    delivery_id: int
    enrollment_id: int


class Conversation:
    """Turns neutral events into use cases and replies; holds no per-user state in memory."""

    def __init__(
        self,
        database: Database,
        catalog: Catalog,
        clock: Clock,
        capabilities: Mapping[str, Capabilities],
        *,
        on_change: Callable[[], None] = lambda: None,
        admin: AdminConversation | None = None,
        throttle: Throttle | None = None,
        lesson_link: LessonLink | None = None,
    ) -> None:
        self._database = database
        self._catalog = catalog
        self._clock = clock
        self._capabilities = dict(capabilities)
        self._on_change = on_change
        self._admin = admin
        self._throttle = throttle
        self._lesson_link = lesson_link

    async def handle(self, event: InboundEvent) -> Reply:
        """Answer one event; never raises."""
        if self._throttle is not None:
            verdict = self._throttle.check(event.sender.platform, event.sender.user_id)
            if verdict is Verdict.NOTICE:
                return self._say(self._caps(event.sender), THROTTLE_NOTICE)
            if verdict is Verdict.DROP:
                return Reply(())
        if self._admin is not None and self._admin.claims(event):
            admin_reply = await self._admin.handle(event)
            self._on_change()
            return admin_reply
        caps = self._caps(event.sender)
        try:
            answer = await self._database.run(lambda session: self._dispatch(session, event, caps))
            if isinstance(answer, _LessonAgain):
                answer = await self._lesson_again(event.sender.platform, answer, caps)
            reply = answer
        except UserError as refusal:
            return self._say(caps, _(await self._language(event.sender), str(refusal)))
        except Exception:
            log.exception(
                "failed to handle %s from %s user %s",
                type(event).__name__,
                event.sender.platform,
                event.sender.user_id,
            )
            return self._say(
                caps,
                _(
                    event.sender.language_code,
                    "Sorry, something went wrong on my side. Please try again in a minute.",
                ),
            )
        self._on_change()
        return reply

    # --- dispatch ----------------------------------------------------------------------------------

    def _caps(self, sender: Sender) -> Capabilities:
        return self._capabilities[sender.platform]

    def _dispatch(self, session: Session, event: InboundEvent, caps: Capabilities) -> Reply | _LessonAgain:
        now = self._clock.now()
        learner = usecases.touch_learner(session, self._catalog, event.sender, now)
        if isinstance(event, Command):
            return self._command(session, learner, event, caps, now)
        if isinstance(event, ButtonPressed):
            return self._button(session, learner, event.action, caps, now)
        if isinstance(event, QuizAnswered):
            delivery = usecases.delivery_for_poll(session, learner, event.sender.platform, event.poll_id)
            return self._quiz(session, learner, delivery, event.option_index, caps, now)
        if isinstance(event, LocationShared):
            try:
                choice = zone_for_location(event.latitude, event.longitude)
            except ValueError:  # not a place on Earth (a forged or broken update)
                choice = None
            if choice is None:
                raise UserError("I could not find a time zone for that place. Please type your city instead.")
            return self._zone_chosen(
                session,
                learner,
                self._awaited_enrollment(session, learner, "zone"),
                choice.name,
                choice.label,
                caps,
                now,
            )
        return self._text(session, learner, event.text, caps, now)

    def _command(
        self, session: Session, learner: Learner, command: Command, caps: Capabilities, now: dt.datetime
    ) -> Reply | _LessonAgain:
        args = command.args.strip()[:MAX_INPUT]
        name = command.name
        if name == "start":
            if args:
                cohort = cohorts.cohort_by_code(session, args)
                if cohort is not None:
                    return self._enrol(session, learner, cohort.course_slug, caps, now, cohort=cohort)
                return self._enrol(session, learner, args.lower(), caps, now)
            return self._courses(session, learner, caps, greeting=True)
        if name == "courses":
            return self._courses(session, learner, caps)
        if name == "help":
            return self._say(caps, _(learner.language, HELP))
        if name == "progress":
            return self._progress(session, learner, caps)
        if name == "schedule":
            return self._schedule(session, learner, caps, now)
        if name == "settings":
            return self._settings(session, learner, caps)
        if name == "mydata":
            content = privacy.personal_data(session, learner, now)
            note = self._say(caps, privacy.MY_DATA_NOTE).parts
            return Reply((*note, FilePart(privacy.MY_DATA_FILENAME, content)), private=True)
        if name == "forgetme":
            confirm: tuple[AnyButton, ...] = (
                Button("Yes, delete my data", encode("forget", learner.id or 0, "yes")),
                Button("No, keep it", encode("forget", learner.id or 0, "no")),
            )
            return self._say(caps, privacy.FORGET_QUESTION, confirm)
        if name in study_commands.COMMANDS:
            return study_commands.handle_command(session, self._catalog, learner, name, args, caps, now)
        if name in ("timezone", "tz"):
            enrollment = self._focus_or_none(session, learner)
            if not args:
                intro = _(learner.language, "Which time zone are you in?")
                return self._ask_zone(learner, enrollment, caps, intro=intro)
            return self._zone_typed(session, learner, enrollment, args, caps, now)
        course_hint, rest = self._split_course(args)
        if name == "time":
            enrollment = usecases.focus_enrollment(session, self._catalog, learner, course_hint)
            if not rest:
                return self._ask_time(learner, enrollment, caps)
            return self._time_chosen(session, learner, enrollment, _parse_time(rest), caps, now)
        if name in ("pace", "cadence"):
            enrollment = usecases.focus_enrollment(session, self._catalog, learner, course_hint)
            if not rest:
                return self._ask_pace(learner, enrollment, caps)
            return self._pace_chosen(session, learner, enrollment, _parse_cadence(rest), caps, now)
        enrollment = usecases.focus_enrollment(session, self._catalog, learner, course_hint)
        if name == "pause":
            until = _parse_pause(rest, learner, now)
            usecases.pause(self._catalog, learner, enrollment, until, now)
            session.add(enrollment)
            when = (
                _(learner.language, "until you send /resume")
                if until is None
                else _(learner.language, "until {moment}", moment=self._local(learner, until))
            )
            paused = _(
                learner.language,
                "Paused {course} {when}. Nothing is lost.",
                course=self._title(enrollment),
                when=when,
            )
            return self._say(caps, paused)
        if name == "resume":
            usecases.resume(self._catalog, learner, enrollment, now)
            session.add(enrollment)
            return self._say(
                caps, _(learner.language, "Welcome back! {next}", next=self._next_line(learner, enrollment))
            )
        if name == "next":
            return self._pull(session, learner, enrollment, caps, now)
        if name == "repeat":
            return self._repeat(session, learner, enrollment)
        if name == "stop":
            buttons: tuple[AnyButton, ...] = (
                Button(_(learner.language, "Yes, leave the course"), encode("stop", enrollment.id or 0)),
                Button(_(learner.language, "No, keep going"), encode("keep", enrollment.id or 0)),
            )
            return self._say(
                caps,
                _(
                    learner.language,
                    "Leave {course}? Your progress will be kept for a while, but lessons stop.",
                    course=self._title(enrollment),
                ),
                buttons,
            )
        return self._say(
            caps,
            _(
                learner.language,
                "I don't know the command /{name}. Send /help for the list.",
                name=_clip(name, 32),
            ),
        )

    def _button(
        self, session: Session, learner: Learner, raw_action: str, caps: Capabilities, now: dt.datetime
    ) -> Reply:
        action = decode(raw_action)
        if action is None:
            raise UserError("That button has expired. Send /help to see what I can do.")
        verb, args = action.verb, action.args
        if verb in study_commands.VERBS:
            return study_commands.handle_button(session, self._catalog, learner, verb, args, caps, now)
        if verb == "enrol" and len(args) == 1:
            return self._enrol(session, learner, args[0], caps, now)
        if verb == "done" and len(args) == 1:
            delivery, unlocked = usecases.mark_done(session, self._catalog, learner, _int(args[0]), now)
            enrollment = usecases.enrollment_of(session, learner, delivery.enrollment_id)
            extra = f" {self._next_line(learner, enrollment)}" if unlocked else ""
            return self._say(caps, _(learner.language, "Marked as done. Well done!") + extra)
        if verb == "quiz" and len(args) == 2:
            delivery = usecases.delivery_of(session, learner, _int(args[0]))
            return self._quiz(session, learner, delivery, _int(args[1]), caps, now)
        if verb == "zone" and len(args) == 2:
            zone_target = None
            if _int(args[0]) > 0:
                zone_target = usecases.enrollment_of(session, learner, _int(args[0]))
            return self._zone_chosen(session, learner, zone_target, args[1], args[1], caps, now)
        if verb == "forget" and len(args) == 2:
            if _int(args[0]) != learner.id:
                raise UserError(privacy.NOT_YOURS)
            if args[1] != "yes":
                return self._say(caps, privacy.KEPT)
            privacy.forget(session, learner)
            return self._say(caps, privacy.FORGOTTEN)
        enrollment = usecases.enrollment_of(session, learner, _int(args[0]) if args else -1)
        if verb == "time" and len(args) == 2:
            return self._time_chosen(session, learner, enrollment, _parse_time(args[1]), caps, now)
        if verb == "pace" and len(args) == 2:
            return self._pace_chosen(session, learner, enrollment, _parse_cadence(args[1]), caps, now)
        if verb == "next" and len(args) == 1:
            return self._pull(session, learner, enrollment, caps, now)
        if verb == "stop" and len(args) == 1:
            usecases.unenrol(session, enrollment, now)
            return self._say(
                caps,
                _(
                    learner.language,
                    "You have left {course}. Send /courses to join again.",
                    course=self._title(enrollment),
                ),
            )
        if verb == "keep" and len(args) == 1:
            return self._say(caps, _(learner.language, "Great, you stay enrolled."))
        raise UserError("That button has expired. Send /help to see what I can do.")

    def _text(
        self, session: Session, learner: Learner, text: str, caps: Capabilities, now: dt.datetime
    ) -> Reply:
        typed = text.strip()
        if not typed:
            return self._say(caps, _(learner.language, "Send /help to see what I can do."))
        step, enrollment = self._awaiting(session, learner)
        if step == "zone":
            return self._zone_typed(session, learner, enrollment, typed, caps, now)
        if step == "time" and enrollment is not None:
            return self._time_chosen(session, learner, enrollment, _parse_time(typed), caps, now)
        if step == "pace" and enrollment is not None:
            return self._pace_chosen(session, learner, enrollment, _parse_cadence(typed), caps, now)
        return self._say(
            caps, _(learner.language, "I only understand commands here. Send /help to see them.")
        )

    # --- onboarding steps --------------------------------------------------------------------------

    def _enrol(
        self,
        session: Session,
        learner: Learner,
        slug: str,
        caps: Capabilities,
        now: dt.datetime,
        *,
        cohort: Cohort | None = None,
    ) -> Reply:
        outcome = usecases.enrol(session, self._catalog, learner, slug[:64], now, cohort=cohort)
        enrollment = outcome.enrollment
        if outcome.already and enrollment.status is not EnrollmentStatus.ONBOARDING:
            return self._say(
                caps,
                _(
                    learner.language,
                    "You are already taking {course}. {next}",
                    course=self._title(enrollment),
                    next=self._next_line(learner, enrollment),
                ),
            )
        intro = _(
            learner.language,
            "Welcome to {course}! Lessons arrive at your own local time.",
            course=self._title(enrollment),
        )
        if learner.time_zone is None:
            first = _(learner.language, "First, which time zone are you in?")
            return self._ask_zone(learner, enrollment, caps, intro=f"{intro}\n\n{first}")
        session.add(learner)
        zone_line = _(learner.language, "Your time zone is {zone}.", zone=learner.time_zone)
        return self._ask_time(learner, enrollment, caps, intro=f"{intro} {zone_line}")

    def _ask_zone(
        self, learner: Learner, enrollment: Enrollment | None, caps: Capabilities, *, intro: str
    ) -> Reply:
        enrollment_id = enrollment.id if enrollment is not None else 0
        learner.awaiting = f"zone:{enrollment_id}"
        buttons: list[AnyButton] = [
            Button(zone.replace("_", " "), encode("zone", enrollment_id or 0, zone))
            for zone in likely_zones(learner.language)[:4]
        ]
        buttons.append(RequestLocationButton(_(learner.language, "📍 Send my location")))
        hint = _(
            learner.language,
            "Tap one, share your location, or type a city or zone "
            "(for example Berlin, Sao Paulo, Asia/Tokyo or +5:30).",
        )
        return self._say(caps, f"{intro}\n{hint}", tuple(buttons))

    def _zone_typed(
        self,
        session: Session,
        learner: Learner,
        enrollment: Enrollment | None,
        typed: str,
        caps: Capabilities,
        now: dt.datetime,
    ) -> Reply:
        try:
            choice = resolve_zone(typed[:MAX_INPUT])
        except ZoneNotFound as not_found:
            raise UserError(str(not_found)) from None
        reply = self._zone_chosen(session, learner, enrollment, choice.name, choice.label, caps, now)
        if choice.warning:
            return Reply(self._say(caps, choice.warning).parts + reply.parts, private=True)
        return reply

    def _zone_chosen(
        self,
        session: Session,
        learner: Learner,
        enrollment: Enrollment | None,
        zone_name: str,
        label: str,
        caps: Capabilities,
        now: dt.datetime,
    ) -> Reply:
        try:
            load_zone(zone_name)
        except ZoneNotFound as not_found:
            raise UserError(str(not_found)) from None
        usecases.set_zone(session, self._catalog, learner, zone_name, now)
        learner.awaiting = None
        local_now = now.astimezone(load_zone(zone_name)).strftime("%H:%M")
        confirmation = _(
            learner.language, "Time zone set: {zone} (it is {time} there now).", zone=label, time=local_now
        )
        if enrollment is not None and enrollment.status is EnrollmentStatus.ONBOARDING:
            return self._ask_time(learner, enrollment, caps, intro=confirmation)
        if enrollment is None:
            return self._say(caps, confirmation)
        reply = self._say(caps, f"{confirmation} {self._next_line(learner, enrollment)}")
        return study_commands.with_fresh_calendar(session, self._catalog, learner, reply, now)

    def _ask_time(
        self, learner: Learner, enrollment: Enrollment, caps: Capabilities, *, intro: str = ""
    ) -> Reply:
        learner.awaiting = f"time:{enrollment.id}"
        choices = list(dict.fromkeys([enrollment.local_time, *TIME_CHOICES]))
        buttons = tuple(
            Button(choice, encode("time", enrollment.id or 0, choice.replace(":", "")))
            for choice in choices[:6]
        )
        question = _(learner.language, "What time of day should lessons arrive?")
        text = f"{intro}\n\n{question} {_(learner.language, TIME_FORMS)}".strip()
        return self._say(caps, text, buttons)

    def _time_chosen(
        self,
        session: Session,
        learner: Learner,
        enrollment: Enrollment,
        wall: dt.time,
        caps: Capabilities,
        now: dt.datetime,
    ) -> Reply:
        usecases.set_time(self._catalog, learner, enrollment, wall, now)
        session.add(enrollment)
        learner.awaiting = None
        confirmation = _(
            learner.language, "Lessons will arrive at {time}, your time.", time=enrollment.local_time
        )
        if enrollment.status is EnrollmentStatus.ONBOARDING:
            return self._ask_pace(learner, enrollment, caps, intro=confirmation)
        reply = self._say(caps, f"{confirmation} {self._next_line(learner, enrollment)}")
        return study_commands.with_fresh_calendar(session, self._catalog, learner, reply, now)

    def _ask_pace(
        self, learner: Learner, enrollment: Enrollment, caps: Capabilities, *, intro: str = ""
    ) -> Reply:
        learner.awaiting = f"pace:{enrollment.id}"
        buttons = tuple(
            Button(_(learner.language, label), encode("pace", enrollment.id or 0, value))
            for label, value in CADENCE_CHOICES
        )
        text = f"{intro}\n\n{_(learner.language, 'How often?')} {_(learner.language, CADENCE_FORMS)}".strip()
        return self._say(caps, text, buttons)

    def _pace_chosen(
        self,
        session: Session,
        learner: Learner,
        enrollment: Enrollment,
        cadence: Cadence,
        caps: Capabilities,
        now: dt.datetime,
    ) -> Reply:
        usecases.set_cadence(self._catalog, learner, enrollment, cadence, now)
        learner.awaiting = None
        if enrollment.status is EnrollmentStatus.ONBOARDING:
            if learner.time_zone is None:
                session.add(enrollment)
                intro = _(learner.language, "Almost there: which time zone are you in?")
                return self._ask_zone(learner, enrollment, caps, intro=intro)
            usecases.activate(self._catalog, learner, enrollment, now)
            cohorts.hold_until_cohort_start(session, self._catalog, learner, enrollment, now)
            session.add(enrollment)
            return self._say(caps, self._welcome_plan(learner, enrollment, now))
        session.add(enrollment)
        reply = self._say(
            caps,
            _(
                learner.language,
                "Pace set to {cadence}. {next}",
                cadence=enrollment.cadence,
                next=self._next_line(learner, enrollment),
            ),
        )
        return study_commands.with_fresh_calendar(session, self._catalog, learner, reply, now)

    def _welcome_plan(self, learner: Learner, enrollment: Enrollment, now: dt.datetime) -> str:
        plan = usecases.upcoming_releases(self._catalog, learner, enrollment, now, count=2)
        lang = learner.language
        lines = [
            _(
                lang,
                "You're all set: {cadence} at {time} ({zone}).",
                cadence=enrollment.cadence,
                time=enrollment.local_time,
                zone=learner.time_zone,
            )
        ]
        for number, (_slug, at) in enumerate(plan, start=enrollment.lessons_released + 1):
            when = _(lang, "right now") if at <= now else self._local(learner, at)
            lines.append(_(lang, "Lesson {number}: {when}", number=number, when=when))
        lines.append(_(lang, "Send /help any time to see what I can do."))
        return "\n".join(lines)

    # --- lessons, quizzes and reports --------------------------------------------------------------

    def _pull(
        self, session: Session, learner: Learner, enrollment: Enrollment, caps: Capabilities, now: dt.datetime
    ) -> Reply:
        outcome = usecases.pull_next(session, self._catalog, learner, enrollment, now)
        if isinstance(outcome, Delivery):
            return self._say(caps, _(learner.language, "Here comes your next lesson."))
        reasons = {
            "finished": N_("You have received every lesson of this course. 🎉"),
            "gated_done": N_("The next lesson unlocks once you press “Done” on the last one."),
            "gated_quiz": N_("The next lesson unlocks once you answer the last lesson's quiz."),
            "not_before": N_("The next lesson is not open yet."),
            "min_days": N_("The course asks for a little time between these lessons."),
        }
        text = _(learner.language, reasons.get(outcome.reason, N_("The next lesson is not available yet.")))
        if outcome.unlocks_at is not None:
            text += " " + _(
                learner.language, "It arrives {moment}.", moment=self._local(learner, outcome.unlocks_at)
            )
        return self._say(caps, text)

    def _repeat(self, session: Session, learner: Learner, enrollment: Enrollment) -> _LessonAgain:
        if enrollment.last_lesson_slug is None:
            not_yet = _(learner.language, "You have not received a lesson yet.")
            raise UserError(f"{not_yet} {self._next_line(learner, enrollment)}")
        course = usecases.course_for(self._catalog, enrollment)
        lesson = course.lesson(enrollment.last_lesson_slug)
        delivery = session.exec(
            select(Delivery).where(
                Delivery.enrollment_id == enrollment.id, Delivery.lesson_slug == enrollment.last_lesson_slug
            )
        ).first()
        if lesson is None or delivery is None:
            raise UserError("That lesson is no longer part of the course.")
        return _LessonAgain(course, lesson, learner.language, delivery.id or 0, enrollment.id or 0)

    async def _lesson_again(self, platform: str, again: _LessonAgain, caps: Capabilities) -> Reply:
        """The last lesson rendered once more, with its Discuss link: the learner has reached it."""
        discuss_url = None
        if self._lesson_link is not None:
            discuss_url = await self._lesson_link(platform, again.course, again.lesson, again.enrollment_id)
        course = again.course
        language = lesson_language(course, again.language)
        parts: Sequence[OutboundPart] = render_lesson(
            again.lesson.in_language(language),
            dataclasses.replace(caps, native_quiz=False),
            delivery_id=again.delivery_id,
            enrollment_id=again.enrollment_id,
            lesson_count=len(course.lessons),
            next_allowed=False,
            discuss_url=discuss_url,
            course_title=course.title,
            language=language,
        )
        return Reply(tuple(parts), private=True)

    def _quiz(
        self,
        session: Session,
        learner: Learner,
        delivery: Delivery,
        option_index: int,
        caps: Capabilities,
        now: dt.datetime,
    ) -> Reply:
        result = usecases.answer_quiz(session, self._catalog, learner, delivery, option_index, now)
        if result.first_answer:
            study_commands.start_card_for_answer(
                session, self._catalog, learner, delivery, result.correct, now
            )
        feedback = render_quiz_feedback(result.quiz, result.chosen_index, caps)
        notes = []
        if not result.first_answer:
            notes.append(_(learner.language, "(Your first answer is the one that counts for your score.)"))
        if result.unlocked:
            enrollment = usecases.enrollment_of(session, learner, delivery.enrollment_id)
            notes.append(self._next_line(learner, enrollment))
        extra = self._say(caps, " ".join(notes)).parts if notes else ()
        return Reply((feedback, *extra), private=True)

    def _courses(
        self, session: Session, learner: Learner, caps: Capabilities, *, greeting: bool = False
    ) -> Reply:
        courses = self._catalog.courses()
        if not courses:
            return self._say(
                caps, _(learner.language, "No courses are open right now. Please check back soon.")
            )
        lines = (
            [
                _(
                    learner.language,
                    "Hello! I deliver short courses one lesson at a time, at your own local time.",
                )
            ]
            if greeting
            else []
        )
        lines.append(_(learner.language, "Pick a course:"))
        for course in courses:
            count = _(learner.language, "{count} lessons", count=len(course.lessons))
            lines.append(f"• {course.title} ({count}) – {course.description}")
        buttons = tuple(Button(course.title[:40], encode("enrol", course.slug)) for course in courses)
        return self._say(caps, "\n".join(lines), buttons)

    def _progress(self, session: Session, learner: Learner, caps: Capabilities) -> Reply:
        reports = usecases.progress(session, self._catalog, learner)
        if not reports:
            return self._say(
                caps, _(learner.language, "You are not taking a course yet. Send /courses to pick one.")
            )
        lines = []
        lang = learner.language
        for report in reports:
            status = report.enrollment.status
            line = _(
                lang,
                "{course}: lesson {released} of {total}",
                course=report.course.title,
                released=report.released,
                total=report.total,
            )
            if report.quiz_answered:
                line += _(
                    lang,
                    ", quiz score {right}/{answered}",
                    right=report.quiz_right,
                    answered=report.quiz_answered,
                )
            if status is EnrollmentStatus.FINISHED:
                line += _(lang, " – finished 🎉")
            else:
                line += f". {self._next_line(learner, report.enrollment)}"
            lines.append(line)
        return self._say(caps, "\n".join(lines))

    def _schedule(self, session: Session, learner: Learner, caps: Capabilities, now: dt.datetime) -> Reply:
        enrollments = usecases.open_enrollments(session, learner)
        if not enrollments:
            return self._say(
                caps, _(learner.language, "You are not taking a course yet. Send /courses to pick one.")
            )
        lines = []
        for enrollment in enrollments:
            course = usecases.course_for(self._catalog, enrollment)
            lines.append(
                _(
                    learner.language,
                    "{course} ({cadence} at {time}, {zone}):",
                    course=course.title,
                    cadence=enrollment.cadence,
                    time=enrollment.local_time,
                    zone=learner.time_zone,
                )
            )
            plan = usecases.upcoming_releases(self._catalog, learner, enrollment, now)
            if not plan:
                lines.append(f"  {self._next_line(learner, enrollment)}")
            for slug, at in plan:
                lesson = course.lesson(slug)
                number = (course.index_of(slug) or 0) + 1
                title = (
                    lesson.in_language(lesson_language(course, learner.language)).title if lesson else slug
                )
                lines.append(f"  {number}. {title} – {self._local(learner, at)}")
        return self._say(caps, "\n".join(lines))

    def _settings(self, session: Session, learner: Learner, caps: Capabilities) -> Reply:
        lang = learner.language
        lines = [_(lang, "Time zone: {zone}", zone=learner.time_zone or _(lang, "not set yet"))]
        for enrollment in usecases.open_enrollments(session, learner):
            status = enrollment.status.value
            lines.append(
                _(
                    lang,
                    "{course}: {cadence} at {time} ({status})",
                    course=self._title(enrollment),
                    cadence=enrollment.cadence,
                    time=enrollment.local_time,
                    status=_(lang, status),
                )
            )
        lines.append(_(lang, "Language: {language}", language=study_commands.language_name(lang or "en")))
        lines.append(_(lang, "Change them with /timezone, /time, /pace and /language."))
        return self._say(caps, "\n".join(lines))

    # --- helpers -----------------------------------------------------------------------------------

    def _awaiting(self, session: Session, learner: Learner) -> tuple[str, Enrollment | None]:
        """The onboarding step the learner's next text answers, and the learner's own enrollment it is for."""
        step, _sep, enrollment_id = (learner.awaiting or "").partition(":")
        if not enrollment_id.isdigit() or int(enrollment_id) == 0:
            return step, None
        enrollment = session.get(Enrollment, int(enrollment_id))
        return step, enrollment if enrollment is not None and enrollment.learner_id == learner.id else None

    def _awaited_enrollment(self, session: Session, learner: Learner, step: str) -> Enrollment | None:
        awaiting_step, enrollment = self._awaiting(session, learner)
        if awaiting_step == step and enrollment is not None:
            return enrollment
        return self._focus_or_none(session, learner)

    def _focus_or_none(self, session: Session, learner: Learner) -> Enrollment | None:
        enrollments = usecases.open_enrollments(session, learner)
        return enrollments[0] if enrollments else None

    def _split_course(self, args: str) -> tuple[str, str]:
        """`/pause async-learning 3` names a course first; plain `/pause 3` means the current course."""
        first, _sep, rest = args.partition(" ")
        if first and self._catalog.get(first.lower()) is not None:
            return first.lower(), rest.strip()
        return "", args

    def _title(self, enrollment: Enrollment) -> str:
        course = self._catalog.get(enrollment.course_slug)
        return f"“{course.title}”" if course else enrollment.course_slug

    def _local(self, learner: Learner, moment: dt.datetime) -> str:
        zone = learner_zone(learner)
        local = moment.astimezone(zone)
        return _(
            learner.language,
            "{date} at {time} ({zone})",
            date=local_date_text(moment, zone, learner.language),
            time=f"{local:%H:%M}",
            zone=learner.time_zone or "UTC",
        )

    def _next_line(self, learner: Learner, enrollment: Enrollment) -> str:
        lang = learner.language
        if enrollment.status is EnrollmentStatus.FINISHED:
            return _(lang, "You have finished this course. 🎉")
        if enrollment.status is EnrollmentStatus.PAUSED and enrollment.next_release_at is None:
            return _(lang, "It is paused; send /resume to carry on.")
        if enrollment.waiting_for == "done":
            return _(lang, "Press “Done” on your last lesson to unlock the next one.")
        if enrollment.waiting_for == "quiz":
            return _(lang, "Answer the quiz of your last lesson to unlock the next one.")
        if enrollment.next_release_at is None:
            return _(lang, "Your next lesson is not scheduled yet.")
        return _(lang, "Next lesson: {moment}.", moment=self._local(learner, enrollment.next_release_at))

    async def _language(self, sender: Sender) -> str | None:
        """The learner's language (chosen, else their platform's), read again after a refused event."""

        def read(session: Session) -> str | None:
            learner = usecases.find_learner(session, sender.platform, sender.user_id)
            return learner.language if learner is not None and learner.language else sender.language_code

        try:
            return await self._database.run(read)
        except Exception:
            return sender.language_code

    def _say(self, caps: Capabilities, text: str, buttons: tuple[AnyButton, ...] = ()) -> Reply:
        """A core phrase, escaped for the platform's dialect (it may quote what the learner typed)."""
        return say(caps, text, buttons)


# --- argument parsing, each failing with the valid forms ---------------------------------------------


def _clip(text: str, limit: int) -> str:
    printable = "".join(ch for ch in text if ch.isprintable())
    return printable if len(printable) <= limit else printable[: limit - 1] + "…"


def _int(text: str) -> int:
    if not text.isdigit() or len(text) > 12:
        raise UserError("That button has expired. Send /help to see what I can do.")
    return int(text)


def _parse_time(text: str) -> dt.time:
    try:
        return parse_time_of_day(text[:MAX_INPUT])
    except TimeOfDayError as error:
        raise UserError(str(error)) from None


def _parse_cadence(text: str) -> Cadence:
    try:
        return parse_cadence(text[:MAX_INPUT])
    except CadenceError as error:
        raise UserError(str(error)) from None


_DAYS = re.compile(r"^(\d{1,3})\s*(d|day|days)?$", re.IGNORECASE)


def _parse_pause(text: str, learner: Learner, now: dt.datetime) -> dt.datetime | None:
    """None pauses until /resume; "3" pauses 3 days; "2026-12-24" until that local date begins."""
    text = text.strip()
    if not text:
        return None
    days = _DAYS.match(text)
    if days:
        count = int(days.group(1))
        if not 1 <= count <= 365:
            raise UserError(PAUSE_FORMS)
        return now + dt.timedelta(days=count)
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise UserError(f"I could not read “{_clip(text, 40)}”. {PAUSE_FORMS}") from None
    zone = learner_zone(learner)
    until = dt.datetime.combine(day, dt.time(0, 0), tzinfo=zone).astimezone(dt.UTC)
    if until <= now or until - now > dt.timedelta(days=366):
        raise UserError(f"Please pick a date in the coming year. {PAUSE_FORMS}")
    return until
