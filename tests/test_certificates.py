"""Certificates: finishing a course brings a one-page PDF that parses, and `dripcourse verify` checks it."""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import func
from sqlalchemy import select as select_columns
from sqlmodel import Session, select
from typer.testing import CliRunner

from bot.catalog import Catalog
from bot.certificates import certificate_pdf, new_code, normalize_code
from bot.content import Course, NudgeRules, ReviewRules
from bot.db import Database
from bot.models import Certificate, DeliveryKind
from bot.ports import FilePart, Sender
from dripcourse.cli import app
from scheduler.planner import release_due
from scheduler.review_planner import plan_followups
from tests.fakes import FakeClock
from tests.learning_world import World, berlin, make_course

ZOE = Sender("fake", "1001", "1001", "Zoë Ångström", "en")
RUNNER = CliRunner()


def course() -> Course:
    return make_course(
        lessons=3, review=ReviewRules(enabled=False), nudges=NudgeRules(max=0), instructors=("Ada Lovelace",)
    )


async def finish(world: World) -> None:
    world.clock.at = berlin(3, 2, 7)
    await world.onboard(ZOE)
    await world.run_days(berlin(3, 5, 12))


def pdf_text(content: bytes) -> tuple[int, str]:
    reader = PdfReader(io.BytesIO(content))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


async def test_finishing_brings_a_one_page_pdf_with_name_course_date_instructor_and_code(
    database: Database, clock: FakeClock
) -> None:
    world = World(database, clock, course())
    await finish(world)
    assert world.enrollment(ZOE).status.value == "finished"
    files = [record.part for record in world.chat.sent if isinstance(record.part, FilePart)]
    [pdf] = files
    assert pdf.filename == "certificate-memory.pdf"
    with Session(database.engine) as session:
        [certificate] = session.exec(select(Certificate)).all()
    pages, text = pdf_text(pdf.content)
    assert pages == 1
    flat = " ".join(text.split())
    assert "Certificate of completion" in flat
    assert "Zoë Ångström" in flat
    assert "Memory that lasts" in flat
    assert "March 4, 2026" in flat  # the third lesson came on Wednesday 4 March, Berlin time
    assert "Ada Lovelace" in flat
    assert certificate.code in flat
    assert normalize_code(certificate.code) == certificate.code
    # Sent once: later ticks issue nothing more.
    await world.run_days(berlin(3, 8, 12))
    assert len([r for r in world.chat.sent if isinstance(r.part, FilePart)]) == 1
    kinds = [kind for kind in world._kinds().values() if kind is DeliveryKind.CERTIFICATE]
    assert len(kinds) == 1


async def test_verify_checks_a_real_code_and_refuses_others(
    database: Database, clock: FakeClock, tmp_path: Path
) -> None:
    world = World(database, clock, course())
    await finish(world)
    with Session(database.engine) as session:
        [certificate] = session.exec(select(Certificate)).all()
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{database.engine.url}"\n')

    ok = RUNNER.invoke(app, ["verify", certificate.code.lower(), "--config", str(config), "--json"])
    assert ok.exit_code == 0, ok.output
    facts = json.loads(ok.output)
    assert facts == {
        "valid": True,
        "code": certificate.code,
        "learner": "Zoë Ångström",
        "course": "Memory that lasts",
        "course_slug": "memory",
        "finished_on": "2026-03-04",
        "instructor": "Ada Lovelace",
    }
    plain = RUNNER.invoke(app, ["verify", certificate.code, "--config", str(config)])
    assert plain.exit_code == 0
    assert plain.output.startswith("valid: Zoë Ångström completed “Memory that lasts” on 2026-03-04")

    unknown = new_code()
    while unknown == certificate.code:
        unknown = new_code()
    missing = RUNNER.invoke(app, ["verify", unknown, "--config", str(config)])
    assert missing.exit_code == 1
    assert "no certificate has this code" in missing.output
    body = certificate.code.replace("-", "")
    typo = body[:3] + ("0" if body[3] != "0" else "1") + body[4:]
    mistyped = RUNNER.invoke(app, ["verify", typo, "--config", str(config)])
    assert mistyped.exit_code == 1
    assert "mistyped" in mistyped.output


def test_codes_are_unique_enough_and_typos_are_caught() -> None:
    codes = {new_code() for _ in range(2000)}
    assert len(codes) == 2000
    for code in list(codes)[:200]:
        assert normalize_code(code.replace("-", " ").lower()) == code
        body = code.replace("-", "")
        for index in range(12):
            for replacement in "0Z":
                if body[index] != replacement:
                    typo = body[:index] + replacement + body[index + 1 :]
                    assert normalize_code(typo) is None, (code, typo)


async def test_two_planners_racing_issue_one_certificate(database: Database, clock: FakeClock) -> None:
    world = World(database, clock, course())
    world.clock.at = berlin(3, 2, 7)
    await world.onboard(ZOE)
    catalog = Catalog([course()])
    for day in (2, 3, 4):
        release_due(database.engine, catalog, berlin(3, day, 9))
    errors: list[BaseException] = []

    def plan() -> None:
        try:
            plan_followups(database.engine, catalog, berlin(3, 4, 10))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=plan) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Session(database.engine) as session:
        assert session.execute(select_columns(func.count()).select_from(Certificate)).scalar_one() == 1


@pytest.mark.parametrize("name", ["Zoë", "Ωmega Σ", "José Müller-Łukasiewicz"])
def test_names_in_other_scripts_are_printed(name: str) -> None:
    certificate = Certificate(
        code=new_code(),
        enrollment_id=1,
        learner_id=1,
        course_slug="memory",
        learner_name=name,
        course_title="Memory that lasts",
        instructor="",
        language="de",
        finished_on=dt.date(2026, 3, 4),
        finished_at=dt.datetime(2026, 3, 4, tzinfo=dt.UTC),
        issued_at=dt.datetime(2026, 3, 4, tzinfo=dt.UTC),
    )
    pages, text = pdf_text(certificate_pdf(certificate))
    assert pages == 1
    assert name in " ".join(text.split())
    assert "Teilnahmezertifikat" in text and "4. März 2026" in text
