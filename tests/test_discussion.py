"""Lesson threads in the core: created once across processes, named, opened with the prompt, moderated.

A recording `FakeThreadHost` stands in for the platform; the database is real (SQLite files, and
PostgreSQL where configured), and each "worker" has its own engine, as separate processes would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.admin import AdminPolicy, AdminTools
from bot.catalog import Catalog
from bot.content import Course, DiscussionChannels, Lesson
from bot.conversation import Conversation
from bot.db import Database
from bot.discussion import (
    PENDING,
    CreatedThread,
    DiscussionService,
    ThreadHost,
    opening_text,
    thread_title,
)
from bot.discussion_admin import DiscussionAdminConversation, ThreadModeration
from bot.models import (
    AdminAction,
    Cohort,
    Delivery,
    DeliveryStatus,
    DiscussionThread,
    Enrollment,
    EnrollmentStatus,
    Learner,
)
from bot.ports import (
    Capabilities,
    Command,
    LinkButton,
    PermanentError,
    RetryAfter,
    Sender,
    TextPart,
)
from bot.render import DISCUSS_LABEL
from bot.settings import SenderSettings
from scheduler.pacer import Pacer
from scheduler.sender import Sender as OutboxSender
from tests.fakes import FAKE_CAPABILITIES, FakeChat, FakeClock

NOW = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)
CHAT = "-1001234567890"
CAPS = dataclasses.replace(FAKE_CAPABILITIES, platform="telegram")
_thread_ids = itertools.count(100)
_users = itertools.count(1)


def make_course(*, chat: str | None = CHAT, per_cohort: bool = False, slug: str = "course") -> Course:
    return Course(
        slug=slug,
        title="Learning on your own clock",
        description="",
        language="en",
        default_cadence="daily",
        default_time="08:00",
        lessons=(
            Lesson("intro", 1, "Intro", "Welcome.", discussion_prompt="Where are you learning from?"),
            Lesson("routine", 2, "A routine", "Anchor it.", discussion_prompt="What is *your* cue?"),
            Lesson("outro", 3, "Outro", "Goodbye."),
        ),
        discussion=DiscussionChannels(telegram_chat_id=chat, per_cohort=per_cohort),
    )


@dataclass
class FakeThreadHost:
    """A platform that records its threads; `gate` holds creations until set, `fail_next` injects faults."""

    capabilities: Capabilities = CAPS
    max_thread_title: int = 128
    created: list[tuple[str, str, str]] = field(default_factory=list)
    posts: list[tuple[str, str, str, bool]] = field(default_factory=list)
    closed: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    gate: asyncio.Event | None = None
    failures: list[Exception] = field(default_factory=list)
    opening_in_creation: bool = False
    create_attempts: int = 0

    async def create_thread(self, chat_id: str, title: str, opening: str) -> CreatedThread:
        self.create_attempts += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.failures:
            raise self.failures.pop(0)
        thread_id = str(next(_thread_ids))
        self.created.append((chat_id, thread_id, title))
        if self.opening_in_creation:
            self.posts.append((chat_id, thread_id, opening, False))
        return CreatedThread(
            thread_id, f"https://chat.example/{chat_id}/{thread_id}", self.opening_in_creation
        )

    async def post(self, chat_id: str, thread_id: str, text: str, *, pin: bool) -> str:
        self.posts.append((chat_id, thread_id, text, pin))
        return str(len(self.posts))

    async def close_thread(self, chat_id: str, thread_id: str) -> None:
        self.closed.add(thread_id)

    async def reopen_thread(self, chat_id: str, thread_id: str) -> None:
        self.closed.discard(thread_id)

    async def thread_stats(self, chat_id: str, thread_id: str) -> int | None:
        return self.counts.get(thread_id)

    async def check_rights(self, chat_id: str) -> list[str]:
        return list(self.missing)


class Ticker:
    """A monotonic clock and a sleep that advances it: waiting loops run without real waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def service(
    database: Database, host: ThreadHost, clock: FakeClock | None = None, **options: object
) -> DiscussionService:
    return DiscussionService(database, {"telegram": host}, clock or FakeClock(NOW), **options)  # type: ignore[arg-type]


