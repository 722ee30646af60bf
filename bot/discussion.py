"""Lesson discussion threads: one lasting place to talk per lesson (and cohort) on each platform.

A thread is created the first time any learner receives its lesson, exactly once across restarts and
worker processes: the `DiscussionThread` row is claimed first (unique key, `url` holding a pending
token), only the process whose insert won asks the platform for the thread, and the others poll the row
until the link is there. A failed creation releases the claim; a claim whose owner died goes stale and
may be taken over.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.clock import Clock
from bot.content import Course, Lesson
from bot.db import Database
from bot.markup import BLOCK_SEPARATOR, bold, escape_user_text, render_markdown
from bot.models import Cohort, DiscussionThread, Enrollment
from bot.ports import Capabilities, PlatformError, RetryAfter

log = logging.getLogger(__name__)

PENDING = "pending:"
"""`DiscussionThread.url` of a claimed row whose thread is being created; the rest is the claim's token."""
TITLE_SEPARATOR = " · "
DEFAULT_PROMPT = "What stood out for you in this lesson? Questions, notes and results all belong here."
SPOILER_NOTE = "Everyone here has reached this lesson: no spoilers of later ones, please."


# --- the port ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreatedThread:
    thread_id: str
    url: str
    """A link that opens the thread (a Telegram topic link, a Discord channel link)."""
    opening_posted: bool = False
    """True where the platform posted the opening text as part of creating the thread (a forum post)."""


@runtime_checkable
class ThreadHost(Protocol):
    """A chat platform that can hold lesson threads. Failures raise a `PlatformError` subclass."""

    @property
    def capabilities(self) -> Capabilities: ...

    @property
    def max_thread_title(self) -> int:
        """Characters a thread's name may have (Telegram topics 128, Discord threads 100)."""
        ...

    async def create_thread(self, chat_id: str, title: str, opening: str) -> CreatedThread:
        """A new thread in the discussion chat; `opening` (rendered) is used where creation needs one."""
        ...

    async def post(self, chat_id: str, thread_id: str, text: str, *, pin: bool) -> str:
        """Post rendered `text` in the thread and pin it where the platform allows; the message id."""
        ...

    async def close_thread(self, chat_id: str, thread_id: str) -> None:
        """Stop learners from posting (already closed is fine)."""
        ...

    async def reopen_thread(self, chat_id: str, thread_id: str) -> None: ...

    async def thread_stats(self, chat_id: str, thread_id: str) -> int | None:
        """The thread's message count, or None where the platform does not tell."""
        ...

    async def check_rights(self, chat_id: str) -> list[str]:
        """What the bot lacks in the chat, each phrase completing "the bot needs ..."; empty if nothing."""
        ...


# --- naming and text -----------------------------------------------------------------------------


def thread_title(lesson: Lesson, limit: int, cohort_key: str = "") -> str:
    """`NN · <lesson title>` (with the cohort in brackets), cut with an ellipsis to `limit` characters."""
    suffix = f" [{cohort_key}]" if cohort_key else ""
    title = f"{lesson.number:02d}{TITLE_SEPARATOR}{' '.join(lesson.title.split())}"
    room = limit - len(suffix)
    if len(title) > room:
        title = title[: max(1, room - 1)].rstrip() + "…"
    return (title + suffix)[:limit]


def opening_text(course: Course, lesson: Lesson, capabilities: Capabilities) -> str:
    """The first message of a lesson's thread: the lesson's name, its discussion prompt and a reminder."""
    markup = capabilities.markup
    blocks = [bold(f"Lesson {lesson.number} of {len(course.lessons)} · {lesson.title}", markup)]
    prompt = render_markdown(lesson.discussion_prompt, markup)
    blocks.extend(prompt or [escape_user_text(DEFAULT_PROMPT, markup)])
    blocks.append(escape_user_text(SPOILER_NOTE, markup))
    text = BLOCK_SEPARATOR.join(blocks)
    if len(text) > capabilities.max_text_length:
        text = BLOCK_SEPARATOR.join([blocks[0], escape_user_text(DEFAULT_PROMPT, markup)])
    return text


def discussion_chat(course: Course, platform: str) -> str | None:
    """The chat or channel where `course` keeps its threads on `platform`; None when it has none there."""
    if platform == "telegram":
        return course.discussion.telegram_chat_id
    if platform == "discord":
        return course.discussion.discord_channel_id
    return None


# --- what the database holds ---------------------------------------------------------------------


@dataclass(frozen=True)
class ThreadKey:
    platform: str
    course_slug: str
    lesson_slug: str
    cohort_key: str = ""


