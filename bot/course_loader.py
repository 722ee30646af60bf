"""Load a course folder into an immutable `Course`, reporting every problem with its file and line.

Layout: `course.toml`, `lessons/NN-<slug>.md` (YAML front matter + Markdown), `media/...`.
Bad input never raises: it becomes a `Problem`, and a course with any error loads as None.
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.content import Course, Unlock
from bot.course_check import Problem, ProblemLog, resolve_inside
from bot.course_toml import CourseToml, read_course_toml
from bot.lesson_file import LessonDraft, LessonName, parse_lesson_name, read_lesson
from bot.lesson_translations import parse_translation_name, read_translations, with_translations

__all__ = ["Problem", "check_courses", "course_folders", "load_course"]

COURSE_FILE = "course.toml"
LESSONS_FOLDER = "lessons"
COURSE_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
"""A course slug travels in button actions (`enrol:<slug>`), which allow 64 bytes in all."""


def load_course(folder: Path) -> tuple[Course | None, list[Problem]]:
    """The course in `folder` and every problem found in it; the course is None when any is an error."""
    log = ProblemLog()
    try:
        root = folder.resolve()
    except (OSError, RuntimeError) as error:
        log.error(folder, 1, f"cannot open the course folder: {error}")
        return None, log.sorted()
    settings = read_course_toml(folder / COURSE_FILE, log)
    if not COURSE_SLUG.match(root.name):
        log.error(
            folder / COURSE_FILE,
            1,
            f"the folder name {root.name!r} is the course's slug: use at most 40 lowercase letters, "
            "digits, '-' or '_'",
        )
    lessons = _read_lessons(folder, root, log)
    ordered = _ordered(settings, lessons, log)
    _check_sequence(ordered, log)
    translations = (
        read_translations(
            folder / LESSONS_FOLDER, root, lessons, settings.language, settings.learning.languages, log
        )
        if settings is not None and (folder / LESSONS_FOLDER).is_dir()
        else {}
    )
    if settings is None or log.has_errors:
        return None, log.sorted()
    course = Course(
        slug=root.name,
        title=settings.title,
        description=settings.description,
        language=settings.language,
        default_cadence=settings.default_cadence,
        default_time=settings.default_time,
        lessons=tuple(
            with_translations(draft.to_lesson(number), translations)
            for number, draft in enumerate(filter(None, ordered), 1)
        ),
        first_lesson_immediately=settings.first_lesson_immediately,
        discussion=settings.discussion,
        instructors=settings.instructors,
        root=root,
        languages=settings.learning.languages,
        review=settings.learning.review,
        nudges=settings.learning.nudges,
    )
    return course, log.sorted()


def course_folders(root: Path) -> tuple[list[Path], list[Problem]]:
    """The course folders under a courses root, or `[root]` when it is itself a course (or a file in one)."""
    if root.is_file():
        if root.name == COURSE_FILE:
            return [root.parent], []
        if root.parent.name == LESSONS_FOLDER and (root.parent.parent / COURSE_FILE).exists():
            return [root.parent.parent], []
        return [], [Problem(root, 1, "not a course: give a courses folder, a course folder or a course.toml")]
    if not root.is_dir():
        return [], [Problem(root, 1, "no such folder")]
    if (root / COURSE_FILE).exists():
        return [root], []
    try:
        children = sorted(child for child in root.iterdir() if not child.name.startswith((".", "_")))
    except OSError as error:
        return [], [Problem(root, 1, f"cannot list this folder: {error.strerror or error}")]
    folders: list[Path] = []
    problems: list[Problem] = []
    for child in children:
        if not child.is_dir():
            continue
        if (child / COURSE_FILE).exists():
            folders.append(child)
        elif (child / LESSONS_FOLDER).is_dir():
            problems.append(
                Problem(child / COURSE_FILE, 1, "missing course.toml: this folder is not loaded", "warning")
            )
    if not folders:
        problems.append(Problem(root, 1, "no courses here: each course is a folder with a course.toml"))
    return folders, problems


def check_courses(root: Path) -> list[Problem]:
    """Every problem in every course under `root` (a courses root or one course folder)."""
    folders, problems = course_folders(root)
    for folder in folders:
        problems.extend(load_course(folder)[1])
    return problems


def _read_lessons(folder: Path, root: Path, log: ProblemLog) -> dict[str, LessonDraft | None]:
    """Every lesson by slug, in file-name order; None for a lesson whose file has errors."""
    lessons_folder = folder / LESSONS_FOLDER
    toml_path = folder / COURSE_FILE
    if not lessons_folder.is_dir():
        log.error(toml_path, 1, "the course has no lessons: add lessons/01-welcome.md")
        return {}
    try:
        files = sorted(path for path in lessons_folder.iterdir() if not path.name.startswith("."))
    except OSError as error:
        log.error(lessons_folder, 1, f"cannot list the lessons: {error.strerror or error}")
        return {}
    named: list[tuple[LessonName, Path]] = []
    first_file: dict[str, Path] = {}
    for path in files:
        name = parse_lesson_name(path.name)
        if name is None and parse_translation_name(path.name) is not None:
            continue  # a translation, read once the originals are known
        if name is None:
            if path.suffix == ".md":
                log.error(
                    path,
                    1,
                    "a lesson file is named NN-slug.md, e.g. 03-spaced-review.md (slug: lowercase letters, "
                    "digits, '-' or '_')",
                )
            else:
                log.warning(path, 1, "not a lesson (lessons are NN-slug.md files); ignored")
            continue
        if name.slug in first_file:
            log.error(
                path, 1, f"duplicate lesson slug {name.slug!r}: {first_file[name.slug].name} has it too"
            )
            continue
        first_file[name.slug] = path
        named.append((name, path))
    if not first_file:
        log.error(toml_path, 1, "the course has no lessons: add lessons/01-welcome.md")
    lessons: dict[str, LessonDraft | None] = {}
    for name, path in sorted(named, key=lambda pair: (pair[0].number, pair[1].name)):
        if resolve_inside(root, path) is None:
            log.error(path, 1, "the lesson file is a symlink pointing outside the course folder")
            lessons[name.slug] = None
        else:
            lessons[name.slug] = read_lesson(root, path, name, log)
    return lessons


def _ordered(
    settings: CourseToml | None, lessons: dict[str, LessonDraft | None], log: ProblemLog
) -> list[LessonDraft | None]:
    """Lessons in the course's order: course.toml's `lessons` list, else the file names' numbers."""
    if settings is None or settings.lesson_order is None:
        numbered: dict[int, LessonDraft] = {}
        for draft in lessons.values():
            if draft is None:
                continue
            if draft.name.number in numbered:
                log.warning(
                    draft.path,
                    1,
                    f"{numbered[draft.name.number].path.name} has the same number; "
                    "lessons with equal numbers follow in name order",
                )
            numbered.setdefault(draft.name.number, draft)
        return list(lessons.values())
    ordered: list[LessonDraft | None] = []
    for item in settings.lesson_order:
        if item.slug in lessons:
            ordered.append(lessons[item.slug])
        else:
            log.error(settings.path, item.line, f"lessons: no lesson file lessons/NN-{item.slug}.md")
    listed = {item.slug for item in settings.lesson_order}
    for slug, draft in lessons.items():
        if slug not in listed and draft is not None:
            log.warning(draft.path, 1, f"{slug!r} is not in course.toml's lessons list, so it is never sent")
    return ordered


def _check_sequence(ordered: list[LessonDraft | None], log: ProblemLog) -> None:
    """Drip rules that depend on the lesson before: a gate needs something to wait for."""
    for index, draft in enumerate(ordered):
        if draft is None or draft.drip.unlock is Unlock.ON_SCHEDULE:
            continue
        unlock = draft.drip.unlock
        if index == 0:
            log.warning(draft.path, draft.unlock_line, f"unlock: {unlock} has no effect on the first lesson")
            continue
        previous = ordered[index - 1]
        if unlock is Unlock.AFTER_QUIZ and previous is not None and previous.quiz is None:
            log.warning(
                draft.path,
                draft.unlock_line,
                f"unlock: after_quiz, but the previous lesson {previous.name.slug!r} has no quiz: "
                "learners will be asked to press Done instead",
            )
