"""A small running dripcourse for the learning tests: conversation, heartbeat and sender on a FakeChat.

The clock only moves when a test moves it; `tick()` is one heartbeat (releases, then follow-ups)
and one drain of the outbox, so every test reads like a transcript with timestamps.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from bot.catalog import Catalog
from bot.content import Course, DripRules, Lesson, NudgeRules, Quiz, ReviewRules
from bot.conversation import Conversation
from bot.db import Database
from bot.models import Delivery, DeliveryKind, Enrollment, Learner, ReviewCard
from bot.ports import ButtonPressed, Command, OutboundPart, QuizPart, Reply, Sender, TextPart, TextReceived
from bot.render import quiz_action
from bot.settings import SenderSettings
from scheduler.heartbeat import Heartbeat
from scheduler.pacer import Pacer
from scheduler.sender import Sender as OutboxSender
from tests.fakes import FAKE_CAPABILITIES, FakeChat, FakeClock

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    """A 2026 moment on Berlin's wall clock, as aware UTC."""
    return dt.datetime(2026, month, day, hour, minute, second, tzinfo=BERLIN).astimezone(dt.UTC)


def quiz_lesson(number: int, *, unlock: object = None) -> Lesson:
    return Lesson(
        slug=f"lesson-{number}",
        number=number,
        title=f"Lesson {number}",
        body_markdown=f"Body of lesson {number}.",
        quiz=Quiz(f"Question {number}?", ("wrong", "right", "also wrong"), 1, "Because."),
        drip=DripRules() if unlock is None else DripRules(unlock=unlock),  # type: ignore[arg-type]
    )


def make_course(
    lessons: int = 4,
    *,
    review: ReviewRules | None = None,
    nudges: NudgeRules | None = None,
    slug: str = "memory",
    instructors: tuple[str, ...] = ("Ada Lovelace",),
) -> Course:
    return Course(
        slug=slug,
        title="Memory that lasts",
        description="Quizzes that come back.",
        language="en",
        default_cadence="daily",
        default_time="08:00",
        lessons=tuple(quiz_lesson(number) for number in range(1, lessons + 1)),
        instructors=instructors,
        review=review or ReviewRules(),
        nudges=nudges or NudgeRules(max=0),
    )


@dataclass
class Sent:
    at: dt.datetime
    kind: DeliveryKind
    part: OutboundPart


class World:
    def __init__(self, database: Database, clock: FakeClock, course: Course | Catalog) -> None:
        self.database = database
        self.clock = clock
        self.catalog = course if isinstance(course, Catalog) else Catalog([course])
        self.chat = FakeChat(clock=clock)
        self.conversation = Conversation(database, self.catalog, clock, {"fake": FAKE_CAPABILITIES})
        self.sender = OutboxSender(
            database,
            self.catalog,
            {"fake": self.chat},
            {"fake": Pacer("fake", 1000.0)},
            clock,
            SenderSettings(),
        )
        self.heartbeat = Heartbeat(database, self.catalog, clock, self.sender)
        self._seen = 0

    # --- the learner's side ------------------------------------------------------------------------
    async def command(self, who: Sender, name: str, args: str = "") -> Reply:
        return await self.conversation.handle(Command(who, name, args))

    async def type(self, who: Sender, text: str) -> Reply:
        return await self.conversation.handle(TextReceived(who, text))

    async def press(self, who: Sender, action: str) -> Reply:
        return await self.conversation.handle(ButtonPressed(who, action))

    async def onboard(
        self, who: Sender, zone: str = "Europe/Berlin", time: str = "08:00", pace: str = "daily"
    ) -> None:
        await self.command(who, "start", self.catalog.courses()[0].slug)
        await self.type(who, zone)
        await self.type(who, time)
        await self.type(who, pace)

    async def answer_lesson_quiz(self, who: Sender, lesson_slug: str, option: int) -> Reply:
        delivery = self.delivery(who, lesson_slug)
        return await self.press(who, quiz_action(delivery.id or 0, option))

    # --- time passing ------------------------------------------------------------------------------
    async def tick(self) -> list[Sent]:
        """One heartbeat and one drain at the clock's time; returns what reached the chat."""
        await self.heartbeat.tick()
        await self.sender.drain_once()
        return self.new_sends()

    async def tick_at(self, moment: dt.datetime) -> list[Sent]:
        self.clock.at = moment
        return await self.tick()

    async def run(self, until: dt.datetime, step: dt.timedelta = dt.timedelta(hours=1)) -> list[Sent]:
        """Tick every `step` from the clock's time up to and including `until`."""
        sent: list[Sent] = []
        while self.clock.now() + step <= until:
            sent += await self.tick_at(self.clock.now() + step)
        return sent

    async def run_days(
        self, until: dt.datetime, hours: tuple[int, ...] = (0, 6, 7, 8, 9, 12, 18, 21, 23)
    ) -> list[Sent]:
        """Tick at these Berlin wall hours of every day after the clock's time, up to `until`."""
        sent: list[Sent] = []
        day = self.clock.now().astimezone(BERLIN).date()
        while True:
            for hour in hours:
                moment = dt.datetime.combine(day, dt.time(hour), tzinfo=BERLIN).astimezone(dt.UTC)
                if moment > until:
                    return sent
                if moment > self.clock.now():
                    sent += await self.tick_at(moment)
            day += dt.timedelta(days=1)

    def new_sends(self) -> list[Sent]:
        records = self.chat.sent[self._seen :]
        self._seen = len(self.chat.sent)
        kinds = self._kinds()
        return [
            Sent(
                record.at or self.clock.now(),
                kinds.get(record.idempotency_key.split(".")[0], DeliveryKind.LESSON),
                record.part,
            )
            for record in records
        ]

    def _kinds(self) -> dict[str, DeliveryKind]:
        with Session(self.database.engine) as session:
            return {str(delivery.id): delivery.kind for delivery in session.exec(select(Delivery)).all()}

    # --- reading the database ----------------------------------------------------------------------
    def learner(self, who: Sender) -> Learner:
        with Session(self.database.engine) as session:
            return session.exec(select(Learner).where(Learner.platform_user_id == who.user_id)).one()

    def enrollment(self, who: Sender) -> Enrollment:
        with Session(self.database.engine) as session:
            return session.exec(
                select(Enrollment).join(Learner).where(Learner.platform_user_id == who.user_id)
            ).one()

    def delivery(self, who: Sender, lesson_slug: str) -> Delivery:
        with Session(self.database.engine) as session:
            return session.exec(
                select(Delivery)
                .join(Learner, col(Learner.id) == col(Delivery.learner_id))
                .where(Learner.platform_user_id == who.user_id, Delivery.lesson_slug == lesson_slug)
            ).one()

    def cards(self, who: Sender) -> list[ReviewCard]:
        with Session(self.database.engine) as session:
            learner = session.exec(select(Learner).where(Learner.platform_user_id == who.user_id)).one()
            return list(
                session.exec(
                    select(ReviewCard).where(ReviewCard.learner_id == learner.id).order_by(col(ReviewCard.id))
                ).all()
            )


def review_quizzes(sent: list[Sent]) -> list[QuizPart]:
    return [
        item.part
        for item in sent
        if isinstance(item.part, QuizPart) and item.part.answer_action_prefix.startswith("rev:")
    ]


def texts(sent: list[Sent], kind: DeliveryKind | None = None) -> list[str]:
    return [
        item.part.text
        for item in sent
        if isinstance(item.part, TextPart) and (kind is None or item.kind is kind)
    ]
