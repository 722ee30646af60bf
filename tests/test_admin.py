"""Instructor commands through `Conversation.handle`: refused for everyone else, audited, and effective."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from matplotlib import image
from sqlalchemy import Engine, select, update
from sqlmodel import Session, SQLModel

from bot.actions import encode
from bot.admin import REFUSAL, Actor, AdminPolicy, AdminTools
from bot.admin_conversation import ADMIN_COMMANDS, AdminConversation
from bot.capabilities import DISCORD, TELEGRAM
from bot.catalog import Catalog
from bot.content import Course, DripRules, Lesson, Quiz, Unlock
from bot.conversation import Conversation
from bot.db import Database
from bot.models import (
    AdminAction,
    Announcement,
    Broadcast,
    Cohort,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Enrollment,
    EnrollmentStatus,
    Learner,
    QuizAnswer,
)
from bot.ports import ButtonPressed, Command, FilePart, InboundEvent, Reply, Sender, TextPart, TextReceived
from bot.render import quiz_action
from bot.settings import SenderSettings
from scheduler.announcements import Announcements, pending_announcements
from scheduler.pacer import Pacer
from scheduler.sender import Sender as OutboxSender
from tests.fakes import FakeChat, FakeClock, reply_actions, reply_text

INSTRUCTOR = Sender("telegram", "42", "42", "Ines")
DISCORD_INSTRUCTOR = Sender("discord", "3003", "dm:3003", "Rolf", is_admin_hint=True)
ALICE = Sender("telegram", "1001", "1001", "Alice")
BOB = Sender("discord", "2002", "dm:2002:9", "Bob")
STRANGERS = (
    Sender("telegram", "666", "666", "Mallory"),
    Sender("discord", "667", "dm:667", "Eve"),
    # Telegram has no admin role: a hint from there must not count.
    Sender("telegram", "668", "668", "Trudy", is_admin_hint=True),
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def lesson(number: int, **drip: Any) -> Lesson:
    return Lesson(
        slug=f"lesson-{number}",
        number=number,
        title=f"Lesson {number}",
        body_markdown=f"Body of lesson {number}.",
        quiz=Quiz("2 + 2?", ("3", "4", "5"), 1, "Four.") if number == 2 else None,
        drip=DripRules(**drip),
    )


COURSE = Course(
    slug="habits",
    title="Good habits",
    description="A tiny course.",
    language="en",
    default_cadence="daily",
    default_time="08:00",
    lessons=(lesson(1), lesson(2), lesson(3, unlock=Unlock.AFTER_QUIZ), lesson(4)),
)


class SenderWaker:
    def __init__(self) -> None:
        self.wakes = 0

    async def wake(self) -> None:
        self.wakes += 1


@dataclass
class Rig:
    database: Database
    clock: FakeClock
    catalog: Catalog
    tools: AdminTools
    conversation: Conversation
    waker: SenderWaker

    async def say(self, sender: Sender, name: str, args: str = "") -> Reply:
        return await self.conversation.handle(Command(sender, name, args))

    async def press(self, sender: Sender, action: str) -> Reply:
        return await self.conversation.handle(ButtonPressed(sender, action))

    async def type(self, sender: Sender, text: str) -> Reply:
        return await self.conversation.handle(TextReceived(sender, text))

    async def onboard(self, sender: Sender, zone: str, wall: str, pace: str, args: str = "habits") -> None:
        await self.say(sender, "start", args)
        await self.type(sender, zone)
        await self.type(sender, wall)
        await self.type(sender, pace)

    def rows(self, model: type[SQLModel]) -> list[Any]:
        with Session(self.database.engine) as session:
            found = list(session.exec(select(model).order_by(model.id)).scalars())  # type: ignore[attr-defined]
            for row in found:
                session.expunge(row)
            return found

    def learner_id(self, sender: Sender) -> int:
        [learner] = [row for row in self.rows(Learner) if row.platform_user_id == sender.user_id]
        return int(learner.id)

    def enrollment(self, sender: Sender) -> Enrollment:
        learner_id = self.learner_id(sender)
        [found] = [row for row in self.rows(Enrollment) if row.learner_id == learner_id]
        return found  # type: ignore[no-any-return]


def build_rig(database: Database, clock: FakeClock, catalog: Catalog, courses_root: Path) -> Rig:
    waker = SenderWaker()
    tools = AdminTools(
        database,
        catalog,
        clock,
        AdminPolicy({"telegram": ["42"], "discord": ["9999"]}, role_hint_platforms=("discord",)),
        courses_root=courses_root,
        announcements=Announcements(database, clock, waker),
        wake_sender=waker.wake,
    )
    capabilities = {"telegram": TELEGRAM, "discord": DISCORD}
    conversation = Conversation(
        database, catalog, clock, capabilities, admin=AdminConversation(tools, capabilities)
    )
    return Rig(database, clock, catalog, tools, conversation, waker)


@pytest.fixture
def rig(database: Database, clock: FakeClock, tmp_path: Path) -> Rig:
    return build_rig(database, clock, Catalog([COURSE]), tmp_path)


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the audit trail."""
    with engine.connect() as connection:
        return {
            table.name: sorted((tuple(row) for row in connection.execute(select(table))), key=repr)
            for table in SQLModel.metadata.sorted_tables
            if table.name != "adminaction"
        }