def rows(engine: Engine) -> list[DiscussionThread]:
    with Session(engine) as session:
        return list(session.exec(select(DiscussionThread)).all())


# --- names and texts -------------------------------------------------------------------------------


def test_thread_title_numbers_the_lesson() -> None:
    assert thread_title(Lesson("intro", 1, "Intro", ""), 128) == "01 · Intro"
    assert thread_title(Lesson("x", 12, "Spaced  review\nagain", ""), 128) == "12 · Spaced review again"
    assert thread_title(Lesson("intro", 3, "Intro", ""), 128, "spring") == "03 · Intro [spring]"
    long = thread_title(Lesson("long", 7, "word " * 60, ""), 100)
    assert len(long) == 100 and long.startswith("07 · word") and long.endswith("…")


@given(
    number=st.integers(min_value=1, max_value=999),
    title=st.text(min_size=1, max_size=300).filter(lambda text: text.strip()),
    limit=st.sampled_from([100, 128]),
    cohort=st.sampled_from(["", "spring", "a-very-long-cohort-name-indeed"]),
)
def test_thread_title_always_fits_and_keeps_its_number(
    number: int, title: str, limit: int, cohort: str
) -> None:
    name = thread_title(Lesson("slug", number, title, ""), limit, cohort)
    assert 0 < len(name) <= limit
    assert name.startswith(f"{number:02d} · ")
    assert "\n" not in name
    if cohort:
        assert name.endswith(f" [{cohort}]")


def test_opening_text_carries_the_prompt_and_a_spoiler_reminder() -> None:
    course = make_course()
    text = opening_text(course, course.lessons[1], CAPS)
    assert text.startswith("Lesson 2 of 3 · A routine")
    assert "What is your cue?" in text or "What is *your* cue?" in text
    assert "no spoilers" in text
    assert "What stood out" in opening_text(course, course.lessons[2], CAPS)


# --- creation, exactly once ------------------------------------------------------------------------


async def test_first_request_creates_the_thread_posts_and_pins_the_prompt_and_records_it(
    database: Database, sqlite_engine: Engine
) -> None:
    host = FakeThreadHost()
    course = make_course()
    url = await service(database, host).discuss_url("telegram", course, course.lessons[0])
    ((chat, thread_id, title),) = host.created
    assert (chat, title) == (CHAT, "01 · Intro")
    assert url == f"https://chat.example/{CHAT}/{thread_id}"
    ((chat, thread, text, pin),) = host.posts
    assert (chat, thread, pin) == (CHAT, thread_id, True)
    assert "Where are you learning from?" in text
    (row,) = rows(sqlite_engine)
    assert (row.course_slug, row.lesson_slug, row.cohort_key, row.chat_id, row.url) == (
        "course",
        "intro",
        "",
        CHAT,
        url,
    )
    # A restart (a new service on the same database) finds it; nothing is created twice.
    again = await service(database, host).discuss_url("telegram", course, course.lessons[0])
    assert again == url and len(host.created) == 1 and len(host.posts) == 1


async def test_a_forum_post_opened_by_its_creation_is_not_posted_again(database: Database) -> None:
    host = FakeThreadHost(opening_in_creation=True)
    course = make_course()
    assert await service(database, host).discuss_url("telegram", course, course.lessons[0])
    assert len(host.posts) == 1 and host.posts[0][3] is False


async def test_two_workers_releasing_the_same_lesson_at_once_create_one_thread(
    open_database: Callable[[], Database],
) -> None:
    """Separate engines on one database, as two processes: one insert wins, the other waits for its link."""
    course = make_course()
    gate = asyncio.Event()
    hosts = [FakeThreadHost(gate=gate), FakeThreadHost(gate=gate)]
    workers = [service(open_database(), host, poll_seconds=0.01) for host in hosts]
    calls = [
        asyncio.create_task(worker.discuss_url("telegram", course, course.lessons[0]))
        for _ in range(5)
        for worker in workers
    ]
    await asyncio.sleep(0.2)  # every call has claimed or is polling: the platform is still "slow"
    gate.set()
    urls = await asyncio.gather(*calls)
    assert sum(len(host.created) for host in hosts) == 1
    assert sum(host.create_attempts for host in hosts) == 1
    assert len(set(urls)) == 1 and urls[0] is not None
    assert sum(len(host.posts) for host in hosts) == 1


