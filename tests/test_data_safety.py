"""Data safety: every earlier schema upgrades with its data intact, backups are consistent snapshots of a
running database, and a learner can see everything stored about them and have it deleted."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, func, text
from sqlalchemy import select as select_rows
from sqlmodel import Session, SQLModel, select
from typer.testing import CliRunner

from bot.actions import encode
from bot.admin import Actor, AdminPolicy, AdminTools
from bot.admin_conversation import AdminConversation
from bot.catalog import Catalog
from bot.content import Course, Lesson, Quiz
from bot.conversation import Conversation
from bot.db import Database, create_db_engine, head_revision, upgrade
from bot.export import export_courses
from bot.models import Delivery, Enrollment, Learner
from bot.ports import ButtonPressed, Command, FilePart, Sender, TextReceived
from bot.privacy import FORGET_QUESTION, FORGOTTEN, KEPT, MY_DATA_FILENAME
from bot.render import quiz_action
from bot.settings import SenderSettings
from dripcourse.cli import app as cli
from dripcourse.commands.backup import BackupError, backup_sqlite
from scheduler.pacer import Pacer
from scheduler.planner import release_due
from scheduler.sender import Sender as OutboxSender
from tests.fakes import FAKE_CAPABILITIES, FakeChat, FakeClock, reply_actions, reply_text
from tests.fixtures.make_schema_fixture import ROWS_PER_TABLE, fixture_path, revisions

# --- migrations from every earlier schema --------------------------------------------------------------


def all_revisions() -> list[str]:
    probe = create_db_engine("sqlite://")
    try:
        return revisions(probe)
    finally:
        probe.dispose()


def rows_by_table(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        return {
            table.name: [dict(row._mapping) for row in connection.execute(select_rows(table))]
            for table in metadata.sorted_tables
            if table.name != "alembic_version"
        }


def load_fixture(revision: str, target: Path) -> Engine:
    connection = sqlite3.connect(target)
    try:
        connection.executescript(fixture_path(revision).read_text(encoding="utf-8"))
    finally:
        connection.close()
    return create_db_engine(f"sqlite:///{target}")


def test_every_schema_revision_has_a_fixture() -> None:
    missing = [revision for revision in all_revisions() if not fixture_path(revision).exists()]
    assert not missing, (
        f"no fixture database for schema revision(s) {missing}: "
        "run `python -m tests.fixtures.make_schema_fixture` and commit tests/fixtures/schemas/"
    )


@pytest.mark.parametrize("revision", all_revisions())
def test_a_database_of_every_earlier_schema_upgrades_with_its_data_intact(
    revision: str, tmp_path: Path
) -> None:
    if not fixture_path(revision).exists():
        pytest.skip(f"no fixture for {revision} (see test_every_schema_revision_has_a_fixture)")
    engine = load_fixture(revision, tmp_path / f"{revision}.db")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == revision
        before = rows_by_table(engine)
        assert before and all(len(rows) == ROWS_PER_TABLE for rows in before.values()), "an empty fixture"

        upgrade(engine)

        with engine.connect() as connection:
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        assert version == head_revision(engine)
        after = rows_by_table(engine)
        for table, old_rows in before.items():
            assert table in after, f"table {table} of schema {revision} is gone"
            kept = [{column: row[column] for column in old_rows[0]} for row in after[table]]
            assert kept == old_rows, f"rows of {table} changed while upgrading from {revision}"
        # The current code reads every upgraded row.
        with Session(engine) as session:
            for model in _models():
                session.exec(select(model)).all()
    finally:
        engine.dispose()


def _models() -> list[type[SQLModel]]:
    return [mapper.class_ for mapper in SQLModel._sa_registry.mappers]  # type: ignore[attr-defined]


# --- backups ------------------------------------------------------------------------------------------


class BusyWriter(threading.Thread):
    """Keeps writing learner + enrollment pairs, each pair in one transaction, until stopped."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(daemon=True)
        self.engine = engine
        self.stop = threading.Event()
        self.pairs = 0

    def run(self) -> None:
        while not self.stop.is_set():
            with Session(self.engine) as session:
                learner = Learner(platform="telegram", platform_user_id=f"u{self.pairs}", chat_id="1")
                session.add(learner)
                session.flush()
                session.add(Enrollment(learner_id=learner.id or 0, course_slug="async-learning"))
                session.commit()
            self.pairs += 1