async def seeded(rig: Rig) -> Rig:
    """Alice (Berlin, weekdays 07:30) has had lesson 1; Bob (Tokyo, daily 20:00) is active; a draft waits."""
    await rig.onboard(ALICE, "berlin", "07:30", "weekdays")
    await rig.say(ALICE, "next")
    await rig.onboard(BOB, "tokyo", "20:00", "daily")
    await rig.tools.prepare_broadcast(Actor.from_sender(INSTRUCTOR), "habits", "Hello")
    return rig


# --- who may ---------------------------------------------------------------------------------------

EVERY_ADMIN_EVENT = [
    ("admin", ""),
    ("stats", "habits"),
    ("learners", "habits paused page 1"),
    ("learner", "1"),
    ("learner", "1 pause"),
    ("learner", "1 resume"),
    ("learner", "1 move lesson-3"),
    ("learner", "1 unlock"),
    ("learner", "1 reset"),
    ("learner", "1 remove"),
    ("broadcast", "habits Hello everyone"),
    ("broadcast", "status 1"),
    ("broadcast", "cancel 1"),
    ("announce", "2026-03-05 09:00 habits Live Q&A"),
    ("export", "habits"),
    ("reload", ""),
    ("cohort", "create habits spring"),
    ("cohort", "list"),
    ("audit", "5"),
    ("button", encode("bcast", 1, "now")),
    ("button", encode("bcast", 1, "local")),
    ("button", encode("bcast", 1, "cancel")),
]


def test_every_admin_command_is_covered() -> None:
    assert {name for name, _ in ADMIN_COMMANDS} <= {name for name, _ in EVERY_ADMIN_EVENT}


def event_for(sender: Sender, name: str, args: str) -> InboundEvent:
    if name == "button":
        return ButtonPressed(sender, args)
    return Command(sender, name, args)


@pytest.mark.parametrize(("name", "args"), EVERY_ADMIN_EVENT)
async def test_everyone_else_is_refused_changes_nothing_and_is_audited(
    rig: Rig, name: str, args: str
) -> None:
    await seeded(rig)
    for stranger in STRANGERS:
        before = snapshot(rig.database.engine)
        audit_before = len(rig.rows(AdminAction))
        reply = await rig.conversation.handle(event_for(stranger, name, args))
        assert reply_text(reply) == REFUSAL
        assert not any(isinstance(part, FilePart) for part in reply.parts)
        assert snapshot(rig.database.engine) == before
        audit = rig.rows(AdminAction)
        assert len(audit) == audit_before + 1
        row = audit[-1]
        assert (row.platform, row.user_id, row.action, row.allowed, row.outcome) == (
            stranger.platform,
            stranger.user_id,
            name,
            False,
            "refused",
        )
        assert row.arguments == args.strip()
        assert row.at == rig.clock.now()


async def test_a_discord_member_with_the_admin_role_is_an_instructor(rig: Rig) -> None:
    await seeded(rig)
    reply = await rig.say(DISCORD_INSTRUCTOR, "stats", "habits")
    assert "enrolled 2" in reply_text(reply)
    assert rig.rows(AdminAction)[-1].user_id == "3003"
    assert rig.rows(AdminAction)[-1].allowed


