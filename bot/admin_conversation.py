"""The instructor's side of the chat: admin commands in, operations run, plain replies (and files) out.

`Conversation` hands every admin command and admin button here before it looks at the learner. The
authorization check comes first, so a non-instructor learns nothing from argument errors and leaves
no trace but the refused audit row.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

from bot.actions import decode, encode
from bot.admin import REFUSAL, Actor, AdminError, AdminTools, parse_when
from bot.broadcasts import BroadcastProgress
from bot.charts import funnel_png
from bot.clock import ensure_utc
from bot.learner_admin import LEARNER_ACTIONS
from bot.markup import BLOCK_SEPARATOR, escape_user_text, render_markdown
from bot.models import Delivery
from bot.ports import (
    AnyButton,
    Button,
    ButtonPressed,
    Capabilities,
    Command,
    FilePart,
    InboundEvent,
    OutboundPart,
    Reply,
    Sender,
)
from bot.render import render_text_reply, say
from bot.roster import LearnerRecord, RosterPage
from bot.stats import summary_lines

log = logging.getLogger(__name__)

ADMIN_COMMANDS: tuple[tuple[str, str], ...] = (
    ("stats", "Course numbers and a funnel chart: stats [course]"),
    ("learners", "Learners: learners [course] [active|paused|finished|unreachable|name] [page N]"),
    ("learner", "One learner: learner <id> [course] [pause|resume|move <lesson>|unlock|reset|remove]"),
    ("broadcast", "Message a course: broadcast <course|cohort:name> <text>; broadcast status <id>"),
    ("announce", "Dated announcement: announce <when> <course> <text>"),
    ("export", "CSV of enrollments and quiz answers: export [course]"),
    ("reload", "Re-read the course files without a restart"),
    ("cohort", "cohort create <course> <name> [start date] [pace] [time]; cohort list [course]"),
    ("audit", "Recent instructor actions: audit [count]"),
    ("admin", "The instructor commands"),
)
ADMIN_COMMAND_NAMES = frozenset(name for name, _ in ADMIN_COMMANDS)
ADMIN_VERBS = frozenset({"bcast"})
BROADCAST_MODES = {"now": False, "local": True}
MAX_CHARTS = 5
MAX_HISTORY = 40
MAX_AUDIT = 50


class Usage(AdminError):
    """The command's arguments are not in a form it takes."""


def _help() -> str:
    lines = ["Instructor commands:"]
    lines.extend(f"/{name} – {description}" for name, description in ADMIN_COMMANDS)
    lines.append("Times are UTC unless an offset is given.")
    return "\n".join(lines)


class BroadcastWatcher(Protocol):
    def watch_broadcast(self, sender: Sender, broadcast_id: int) -> None:
        """Keep a status message about a queued broadcast up to date in `sender`'s private chat."""
        ...


