"""Translations: complete catalogues, the bot in the learner's language, translated lessons by locale."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from bot.catalog import Catalog
from bot.content import NudgeRules, ReviewRules
from bot.course_loader import load_course
from bot.db import Database
from bot.i18n import _, lesson_language, shipped_languages, translate
from bot.models import DeliveryKind
from bot.ports import QuizPart, Sender, TextPart
from tests.conftest import REPO_ROOT, SAMPLE_COURSES
from tests.fakes import FakeClock, reply_text
from tests.learning_world import World, berlin, make_course

SOURCES = [
    "bot/conversation.py",
    "bot/study_commands.py",
    "bot/nudges.py",
    "bot/render.py",
    "bot/certificates.py",
    "bot/calendar_ics.py",
    "bot/review.py",
    "bot/usecases.py",
    "scheduler/review_planner.py",
]
KEYWORDS = {"_": (2,), "N_": None, "UserError": None}
FIELD = re.compile(r"\{(\w*)\}")


def extracted() -> dict[str, str]:
    """Every phrase the code marks for translation, with where it is."""
    found: dict[str, str] = {}
    for source in SOURCES:
        for line, message, _comments, _context in extract_from_file(
            "python", str(REPO_ROOT / source), keywords=KEYWORDS
        ):
            text = message[0] if isinstance(message, tuple) else message
            if text:
                found.setdefault(text, f"{source}:{line}")
    return found


def catalog(language: str) -> dict[str, str]:
    path = REPO_ROOT / "bot" / "locale" / language / "LC_MESSAGES" / "dripcourse.po"
    with path.open("rb") as handle:
        return {str(message.id): str(message.string) for message in read_po(handle) if message.id}


def test_english_and_german_are_shipped() -> None:
    assert shipped_languages() == ("en", "de")


def test_every_phrase_has_a_german_translation_with_the_same_fields() -> None:
    phrases = extracted()
    assert len(phrases) > 80
    german = catalog("de")
    english = catalog("en")
    missing = [f"{where}: {text!r}" for text, where in phrases.items() if not german.get(text)]
    assert missing == []
    assert set(phrases) <= set(english)
    for text, where in phrases.items():
        assert sorted(FIELD.findall(german[text])) == sorted(FIELD.findall(text)), where


def test_translate_falls_back_to_english_and_fills_fields() -> None:
    assert translate("de", "Pick a course:") == "Wähle einen Kurs:"
    assert translate("de-AT", "Pick a course:") == "Wähle einen Kurs:"
    assert translate("fr", "Pick a course:") == "Pick a course:"
    assert translate(None, "Hi {name}!", name="Ada") == "Hi Ada!"
    assert _("de", "Hi {name}!", name="Ada") == "Hallo Ada!"
    assert translate("de", "a phrase nobody translated") == "a phrase nobody translated"


DE_SENDER = Sender("fake", "3003", "3003", "Anna", "de-DE")
EN_SENDER = Sender("fake", "4004", "4004", "Ann", "en-GB")
FR_SENDER = Sender("fake", "5005", "5005", "Anne", "fr")


def bilingual_course():  # type: ignore[no-untyped-def]
    course = make_course(lessons=3, review=ReviewRules(enabled=False), nudges=NudgeRules(max=0))
    first = course.lessons[0]
    german = dataclasses.replace(
        first,
        title="Lektion eins",
        body_markdown="Der Text der ersten Lektion.",
        quiz=dataclasses.replace(first.quiz, question="Frage eins?"),  # type: ignore[type-var]
        language="de",
    )
    lessons = (dataclasses.replace(first, translations=(german,)), *course.lessons[1:])
    return dataclasses.replace(course, languages=("en", "de"), lessons=lessons)


async def test_the_lesson_is_sent_in_the_language_of_the_learners_locale(
    database: Database, clock: FakeClock
) -> None:
    world = World(database, clock, bilingual_course())
    clock.at = berlin(3, 2, 7)
    for sender in (DE_SENDER, EN_SENDER, FR_SENDER):
        await world.onboard(sender)
    await world.tick()
    by_chat: dict[str, str] = {}
    for record in world.chat.sent:
        if isinstance(record.part, TextPart | QuizPart):
            text = record.part.text if isinstance(record.part, TextPart) else record.part.question
            by_chat[record.chat_id] = by_chat.get(record.chat_id, "") + text + "\n"
    assert "Der Text der ersten Lektion." in by_chat["3003"] and "Frage eins?" in by_chat["3003"]
    assert "Body of lesson 1." in by_chat["4004"] and "Der Text" not in by_chat["4004"]
    assert "Body of lesson 1." in by_chat["5005"]  # French is not offered: the course's own language
    assert "Lektion 1 von 3 · Lektion eins" in by_chat["3003"]
    assert "Lesson 1 of 3" in by_chat["4004"] and "Lektion" not in by_chat["4004"]
    labels = {
        record.chat_id: [button.label for button in record.part.buttons]
        for record in world.chat.sent
        if isinstance(record.part, TextPart) and record.part.buttons
    }
    assert labels["3003"][0] == "✅ Erledigt"
    assert labels["4004"][0] == "✅ Done"


async def test_the_bot_speaks_german_to_a_german_locale_and_language_switches_it(
    database: Database, clock: FakeClock
) -> None:
    world = World(database, clock, bilingual_course())
    clock.at = berlin(3, 2, 7)
    reply = await world.command(DE_SENDER, "start", "memory")
    assert "Willkommen bei “Memory that lasts”!" in reply_text(reply)
    assert "In welcher Zeitzone bist du?" in reply_text(reply)
    assert "Das verstehe ich" in reply_text(await world.command(DE_SENDER, "help"))
    assert "Den Befehl /frobnicate kenne ich nicht" in reply_text(
        await world.command(DE_SENDER, "frobnicate")
    )
    # A refusal from the use cases is translated too.
    assert "Nur ein laufender Kurs" in reply_text(await world.command(DE_SENDER, "pause"))

    reply = await world.command(EN_SENDER, "language")
    assert "Your language: English" in reply_text(reply)
    assert [button.action for part in reply.parts for button in getattr(part, "buttons", ())][:2] == [
        "lang:en",
        "lang:de",
    ]
    reply = await world.press(EN_SENDER, "lang:de")
    assert reply_text(reply) == "Ab jetzt schreibe ich dir auf Deutsch."
    assert world.learner(EN_SENDER).language == "de"
    await world.onboard(EN_SENDER)
    await world.tick()
    assert any("Der Text der ersten Lektion." in getattr(r.part, "text", "") for r in world.chat.sent)
    reply = await world.command(EN_SENDER, "language", "klingon")
    assert "Ich spreche en, de" in reply_text(reply)


def test_lesson_language_prefers_the_exact_then_the_base_language() -> None:
    course = dataclasses.replace(bilingual_course(), languages=("en", "de", "pt-BR"))
    assert lesson_language(course, "de-CH") == "de"
    assert lesson_language(course, "pt_br") == "pt-BR"
    assert lesson_language(course, "pt") == "pt-BR"
    assert lesson_language(course, "ja") == "en"
    assert lesson_language(course, None) == "en"


def test_the_sample_course_ships_a_german_lesson() -> None:
    course, problems = load_course(SAMPLE_COURSES / "async-learning")
    assert problems == [] and course is not None
    assert course.languages == ("en", "de")
    first = course.lessons[0]
    german = first.in_language("de")
    assert german is not first and german.language == "de"
    assert german.title.startswith("Willkommen")
    assert german.media == first.media and german.drip == first.drip and german.number == 1
    assert course.lessons[1].in_language("de") is course.lessons[1]


@pytest.fixture
def course_copy(tmp_path: Path) -> Path:
    target = tmp_path / "async-learning"
    shutil.copytree(SAMPLE_COURSES / "async-learning", target)
    return target


def messages(folder: Path) -> list[str]:
    course, problems = load_course(folder)
    assert course is None
    return [f"{problem.path.name}:{problem.line}: {problem.message}" for problem in problems]


def test_check_rejects_a_translation_whose_quiz_answer_differs(course_copy: Path) -> None:
    (course_copy / "lessons" / "06-spaced-review.de.md").write_text(
        "---\ntitle: Verteiltes Wiederholen\nquiz:\n  question: Welcher Plan?\n  options:\n"
        "    - Dreimal lesen\n    - Drei kurze Einheiten\n    - Markieren\n    - Ein Video\n"
        "  answer: 1\n---\nText.\n"
    )
    [problem] = messages(course_copy)
    assert problem.startswith(
        "06-spaced-review.de.md:1: the quiz answer is option 1; in the original it is option 2"
    )


def test_check_rejects_an_unlisted_language_and_an_orphan_translation(course_copy: Path) -> None:
    lesson = (course_copy / "lessons" / "01-your-own-clock.de.md").read_text()
    (course_copy / "lessons" / "01-your-own-clock.fr.md").write_text(lesson)
    (course_copy / "lessons" / "09-nowhere.de.md").write_text(lesson)
    problems = messages(course_copy)
    assert any(
        p.startswith("01-your-own-clock.fr.md:1: 'fr' is not in course.toml's languages") for p in problems
    )
    assert any(
        p.startswith("09-nowhere.de.md:1: a translation of 'nowhere', but there is no 09-nowhere.md")
        for p in problems
    )


def test_check_rejects_bad_learning_settings_with_their_lines(course_copy: Path) -> None:
    toml = course_copy / "course.toml"
    text = toml.read_text()
    text = text.replace('languages = ["en", "de"]', 'languages = ["de", "en"]')
    text = text.replace("per_day = 3", "per_day = 0").replace("after_days = 3", "afterdays = 3")
    toml.write_text(text)
    problems = messages(course_copy)
    lines = text.split("\n")

    def line_of(needle: str) -> int:
        return next(number for number, line in enumerate(lines, 1) if needle in line)

    assert (
        f"course.toml:{line_of('languages =')}: languages must start with the course's language 'en'"
        in "\n".join(problems)
    )
    assert (
        f"course.toml:{line_of('per_day =')}: review.per_day must be a whole number from 1 to 20" in problems
    )
    assert (
        f"course.toml:{line_of('afterdays =')}: unknown key 'afterdays' (did you mean 'after_days'?)"
        in problems
    )


def test_a_course_with_its_defaults_keeps_review_and_nudges_on() -> None:
    catalog, problems = Catalog.load(SAMPLE_COURSES)
    course = catalog.get("async-learning")
    assert course is not None and not [p for p in problems if p.is_error]
    assert course.review == ReviewRules(enabled=True, per_day=3)
    assert course.nudges.after_days == 3 and course.nudges.max == 2
    assert [lesson.in_language("de").language for lesson in course.lessons if lesson.translations] == ["de"]
    assert {kind.value for kind in DeliveryKind} >= {"review", "nudge", "certificate"}