async def test_the_role_counts_only_where_the_config_names_an_admin_role(
    database: Database, clock: FakeClock, tmp_path: Path
) -> None:
    tools = AdminTools(
        database, Catalog([COURSE]), clock, AdminPolicy({"discord": ["9999"]}), courses_root=tmp_path
    )
    assert not tools.is_admin(Actor.from_sender(DISCORD_INSTRUCTOR))
    assert tools.is_admin(Actor("discord", "9999"))
    assert tools.is_admin(Actor.operator("ines"))


async def test_admin_help_lists_every_command(rig: Rig) -> None:
    text = reply_text(await rig.say(INSTRUCTOR, "admin"))
    for name, _ in ADMIN_COMMANDS:
        assert f"/{name}" in text


# --- stats, learners, one learner ------------------------------------------------------------------


async def test_stats_sends_a_summary_and_a_funnel_chart(rig: Rig) -> None:
    await seeded(rig)
    reply = await rig.say(INSTRUCTOR, "stats", "habits")
    text = reply_text(reply)
    assert "enrolled 2 · active 2 · paused 0 · finished 0 · unreachable 0" in text
    assert "1. Lesson 1: delivered 0, done 0" in text  # released, not yet accepted by the platform
    assert "quiz no answers yet" in text
    [chart] = [part for part in reply.parts if isinstance(part, FilePart)]
    assert chart.as_photo
    assert chart.content.startswith(PNG_SIGNATURE)
    assert image.imread(io.BytesIO(chart.content), format="png").ndim == 3
    row = rig.rows(AdminAction)[-1]
    assert (row.action, row.arguments, row.allowed, row.outcome) == (
        "stats",
        '{"course": "habits"}',
        True,
        "ok",
    )


async def test_stats_of_an_unknown_course_is_refused_politely_and_audited(rig: Rig) -> None:
    reply = await rig.say(INSTRUCTOR, "stats", "nope")
    assert "There is no course “nope”. Courses: habits." in reply_text(reply)
    row = rig.rows(AdminAction)[-1]
    assert (row.allowed, row.outcome) == (True, "failed: There is no course “nope”. Courses: habits.")


async def test_learners_pages_and_filters(rig: Rig) -> None:
    await seeded(rig)
    for number in range(25):
        await rig.onboard(
            Sender("telegram", str(5000 + number), str(5000 + number), f"Zed {number}"),
            "utc",
            "9:00",
            "daily",
        )
    text = reply_text(await rig.say(INSTRUCTOR, "learners"))
    assert "page 1 of 2, 27 in all" in text
    assert "More: /learners page 2" in text
    text = reply_text(await rig.say(INSTRUCTOR, "learners", "page 2"))
    assert text.count("· habits ·") == 7
    text = reply_text(await rig.say(INSTRUCTOR, "learners", "habits ALI"))
    assert "1 in all" in text
    assert f"#{rig.learner_id(ALICE)} Alice · telegram · habits · active · lesson 1/4" in text
    await rig.say(INSTRUCTOR, "learner", f"{rig.learner_id(BOB)} pause")
    text = reply_text(await rig.say(INSTRUCTOR, "learners", "paused"))
    assert "1 in all" in text and "Bob" in text
    with Session(rig.database.engine) as session:
        session.execute(update(Learner).where(Learner.id == rig.learner_id(ALICE)).values(reachable=False))
        session.commit()
    text = reply_text(await rig.say(INSTRUCTOR, "learners", "unreachable"))
    assert "1 in all" in text and "Alice" in text and "unreachable" in text