class AdminConversation:
    """Answers admin commands and the broadcast buttons; never raises."""

    def __init__(
        self,
        tools: AdminTools,
        capabilities: Mapping[str, Capabilities],
        *,
        progress: BroadcastWatcher | None = None,
    ) -> None:
        self._tools = tools
        self._capabilities = dict(capabilities)
        self._progress = progress

    def claims(self, event: InboundEvent) -> bool:
        """True for the events this class answers: admin commands and admin buttons."""
        if isinstance(event, Command):
            return event.name in ADMIN_COMMAND_NAMES
        if isinstance(event, ButtonPressed):
            action = decode(event.action)
            return action is not None and action.verb in ADMIN_VERBS
        return False

    async def handle(self, event: InboundEvent) -> Reply:
        caps = self._capabilities[event.sender.platform]
        actor = Actor.from_sender(event.sender)
        if isinstance(event, Command):
            action, arguments = event.name, event.args.strip()
        elif isinstance(event, ButtonPressed):
            action, arguments = "button", event.action
        else:
            return say(caps, REFUSAL)
        try:
            if not await self._tools.authorize(actor, action, arguments):
                return say(caps, REFUSAL)
            if isinstance(event, ButtonPressed):
                return await self._button(event.sender, arguments, caps)
            return await self._command(actor, action, arguments, caps)
        except Usage as usage:
            await self._tools.record_failure(actor, action, arguments, str(usage))
            return say(caps, str(usage))
        except AdminError as error:
            return say(caps, str(error))
        except Exception:
            log.exception("admin command %s from %s failed", action, actor.label)
            return say(caps, "Sorry, something went wrong on my side. The log has the details.")

    # --- commands ----------------------------------------------------------------------------------

    async def _command(self, actor: Actor, name: str, arguments: str, caps: Capabilities) -> Reply:
        words = arguments.split()
        if name == "admin":
            return say(caps, _help())
        if name == "stats":
            return await self._stats(actor, words[0] if words else None, caps)
        if name == "learners":
            return await self._learners(actor, words, caps)
        if name == "learner":
            return await self._learner(actor, words, caps)
        if name == "broadcast":
            return await self._broadcast(actor, arguments, caps)
        if name == "announce":
            return await self._announce(actor, arguments, caps)
        if name == "export":
            return await self._export(actor, words[0] if words else None, caps)
        if name == "reload":
            outcome = await self._tools.reload(actor)
            return say(caps, "Courses reloaded.\n" + "\n".join(outcome.lines()))
        if name == "cohort":
            return await self._cohort(actor, words, caps)
        return await self._audit(actor, words, caps)

    async def _stats(self, actor: Actor, course_slug: str | None, caps: Capabilities) -> Reply:
        all_stats = await self._tools.stats(actor, course_slug)
        if not all_stats:
            return say(caps, "No course is loaded.")
        parts: list[OutboundPart] = []
        for number, stats in enumerate(all_stats):
            parts.extend(say(caps, "\n".join(summary_lines(stats))).parts)
            if number < MAX_CHARTS:
                png = await asyncio.to_thread(funnel_png, stats)
                parts.append(
                    FilePart(f"funnel-{stats.slug}.png", png, caption=stats.title[:200], as_photo=True)
                )
        return Reply(tuple(parts), private=True)

    async def _learners(self, actor: Actor, words: list[str], caps: Capabilities) -> Reply:
        course_slug = None
        if words and self._tools.catalog.get(words[0].lower()) is not None:
            course_slug = words.pop(0).lower()
        page = 1
        if len(words) >= 2 and words[-2].lower() == "page":
            page = _number(words[-1], "page")
            words = words[:-2]
        filter_text = " ".join(words)
        found = await self._tools.learners(actor, course_slug, filter_text, page)
        return say(caps, _roster_text(found, course_slug, filter_text))

    async def _learner(self, actor: Actor, words: list[str], caps: Capabilities) -> Reply:
        if not words:
            raise Usage("Which learner? learner <id> (the ids are in /learners).")
        learner_id = _number(words[0], "learner id")
        rest = words[1:]
        course_slug = None
        if rest and rest[0].lower() not in LEARNER_ACTIONS:
            course_slug = rest.pop(0).lower()
        if not rest:
            record = await self._tools.learner(actor, learner_id)
            return say(caps, _record_text(record))
        action = rest[0].lower()
        if action not in LEARNER_ACTIONS:
            raise Usage(f"Unknown action “{action[:20]}”; use one of: {', '.join(LEARNER_ACTIONS)}.")
        lesson_slug = rest[1] if len(rest) > 1 else None
        if action == "move" and lesson_slug is None:
            raise Usage("Name the lesson: learner <id> move <lesson-slug>.")
        done = await self._tools.learner_action(
            actor, learner_id, action, course_slug=course_slug, lesson_slug=lesson_slug
        )
        return say(caps, done)

    async def _broadcast(self, actor: Actor, arguments: str, caps: Capabilities) -> Reply:
        words = arguments.split()
        if len(words) == 2 and words[0].lower() in ("status", "cancel") and words[1].isdigit():
            broadcast_id = _number(words[1], "broadcast id")
            if words[0].lower() == "status":
                progress = await self._tools.broadcast_status(actor, broadcast_id)
            else:
                progress = await self._tools.cancel_broadcast(actor, broadcast_id)
            return say(caps, progress_text(progress))
        target, _, text = arguments.partition(" ")
        if not target or not text.strip():
            raise Usage("Use: broadcast <course|cohort:name> <text>, or broadcast status <id>.")
        draft = await self._tools.prepare_broadcast(actor, target, text)
        audience = f"“{draft.course_title}”" + (f", cohort {draft.cohort_name}" if draft.cohort_name else "")
        header = (
            f"Broadcast #{draft.broadcast_id} to {audience}: {draft.reachable} learner(s) will get it"
            f"{f', {draft.unreachable} cannot be reached' if draft.unreachable else ''}. Preview:"
        )
        body = BLOCK_SEPARATOR.join(
            [escape_user_text(header, caps.markup), *render_markdown(draft.text, caps.markup)]
        )
        buttons: tuple[AnyButton, ...] = (
            Button("Send now", encode("bcast", draft.broadcast_id, "now")),
            Button("At each learner's time", encode("bcast", draft.broadcast_id, "local")),
            Button("Cancel", encode("bcast", draft.broadcast_id, "cancel")),
        )
        return Reply(tuple(render_text_reply(body, caps, buttons)), private=True)

    async def _announce(self, actor: Actor, arguments: str, caps: Capabilities) -> Reply:
        if not arguments:
            raise Usage("Use: announce <when> <course> <text>, when as 2026-05-01 07:00 (UTC) or ISO.")
        try:
            run_at, rest = parse_when(arguments)
        except AdminError as error:
            raise Usage(str(error)) from None
        course_slug, _, text = rest.strip().partition(" ")
        if not course_slug or not text.strip():
            raise Usage("Use: announce <when> <course> <text>.")
        announcement_id = await self._tools.announce(actor, course_slug.lower(), text, run_at)
        return say(
            caps, f"Announcement #{announcement_id} to {course_slug.lower()} is scheduled for {_utc(run_at)}."
        )

    async def _export(self, actor: Actor, course_slug: str | None, caps: Capabilities) -> Reply:
        export = await self._tools.export(actor, course_slug)
        summary = say(
            caps,
            f"Exported {export.enrollments.rows} enrollment(s) "
            f"and {export.quiz_answers.rows} quiz answer(s).",
        )
        files = (
            FilePart(export.enrollments.filename, export.enrollments.content),
            FilePart(export.quiz_answers.filename, export.quiz_answers.content),
        )
        return Reply((*summary.parts, *files), private=True)

    async def _cohort(self, actor: Actor, words: list[str], caps: Capabilities) -> Reply:
        sub = words[0].lower() if words else ""
        if sub == "list":
            found = await self._tools.cohorts(actor, words[1].lower() if len(words) > 1 else None)
            if not found:
                return say(caps, "No cohorts yet. Create one with /cohort create <course> <name>.")
            lines = [
                f"{info.cohort.course_slug}/{info.cohort.name}: /start {info.cohort.code} · "
                f"{info.members} learner(s)"
                + (f" · starts {info.cohort.start_date.isoformat()}" if info.cohort.start_date else "")
                for info in found
            ]
            return say(caps, "\n".join(lines))
        if sub != "create" or len(words) < 3:
            raise Usage("Use: cohort create <course> <name> [YYYY-MM-DD] [pace] [HH:MM], or cohort list.")
        start, cadence, wall = _cohort_options(words[3:])
        cohort = await self._tools.create_cohort(
            actor, words[1].lower(), words[2], start_date=start, cadence=cadence, local_time=wall
        )
        extras = [
            f"starts {cohort.start_date.isoformat()}" if cohort.start_date else "",
            f"pace {cohort.cadence}" if cohort.cadence else "",
            f"at {cohort.local_time}" if cohort.local_time else "",
        ]
        described = ", ".join(extra for extra in extras if extra)
        return say(
            caps,
            f"Cohort {cohort.name} of {cohort.course_slug} created{f' ({described})' if described else ''}.\n"
            f"Invite: /start {cohort.code}\n"
            f"On Telegram share https://t.me/<bot username>?start={cohort.code}",
        )

    async def _audit(self, actor: Actor, words: list[str], caps: Capabilities) -> Reply:
        limit = _number(words[0], "count") if words else 20
        rows = await self._tools.audit_log(actor, min(limit, MAX_AUDIT))
        lines = [
            f"{_utc(row.at)} {row.platform}:{row.user_id} {row.action}"
            f"{' ' + row.arguments if row.arguments and row.arguments != '{}' else ''}"
            f" – {row.outcome or ('ok' if row.allowed else 'refused')}"
            for row in rows
        ]
        return say(caps, "\n".join(lines) or "The audit trail is empty.")

    # --- the broadcast buttons ---------------------------------------------------------------------

    async def _button(self, sender: Sender, raw_action: str, caps: Capabilities) -> Reply:
        actor = Actor.from_sender(sender)
        action = decode(raw_action)
        if action is None or len(action.args) != 2 or not action.args[0].isdigit():
            raise Usage("That button has expired.")
        broadcast_id, mode = int(action.args[0]), action.args[1]
        if mode == "cancel":
            progress = await self._tools.cancel_broadcast(actor, broadcast_id)
            return say(caps, f"Broadcast #{broadcast_id} cancelled. {progress.sent} had already gone out.")
        if mode not in BROADCAST_MODES:
            raise Usage("That button has expired.")
        progress, queued = await self._tools.confirm_broadcast(
            actor, broadcast_id, at_local_time=BROADCAST_MODES[mode]
        )
        if not queued:
            return say(caps, f"Broadcast #{broadcast_id} was already queued. {progress_text(progress)}")
        when = "each at the learner's own next delivery time" if progress.at_local_time else "now"
        follow = f"See the progress with /broadcast status {broadcast_id}"
        if self._progress is not None:
            self._progress.watch_broadcast(sender, broadcast_id)
            follow = (
                f"A status message follows and is kept up to date (also: /broadcast status {broadcast_id})."
            )
        return say(
            caps,
            f"Broadcast #{broadcast_id} queued: {progress.total} delivery(ies) going out {when}"
            f"{f', {progress.skipped} learner(s) unreachable' if progress.skipped else ''}. {follow}",
        )