@dataclass(frozen=True)
class _Won:
    row_id: int
    token: str


@dataclass(frozen=True)
class _Recorded:
    url: str


class _Pending:
    """Another process holds the claim and is creating the thread."""


_PENDING = _Pending()
_Claim = _Won | _Recorded | _Pending


def _row(session: Session, key: ThreadKey) -> DiscussionThread | None:
    return session.exec(
        select(DiscussionThread).where(
            DiscussionThread.platform == key.platform,
            DiscussionThread.course_slug == key.course_slug,
            DiscussionThread.lesson_slug == key.lesson_slug,
            DiscussionThread.cohort_key == key.cohort_key,
        )
    ).first()


def recorded_url(session: Session, key: ThreadKey, chat_id: str) -> str | None:
    """The link of the lesson's thread in `chat_id`, if it has been created there."""
    row = _row(session, key)
    return row.url if row is not None and row.thread_id and row.chat_id == chat_id else None


def claim_thread(
    session: Session, key: ThreadKey, chat_id: str, now: dt.datetime, stale_before: dt.datetime
) -> _Claim:
    """Insert the claim row, or read what is there. A pending claim older than `stale_before` is taken
    over, and so is a thread in another chat (the course's discussion moved): it is replaced.

    A concurrent insert of the same key raises `IntegrityError` (the caller reads again).
    """
    row = _row(session, key)
    token = PENDING + secrets.token_hex(8)
    if row is None:
        row = DiscussionThread(
            platform=key.platform,
            course_slug=key.course_slug,
            lesson_slug=key.lesson_slug,
            cohort_key=key.cohort_key,
            chat_id=chat_id,
            thread_id="",
            url=token,
            created_at=now,
        )
        session.add(row)
        session.flush()
        assert row.id is not None
        return _Won(row.id, token)
    if row.thread_id and row.chat_id == chat_id:
        return _Recorded(row.url)
    if not row.thread_id and row.created_at >= stale_before:
        return _PENDING
    taken = session.connection().execute(
        update(DiscussionThread)
        .where(col(DiscussionThread.id) == row.id, col(DiscussionThread.url) == row.url)
        .values(url=token, thread_id="", chat_id=chat_id, created_at=now)
    )
    assert row.id is not None
    return _Won(row.id, token) if taken.rowcount == 1 else _PENDING


def record_thread(
    session: Session, row_id: int, token: str, created: CreatedThread, now: dt.datetime
) -> str | None:
    """Store the created thread under our claim; None if the claim was taken over meanwhile."""
    stored = session.connection().execute(
        update(DiscussionThread)
        .where(col(DiscussionThread.id) == row_id, col(DiscussionThread.url) == token)
        .values(thread_id=created.thread_id, url=created.url, created_at=now)
    )
    return created.url if stored.rowcount == 1 else None


def release_claim(session: Session, row_id: int, token: str) -> None:
    session.execute(
        delete(DiscussionThread).where(col(DiscussionThread.id) == row_id, col(DiscussionThread.url) == token)
    )


def cohort_key_of(session: Session, enrollment_id: int) -> str:
    """The name of the enrollment's cohort, or "" for a learner outside any cohort."""
    enrollment = session.get(Enrollment, enrollment_id)
    if enrollment is None or enrollment.cohort_id is None:
        return ""
    cohort = session.get(Cohort, enrollment.cohort_id)
    return cohort.name if cohort is not None else ""


def course_threads(
    session: Session, course_slug: str, lesson_slug: str | None = None
) -> list[DiscussionThread]:
    """The created threads of a course (or of one lesson), by platform, lesson and cohort."""
    statement = select(DiscussionThread).where(
        DiscussionThread.course_slug == course_slug, DiscussionThread.thread_id != ""
    )
    if lesson_slug is not None:
        statement = statement.where(DiscussionThread.lesson_slug == lesson_slug)
    rows = session.exec(statement).all()
    return sorted(rows, key=lambda row: (row.platform, row.lesson_slug, row.cohort_key))


# --- the service ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ThreadReport:
    """One recorded thread, with what a moderation step did to it or what the platform said."""

    thread: DiscussionThread
    message_count: int | None = None
    problem: str = ""


Monotonic = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
ThreadAction = Callable[[ThreadHost, DiscussionThread], Awaitable[int | None]]
"""One step on one thread through its platform; returns the thread's message count where it reads one."""