async def test_one_learner_shows_settings_history_and_quiz_answers(rig: Rig) -> None:
    await seeded(rig)
    await rig.say(ALICE, "next")  # lesson 2 with its quiz
    [quizzed] = [row for row in rig.rows(Delivery) if row.lesson_slug == "lesson-2"]
    await rig.press(ALICE, quiz_action(quizzed.id, 0))
    text = reply_text(await rig.say(INSTRUCTOR, "learner", str(rig.learner_id(ALICE))))
    assert "Alice (telegram 1001)" in text
    assert "zone Europe/Berlin" in text
    assert "habits: active, weekdays at 07:30, 2 lesson(s) released" in text
    assert "next lesson-3 at 2026-03-03 06:30Z" in text  # the quiz answer unlocked it
    assert "2026-03-02 06:00Z habits/lesson-1: pending" in text
    assert "habits/lesson-2: option 1, wrong" in text
    assert rig.rows(AdminAction)[-1].action == "learner"


async def test_a_missing_learner_id_is_answered_and_audited(rig: Rig) -> None:
    assert reply_text(await rig.say(INSTRUCTOR, "learner", "77")) == "There is no learner 77."
    assert (
        reply_text(await rig.say(INSTRUCTOR, "learner", "x7")) == "The learner id must be a number, not “x7”."
    )
    outcomes = [row.outcome for row in rig.rows(AdminAction)]
    assert outcomes == [
        "failed: There is no learner 77.",
        "failed: The learner id must be a number, not “x7”.",
    ]


# --- acting on one learner -------------------------------------------------------------------------


async def test_pause_resume_move_unlock_reset_remove(rig: Rig) -> None:
    await seeded(rig)
    alice = str(rig.learner_id(ALICE))

    text = reply_text(await rig.say(INSTRUCTOR, "learner", f"{alice} pause"))
    assert text == "Paused learner 1 (Alice) in habits until resumed."
    assert (rig.enrollment(ALICE).status, rig.enrollment(ALICE).next_release_at) == (
        EnrollmentStatus.PAUSED,
        None,
    )

    await rig.say(INSTRUCTOR, "learner", f"{alice} resume")
    # Lesson 1 went out on Monday 06:00Z; the next weekday slot is Tuesday 07:30 Berlin.
    assert rig.enrollment(ALICE).status is EnrollmentStatus.ACTIVE
    assert rig.enrollment(ALICE).next_release_at == dt.datetime(2026, 3, 3, 6, 30, tzinfo=dt.UTC)

    await rig.say(INSTRUCTOR, "learner", f"{alice} move lesson-3")
    assert rig.enrollment(ALICE).next_lesson_slug == "lesson-3"
    text = reply_text(await rig.say(INSTRUCTOR, "learner", f"{alice} move lesson-1"))
    assert "already had “lesson-1”" in text
    assert rig.enrollment(ALICE).next_lesson_slug == "lesson-3"

    await rig.say(INSTRUCTOR, "learner", f"{alice} move lesson-2")
    await rig.say(ALICE, "next")
    assert rig.enrollment(ALICE).waiting_for == "quiz"
    assert rig.enrollment(ALICE).next_release_at is None
    await rig.say(INSTRUCTOR, "learner", f"{alice} unlock")
    assert rig.enrollment(ALICE).waiting_for is None
    assert rig.enrollment(ALICE).next_release_at == dt.datetime(2026, 3, 3, 6, 30, tzinfo=dt.UTC)

    [quizzed] = [row for row in rig.rows(Delivery) if row.lesson_slug == "lesson-2"]
    await rig.press(ALICE, quiz_action(quizzed.id, 1))
    await rig.say(INSTRUCTOR, "learner", f"{alice} reset")
    reset = rig.enrollment(ALICE)
    assert (reset.lessons_released, reset.next_lesson_slug, reset.last_lesson_slug) == (0, "lesson-1", None)
    assert reset.next_release_at == rig.clock.now()  # lesson 1 again, at once
    assert [row for row in rig.rows(Delivery) if row.learner_id == reset.learner_id] == []
    assert rig.rows(QuizAnswer) == []

    await rig.say(INSTRUCTOR, "learner", f"{alice} remove")
    assert rig.enrollment(ALICE).status is EnrollmentStatus.STOPPED

    actions = [(row.action, row.outcome.split(":")[0]) for row in rig.rows(AdminAction)[1:]]
    assert actions == [
        ("learner.pause", "ok"),
        ("learner.resume", "ok"),
        ("learner.move", "ok"),
        ("learner.move", "failed"),
        ("learner.move", "ok"),
        ("learner.unlock", "ok"),
        ("learner.reset", "ok"),
        ("learner.remove", "ok"),
    ]