async def test_a_failed_creation_releases_the_claim_and_waits_before_trying_that_chat_again(
    database: Database, sqlite_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    ticker = Ticker()
    host = FakeThreadHost(failures=[PermanentError("Bad Request: not enough rights to create a topic")])
    course = make_course()
    discussion = service(database, host, monotonic=ticker, sleep=ticker.sleep, cooldown_seconds=300)
    with caplog.at_level(logging.WARNING):
        assert await discussion.discuss_url("telegram", course, course.lessons[0]) is None
    assert "not enough rights to create a topic" in caplog.text
    assert rows(sqlite_engine) == []
    assert await discussion.discuss_url("telegram", course, course.lessons[1]) is None
    assert host.create_attempts == 1  # cooling down: the platform is not asked again at once
    ticker.now += 301
    assert await discussion.discuss_url("telegram", course, course.lessons[0]) is not None
    assert host.create_attempts == 2


async def test_retry_after_cools_the_chat_for_as_long_as_the_platform_asked(database: Database) -> None:
    ticker = Ticker()
    host = FakeThreadHost(failures=[RetryAfter("Too Many Requests", 7, CHAT)])
    course = make_course()
    discussion = service(database, host, monotonic=ticker, sleep=ticker.sleep)
    assert await discussion.discuss_url("telegram", course, course.lessons[0]) is None
    ticker.now += 6
    assert await discussion.discuss_url("telegram", course, course.lessons[0]) is None
    assert host.create_attempts == 1
    ticker.now += 2
    assert await discussion.discuss_url("telegram", course, course.lessons[0]) is not None


async def test_a_claim_left_by_a_dead_worker_is_taken_over_once_stale(
    database: Database, sqlite_engine: Engine
) -> None:
    ticker = Ticker()
    clock = FakeClock(NOW)
    with Session(sqlite_engine) as session:
        session.add(
            DiscussionThread(
                platform="telegram",
                course_slug="course",
                lesson_slug="intro",
                chat_id=CHAT,
                thread_id="",
                url=PENDING + "dead",
                created_at=NOW - dt.timedelta(seconds=30),
            )
        )
        session.commit()
    host = FakeThreadHost()
    course = make_course()
    discussion = service(
        database, host, clock, monotonic=ticker, sleep=ticker.sleep, wait_seconds=5, poll_seconds=1
    )
    # Still fresh: the owner may be creating it; after waiting five seconds the lesson goes without a link.
    assert await discussion.discuss_url("telegram", course, course.lessons[0]) is None
    assert host.create_attempts == 0 and ticker.now >= 5
    clock.at = NOW + dt.timedelta(seconds=45)  # now older than the 60-second claim timeout
    url = await discussion.discuss_url("telegram", course, course.lessons[0])
    assert url is not None and host.create_attempts == 1
    (row,) = rows(sqlite_engine)
    assert row.url == url and row.thread_id == host.created[0][1]


async def test_when_the_course_moves_its_discussion_the_lesson_gets_a_thread_in_the_new_chat(
    database: Database, sqlite_engine: Engine
) -> None:
    host = FakeThreadHost()
    before, after = make_course(), make_course(chat="-1009876543210")
    old = await service(database, host).discuss_url("telegram", before, before.lessons[0])
    new = await service(database, host).discuss_url("telegram", after, after.lessons[0])
    assert old != new and [chat for chat, _, _ in host.created] == [CHAT, "-1009876543210"]
    (row,) = rows(sqlite_engine)
    assert (row.chat_id, row.url) == ("-1009876543210", new)


async def test_no_discussion_chat_or_no_host_means_no_link_and_no_platform_call(database: Database) -> None:
    host = FakeThreadHost()
    without_chat = make_course(chat=None)
    assert (
        await service(database, host).discuss_url("telegram", without_chat, without_chat.lessons[0]) is None
    )
    course = make_course()
    assert await service(database, host).discuss_url("discord", course, course.lessons[0]) is None
    assert host.create_attempts == 0


# --- cohorts ---------------------------------------------------------------------------------------


def enrol(engine: Engine, *, platform: str = "telegram", cohort: str | None = None) -> tuple[int, int]:
    """A learner with an active enrollment in "course" (in `cohort` if named); (learner id, enrollment id)."""
    with Session(engine) as session:
        cohort_id = None
        if cohort is not None:
            row = session.exec(select(Cohort).where(Cohort.name == cohort)).first()
            if row is None:
                row = Cohort(course_slug="course", name=cohort, code=f"code{next(_users):08d}")
                session.add(row)
                session.flush()
            cohort_id = row.id
        user = next(_users)
        learner = Learner(platform=platform, platform_user_id=str(user), chat_id=str(user))
        session.add(learner)
        session.flush()
        enrollment = Enrollment(
            learner_id=learner.id or 0,
            course_slug="course",
            cohort_id=cohort_id,
            status=EnrollmentStatus.ACTIVE,
        )
        session.add(enrollment)
        session.commit()
        return learner.id or 0, enrollment.id or 0


async def test_per_cohort_threads_keep_cohorts_apart_and_others_share_the_course_thread(
    database: Database, sqlite_engine: Engine
) -> None:
    host = FakeThreadHost()
    course = make_course(per_cohort=True)
    discussion = service(database, host)
    _, spring = enrol(sqlite_engine, cohort="spring")
    _, spring_too = enrol(sqlite_engine, cohort="spring")
    _, autumn = enrol(sqlite_engine, cohort="autumn")
    _, alone = enrol(sqlite_engine)
    lesson = course.lessons[0]
    links = {
        enrollment: await discussion.lesson_link("telegram", course, lesson, enrollment)
        for enrollment in (spring, spring_too, autumn, alone)
    }
    assert links[spring] == links[spring_too]
    assert len({links[spring], links[autumn], links[alone]}) == 3
    assert sorted(title for _, _, title in host.created) == [
        "01 · Intro",
        "01 · Intro [autumn]",
        "01 · Intro [spring]",
    ]


async def test_without_per_cohort_a_cohort_learner_shares_the_course_thread(
    database: Database, sqlite_engine: Engine
) -> None:
    host = FakeThreadHost()
    course = make_course(per_cohort=False)
    discussion = service(database, host)
    _, spring = enrol(sqlite_engine, cohort="spring")
    _, alone = enrol(sqlite_engine)
    lesson = course.lessons[0]
    assert await discussion.lesson_link("telegram", course, lesson, spring) == await discussion.lesson_link(
        "telegram", course, lesson, alone
    )
    assert len(host.created) == 1


# --- through the outbox sender ---------------------------------------------------------------------


class OneCourse:
    def __init__(self, course: Course) -> None:
        self.course = course

    def get(self, slug: str) -> Course | None:
        return self.course if slug == self.course.slug else None


def add_delivery(engine: Engine, learner_id: int, enrollment_id: int, lesson_slug: str) -> None:
    with Session(engine) as session:
        session.add(
            Delivery(
                enrollment_id=enrollment_id,
                learner_id=learner_id,
                course_slug="course",
                lesson_slug=lesson_slug,
                due_at=NOW,
                next_attempt_at=NOW,
            )
        )
        session.commit()


def sender_with_links(
    database: Database, course: Course, clock: FakeClock, discussion: DiscussionService
) -> tuple[OutboxSender, FakeChat]:
    """The outbox sender for `course` on a recording Telegram stand-in, asking `discussion` for links."""
    chat = FakeChat(capabilities=CAPS, clock=clock)
    sender = OutboxSender(
        database,
        OneCourse(course),
        {"telegram": chat},
        {"telegram": Pacer("telegram", 1000.0)},
        clock,
        SenderSettings(),
        discuss_url=discussion.lesson_link,
    )
    return sender, chat


async def test_the_lesson_being_sent_carries_its_discuss_link_and_no_later_thread_exists(
    database: Database, sqlite_engine: Engine
) -> None:
    host = FakeThreadHost()
    course = make_course()
    clock = FakeClock(NOW)
    discussion = service(database, host, clock)
    sender, chat = sender_with_links(database, course, clock, discussion)
    learner_id, enrollment_id = enrol(sqlite_engine)
    add_delivery(sqlite_engine, learner_id, enrollment_id, "intro")
    assert await sender.drain_once() == 1
    buttons = [
        button for record in chat.sent if isinstance(record.part, TextPart) for button in record.part.buttons
    ]
    links = [button for button in buttons if isinstance(button, LinkButton)]
    (row,) = rows(sqlite_engine)  # only the lesson received has a thread: no spoilers of later ones
    assert row.lesson_slug == "intro"
    assert links == [LinkButton(DISCUSS_LABEL, row.url)]
    with Session(sqlite_engine) as session:
        assert session.exec(select(Delivery)).one().status is DeliveryStatus.SENT


async def test_repeat_shows_the_last_lesson_again_with_its_discuss_link(
    database: Database, sqlite_engine: Engine
) -> None:
    host = FakeThreadHost()
    course = make_course()
    clock = FakeClock(NOW)
    discussion = service(database, host, clock)
    sender, _chat = sender_with_links(database, course, clock, discussion)
    conversation = Conversation(
        database, Catalog([course]), clock, {"telegram": CAPS}, lesson_link=discussion.lesson_link
    )
    learner_id, enrollment_id = enrol(sqlite_engine)
    add_delivery(sqlite_engine, learner_id, enrollment_id, "intro")
    await sender.drain_once()
    with Session(sqlite_engine) as session:
        enrollment = session.get(Enrollment, enrollment_id)
        assert enrollment is not None
        enrollment.last_lesson_slug = "intro"
        session.add(enrollment)
        learner = session.get(Learner, learner_id)
        assert learner is not None
        user_id = learner.platform_user_id
        session.commit()

    reply = await conversation.handle(Command(Sender("telegram", user_id, user_id), "repeat"))

    links = [
        button
        for part in reply.parts
        if isinstance(part, TextPart)
        for button in part.buttons
        if isinstance(button, LinkButton)
    ]
    (row,) = rows(sqlite_engine)
    assert links == [LinkButton(DISCUSS_LABEL, row.url)]
    assert len(host.created) == 1  # the thread made for the lesson's release, not a second one


async def test_a_lesson_goes_out_without_a_link_when_its_thread_cannot_be_created(
    database: Database, sqlite_engine: Engine
) -> None:
    host = FakeThreadHost(failures=[PermanentError("Bad Request: the chat is not a forum")])
    course = make_course()
    clock = FakeClock(NOW)
    chat = FakeChat(capabilities=CAPS, clock=clock)
    sender = OutboxSender(
        database,
        OneCourse(course),
        {"telegram": chat},
        {"telegram": Pacer("telegram", 1000.0)},
        clock,
        SenderSettings(),
        discuss_url=service(database, host, clock).lesson_link,
    )
    learner_id, enrollment_id = enrol(sqlite_engine)
    add_delivery(sqlite_engine, learner_id, enrollment_id, "intro")
    assert await sender.drain_once() == 1
    assert chat.sent and not any(
        isinstance(button, LinkButton)
        for record in chat.sent
        if isinstance(record.part, TextPart)
        for button in record.part.buttons
    )


# --- rights and moderation -------------------------------------------------------------------------


async def test_the_rights_check_logs_one_clear_line_per_chat(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    host = FakeThreadHost(missing=["to be an admin with can_manage_topics to create lesson topics"])
    first, second = make_course(slug="one"), make_course(slug="two")
    with caplog.at_level(logging.WARNING, logger="bot.discussion"):
        problems = await service(database, host).check_rights(
            [first, second, make_course(chat=None, slug="x")]
        )
    assert problems == [
        f"telegram chat {CHAT}: the bot needs to be an admin with can_manage_topics to create lesson topics"
    ]
    assert [record.getMessage() for record in caplog.records] == [
        f"discussion threads of course one: {problems[0]}"
    ]
    host.missing = []
    assert await service(database, host).check_rights([first]) == []


@dataclass
class Moderation:
    conversation: DiscussionAdminConversation
    host: FakeThreadHost
    course: Course
    discussion: DiscussionService


ADMIN = Sender("telegram", "7", "7", "Instructor")
LEARNER = Sender("telegram", "8", "8", "Learner")


@pytest.fixture
def moderation(database: Database, tmp_path: Path) -> Moderation:
    host = FakeThreadHost()
    course = make_course()
    clock = FakeClock(NOW)
    tools = AdminTools(
        database, Catalog([course]), clock, AdminPolicy({"telegram": ["7"]}), courses_root=tmp_path
    )
    discussion = service(database, host, clock)
    moderation = ThreadModeration(tools, discussion, database, clock, {"telegram": CAPS})
    return Moderation(
        DiscussionAdminConversation(tools, {"telegram": CAPS}, moderation), host, course, discussion
    )


async def say(moderation: Moderation, text: str, sender: Sender = ADMIN) -> str:
    name, _, args = text.partition(" ")
    event = Command(sender, name, args)
    assert moderation.conversation.claims(event)
    reply = await moderation.conversation.handle(event)
    return "\n".join(part.text for part in reply.parts if isinstance(part, TextPart))


async def test_instructors_close_reopen_and_reprompt_a_lesson_thread(
    moderation: Moderation, sqlite_engine: Engine
) -> None:
    assert "has no thread yet" in await say(moderation, "thread close course intro")
    url = await moderation.discussion.discuss_url("telegram", moderation.course, moderation.course.lessons[0])
    thread_id = moderation.host.created[0][1]
    assert await say(moderation, "thread close course intro") == "Closed 01 · Intro (telegram)."
    assert moderation.host.closed == {thread_id}
    assert await say(moderation, "thread reopen course intro") == "Reopened 01 · Intro (telegram)."
    assert moderation.host.closed == set()
    assert (
        await say(moderation, "thread prompt course intro")
        == "Posted the prompt again in 01 · Intro (telegram)."
    )
    assert len(moderation.host.posts) == 2 and moderation.host.posts[-1][3] is True
    moderation.host.counts[thread_id] = 12
    listing = await say(moderation, "threads course")
    assert f"01 · Intro – telegram, 12 message(s): {url}" in listing
    with Session(sqlite_engine) as session:
        audit = [(row.action, row.arguments, row.outcome) for row in session.exec(select(AdminAction)).all()]
    assert ("thread", "close course intro", "ok") in audit
    assert (
        "thread",
        "close course intro",
        "failed: Lesson intro has no thread yet: it is created when the first learner receives it.",
    ) in audit


async def test_thread_commands_are_refused_to_learners_and_explain_their_usage(
    moderation: Moderation,
) -> None:
    assert (
        await say(moderation, "threads course", LEARNER)
        == "Sorry, that command is for the course's instructors."
    )
    assert (await say(moderation, "thread lock course intro")).startswith("Use: thread close|reopen|prompt")
    assert "No course “nope”" in await say(moderation, "threads nope")
    assert "has no lesson “later”" in await say(moderation, "thread close course later")
    assert "/thread – Lesson threads" in await say(moderation, "admin")
    assert "/thread" not in await say(moderation, "admin", LEARNER)


async def test_the_listing_names_what_the_bot_lacks(moderation: Moderation) -> None:
    moderation.host.missing = ["the can_pin_messages admin right to pin each topic's prompt"]
    listing = await say(moderation, "threads course")
    assert "none yet" in listing
    assert f"⚠️ telegram chat {CHAT}: the bot needs the can_pin_messages admin right" in listing