def progress_text(progress: BroadcastProgress) -> str:
    """One paragraph: where the broadcast stands, with the final counts once it is finished."""
    audience = progress.course_slug + (f", cohort {progress.cohort_name}" if progress.cohort_name else "")
    if progress.status.value == "draft":
        return f"Broadcast #{progress.broadcast_id} ({audience}) is a draft: press “Send now” to send it."
    state = "finished" if progress.finished else "in progress"
    if progress.status.value == "cancelled":
        state = "cancelled"
    timing = "at local times" if progress.at_local_time else "now"
    unreachable = progress.unreachable + progress.skipped
    lines = [
        f"Broadcast #{progress.broadcast_id} ({audience}, {timing}) is {state}: "
        f"{progress.settled} of {progress.total} settled.",
        f"sent {progress.sent} · failed {progress.failed} · unreachable {unreachable}"
        f" · waiting {progress.waiting} · scheduled {progress.scheduled} · cancelled {progress.cancelled}",
    ]
    return "\n".join(lines)


def _roster_text(found: RosterPage, course_slug: str | None, filter_text: str) -> str:
    scope = ", ".join(part for part in (course_slug, filter_text) if part) or "all courses"
    lines = [f"Learners ({scope}): page {found.page} of {found.pages}, {found.total} in all"]
    for row in found.rows:
        position = f"{row.lessons_released}/{row.lessons_total if row.lessons_total is not None else '?'}"
        line = (
            f"#{row.learner_id} {row.display_name or '(no name)'} · {row.platform} · {row.course_slug} · "
            f"{row.status.value} · lesson {position}"
        )
        if not row.reachable:
            line += " · unreachable"
        if row.next_release_at is not None:
            line += f" · next {_utc(row.next_release_at)}"
        lines.append(line)
    if found.page < found.pages:
        more = " ".join(part for part in (course_slug, filter_text) if part)
        lines.append(f"More: /learners {more + ' ' if more else ''}page {found.page + 1}")
    if found.rows:
        lines.append("Details: /learner <id>")
    return "\n".join(lines)