async def test_a_learner_in_two_courses_needs_the_course_named(
    database: Database, clock: FakeClock, tmp_path: Path
) -> None:
    other = Course("focus", "Focus", "", "en", "daily", "08:00", (lesson(1),))
    rig = build_rig(database, clock, Catalog([COURSE, other]), tmp_path)
    await rig.onboard(ALICE, "berlin", "07:30", "weekdays")
    await rig.say(ALICE, "start", "focus")
    await rig.type(ALICE, "08:00")
    await rig.type(ALICE, "daily")
    alice = rig.learner_id(ALICE)
    text = reply_text(await rig.say(INSTRUCTOR, "learner", f"{alice} pause"))
    assert "takes several courses (habits, focus)" in text
    await rig.say(INSTRUCTOR, "learner", f"{alice} focus pause")
    statuses = {row.course_slug: row.status for row in rig.rows(Enrollment)}
    assert statuses == {"habits": EnrollmentStatus.ACTIVE, "focus": EnrollmentStatus.PAUSED}


# --- broadcasts ------------------------------------------------------------------------------------


class VirtualTime:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def outbox_sender(rig: Rig, chats: dict[str, FakeChat]) -> OutboxSender:
    virtual = VirtualTime()
    return OutboxSender(
        rig.database,
        rig.catalog,
        chats,
        {
            platform: Pacer(platform, 1000.0, monotonic=virtual.monotonic, sleep=virtual.sleep)
            for platform in chats
        },
        rig.clock,
        SenderSettings(),
        worker_id="test-worker",
    )


async def test_a_broadcast_is_previewed_confirmed_once_and_delivered_through_the_outbox(rig: Rig) -> None:
    await seeded(rig)
    carol = Sender("telegram", "3030", "3030", "Carol")
    await rig.onboard(carol, "America/Lima", "06:00", "daily")
    with Session(rig.database.engine) as session:
        session.execute(update(Learner).where(Learner.platform_user_id == "3030").values(reachable=False))
        session.commit()

    reply = await rig.say(INSTRUCTOR, "broadcast", "habits Office hours **today** at 17:00 UTC")
    text = reply_text(reply)
    assert "Broadcast #2 to “Good habits”: 2 learner(s) will get it, 1 cannot be reached. Preview:" in text
    assert "Office hours <b>today</b> at 17:00 UTC" in text
    assert reply_actions(reply) == ["bcast:2:now", "bcast:2:local", "bcast:2:cancel"]
    assert [row for row in rig.rows(Delivery) if row.kind is DeliveryKind.BROADCAST] == []

    reply = await rig.press(INSTRUCTOR, "bcast:2:now")
    assert "Broadcast #2 queued: 2 delivery(ies) going out now, 1 learner(s) unreachable." in reply_text(
        reply
    )
    reply = await rig.press(INSTRUCTOR, "bcast:2:now")
    assert "was already queued" in reply_text(reply)
    broadcast_rows = [row for row in rig.rows(Delivery) if row.kind is DeliveryKind.BROADCAST]
    assert sorted(row.learner_id for row in broadcast_rows) == [rig.learner_id(ALICE), rig.learner_id(BOB)]
    assert {row.due_at for row in broadcast_rows} == {rig.clock.now()}
    assert rig.waker.wakes == 1

    telegram, discord = FakeChat(capabilities=TELEGRAM), FakeChat(capabilities=DISCORD)
    discord.blocked_chats.add(BOB.chat_id)
    await outbox_sender(rig, {"telegram": telegram, "discord": discord}).drain_once()
    texts_to_alice = [record.part.text for record in telegram.sent if isinstance(record.part, TextPart)]
    assert "Office hours <b>today</b> at 17:00 UTC" in texts_to_alice

    text = reply_text(await rig.say(INSTRUCTOR, "broadcast", "status 2"))
    assert "is finished: 2 of 2 settled" in text
    assert "sent 1 · failed 0 · unreachable 2 · waiting 0 · scheduled 0 · cancelled 0" in text
    actions = [row.action for row in rig.rows(AdminAction) if row.platform == "telegram"]
    assert actions == [
        "broadcast.prepare",
        "broadcast.prepare",
        "broadcast.confirm",
        "broadcast.confirm",
        "broadcast.status",
    ]