def test_backup_of_a_busy_database_is_one_consistent_snapshot(tmp_path: Path) -> None:
    source = tmp_path / "live.db"
    engine = create_db_engine(f"sqlite:///{source}")
    upgrade(engine)
    writer = BusyWriter(engine)
    writer.start()
    try:
        while writer.pairs < 200:
            writer.stop.wait(0.01)
        reports = [backup_sqlite(source, tmp_path / f"copy-{n}.db") for n in range(3)]
        assert writer.is_alive() and writer.pairs > 200, "the writer was not held up by the backups"
    finally:
        writer.stop.set()
        writer.join()
        engine.dispose()

    counts = []
    for report in reports:
        assert report.schema_revision == head_revision(create_db_engine("sqlite://"))
        with sqlite3.connect(report.target) as copy:
            assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",), "one self-contained file"
            learners = copy.execute("SELECT count(*) FROM learner").fetchone()[0]
            enrollments = copy.execute("SELECT count(*) FROM enrollment").fetchone()[0]
        assert learners == enrollments >= 200, "a pair committed together is copied together"
        counts.append(learners)
    assert counts == sorted(counts)


def test_backup_refuses_to_overwrite_or_to_copy_onto_itself(tmp_path: Path) -> None:
    source = tmp_path / "live.db"
    engine = create_db_engine(f"sqlite:///{source}")
    upgrade(engine)
    engine.dispose()
    target = tmp_path / "copy.db"
    target.write_bytes(b"keep me")
    with pytest.raises(BackupError, match="already exists"):
        backup_sqlite(source, target)
    assert target.read_bytes() == b"keep me"
    with pytest.raises(BackupError, match="the database itself"):
        backup_sqlite(source, source, force=True)
    with pytest.raises(BackupError, match="no such database"):
        backup_sqlite(tmp_path / "missing.db", tmp_path / "other.db")
    assert backup_sqlite(source, target, force=True).target == target
    assert not list(tmp_path.glob(".copy.db.partial*")), "no partial file left behind"


def test_backup_command_copies_sqlite_and_points_postgresql_to_pg_dump(tmp_path: Path) -> None:
    source = tmp_path / "bot.db"
    engine = create_db_engine(f"sqlite:///{source}")
    upgrade(engine)
    engine.dispose()
    runner = CliRunner()
    sqlite_env = {"DRIPCOURSE_DATABASE_URL": f"sqlite:///{source}"}

    done = runner.invoke(cli, ["backup", str(tmp_path / "backup.db")], env=sqlite_env)
    again = runner.invoke(cli, ["backup", str(tmp_path / "backup.db")], env=sqlite_env)
    postgres = runner.invoke(
        cli,
        ["backup", str(tmp_path / "pg.db")],
        env={"DRIPCOURSE_DATABASE_URL": "postgresql+psycopg://dripcourse:s3cret-pw@db.example/dripcourse"},
    )

    assert done.exit_code == 0, done.output
    assert f"to {tmp_path / 'backup.db'}" in done.output
    assert (tmp_path / "backup.db").stat().st_size > 0
    assert again.exit_code == 1
    assert "already exists" in again.output
    assert postgres.exit_code == 2
    assert "pg_dump" in postgres.output
    assert "s3cret-pw" not in postgres.output
    assert not (tmp_path / "pg.db").exists()


# --- a learner's own data -----------------------------------------------------------------------------

COURSE = Course(
    slug="privacy",
    title="Privacy basics",
    description="Two lessons.",
    language="en",
    default_cadence="daily",
    default_time="08:00",
    lessons=(
        Lesson(
            slug="one",
            number=1,
            title="One",
            body_markdown="First.",
            quiz=Quiz("Pick b", ("a", "b"), 1, "It is b."),
        ),
        Lesson(slug="two", number=2, title="Two", body_markdown="Second."),
    ),
)
ADA = Sender("fake", "1001", "1001", "Ada")
BOB = Sender("fake", "77713", "77713", "Bob")


@pytest.fixture
def data_database(engine: Engine) -> Database:
    return Database(engine)


