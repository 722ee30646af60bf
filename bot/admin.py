"""Instructor operations: who may run them, the audit trail, and the operations themselves.

Every operation takes the `Actor` asking for it and checks the `AdminPolicy` here, in the core,
whatever adapter or command line the request came through. A refusal changes nothing but leaves one
`AdminAction` row (allowed=False) behind, committed on its own; an allowed operation commits its
audit row in the same transaction as its effect, and a failed one records why it failed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from sqlalchemy import func
from sqlmodel import Session, col, select

from bot import broadcasts, cohorts
from bot.broadcasts import BroadcastDraft, BroadcastProgress
from bot.cadence import CadenceError, TimeOfDayError, format_time_of_day, parse_cadence, parse_time_of_day
from bot.catalog import Catalog
from bot.clock import Clock
from bot.content import Course
from bot.db import Database
from bot.export import Export, Progress, export_courses
from bot.learner_admin import apply_learner_action
from bot.models import AdminAction, Cohort, Enrollment
from bot.ports import Sender
from bot.reloading import RELOAD_ACTION, ReloadOutcome, latest_reload_request, log_reload, stranded_learners
from bot.roster import LearnerRecord, RosterPage, learner_record, roster_page
from bot.stats import CourseStats, course_stats
from bot.usecases import UserError

log = logging.getLogger(__name__)
T = TypeVar("T")

CLI_PLATFORM = "cli"
"""The command-line operator: trusted (they hold the database), audited under their OS user name."""
REFUSAL = "Sorry, that command is for the course's instructors."
MAX_ARGUMENTS = 4000
MAX_OUTCOME = 300
MAX_ANNOUNCEMENT_TEXT = 4000
MAX_AUDIT_ROWS = 1000


class AdminError(UserError):
    """The operation cannot be done as asked; the message says why, in plain words."""


class NotAuthorized(AdminError):
    """The actor is not an instructor."""


@dataclass(frozen=True)
class Actor:
    """Who asks for an admin operation."""

    platform: str
    user_id: str
    display_name: str = ""
    role_hint: bool = False
    """The platform says the user holds the configured admin role (Discord)."""

    @classmethod
    def from_sender(cls, sender: Sender) -> Actor:
        return cls(sender.platform, sender.user_id, sender.display_name, sender.is_admin_hint)

    @classmethod
    def operator(cls, user_name: str) -> Actor:
        return cls(CLI_PLATFORM, user_name[:64] or "unknown", user_name)

    @property
    def label(self) -> str:
        return f"{self.platform}:{self.user_id}"


class AdminPolicy:
    """Instructors by platform and user id; on `role_hint_platforms` a role the platform reports too."""

    def __init__(
        self, admins: Mapping[str, Iterable[str]] | None = None, *, role_hint_platforms: Iterable[str] = ()
    ) -> None:
        self._admins = {platform: frozenset(map(str, ids)) for platform, ids in (admins or {}).items()}
        self._role_hint_platforms = frozenset(role_hint_platforms)

    def allows(self, actor: Actor) -> bool:
        if actor.platform == CLI_PLATFORM:
            return True
        if actor.user_id in self._admins.get(actor.platform, frozenset()):
            return True
        return actor.role_hint and actor.platform in self._role_hint_platforms


class AnnouncementScheduler(Protocol):
    """Stores a dated announcement that survives restarts and arranges for it to fire."""

    async def schedule_announcement(
        self, course_slug: str, text: str, run_at: dt.datetime, created_by: str
    ) -> int: ...


# --- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CohortInfo:
    cohort: Cohort
    members: int


# --- parsing shared by chat and the command line -------------------------------------------------

_WALL = re.compile(r"^\d{1,2}:\d{2}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
WHEN_FORMS = "Give the time as 2026-05-01T09:00+02:00 (with an offset) or as 2026-05-01 07:00 (UTC)."


def parse_when(text: str) -> tuple[dt.datetime, str]:
    """The instant at the start of `text` and the rest of the text.

    Accepts an ISO datetime with an offset (one word, `Z` allowed) or `YYYY-MM-DD HH:MM` taken as UTC.
    """
    words = text.split(maxsplit=2)
    if len(words) >= 2 and _DAY.match(words[0]) and _WALL.match(words[1]):
        try:
            moment = dt.datetime.fromisoformat(f"{words[0]}T{words[1].zfill(5)}").replace(tzinfo=dt.UTC)
        except ValueError:
            raise AdminError(f"“{words[0]} {words[1]}” is not a real date and time. {WHEN_FORMS}") from None
        return moment, words[2] if len(words) > 2 else ""
    if not words:
        raise AdminError(WHEN_FORMS)
    try:
        moment = dt.datetime.fromisoformat(words[0])
    except ValueError:
        raise AdminError(f"I could not read the time “{words[0][:40]}”. {WHEN_FORMS}") from None
    if moment.tzinfo is None:
        raise AdminError(f"“{words[0][:40]}” has no UTC offset. {WHEN_FORMS}")
    return moment.astimezone(dt.UTC), text.split(maxsplit=1)[1] if len(words) > 1 else ""


def _arguments(**values: object) -> str:
    shown = {key: value for key, value in values.items() if value is not None and value != ""}
    if not shown:
        return ""
    return json.dumps(shown, ensure_ascii=False, default=str, separators=(", ", ": "))[:MAX_ARGUMENTS]


# --- the operations ------------------------------------------------------------------------------


class AdminTools:
    """The instructor's operations; each checks the actor and writes the audit trail."""

    def __init__(
        self,
        database: Database,
        catalog: Catalog,
        clock: Clock,
        policy: AdminPolicy,
        *,
        courses_root: Path,
        announcements: AnnouncementScheduler | None = None,
        wake_sender: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._database = database
        self._catalog = catalog
        self._clock = clock
        self._policy = policy
        self._courses_root = courses_root
        self._announcements = announcements
        self._wake_sender = wake_sender
        self._reload_seen: int | None = None

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    # --- authorization and audit -------------------------------------------------------------------

    def is_admin(self, actor: Actor) -> bool:
        return self._policy.allows(actor)

    async def authorize(self, actor: Actor, action: str, arguments: str) -> bool:
        """True for an instructor; otherwise the refusal is audited (and committed) and False returned."""
        if self._policy.allows(actor):
            return True
        now = self._clock.now()
        await self._database.run(
            lambda session: session.add(
                audit_row(actor, action, arguments, now, allowed=False, outcome="refused")
            )
        )
        log.warning("refused admin action %s by %s", action, actor.label)
        return False

    async def record_failure(self, actor: Actor, action: str, arguments: str, reason: str) -> None:
        """Audit an allowed request that could not be carried out (bad arguments, nothing to do)."""
        now = self._clock.now()
        outcome = f"failed: {reason}"
        await self._database.run(
            lambda session: session.add(
                audit_row(actor, action, arguments, now, allowed=True, outcome=outcome)
            )
        )

    async def _require(self, actor: Actor, action: str, arguments: str) -> None:
        if not await self.authorize(actor, action, arguments):
            raise NotAuthorized(REFUSAL)

    async def _audited(
        self,
        actor: Actor,
        action: str,
        arguments: str,
        work: Callable[[Session, dt.datetime], T],
        *,
        outcome: str = "ok",
    ) -> T:
        """Run `work` and its audit row in one transaction, after the authorization check."""
        await self._require(actor, action, arguments)
        now = self._clock.now()

        def unit(session: Session) -> T:
            try:
                result = work(session, now)
            except UserError as error:
                raise AdminError(str(error)) from None
            session.add(audit_row(actor, action, arguments, now, allowed=True, outcome=outcome))
            return result

        try:
            return await self._database.run(unit)
        except AdminError as error:
            await self.record_failure(actor, action, arguments, str(error))
            raise
        except Exception:
            await self.record_failure(actor, action, arguments, "unexpected error (see the log)")
            raise

    # --- reading -----------------------------------------------------------------------------------

    async def stats(self, actor: Actor, course_slug: str | None = None) -> list[CourseStats]:
        """The numbers of one course, or of every course when none is named."""

        def work(session: Session, _now: dt.datetime) -> list[CourseStats]:
            courses = [self._course(course_slug)] if course_slug else self._catalog.courses()
            return [course_stats(session, course) for course in courses]

        return await self._audited(actor, "stats", _arguments(course=course_slug), work)

    async def learners(
        self, actor: Actor, course_slug: str | None = None, filter_text: str = "", page: int = 1
    ) -> RosterPage:
        def work(session: Session, _now: dt.datetime) -> RosterPage:
            slug = self._course(course_slug).slug if course_slug else None
            return roster_page(session, self._catalog, slug, filter_text, page)

        return await self._audited(
            actor, "learners", _arguments(course=course_slug, filter=filter_text, page=page), work
        )

    async def learner(self, actor: Actor, learner_id: int) -> LearnerRecord:
        def work(session: Session, _now: dt.datetime) -> LearnerRecord:
            record = learner_record(session, learner_id)
            if record is None:
                raise AdminError(f"There is no learner {learner_id}.")
            return record

        return await self._audited(actor, "learner", _arguments(id=learner_id), work)

    async def audit_log(self, actor: Actor, limit: int = 20) -> list[AdminAction]:
        """The newest audit rows first."""
        limit = min(max(1, limit), MAX_AUDIT_ROWS)

        def work(session: Session, _now: dt.datetime) -> list[AdminAction]:
            statement = select(AdminAction).order_by(col(AdminAction.id).desc()).limit(limit)
            return list(session.exec(statement).all())

        return await self._audited(actor, "audit", _arguments(limit=limit), work)

    async def export(
        self, actor: Actor, course_slug: str | None = None, progress: Progress | None = None
    ) -> Export:
        def work(session: Session, now: dt.datetime) -> Export:
            slug = self._course(course_slug).slug if course_slug else None
            return export_courses(session, self._catalog, slug, now, progress)

        return await self._audited(actor, "export", _arguments(course=course_slug), work)

    # --- one learner -------------------------------------------------------------------------------

    async def learner_action(
        self,
        actor: Actor,
        learner_id: int,
        action: str,
        *,
        course_slug: str | None = None,
        lesson_slug: str | None = None,
    ) -> str:
        """pause, resume, move (to `lesson_slug`), unlock, reset or remove; returns what was done."""
        return await self._audited(
            actor,
            f"learner.{action}",
            _arguments(id=learner_id, action=action, course=course_slug, lesson=lesson_slug),
            lambda session, now: apply_learner_action(
                session,
                self._catalog,
                learner_id,
                action,
                now,
                course_slug=course_slug,
                lesson_slug=lesson_slug,
            ),
        )

    # --- broadcasts --------------------------------------------------------------------------------

    async def prepare_broadcast(self, actor: Actor, target: str, text: str) -> BroadcastDraft:
        """Store a draft and count its audience; nothing is sent until `confirm_broadcast`."""
        return await self._audited(
            actor,
            "broadcast.prepare",
            _arguments(target=target, text=text),
            lambda session, now: broadcasts.create_draft(
                session, self._catalog, target, text, actor.label, now
            ),
        )

    async def confirm_broadcast(
        self, actor: Actor, broadcast_id: int, *, at_local_time: bool
    ) -> tuple[BroadcastProgress, bool]:
        """Queue a draft, now or at each learner's own next delivery time, and wake the sender.

        Idempotent: a second confirmation returns (progress, False) and queues nothing.
        """
        progress, queued = await self._audited(
            actor,
            "broadcast.confirm",
            _arguments(id=broadcast_id, at_local_time=at_local_time),
            lambda session, now: broadcasts.queue(
                session, broadcast_id, at_local_time=at_local_time, now=now
            ),
        )
        if queued and self._wake_sender is not None:
            await self._wake_sender()
        return progress, queued

    async def cancel_broadcast(self, actor: Actor, broadcast_id: int) -> BroadcastProgress:
        """Cancel a draft, or the deliveries of a queued broadcast that have not gone out yet."""
        return await self._audited(
            actor,
            "broadcast.cancel",
            _arguments(id=broadcast_id),
            lambda session, now: broadcasts.cancel(session, broadcast_id, now),
        )

    async def broadcast_status(self, actor: Actor, broadcast_id: int) -> BroadcastProgress:
        return await self._audited(
            actor,
            "broadcast.status",
            _arguments(id=broadcast_id),
            lambda session, now: broadcasts.broadcast_progress(session, broadcast_id, now),
        )

    # --- announcements, cohorts, reload ------------------------------------------------------------

    async def announce(self, actor: Actor, course_slug: str, text: str, run_at: dt.datetime) -> int:
        """Schedule a dated announcement to a course; returns its id."""
        arguments = _arguments(course=course_slug, at=run_at.isoformat(), text=text)
        await self._require(actor, "announce", arguments)
        try:
            course = self._course(course_slug)
            body = text.strip()
            if not body:
                raise AdminError("The announcement needs some text: announce <when> <course> <text>.")
            if len(body) > MAX_ANNOUNCEMENT_TEXT:
                raise AdminError(f"An announcement is at most {MAX_ANNOUNCEMENT_TEXT} characters.")
            if run_at.tzinfo is None:
                raise AdminError(WHEN_FORMS)
            if run_at <= self._clock.now():
                raise AdminError("That time has passed: an announcement must be in the future.")
            if self._announcements is None:
                raise AdminError("Announcements cannot be scheduled from here.")
            try:
                announcement_id = await self._announcements.schedule_announcement(
                    course.slug, body, run_at.astimezone(dt.UTC), actor.label[:96]
                )
            except ValueError as error:
                raise AdminError(str(error)) from None
        except AdminError as error:
            await self.record_failure(actor, "announce", arguments, str(error))
            raise
        now = self._clock.now()
        done = _arguments(course=course_slug, at=run_at.isoformat(), text=text, id=announcement_id)
        await self._database.run(
            lambda session: session.add(audit_row(actor, "announce", done, now, allowed=True, outcome="ok"))
        )
        return announcement_id

    async def create_cohort(
        self,
        actor: Actor,
        course_slug: str,
        name: str,
        *,
        start_date: dt.date | None = None,
        cadence: str | None = None,
        local_time: str | None = None,
    ) -> Cohort:
        """A new cohort with a fresh invite code; its pace and time, if given, are its learners' defaults."""
        arguments = _arguments(
            course=course_slug, name=name, start=start_date, cadence=cadence, time=local_time
        )

        def work(session: Session, now: dt.datetime) -> Cohort:
            course = self._course(course_slug)
            cohort_name = name.strip().lower()
            if not cohorts.NAME_PATTERN.match(cohort_name):
                raise AdminError("A cohort name is 1-64 letters, digits, - or _ (for example spring-2026).")
            pace = _checked_cadence(cadence)
            wall = _checked_time(local_time)
            taken = session.exec(
                select(Cohort).where(col(Cohort.course_slug) == course.slug, col(Cohort.name) == cohort_name)
            ).first()
            if taken is not None:
                raise AdminError(f"{course.slug} already has a cohort called {cohort_name}.")
            code = cohorts.new_code()
            while session.exec(select(Cohort).where(col(Cohort.code) == code)).first() is not None:
                code = cohorts.new_code()
            cohort = Cohort(
                course_slug=course.slug,
                name=cohort_name,
                code=code,
                start_date=start_date,
                cadence=pace,
                local_time=wall,
                created_at=now,
            )
            session.add(cohort)
            session.flush()
            return cohort

        return await self._audited(actor, "cohort.create", arguments, work)

    async def cohorts(self, actor: Actor, course_slug: str | None = None) -> list[CohortInfo]:
        def work(session: Session, _now: dt.datetime) -> list[CohortInfo]:
            statement = select(Cohort).order_by(col(Cohort.course_slug), col(Cohort.id))
            if course_slug:
                statement = statement.where(col(Cohort.course_slug) == course_slug)
            members = dict(
                session.execute(
                    select(col(Enrollment.cohort_id), func.count())
                    .where(col(Enrollment.cohort_id).is_not(None))
                    .group_by(col(Enrollment.cohort_id))
                ).all()
            )
            return [
                CohortInfo(cohort, int(members.get(cohort.id, 0))) for cohort in session.exec(statement).all()
            ]

        return await self._audited(actor, "cohort.list", _arguments(course=course_slug), work)

    async def reload(self, actor: Actor) -> ReloadOutcome:
        """Re-read the course files; valid courses replace their running version, invalid ones don't."""
        await self._require(actor, RELOAD_ACTION, "")
        try:
            report = await asyncio.to_thread(self._catalog.reload, self._courses_root)
        except Exception:
            await self.record_failure(actor, RELOAD_ACTION, "", "unexpected error (see the log)")
            raise
        now = self._clock.now()

        def unit(session: Session) -> ReloadOutcome:
            outcome = ReloadOutcome(report, stranded_learners(session, report))
            row = audit_row(actor, RELOAD_ACTION, "", now, allowed=True, outcome=outcome.audit_outcome())
            session.add(row)
            session.flush()
            self._reload_seen = max(self._reload_seen or 0, row.id or 0)
            return outcome

        outcome = await self._database.run(unit)
        log_reload(outcome)
        return outcome

    async def request_reload(self, actor: Actor, errors: int = 0) -> None:
        """Record a reload request (from the command line) for every running bot to carry out."""
        outcome = "requested" if not errors else f"requested; the files have {errors} error(s)"
        await self._audited(actor, RELOAD_ACTION, "", lambda _session, _now: None, outcome=outcome)

    async def apply_requested_reloads(self) -> ReloadOutcome | None:
        """Reload if another process (the command line, another worker) asked since the last look.

        The first call only notes where the audit trail stands.
        """
        latest = await self._database.run(latest_reload_request)
        if self._reload_seen is None or latest <= self._reload_seen:
            self._reload_seen = max(self._reload_seen or 0, latest)
            return None
        self._reload_seen = latest
        report = await asyncio.to_thread(self._catalog.reload, self._courses_root)
        stranded = await self._database.run(lambda session: stranded_learners(session, report))
        outcome = ReloadOutcome(report, stranded)
        log_reload(outcome)
        return outcome

    # --- helpers -----------------------------------------------------------------------------------

    def _course(self, slug: str | None) -> Course:
        course = self._catalog.get((slug or "").strip().lower())
        if course is None:
            known = ", ".join(course.slug for course in self._catalog.courses()) or "none loaded"
            raise AdminError(f"There is no course “{(slug or '')[:64]}”. Courses: {known}.")
        return course


def audit_row(
    actor: Actor, action: str, arguments: str, now: dt.datetime, *, allowed: bool, outcome: str
) -> AdminAction:
    """One row of the audit trail, each value cut to its column's size."""
    return AdminAction(
        platform=actor.platform[:16],
        user_id=actor.user_id[:64],
        action=action[:64],
        arguments=arguments[:MAX_ARGUMENTS],
        allowed=allowed,
        at=now,
        outcome=outcome[:MAX_OUTCOME],
    )


def _checked_cadence(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return str(parse_cadence(text))
    except CadenceError as error:
        raise AdminError(str(error)) from None


def _checked_time(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return format_time_of_day(parse_time_of_day(text))
    except TimeOfDayError as error:
        raise AdminError(str(error)) from None