async def test_a_broadcast_at_each_learners_time_waits_for_their_next_slot(rig: Rig) -> None:
    await seeded(rig)
    await rig.say(INSTRUCTOR, "learner", f"{rig.learner_id(BOB)} pause")
    await rig.press(INSTRUCTOR, "bcast:1:local")
    due = {row.learner_id: row.due_at for row in rig.rows(Delivery) if row.kind is DeliveryKind.BROADCAST}
    # Alice's next lesson: Tuesday 07:30 Berlin. Bob is paused, so his own time: 20:00 Tokyo today.
    assert due == {
        rig.learner_id(ALICE): dt.datetime(2026, 3, 3, 6, 30, tzinfo=dt.UTC),
        rig.learner_id(BOB): dt.datetime(2026, 3, 2, 11, 0, tzinfo=dt.UTC),
    }
    text = reply_text(await rig.say(INSTRUCTOR, "broadcast", "status 1"))
    assert "in progress" in text and "scheduled 2" in text
    rig.clock.at = dt.datetime(2026, 3, 2, 11, 0, tzinfo=dt.UTC)
    text = reply_text(await rig.say(INSTRUCTOR, "broadcast", "status 1"))
    assert "waiting 1 · scheduled 1" in text


async def test_a_cohort_broadcast_reaches_only_the_cohort_and_can_be_cancelled(rig: Rig) -> None:
    await seeded(rig)
    reply = await rig.say(INSTRUCTOR, "cohort", "create habits spring")
    code = rig.rows(Cohort)[0].code
    assert f"Invite: /start {code}" in reply_text(reply)
    dora = Sender("telegram", "4004", "4004", "Dora")
    await rig.onboard(dora, "berlin", "08:00", "daily", args=code)
    reply = await rig.say(INSTRUCTOR, "broadcast", "cohort:spring Welcome, spring cohort!")
    assert "cohort spring: 1 learner(s) will get it" in reply_text(reply)
    await rig.press(INSTRUCTOR, "bcast:2:local")
    [delivery] = [row for row in rig.rows(Delivery) if row.broadcast_id == 2]
    assert delivery.learner_id == rig.learner_id(dora)
    text = reply_text(await rig.press(INSTRUCTOR, "bcast:2:cancel"))
    assert text == "Broadcast #2 cancelled. 0 had already gone out."
    assert rig.rows(Delivery)[-1].status is DeliveryStatus.CANCELLED
    text = reply_text(await rig.press(INSTRUCTOR, "bcast:1:cancel"))
    assert [row.status.value for row in rig.rows(Broadcast)] == ["cancelled", "cancelled"]
    assert "Broadcast #1 was cancelled." in reply_text(await rig.press(INSTRUCTOR, "bcast:1:now"))


async def test_a_broadcast_needs_text_and_an_audience_that_exists(rig: Rig) -> None:
    assert "Use: broadcast" in reply_text(await rig.say(INSTRUCTOR, "broadcast", "habits"))
    assert "There is no course “nope”" in reply_text(await rig.say(INSTRUCTOR, "broadcast", "nope Hi"))
    assert "There is no cohort “x”" in reply_text(await rig.say(INSTRUCTOR, "broadcast", "cohort:x Hi"))
    assert rig.rows(Broadcast) == []
    assert [row.outcome.startswith("failed") for row in rig.rows(AdminAction)] == [True, True, True]


# --- announcements, export, cohorts, audit ---------------------------------------------------------


