"""The sample course ships clean: it loads with no problem at all, and its media are small and right."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import tomllib
import wave
from pathlib import Path
from types import ModuleType

import pytest

from bot.content import Course, MediaKind, Unlock
from bot.course_loader import check_courses, load_course

COURSES = Path(__file__).resolve().parent.parent / "courses"
SAMPLE = COURSES / "async-learning"


@pytest.fixture(scope="module")
def course() -> Course:
    loaded, problems = load_course(SAMPLE)
    assert problems == []
    assert loaded is not None
    return loaded


def test_the_shipped_courses_have_no_errors_and_no_warnings() -> None:
    assert check_courses(COURSES) == []


def test_course_settings(course: Course) -> None:
    assert course.slug == "async-learning"
    assert course.title == "Learning on your own clock"
    assert (course.default_cadence, course.default_time, course.language) == ("daily", "08:00", "en")
    assert course.first_lesson_immediately
    assert course.description.startswith("Eight short lessons")
    assert course.root == SAMPLE


def test_lessons_follow_the_list_in_course_toml(course: Course) -> None:
    listed = tomllib.loads((SAMPLE / "course.toml").read_text())["lessons"]
    assert [lesson.slug for lesson in course.lessons] == listed
    assert len(listed) >= 8
    assert [lesson.number for lesson in course.lessons] == list(range(1, len(listed) + 1))
    for lesson in course.lessons:
        assert lesson.source_path is not None
        assert lesson.source_path.name.endswith(f"-{lesson.slug}.md")


def test_every_lesson_is_a_real_lesson(course: Course) -> None:
    links = 0
    for lesson in course.lessons:
        words = len(re.findall(r"\w+", lesson.body_markdown))
        assert 250 <= words <= 600, (lesson.slug, words)
        assert re.search(r"^## ", lesson.body_markdown, re.MULTILINE), lesson.slug
        assert "**" in lesson.body_markdown, lesson.slug
        assert lesson.title and lesson.discussion_prompt, lesson.slug
        links += len(re.findall(r"\]\(https?://", lesson.body_markdown))
    assert links >= 2


def test_quizzes(course: Course) -> None:
    quizzes = {lesson.slug: lesson.quiz for lesson in course.lessons if lesson.quiz is not None}
    assert sorted(quizzes) == ["notes-that-last", "spaced-review", "time-and-cadence"]
    cadence = quizzes["time-and-cadence"]
    assert cadence.correct_index == 1
    assert cadence.options[cadence.correct_index].startswith("Weekdays at 20:30")
    notes = quizzes["notes-that-last"]
    assert notes.options[notes.correct_index] == "One idea in your own words, plus a question it raises"
    for quiz in quizzes.values():
        assert 2 <= len(quiz.options) <= 10
        assert len(quiz.question) <= 300
        assert all(len(option) <= 100 for option in quiz.options)
        assert 0 < len(quiz.explanation) <= 200


def test_one_lesson_waits_for_the_previous_quiz(course: Course) -> None:
    gated = [lesson for lesson in course.lessons if lesson.drip.unlock is Unlock.AFTER_QUIZ]
    assert [lesson.slug for lesson in gated] == ["missed-days"]
    index = course.index_of("missed-days")
    assert index is not None
    assert course.lessons[index - 1].quiz is not None


def test_media_sizes_and_hashes(course: Course) -> None:
    media = [item for lesson in course.lessons for item in lesson.media]
    kinds = {(item.kind, item.path.suffix) for item in media}
    assert {(MediaKind.IMAGE, ".png"), (MediaKind.DOCUMENT, ".pdf"), (MediaKind.AUDIO, ".wav")} <= kinds
    for item in media:
        content = item.path.read_bytes()
        assert item.path.is_relative_to(SAMPLE)
        assert item.size_bytes == len(content)
        assert item.sha256 == hashlib.sha256(content).hexdigest()
        assert item.caption
    assert sum(item.size_bytes for item in media) < 1_000_000


@pytest.fixture(scope="module")
def make_media() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_media", SAMPLE / "media" / "make_media.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_media_are_generated_from_the_script_deterministically(
    make_media: ModuleType, tmp_path: Path
) -> None:
    first = make_media.make_all(tmp_path / "first")
    second = make_media.make_all(tmp_path / "second")
    assert [path.name for path in first] == [
        "forgetting-curve.png",
        "weekly-review-worksheet.pdf",
        "session-chime.wav",
    ]
    for made, again in zip(first, second, strict=True):
        assert made.read_bytes() == again.read_bytes(), made.name
        assert (SAMPLE / "media" / made.name).is_file(), "generated media are committed next to the script"
    png, pdf, wav = first
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert pdf.read_bytes().startswith(b"%PDF-")
    with wave.open(str(wav)) as chime:
        assert chime.getnchannels() == 1
        assert 8000 <= chime.getframerate() <= 16000
        assert 2 <= chime.getnframes() / chime.getframerate() <= 5
    assert sum(path.stat().st_size for path in first) < 1_000_000
