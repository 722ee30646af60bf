"""Hostile input for the fuzz tests and benchmark: nasty strings, and learners mid-course to aim them at.

`FuzzBed` holds a real SQLite database with one learner per platform part-way through a course (lesson
one delivered, lesson two waiting for "Done"), a second learner whose ids are forgery targets, and the
conversation that answers them. `FuzzBed.send` hands one event to the core and checks the answer: a
reply that helps, no unhandled error, valid markup in which nothing the learner typed became formatting,
and no change to anything stored beyond what the command may legitimately change.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlalchemy import select as select_columns
from sqlmodel import Session, SQLModel, select

from bot.admin import AdminPolicy, AdminTools
from bot.admin_conversation import AdminConversation
from bot.capabilities import DISCORD, TELEGRAM
from bot.catalog import Catalog
from bot.content import Course, DripRules, Lesson, Quiz, Unlock
from bot.conversation import Conversation
from bot.db import Database, create_db_engine, upgrade
from bot.models import Delivery, Learner
from bot.ports import (
    Capabilities,
    Command,
    InboundEvent,
    Markup,
    QuizPart,
    Reply,
    Sender,
    TextPart,
    TextReceived,
)
from bot.settings import SenderSettings
from scheduler.pacer import Pacer
from scheduler.planner import release_due
from scheduler.sender import Sender as OutboxSender
from tests.fakes import FakeChat, FakeClock
from tests.markup_checks import discord_parser, flat_tokens, telegram_html_problems

# --- nasty strings -------------------------------------------------------------------------------------

SQL_INJECTION = [
    "'; DROP TABLE learner; --",
    "x' OR '1'='1",
    '"); DELETE FROM enrollment; --',
    "1; UPDATE delivery SET status='sent'",
    "' UNION SELECT platform_user_id FROM learner --",
]
MARKUP_INJECTION = [
    "<b>bold</b>",
    "<a href='https://evil.example'>click</a>",
    "<script>alert(1)</script>",
    "&lt;b&gt;",
    "&amp;",
    "**bold** __under__ ~~gone~~",
    "*it* _it_ `code` ```block```",
    "[link](https://evil.example)",
    "||spoiler||",
    "> quote",
    "# heading",
    "- item",
    "@everyone @here",
    "<@123456789012345678>",
    "<tg-spoiler>x</tg-spoiler>",
]
CONTROLS = ["\x00", "\x07", "\x1b[31m", "\r\n", "\u0085", "\u2028", "\ufeff", "\u200b", "\t"]
BIDI = ["\u202e", "\u202d", "\u2066", "\u2067", "\u2069", "\u200f", "\u200e", "\u061c"]
EMOJI = ["😀", "👩🏽‍💻", "🇩🇪", "❤️", "🏳️‍🌈", "\U0001f9d1\u200d\U0001f393"]
OUT_OF_RANGE = ["-1", "99999", "99999999999999999999999", "1e308", "NaN", "-0", "25:61", "24:60", "0x1F"]
LONG = ["a" * 10_000, "🎉" * 5_000, "<b>" * 3_000, "*" * 10_000, "\u202e" * 2_000]

FRAGMENTS = SQL_INJECTION + MARKUP_INJECTION + CONTROLS + BIDI + EMOJI + OUT_OF_RANGE

POISON = SQL_INJECTION + MARKUP_INJECTION + LONG
"""Pieces no time, pace, pause length, course name or cohort code can contain."""


def hostile_text() -> st.SearchStrategy[str]:
    """Empty, long, control characters, bidi marks, emoji, injections and out-of-range numbers."""
    free = st.text(
        st.characters(exclude_categories=("Cs",)),
        max_size=60,
    )
    joined = st.lists(st.sampled_from(FRAGMENTS) | free, max_size=6).map(" ".join)
    return st.one_of(
        st.just(""),
        st.sampled_from(FRAGMENTS + LONG),
        joined,
        free,
        st.builds(lambda text, n: text * n, st.sampled_from(FRAGMENTS), st.integers(1, 2_000)),
    )


def poisoned_text() -> st.SearchStrategy[str]:
    """Hostile text that is also certainly invalid as an answer: it carries at least one poison piece."""
    return st.builds(
        lambda before, poison, after: f"{before}{poison}{after}",
        hostile_text(),
        st.sampled_from(POISON),
        hostile_text(),
    )


# --- what a reply may look like --------------------------------------------------------------------------


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


_PLAIN_TOKENS = {"paragraph_open", "paragraph_close", "inline", "text", "softbreak", "hardbreak"}


def formatting_in(text: str, markup: Markup) -> list[str]:
    """The formatting a platform would apply to `text` (tags, Markdown constructs); [] for plain text."""
    if markup is Markup.TELEGRAM_HTML:
        parser = _Tags()
        parser.feed(text)
        parser.close()
        return parser.tags
    if markup is Markup.DISCORD_MARKDOWN:
        tokens = flat_tokens(discord_parser().parse(text))
        return [token.type for token in tokens if token.type not in _PLAIN_TOKENS]
    return []


def reply_problems(reply: Reply, markup: Markup, *, may_format: bool = False) -> list[str]:
    """Why `reply` is not a helpful, well-formed, formatting-free answer; [] when it is."""
    texts = [part.text for part in reply.parts if isinstance(part, TextPart)]
    problems = []
    if not reply.parts:
        problems.append("no answer at all")
    if texts and not any(text.strip() for text in texts):
        problems.append("an empty answer")
    for text in texts:
        if "something went wrong" in text:
            problems.append(f"an apology for an internal error: {text[:120]!r}")
        if markup is Markup.TELEGRAM_HTML:
            problems += telegram_html_problems(text)
            if len(text) > 4096 * 2:
                problems.append(f"a message of {len(text)} characters")
        if not may_format:
            found = formatting_in(text, markup)
            if found:
                problems.append(f"formatting {found[:5]} in {text[:200]!r}")
    return problems


# --- the bed -------------------------------------------------------------------------------------------

COURSE = Course(
    slug="fuzz",
    title="Fuzz course",
    description="Lessons for hostile learners.",
    language="en",
    default_cadence="daily",
    default_time="08:00",
    lessons=(
        Lesson(
            slug="one",
            number=1,
            title="One",
            body_markdown="First *lesson*.",
            quiz=Quiz("Which?", ("this", "that"), 0, "This one."),
        ),
        Lesson(
            slug="two",
            number=2,
            title="Two",
            body_markdown="Second.",
            drip=DripRules(unlock=Unlock.AFTER_DONE),
        ),
        Lesson(slug="three", number=3, title="Three", body_markdown="Third."),
    ),
)
CAPABILITIES: dict[str, Capabilities] = {"telegram": TELEGRAM, "discord": DISCORD}
INSTRUCTOR = {"telegram": "1", "discord": "1"}
LEARNER_IDS = {"telegram": "5001", "discord": "500000000000000001"}
DISCORD_DM_CHANNEL = 600000000000000001
OTHER_IDS = {"telegram": "5002", "discord": "500000000000000002"}
START = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)

IGNORED_COLUMNS = {"learner": {"last_seen_at", "awaiting", "display_name"}}
"""Columns any event may touch: when the learner was last seen, the question awaiting an answer, the name."""
ZONE_COLUMNS = {"learner": {"time_zone"}, "enrollment": {"next_release_at", "anchor_date"}}
"""What a typed time zone, a shared location or a zone button may change."""
SKIPPED_TABLES = {"adminaction"}
"""Refused instructor commands are audited: see the access tests."""


def learner_chat(platform: str, user_id: str) -> str:
    return f"dm:{user_id}:{DISCORD_DM_CHANNEL}" if platform == "discord" else user_id


class Errors(logging.Handler):
    """Collects ERROR records: the core logs every unexpected exception at that level."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class FuzzBed:
    """A real database with learners mid-course, and the conversation that answers them."""

    def __init__(self, workdir: Path) -> None:
        self.engine: Engine = create_db_engine(f"sqlite:///{workdir / 'fuzz.db'}")
        upgrade(self.engine)
        self.database = Database(self.engine)
        self.clock = FakeClock(START)
        self.catalog = Catalog([COURSE])
        policy = AdminPolicy({platform: [user] for platform, user in INSTRUCTOR.items()})
        tools = AdminTools(self.database, self.catalog, self.clock, policy, courses_root=workdir)
        self.conversation = Conversation(
            self.database,
            self.catalog,
            self.clock,
            CAPABILITIES,
            admin=AdminConversation(tools, CAPABILITIES),
        )
        self.loop = asyncio.new_event_loop()
        self.cases = 0
        self.errors = Errors()
        for platform in CAPABILITIES:
            for user_id in (LEARNER_IDS[platform], OTHER_IDS[platform]):
                self._take_lesson_one(self.sender(platform, user_id))
        self._deliver()
        self.ids = {
            (platform, user_id): self._ids_of(platform, user_id)
            for platform in CAPABILITIES
            for user_id in (LEARNER_IDS[platform], OTHER_IDS[platform])
        }

    def close(self) -> None:
        self.loop.close()
        self.database.close()

    # --- setting the scene -----------------------------------------------------------------------------

    def sender(self, platform: str, user_id: str | None = None, *, private: bool = True) -> Sender:
        user = user_id or LEARNER_IDS[platform]
        return Sender(
            platform, user, learner_chat(platform, user), f"Learner {user}", "en", is_private=private
        )

    def _take_lesson_one(self, sender: Sender) -> None:
        for event in (
            Command(sender, "start", COURSE.slug),
            TextReceived(sender, "Europe/Berlin"),
            TextReceived(sender, "08:00"),
            TextReceived(sender, "daily"),
        ):
            self.handle(event)

    def _deliver(self) -> None:
        release_due(self.engine, self.catalog, self.clock.now())
        chats = {
            platform: FakeChat(capabilities=caps, clock=self.clock) for platform, caps in CAPABILITIES.items()
        }
        sender = OutboxSender(
            self.database,
            self.catalog,
            chats,
            {platform: Pacer(platform, 1000.0) for platform in chats},
            self.clock,
            SenderSettings(),
        )
        assert self.loop.run_until_complete(sender.drain_once()) == 4
        self.polls = {
            record.chat_id: f"poll-{record.message_ids[0]}"
            for record in chats["telegram"].sent
            if isinstance(record.part, QuizPart)
        }
        assert len(self.polls) == 2, "both Telegram learners got lesson one's quiz as a native poll"

    def _ids_of(self, platform: str, user_id: str) -> dict[str, int]:
        with Session(self.engine) as session:
            learner = session.exec(
                select(Learner).where(Learner.platform == platform, Learner.platform_user_id == user_id)
            ).one()
            delivery = session.exec(select(Delivery).where(Delivery.learner_id == learner.id)).one()
        return {
            "learner": learner.id or 0,
            "enrollment": delivery.enrollment_id,
            "delivery": delivery.id or 0,
        }

    def set_awaiting(self, platform: str, step: str | None) -> None:
        """Make the learner's next typed text the answer to `step` ("zone", "time", "pace") or to nothing."""
        enrollment = self.ids[(platform, LEARNER_IDS[platform])]["enrollment"]
        with Session(self.engine) as session:
            learner = session.exec(
                select(Learner).where(
                    Learner.platform == platform, Learner.platform_user_id == LEARNER_IDS[platform]
                )
            ).one()
            learner.awaiting = f"{step}:{enrollment}" if step else None
            session.add(learner)
            session.commit()

    # --- one event -------------------------------------------------------------------------------------

    def handle(self, event: InboundEvent) -> Reply:
        return self.loop.run_until_complete(self.conversation.handle(event))

    def snapshot(self, ignore: dict[str, set[str]] | None = None) -> dict[str, list[tuple[Any, ...]]]:
        """Every stored row, less the columns any event (or the command at hand) may change ("*": any)."""
        skip = {table: set(columns) for table, columns in IGNORED_COLUMNS.items()}
        for table, columns in (ignore or {}).items():
            skip.setdefault(table, set()).update(columns)
        state: dict[str, list[tuple[Any, ...]]] = {}
        with self.engine.connect() as connection:
            for table in SQLModel.metadata.sorted_tables:
                if table.name in SKIPPED_TABLES or "*" in skip.get(table.name, set()):
                    continue
                columns = [
                    column for column in table.columns if column.name not in skip.get(table.name, set())
                ]
                rows = connection.execute(select_columns(*columns).order_by(*table.primary_key.columns))
                state[table.name] = [tuple(row) for row in rows]
        return state

    @contextmanager
    def watching_errors(self) -> Iterator[Errors]:
        root = logging.getLogger()
        root.addHandler(self.errors)
        try:
            yield self.errors
        finally:
            root.removeHandler(self.errors)

    def send(
        self,
        event: InboundEvent,
        *,
        may_change: dict[str, set[str]] | None = None,
        may_format: bool = False,
    ) -> Reply:
        """Answer `event` and assert the answer helps and nothing stored changed beyond `may_change`."""
        self.cases += 1
        before = self.snapshot(may_change)
        errors_before = len(self.errors.records)
        with self.watching_errors():
            reply = self.handle(event)
        new_errors = self.errors.records[errors_before:]
        assert not new_errors, f"{event!r} logged {[record.getMessage() for record in new_errors]}"
        markup = CAPABILITIES[event.sender.platform].markup
        problems = reply_problems(reply, markup, may_format=may_format)
        assert not problems, f"{event!r}: {problems}"
        after = self.snapshot(may_change)
        changed = [table for table in before if before[table] != after[table]]
        assert not changed, f"{event!r} changed {changed}"
        return reply