async def test_announce_stores_a_dated_announcement_that_survives_a_restart(rig: Rig) -> None:
    reply = await rig.say(INSTRUCTOR, "announce", "2026-03-05 09:00 habits Live Q&A on **Thursday**")
    assert reply_text(reply) == "Announcement #1 to habits is scheduled for 2026-03-05 09:00Z."
    await rig.say(INSTRUCTOR, "announce", "2026-03-06T10:00+01:00 habits Second")
    pending = pending_announcements(rig.database.engine)
    assert pending == [
        (1, dt.datetime(2026, 3, 5, 9, 0, tzinfo=dt.UTC)),
        (2, dt.datetime(2026, 3, 6, 9, 0, tzinfo=dt.UTC)),
    ]
    first = rig.rows(Announcement)[0]
    assert (first.text, first.created_by) == ("Live Q&A on **Thursday**", "telegram:42")

    past = reply_text(await rig.say(INSTRUCTOR, "announce", "2026-03-01 09:00 habits Too late"))
    assert past == "That time has passed: an announcement must be in the future."
    naive = reply_text(await rig.say(INSTRUCTOR, "announce", "2026-03-07T09:00 habits No offset"))
    assert "has no UTC offset" in naive
    assert len(rig.rows(Announcement)) == 2
    outcomes = [(row.action, row.outcome.split(":")[0]) for row in rig.rows(AdminAction)]
    assert outcomes == [
        ("announce", "ok"),
        ("announce", "ok"),
        ("announce", "failed"),
        ("announce", "failed"),
    ]


async def test_export_sends_two_csv_files(rig: Rig) -> None:
    await seeded(rig)
    reply = await rig.say(INSTRUCTOR, "export", "habits")
    assert "Exported 2 enrollment(s) and 0 quiz answer(s)." in reply_text(reply)
    files = [part for part in reply.parts if isinstance(part, FilePart)]
    assert [part.filename for part in files] == [
        "enrollments-habits-20260302-0600.csv",
        "quiz-answers-habits-20260302-0600.csv",
    ]
    assert not any(part.as_photo for part in files)
    header = files[0].content.decode("utf-8-sig").splitlines()[0]
    assert header.startswith("enrollment_id,learner_id,platform,platform_user_id,display_name,course")
    assert rig.rows(AdminAction)[-1].action == "export"


async def test_a_cohort_invite_enrols_with_the_cohorts_pace_and_waits_for_its_start(rig: Rig) -> None:
    reply = await rig.say(INSTRUCTOR, "cohort", "create habits Spring-26 2026-03-09 mon,wed,fri 18:00")
    cohort = rig.rows(Cohort)[0]
    assert (cohort.name, cohort.start_date, cohort.cadence, cohort.local_time) == (
        "spring-26",
        dt.date(2026, 3, 9),
        "mon,wed,fri",
        "18:00",
    )
    assert len(cohort.code) == 12 and cohort.code.isalnum() and cohort.code.islower()
    assert f"https://t.me/&lt;bot username&gt;?start={cohort.code}" in reply_text(reply)  # HTML-escaped

    dora = Sender("telegram", "4004", "4004", "Dora")
    reply = await rig.say(dora, "start", cohort.code.upper())
    assert "Welcome to “Good habits”" in reply_text(reply)
    await rig.type(dora, "berlin")
    await rig.type(dora, "18:00")
    reply = await rig.type(dora, "mon,wed,fri")
    enrollment = rig.enrollment(dora)
    assert (enrollment.cohort_id, enrollment.cadence, enrollment.local_time) == (
        cohort.id,
        "mon,wed,fri",
        "18:00",
    )
    # Not before Monday 9 March in Berlin: the first slot is that day at 18:00 (17:00Z).
    assert enrollment.status is EnrollmentStatus.PAUSED
    assert enrollment.paused_until == dt.datetime(2026, 3, 8, 23, 0, tzinfo=dt.UTC)
    assert enrollment.next_release_at == dt.datetime(2026, 3, 9, 17, 0, tzinfo=dt.UTC)
    assert "Lesson 1: Mon 09 Mar at 18:00 (Europe/Berlin)" in reply_text(reply)

    text = reply_text(await rig.say(INSTRUCTOR, "cohort", "list"))
    assert f"habits/spring-26: /start {cohort.code} · 1 learner(s) · starts 2026-03-09" in text
    again = reply_text(await rig.say(INSTRUCTOR, "cohort", "create habits spring-26"))
    assert again == "habits already has a cohort called spring-26."


async def test_audit_lists_the_newest_first(rig: Rig) -> None:
    await rig.say(INSTRUCTOR, "stats")
    await rig.say(STRANGERS[0], "stats")
    text = reply_text(await rig.say(INSTRUCTOR, "audit", "2"))
    lines = text.splitlines()
    assert lines[0] == "2026-03-02 06:00Z telegram:666 stats – refused"
    assert lines[1] == "2026-03-02 06:00Z telegram:42 stats – ok"
    assert len(lines) == 2