def _record_text(record: LearnerRecord) -> str:
    learner = record.learner
    lines = [
        f"Learner #{learner.id}: {learner.display_name or '(no name)'} "
        f"({learner.platform} {learner.platform_user_id})",
        f"zone {learner.time_zone or 'not set'} · language {learner.language or '-'} · "
        + (
            "reachable" if learner.reachable else f"unreachable ({learner.unreachable_reason or 'no reason'})"
        ),
        f"first seen {_utc(learner.created_at)}"
        + (f" · last seen {_utc(learner.last_seen_at)}" if learner.last_seen_at else ""),
    ]
    for enrollment in record.enrollments:
        line = (
            f"{enrollment.course_slug}: {enrollment.status.value}, "
            f"{enrollment.cadence} at {enrollment.local_time}, "
            f"{enrollment.lessons_released} lesson(s) released, enrolled {_utc(enrollment.enrolled_at)}"
        )
        if enrollment.waiting_for:
            line += f", waiting for {enrollment.waiting_for}"
        if enrollment.paused_until:
            line += f", paused until {_utc(enrollment.paused_until)}"
        if enrollment.next_release_at:
            line += f", next {enrollment.next_lesson_slug} at {_utc(enrollment.next_release_at)}"
        if enrollment.finished_at:
            line += f", finished {_utc(enrollment.finished_at)}"
        lines.append(line)
    if record.deliveries:
        lines.append("History:")
        shown = record.deliveries[-MAX_HISTORY:]
        if len(record.deliveries) > len(shown):
            lines.append(f"  … {len(record.deliveries) - len(shown)} older deliveries not shown")
        lines.extend(f"  {_delivery_line(delivery)}" for delivery in shown)
    if record.quiz_answers:
        lines.append("Quiz answers:")
        lines.extend(
            f"  {answer.course_slug}/{answer.lesson_slug}: option {answer.option_index + 1}, "
            f"{'right' if answer.correct else 'wrong'}, {_utc(answer.answered_at)}"
            for answer in record.quiz_answers
        )
    actions = " | ".join(LEARNER_ACTIONS)
    lines.append(f"Actions: /learner {learner.id} [course] {actions}")
    return "\n".join(lines)


