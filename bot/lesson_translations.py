"""Translated lessons: `lessons/NN-slug.<lang>.md` beside `NN-slug.md`, for a language in `languages`.

A translation has the lesson's title, body, quiz (same options in the same order, the same answer) and
discussion prompt in another language. Media, drip rules and the lesson's place come from the original,
so a translation cannot change when or how a lesson is sent, only what it says.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path

from bot.content import DripRules, Lesson
from bot.course_check import ProblemLog, resolve_inside
from bot.lesson_file import LessonDraft, LessonName, read_lesson

_TRANSLATION_FILE = re.compile(
    r"^([0-9]{1,4})-([a-z0-9][a-z0-9_-]{0,63})\.([a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*)\.md$"
)


def parse_translation_name(file_name: str) -> tuple[LessonName, str] | None:
    """`03-spaced-review.de.md` -> ((3, "spaced-review"), "de"); None for any other name."""
    match = _TRANSLATION_FILE.match(file_name)
    if match is None:
        return None
    return LessonName(int(match.group(1)), match.group(2)), match.group(3)


def read_translations(
    lessons_folder: Path,
    root: Path,
    originals: Mapping[str, LessonDraft | None],
    course_language: str,
    languages: tuple[str, ...],
    log: ProblemLog,
) -> dict[str, tuple[Lesson, ...]]:
    """Every valid translation by lesson slug; every problem logged with its file and line."""
    try:
        files = sorted(path for path in lessons_folder.iterdir() if not path.name.startswith("."))
    except OSError:
        return {}  # the lessons folder itself is reported by the lesson reader
    found: dict[str, list[Lesson]] = {}
    for path in files:
        parsed = parse_translation_name(path.name)
        if parsed is None:
            continue
        name, language = parsed
        if language == course_language:
            log.error(
                path, 1, f"{language!r} is the course's own language: write it in {_original_name(name)}"
            )
            continue
        if language not in languages:
            listed = ", ".join(repr(code) for code in languages) or "none"
            log.error(
                path,
                1,
                f"{language!r} is not in course.toml's languages (listed: {listed}); "
                f'add it, e.g. languages = ["{course_language}", "{language}"]',
            )
            continue
        if name.slug not in originals:
            log.error(path, 1, f"a translation of {name.slug!r}, but there is no {_original_name(name)}")
            continue
        original = originals[name.slug]
        if resolve_inside(root, path) is None:
            log.error(path, 1, "the lesson file is a symlink pointing outside the course folder")
            continue
        draft = read_lesson(root, path, name, log)
        if draft is None or original is None:
            continue
        translation = _translated(original, draft, language, log)
        if translation is not None:
            found.setdefault(name.slug, []).append(translation)
    return {slug: tuple(translations) for slug, translations in found.items()}


def _original_name(name: LessonName) -> str:
    return f"{name.number:02d}-{name.slug}.md"


def _translated(original: LessonDraft, draft: LessonDraft, language: str, log: ProblemLog) -> Lesson | None:
    """The original lesson with the translated texts; None (logged) when the translation changes more."""
    path = draft.path
    if draft.media:
        log.error(path, 1, "a translation has no media of its own: media come from the original lesson")
        return None
    if draft.drip != DripRules():
        log.error(path, draft.unlock_line, "drip rules belong in the original lesson, not in a translation")
        return None
    quiz = original.quiz
    if draft.quiz is not None:
        if original.quiz is None:
            log.error(path, 1, f"the original {original.path.name} has no quiz to translate")
            return None
        if len(draft.quiz.options) != len(original.quiz.options):
            log.error(
                path,
                1,
                f"the quiz has {len(draft.quiz.options)} options; the original has "
                f"{len(original.quiz.options)} (translate them in the same order)",
            )
            return None
        if draft.quiz.correct_index != original.quiz.correct_index:
            log.error(
                path,
                1,
                f"the quiz answer is option {draft.quiz.correct_index + 1}; in the original it is option "
                f"{original.quiz.correct_index + 1}",
            )
            return None
        quiz = draft.quiz
    lesson = original.to_lesson(0)
    return dataclasses.replace(
        lesson,
        title=draft.title,
        body_markdown=draft.body,
        quiz=quiz,
        discussion_prompt=draft.discussion_prompt or lesson.discussion_prompt,
        source_path=path,
        language=language,
    )


def with_translations(lesson: Lesson, translations: Mapping[str, tuple[Lesson, ...]]) -> Lesson:
    """`lesson` carrying its translations, numbered like it."""
    found = translations.get(lesson.slug, ())
    if not found:
        return lesson
    numbered = tuple(dataclasses.replace(translation, number=lesson.number) for translation in found)
    return dataclasses.replace(lesson, translations=numbered)