def learner_conversation(database: Database, clock: FakeClock) -> Conversation:
    """The core as the app wires it: instructor commands go to the admin side (nobody is an instructor)."""
    catalog = Catalog([COURSE])
    tools = AdminTools(database, catalog, clock, AdminPolicy(), courses_root=Path("."))
    capabilities = {"fake": FAKE_CAPABILITIES}
    return Conversation(database, catalog, clock, capabilities, admin=AdminConversation(tools, capabilities))


async def take_first_lesson(
    conversation: Conversation, database: Database, clock: FakeClock, sender: Sender
) -> int:
    """Enrol, choose time and pace, receive lesson one and answer its quiz; returns the delivery id."""
    await conversation.handle(Command(sender, "start", COURSE.slug))
    await conversation.handle(TextReceived(sender, "Europe/Berlin"))
    await conversation.handle(TextReceived(sender, "08:00"))
    await conversation.handle(TextReceived(sender, "daily"))
    catalog = Catalog([COURSE])
    await asyncio.to_thread(release_due, database.engine, catalog, clock.now())
    chat = FakeChat(clock=clock)
    sender_loop = OutboxSender(
        database, catalog, {"fake": chat}, {"fake": Pacer("fake", 1000.0)}, clock, SenderSettings()
    )
    assert await sender_loop.drain_once() == 1
    with Session(database.engine) as session:
        learner = session.exec(select(Learner).where(Learner.platform_user_id == sender.user_id)).one()
        delivery = session.exec(select(Delivery).where(Delivery.learner_id == learner.id)).one()
    await conversation.handle(ButtonPressed(sender, quiz_action(delivery.id or 0, 1)))
    return delivery.id or 0


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table.name: int(connection.execute(select_rows(func.count()).select_from(table)).scalar_one())
            for table in SQLModel.metadata.sorted_tables
        }


def learner_id_of(engine: Engine, sender: Sender) -> int | None:
    with Session(engine) as session:
        learner = session.exec(select(Learner).where(Learner.platform_user_id == sender.user_id)).first()
        return learner.id if learner is not None else None


async def test_mydata_sends_everything_stored_about_the_learner_and_nothing_about_others(
    data_database: Database, clock: FakeClock
) -> None:
    conversation = learner_conversation(data_database, clock)
    await take_first_lesson(conversation, data_database, clock, ADA)
    await take_first_lesson(conversation, data_database, clock, BOB)
    await conversation.handle(Command(ADA, "stats"))  # an instructor command: refused, audited

    reply = await conversation.handle(Command(ADA, "mydata"))

    assert reply.private
    [file] = [part for part in reply.parts if isinstance(part, FilePart)]
    assert file.filename == MY_DATA_FILENAME
    data = json.loads(file.content)
    assert data["learner"]["display_name"] == ADA.display_name
    assert data["learner"]["platform_user_id"] == ADA.user_id
    assert [row["course_slug"] for row in data["enrollment"]] == [COURSE.slug]
    assert [row["lesson_slug"] for row in data["delivery"]] == ["one"]
    assert [(row["lesson_slug"], row["option_index"], row["correct"]) for row in data["quizanswer"]] == [
        ("one", 1, True)
    ]
    ada_id = learner_id_of(data_database.engine, ADA)
    owned = [row for table, rows in data.items() if isinstance(rows, list) for row in rows]
    assert all(row.get("learner_id", ada_id) == ada_id for row in owned), "another learner's row leaked"
    assert BOB.user_id not in file.content.decode(), "Bob's platform id is in Ada's file"
    assert [row["action"] for row in data["instructor_commands_tried"]] == ["stats"]


async def test_forgetme_asks_first_and_no_keeps_everything(data_database: Database, clock: FakeClock) -> None:
    conversation = learner_conversation(data_database, clock)
    await take_first_lesson(conversation, data_database, clock, ADA)
    before = row_counts(data_database.engine)

    question = await conversation.handle(Command(ADA, "forgetme"))
    ada_id = learner_id_of(data_database.engine, ADA)
    assert reply_text(question) == FORGET_QUESTION
    assert reply_actions(question) == [
        encode("forget", ada_id or 0, "yes"),
        encode("forget", ada_id or 0, "no"),
    ]
    assert row_counts(data_database.engine) == before, "asking deletes nothing"

    kept = await conversation.handle(ButtonPressed(ADA, encode("forget", ada_id or 0, "no")))
    assert reply_text(kept) == KEPT
    assert row_counts(data_database.engine) == before