# --- reload --------------------------------------------------------------------------------------


def write_course(root: Path, lessons: dict[str, str]) -> Path:
    folder = root / "habits"
    (folder / "lessons").mkdir(parents=True, exist_ok=True)
    order = ", ".join(f'"{slug}"' for slug in lessons)
    (folder / "course.toml").write_text(
        f'title = "Good habits"\ndefault_cadence = "daily"\ndefault_time = "08:00"\nlessons = [{order}]\n',
        encoding="utf-8",
    )
    for stale in (folder / "lessons").glob("*.md"):
        stale.unlink()
    for number, (slug, body) in enumerate(lessons.items(), start=1):
        (folder / "lessons" / f"{number:02d}-{slug}.md").write_text(body, encoding="utf-8")
    return folder


def lesson_file(title: str) -> str:
    return f"---\ntitle: {title}\n---\nSome words about {title.lower()}.\n"


@pytest.fixture
def course_root(tmp_path: Path) -> Path:
    root = tmp_path / "courses"
    write_course(root, {"one": lesson_file("One"), "two": lesson_file("Two"), "three": lesson_file("Three")})
    return root


async def test_reload_keeps_the_running_course_when_the_new_one_is_broken(
    database: Database, clock: FakeClock, course_root: Path
) -> None:
    catalog, problems = Catalog.load(course_root)
    assert problems == []
    rig = build_rig(database, clock, catalog, course_root)
    running = catalog.get("habits")
    broken = course_root / "habits" / "lessons" / "02-two.md"
    broken.write_text("---\ntitle: Two\ntitel: typo\n---\nText.\n", encoding="utf-8")

    text = reply_text(await rig.say(INSTRUCTOR, "reload"))
    assert "kept the running version (new one has errors): habits" in text
    assert f"error: {broken}:3: unknown key 'titel'" in text
    assert catalog.get("habits") is running
    assert rig.rows(AdminAction)[-1].outcome == "ok, kept the running version of: habits"
    # Learners keep being served from the running version.
    await rig.onboard(ALICE, "berlin", "07:30", "daily")
    assert rig.enrollment(ALICE).next_lesson_slug == "one"


async def test_reload_swaps_in_valid_content_and_names_learners_due_a_removed_lesson(
    database: Database, clock: FakeClock, course_root: Path
) -> None:
    catalog, _ = Catalog.load(course_root)
    rig = build_rig(database, clock, catalog, course_root)
    await rig.onboard(ALICE, "berlin", "07:30", "daily")
    await rig.say(ALICE, "next")
    assert rig.enrollment(ALICE).next_lesson_slug == "two"
    write_course(course_root, {"one": lesson_file("One"), "three": lesson_file("Three, revised")})

    text = reply_text(await rig.say(INSTRUCTOR, "reload"))
    assert "habits: removed lessons two; changed lessons three\n" in text
    assert "habits: 1 learner(s) were due “two”; they get the next lesson instead" in text
    course = catalog.get("habits")
    assert course is not None
    assert [lesson.slug for lesson in course.lessons] == ["one", "three"]
    assert rig.enrollment(ALICE).lessons_released == 1  # the position is kept


async def test_a_reload_requested_elsewhere_is_carried_out_once(
    database: Database, clock: FakeClock, course_root: Path
) -> None:
    catalog, _ = Catalog.load(course_root)
    running = build_rig(database, clock, catalog, course_root).tools
    assert await running.apply_requested_reloads() is None  # notes where the audit trail stands
    command_line = build_rig(database, clock, Catalog.load(course_root)[0], course_root).tools
    write_course(course_root, {"one": lesson_file("One"), "two": lesson_file("Two")})
    await command_line.request_reload(Actor.operator("ines"))
    outcome = await running.apply_requested_reloads()
    assert outcome is not None
    assert outcome.report.changed[0].lessons_removed == ("three",)
    assert await running.apply_requested_reloads() is None
    course = catalog.get("habits")
    assert course is not None and len(course.lessons) == 2