def _delivery_line(delivery: Delivery) -> str:
    what = delivery.lesson_slug if delivery.lesson_slug else f"broadcast #{delivery.broadcast_id}"
    line = f"{_utc(delivery.due_at)} {delivery.course_slug}/{what}: {delivery.status.value}"
    if delivery.sent_at:
        line += f", sent {_utc(delivery.sent_at)}"
    if delivery.done_at:
        line += f", done {_utc(delivery.done_at)}"
    if delivery.error and delivery.status.value in ("failed", "cancelled"):
        line += f" ({delivery.error[:80]})"
    return line


def _cohort_options(words: Sequence[str]) -> tuple[dt.date | None, str | None, str | None]:
    """Optional start date (YYYY-MM-DD), local time (H:MM) and pace, in any order."""
    start: dt.date | None = None
    cadence: str | None = None
    wall: str | None = None
    for word in words:
        if len(word) == 10 and word[4] == "-" and word[7] == "-":
            try:
                start = dt.date.fromisoformat(word)
            except ValueError:
                raise Usage(f"“{word}” is not a date; use YYYY-MM-DD.") from None
        elif ":" in word or word.lower().endswith(("am", "pm")):
            wall = word
        else:
            cadence = word
    return start, cadence, wall


def _number(text: str, what: str) -> int:
    if not text.isdigit() or len(text) > 12:
        raise Usage(f"The {what} must be a number, not “{text[:20]}”.")
    return int(text)


def _utc(moment: dt.datetime) -> str:
    return ensure_utc(moment).strftime("%Y-%m-%d %H:%MZ")