async def test_forgetme_deletes_every_row_of_the_learner_and_the_export_omits_them(
    data_database: Database, clock: FakeClock
) -> None:
    catalog = Catalog([COURSE])
    conversation = learner_conversation(data_database, clock)
    await take_first_lesson(conversation, data_database, clock, ADA)
    await take_first_lesson(conversation, data_database, clock, BOB)
    ada_id = learner_id_of(data_database.engine, ADA)
    ada_enrollments = _enrollment_ids(data_database.engine, ada_id or 0)
    bob_before = _owned_rows(data_database.engine, learner_id_of(data_database.engine, BOB) or 0)

    done = await conversation.handle(ButtonPressed(ADA, encode("forget", ada_id or 0, "yes")))

    assert reply_text(done) == FORGOTTEN
    assert learner_id_of(data_database.engine, ADA) is None
    assert _owned_rows(data_database.engine, ada_id or 0) == {}, "rows of the forgotten learner remain"
    assert _rows_of_enrollments(data_database.engine, ada_enrollments) == {}
    assert _owned_rows(data_database.engine, learner_id_of(data_database.engine, BOB) or 0) == bob_before
    with Session(data_database.engine) as session:
        export = export_courses(session, catalog, None, clock.now())
    enrollments = list(csv.DictReader(io.StringIO(export.enrollments.content.decode("utf-8-sig"))))
    answers = list(csv.DictReader(io.StringIO(export.quiz_answers.content.decode("utf-8-sig"))))
    assert [row["platform_user_id"] for row in enrollments] == [BOB.user_id]
    assert [row["display_name"] for row in answers] == [BOB.display_name]
    # The instructor's own export through the admin tools says the same.
    tools = AdminTools(data_database, catalog, clock, AdminPolicy(), courses_root=Path("."))
    exported = await tools.export(Actor.operator("operator"))
    assert "Ada" not in exported.enrollments.content.decode("utf-8-sig")
    assert "Ada" not in exported.quiz_answers.content.decode("utf-8-sig")
    # Writing again starts afresh, as a new learner.
    again = await conversation.handle(Command(ADA, "progress"))
    assert "not taking a course" in reply_text(again)


async def test_forgetme_of_another_learner_is_refused_and_changes_nothing(
    data_database: Database, clock: FakeClock
) -> None:
    conversation = learner_conversation(data_database, clock)
    await take_first_lesson(conversation, data_database, clock, ADA)
    await take_first_lesson(conversation, data_database, clock, BOB)
    ada_id = learner_id_of(data_database.engine, ADA) or 0
    before = row_counts(data_database.engine)

    forged = await conversation.handle(ButtonPressed(BOB, encode("forget", ada_id, "yes")))

    assert "not for you" in reply_text(forged)
    after = row_counts(data_database.engine)
    assert after == before
    assert learner_id_of(data_database.engine, ADA) == ada_id


def _owned_rows(engine: Engine, learner_id: int) -> dict[str, int]:
    """Rows per table that carry this learner's id (tables where there are any)."""
    counts: dict[str, int] = {}
    with engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            column = table.c.get("learner_id") if table.name != "learner" else table.c.id
            if column is None:
                continue
            count = int(
                connection.execute(
                    select_rows(func.count()).select_from(table).where(column == learner_id)
                ).scalar_one()
            )
            if count:
                counts[table.name] = count
    return counts


def _enrollment_ids(engine: Engine, learner_id: int) -> list[int]:
    with Session(engine) as session:
        return [
            enrollment.id or 0
            for enrollment in session.exec(select(Enrollment).where(Enrollment.learner_id == learner_id))
        ]


def _rows_of_enrollments(engine: Engine, enrollment_ids: list[int]) -> dict[str, int]:
    """Rows per table that point at one of these enrollments (tables where there are any)."""
    assert enrollment_ids
    counts: dict[str, int] = {}
    with engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            column = table.c.get("enrollment_id") if table.name != "enrollment" else table.c.id
            if column is None:
                continue
            statement = select_rows(func.count()).select_from(table).where(column.in_(enrollment_ids))
            count = int(connection.execute(statement).scalar_one())
            if count:
                counts[table.name] = count
    return counts
