"""Instructor moderation of lesson threads: close, reopen, re-post the prompt, list with message counts.

`thread close|reopen|prompt <course> <lesson-slug>` and `threads <course>` are admin commands, checked
and audited like the others; `DiscussionAdminConversation` adds them to the instructor's commands.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from bot.admin import REFUSAL, Actor, AdminTools, audit_row
from bot.admin_conversation import AdminConversation, BroadcastWatcher
from bot.clock import Clock
from bot.content import Course, Lesson
from bot.db import Database
from bot.discussion import DiscussionService, ThreadReport, thread_title
from bot.ports import Capabilities, Command, InboundEvent, Reply
from bot.render import say

log = logging.getLogger(__name__)

THREAD_COMMANDS: tuple[tuple[str, str], ...] = (
    ("thread", "Lesson threads: thread close|reopen|prompt <course> <lesson>"),
    ("threads", "A course's lesson threads with their message counts: threads <course>"),
)
THREAD_COMMAND_NAMES = frozenset(name for name, _ in THREAD_COMMANDS)
THREAD_ACTIONS = ("close", "reopen", "prompt")
USAGE = "Use: thread close|reopen|prompt <course> <lesson-slug>, or threads <course>."
MAX_OUTCOME = 300
TITLE_LIMIT = 100


class ModerationError(Exception):
    """The command cannot be carried out as asked; the message says why."""


class ThreadModeration:
    """Answers the thread commands of instructors; never raises."""

    def __init__(
        self,
        tools: AdminTools,
        discussion: DiscussionService,
        database: Database,
        clock: Clock,
        capabilities: Mapping[str, Capabilities],
    ) -> None:
        self._tools = tools
        self._discussion = discussion
        self._database = database
        self._clock = clock
        self._capabilities = dict(capabilities)

    def claims(self, event: InboundEvent) -> bool:
        return isinstance(event, Command) and event.name in THREAD_COMMAND_NAMES

    async def handle(self, event: InboundEvent) -> Reply:
        caps = self._capabilities[event.sender.platform]
        if not isinstance(event, Command):
            return say(caps, REFUSAL)
        actor = Actor.from_sender(event.sender)
        arguments = event.args.strip()
        try:
            if not await self._tools.authorize(actor, event.name, arguments):
                return say(caps, REFUSAL)
            text = await self._run(event.name, arguments.split())
        except ModerationError as error:
            await self._tools.record_failure(actor, event.name, arguments, str(error))
            return say(caps, str(error))
        except Exception:
            log.exception("thread command %s %r from %s failed", event.name, arguments, actor.label)
            await self._tools.record_failure(actor, event.name, arguments, "unexpected error (see the log)")
            return say(caps, "Sorry, something went wrong on my side. The log has the details.")
        await self._audit(actor, event.name, arguments)
        return say(caps, text)

    async def _run(self, name: str, words: list[str]) -> str:
        if name == "threads":
            if len(words) != 1:
                raise ModerationError(USAGE)
            course = self._course(words[0])
            return await self._listing(course)
        if len(words) != 3 or words[0].lower() not in THREAD_ACTIONS:
            raise ModerationError(USAGE)
        action = words[0].lower()
        course = self._course(words[1])
        lesson = course.lesson(words[2].lower())
        if lesson is None:
            raise ModerationError(f"Course {course.slug} has no lesson “{words[2][:64]}”.")
        if action == "prompt":
            reports = await self._discussion.repost_prompt(course, lesson)
            done = "Posted the prompt again in"
        else:
            reports = await self._discussion.set_closed(course, lesson, closed=action == "close")
            done = "Closed" if action == "close" else "Reopened"
        if not reports:
            raise ModerationError(
                f"Lesson {lesson.slug} has no thread yet: it is created when the first learner receives it."
            )
        return "\n".join(_outcome_line(done, lesson, report) for report in reports)

    async def _listing(self, course: Course) -> str:
        reports = await self._discussion.threads(course)
        lines = [f"Lesson threads of “{course.title}”:"]
        if not reports:
            lines.append("none yet: a lesson's thread is created when the first learner receives it.")
        for report in reports:
            lesson = course.lesson(report.thread.lesson_slug)
            name = (
                thread_title(lesson, TITLE_LIMIT, report.thread.cohort_key)
                if lesson
                else f"{report.thread.lesson_slug} (no longer in the course)"
            )
            if report.problem:
                count = f"count unavailable: {report.problem}"
            elif report.message_count is None:
                count = f"{report.thread.platform} does not count messages"
            else:
                count = f"{report.message_count} message(s)"
            lines.append(f"{name} – {report.thread.platform}, {count}: {report.thread.url}")
        problems = await self._discussion.check_rights([course])
        lines.extend(f"⚠️ {problem}" for problem in problems)
        return "\n".join(lines)

    def _course(self, slug: str) -> Course:
        course = self._tools.catalog.get(slug.lower())
        if course is None:
            known = ", ".join(course.slug for course in self._tools.catalog.courses()) or "none"
            raise ModerationError(f"No course “{slug[:64]}”. Loaded courses: {known}.")
        return course

    async def _audit(self, actor: Actor, action: str, arguments: str) -> None:
        row = audit_row(actor, action, arguments, self._clock.now(), allowed=True, outcome="ok")
        await self._database.run(lambda session: session.add(row))


class DiscussionAdminConversation(AdminConversation):
    """The instructor's commands, with the thread moderation commands added (and listed in /admin)."""

    def __init__(
        self,
        tools: AdminTools,
        capabilities: Mapping[str, Capabilities],
        moderation: ThreadModeration,
        *,
        progress: BroadcastWatcher | None = None,
    ) -> None:
        super().__init__(tools, capabilities, progress=progress)
        self._moderation = moderation

    def claims(self, event: InboundEvent) -> bool:
        return self._moderation.claims(event) or super().claims(event)

    async def handle(self, event: InboundEvent) -> Reply:
        if self._moderation.claims(event):
            return await self._moderation.handle(event)
        reply = await super().handle(event)
        if (
            isinstance(event, Command)
            and event.name == "admin"
            and self._tools.is_admin(Actor.from_sender(event.sender))
        ):
            lines = "\n".join(f"/{name} – {description}" for name, description in THREAD_COMMANDS)
            caps = self._capabilities[event.sender.platform]
            return Reply((*reply.parts, *say(caps, lines).parts), private=reply.private)
        return reply


def _outcome_line(done: str, lesson: Lesson, report: ThreadReport) -> str:
    where = report.thread.platform + (
        f", cohort {report.thread.cohort_key}" if report.thread.cohort_key else ""
    )
    name = thread_title(lesson, TITLE_LIMIT, "")
    if report.problem:
        return f"{name} ({where}): failed: {report.problem[:MAX_OUTCOME]}"
    return f"{done} {name} ({where})."