class DiscussionService:
    """Finds or creates each lesson's thread, checks the bot's rights and carries out moderation."""

    def __init__(
        self,
        database: Database,
        hosts: Mapping[str, ThreadHost],
        clock: Clock,
        *,
        claim_timeout: dt.timedelta = dt.timedelta(seconds=60),
        wait_seconds: float = 15.0,
        poll_seconds: float = 0.1,
        cooldown_seconds: float = 300.0,
        monotonic: Monotonic = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """`claim_timeout`: when another process's unfinished claim counts as dead. `wait_seconds`: how
        long to wait for another process's creation. `cooldown_seconds`: no new attempt in a chat after
        a failure for this long (or the platform's retry_after)."""
        self._database = database
        self._hosts = dict(hosts)
        self._clock = clock
        self._claim_timeout = claim_timeout
        self._wait_seconds = wait_seconds
        self._poll_seconds = poll_seconds
        self._cooldown_seconds = cooldown_seconds
        self._monotonic = monotonic
        self._sleep = sleep
        self._urls: dict[tuple[ThreadKey, str], str] = {}
        self._locks: dict[ThreadKey, asyncio.Lock] = {}
        self._cooling_until: dict[tuple[str, str], float] = {}

    @property
    def platforms(self) -> list[str]:
        return list(self._hosts)

    async def lesson_link(
        self, platform: str, course: Course, lesson: Lesson, enrollment_id: int
    ) -> str | None:
        """The sender's hook: the link for the lesson an enrollment is receiving now; with per-cohort threads,
        its cohort's thread."""
        if self._hosts.get(platform) is None or discussion_chat(course, platform) is None:
            return None
        try:
            cohort_key = ""
            if course.discussion.per_cohort:
                cohort_key = await self._database.run(lambda s: cohort_key_of(s, enrollment_id))
            return await self.discuss_url(platform, course, lesson, cohort_key)
        except Exception:  # a missing link must never hold a lesson back
            log.exception("discussion link for %s/%s on %s failed", course.slug, lesson.slug, platform)
            return None

    async def discuss_url(
        self, platform: str, course: Course, lesson: Lesson, cohort_key: str = ""
    ) -> str | None:
        """The link of the lesson's thread, created the first time it is asked for; None when the course has
        no discussion chat on `platform` or the thread cannot be had now (the reason is logged)."""
        host = self._hosts.get(platform)
        chat_id = discussion_chat(course, platform)
        if host is None or chat_id is None:
            return None
        key = ThreadKey(platform, course.slug, lesson.slug, cohort_key)
        known = self._urls.get((key, chat_id))
        if known is not None:
            return known
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            url = await self._find_or_create(host, key, chat_id, course, lesson)
        if url is not None:
            self._urls[(key, chat_id)] = url
            self._locks.pop(key, None)
        return url

    async def _find_or_create(
        self, host: ThreadHost, key: ThreadKey, chat_id: str, course: Course, lesson: Lesson
    ) -> str | None:
        known = await self._database.run(lambda s: recorded_url(s, key, chat_id))
        if known is not None:
            return known
        deadline = self._monotonic() + self._wait_seconds
        while True:
            if self._cooling(key.platform, chat_id):
                return None
            claim = await self._claim(key, chat_id)
            if isinstance(claim, _Recorded):
                return claim.url
            if isinstance(claim, _Won):
                return await self._create(host, key, chat_id, course, lesson, claim)
            if self._monotonic() >= deadline:
                log.warning(
                    "the %s thread of %s/%s is still being created elsewhere after %gs; sent without it",
                    key.platform,
                    key.course_slug,
                    key.lesson_slug,
                    self._wait_seconds,
                )
                return None
            await self._sleep(self._poll_seconds)

    async def _claim(self, key: ThreadKey, chat_id: str) -> _Claim:
        now = self._clock.now()
        stale_before = now - self._claim_timeout
        try:
            return await self._database.run(lambda s: claim_thread(s, key, chat_id, now, stale_before))
        except IntegrityError:  # another process inserted the same key first
            return _PENDING

    async def _create(
        self, host: ThreadHost, key: ThreadKey, chat_id: str, course: Course, lesson: Lesson, claim: _Won
    ) -> str | None:
        title = thread_title(lesson, host.max_thread_title, key.cohort_key)
        opening = opening_text(course, lesson, host.capabilities)
        try:
            created = await host.create_thread(chat_id, title, opening)
        except Exception as error:
            await self._database.run(lambda s: release_claim(s, claim.row_id, claim.token))
            self._cool_down(key.platform, chat_id, error)
            reason = error.reason if isinstance(error, PlatformError) else f"internal error: {error!r}"
            log.warning(
                "could not create the %s thread for %s/%s in %s: %s",
                key.platform,
                key.course_slug,
                key.lesson_slug,
                chat_id,
                reason,
                exc_info=not isinstance(error, PlatformError),
            )
            return None
        now = self._clock.now()
        url = await self._database.run(lambda s: record_thread(s, claim.row_id, claim.token, created, now))
        if url is None:
            log.warning(
                "the %s thread %s for %s/%s was created after its claim had expired; another may exist",
                key.platform,
                created.thread_id,
                key.course_slug,
                key.lesson_slug,
            )
            return await self._database.run(lambda s: recorded_url(s, key, chat_id))
        log.info("created the %s thread %r for %s/%s", key.platform, title, key.course_slug, key.lesson_slug)
        if not created.opening_posted:
            try:
                await host.post(chat_id, created.thread_id, opening, pin=True)
            except PlatformError as error:
                log.warning(
                    "the %s thread for %s/%s has no prompt (post it with `thread prompt`): %s",
                    key.platform,
                    key.course_slug,
                    key.lesson_slug,
                    error.reason,
                )
        return url

    def _cooling(self, platform: str, chat_id: str) -> bool:
        return self._cooling_until.get((platform, chat_id), 0.0) > self._monotonic()

    def _cool_down(self, platform: str, chat_id: str, error: BaseException) -> None:
        seconds = error.seconds if isinstance(error, RetryAfter) else self._cooldown_seconds
        self._cooling_until[(platform, chat_id)] = self._monotonic() + seconds

    # --- start-up check ----------------------------------------------------------------------------

    async def check_rights(self, courses: Iterable[Course]) -> list[str]:
        """Ask each platform once per discussion chat what the bot lacks there; log one line per chat that
        lacks something (or could not be checked) and return those lines."""
        problems: list[str] = []
        checked: set[tuple[str, str]] = set()
        for course in courses:
            for platform, host in self._hosts.items():
                chat_id = discussion_chat(course, platform)
                if chat_id is None or (platform, chat_id) in checked:
                    continue
                checked.add((platform, chat_id))
                where = f"{platform} {_PLACE.get(platform, 'chat')} {chat_id}"
                try:
                    missing = await host.check_rights(chat_id)
                except PlatformError as error:
                    problem = f"{where}: could not check the bot's rights there: {error.reason}"
                else:
                    if not missing:
                        continue
                    problem = f"{where}: the bot needs {' and '.join(missing)}"
                log.warning("discussion threads of course %s: %s", course.slug, problem)
                problems.append(problem)
        return problems

    # --- moderation --------------------------------------------------------------------------------

    async def threads(self, course: Course) -> list[ThreadReport]:
        """The course's created threads with their message counts, as far as each platform tells."""
        rows = await self._database.run(lambda s: course_threads(s, course.slug))

        async def count(host: ThreadHost, row: DiscussionThread) -> int | None:
            return await host.thread_stats(row.chat_id, row.thread_id)

        return await self._report(rows, count)

    async def set_closed(self, course: Course, lesson: Lesson, closed: bool) -> list[ThreadReport]:
        """Close (or reopen) the lesson's threads on every platform and cohort."""

        async def act(host: ThreadHost, row: DiscussionThread) -> int | None:
            if closed:
                await host.close_thread(row.chat_id, row.thread_id)
            else:
                await host.reopen_thread(row.chat_id, row.thread_id)
            return None

        return await self._each_thread(course, lesson, act)

    async def repost_prompt(self, course: Course, lesson: Lesson) -> list[ThreadReport]:
        """Post the lesson's prompt again in each of its threads, pinned where the platform allows."""

        async def act(host: ThreadHost, row: DiscussionThread) -> int | None:
            await host.post(
                row.chat_id, row.thread_id, opening_text(course, lesson, host.capabilities), pin=True
            )
            return None

        return await self._each_thread(course, lesson, act)

    async def _each_thread(self, course: Course, lesson: Lesson, act: ThreadAction) -> list[ThreadReport]:
        rows = await self._database.run(lambda s: course_threads(s, course.slug, lesson.slug))
        return await self._report(rows, act)

    async def _report(
        self,
        rows: Iterable[DiscussionThread],
        act: ThreadAction,
    ) -> list[ThreadReport]:
        """`act` on each thread through its platform; a report per thread with the message count it
        returned, or what went wrong."""
        reports: list[ThreadReport] = []
        for row in rows:
            host = self._hosts.get(row.platform)
            if host is None:
                reports.append(ThreadReport(row, problem=f"{row.platform} is not connected"))
                continue
            try:
                reports.append(ThreadReport(row, await act(host, row)))
            except PlatformError as error:
                reports.append(ThreadReport(row, problem=error.reason))
        return reports


_PLACE = {"discord": "channel"}
"""What a platform calls the place that holds the threads, in log lines (default "chat")."""
