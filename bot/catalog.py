"""The courses a running bot serves, by slug, and their reload: valid new content in, invalid kept out.

The catalog holds one immutable mapping and replaces it in a single assignment, so a reader always
sees a whole catalog, old or new, never half of each.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from bot.content import Course, Lesson
from bot.course_check import Problem
from bot.course_loader import course_folders, load_course


@dataclass(frozen=True)
class CourseChange:
    """How one course differs after a reload."""

    slug: str
    lessons_added: tuple[str, ...] = ()
    lessons_removed: tuple[str, ...] = ()
    lessons_changed: tuple[str, ...] = ()
    order_changed: bool = False
    details_changed: bool = False
    """Title, description, defaults, discussion channels or instructors."""


@dataclass(frozen=True)
class ReloadReport:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[CourseChange, ...] = ()
    kept_old: tuple[str, ...] = ()
    """Courses that became invalid: their running version stays in service."""
    rejected: tuple[str, ...] = ()
    """New courses that are invalid and were not loaded."""
    problems: tuple[Problem, ...] = ()

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(problem for problem in self.problems if problem.is_error)

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def summary(self) -> str:
        """A few plain lines for the instructor who asked for the reload."""
        lines: list[str] = []
        if self.added:
            lines.append(f"added: {', '.join(self.added)}")
        if self.removed:
            lines.append(f"removed: {', '.join(self.removed)}")
        for change in self.changed:
            parts = [
                f"{label} {', '.join(slugs)}"
                for label, slugs in (
                    ("new lessons", change.lessons_added),
                    ("removed lessons", change.lessons_removed),
                    ("changed lessons", change.lessons_changed),
                )
                if slugs
            ]
            if change.order_changed:
                parts.append("lesson order changed")
            if change.details_changed:
                parts.append("course details changed")
            lines.append(f"{change.slug}: {'; '.join(parts)}")
        if self.kept_old:
            lines.append(f"kept the running version (new one has errors): {', '.join(self.kept_old)}")
        if self.rejected:
            lines.append(f"not loaded (errors): {', '.join(self.rejected)}")
        if not lines:
            lines.append("no changes")
        errors, warnings = len(self.errors), len(self.problems) - len(self.errors)
        if self.problems:
            lines.append(f"{errors} error(s), {warnings} warning(s); run `dripcourse check` for details")
        return "\n".join(lines)


class Catalog:
    """Loaded courses by slug; `reload` swaps in new content per course only when it is valid."""

    def __init__(self, courses: Iterable[Course] = ()) -> None:
        self._courses: Mapping[str, Course] = MappingProxyType({course.slug: course for course in courses})
        self._reload_lock = threading.Lock()

    @classmethod
    def load(cls, root: Path) -> tuple[Catalog, list[Problem]]:
        """Every valid course under `root`, and every problem found (invalid courses are left out)."""
        folders, problems = course_folders(root)
        courses, _ = _load_folders(folders, problems)
        return cls(course for course in courses.values() if course is not None), problems

    def get(self, slug: str) -> Course | None:
        return self._courses.get(slug)

    def courses(self) -> list[Course]:
        """All courses, sorted by title."""
        return sorted(self._courses.values(), key=lambda course: (course.title.casefold(), course.slug))

    def __len__(self) -> int:
        return len(self._courses)

    def __contains__(self, slug: object) -> bool:
        return slug in self._courses

    def reload(self, root: Path) -> ReloadReport:
        """Re-read every course under `root`; each valid one replaces its running version, invalid ones don't.

        A course whose folder is gone is removed, but an unreadable `root` changes nothing. One reload
        runs at a time; readers never wait.
        """
        with self._reload_lock:
            old = self._courses
            folders, problems = course_folders(root)
            if any(problem.is_error for problem in problems):
                # The root itself is unreadable (moved, unmounted): never empty a running bot for that.
                return ReloadReport(kept_old=tuple(sorted(old)), problems=tuple(problems))
            loaded, present = _load_folders(folders, problems)
            new: dict[str, Course] = {}
            added: list[str] = []
            changed: list[CourseChange] = []
            kept_old: list[str] = []
            rejected: list[str] = []
            for slug in sorted(present):
                candidate = loaded.get(slug)
                running = old.get(slug)
                if candidate is None:
                    if running is not None:
                        new[slug] = running
                        kept_old.append(slug)
                    else:
                        rejected.append(slug)
                    continue
                new[slug] = candidate
                if running is None:
                    added.append(slug)
                else:
                    change = _compare(running, candidate)
                    if change is not None:
                        changed.append(change)
            removed = sorted(slug for slug in old if slug not in present)
            self._courses = MappingProxyType(new)
            return ReloadReport(
                added=tuple(added),
                removed=tuple(removed),
                changed=tuple(changed),
                kept_old=tuple(kept_old),
                rejected=tuple(rejected),
                problems=tuple(problems),
            )


def _load_folders(folders: list[Path], problems: list[Problem]) -> tuple[dict[str, Course | None], set[str]]:
    """Courses by slug (None when invalid) and the slug of every folder; problems are appended."""
    courses: dict[str, Course | None] = {}
    for folder in folders:
        course, course_problems = load_course(folder)
        problems.extend(course_problems)
        courses[course.slug if course is not None else _folder_slug(folder)] = course
    return courses, set(courses)


def _folder_slug(folder: Path) -> str:
    try:
        return folder.resolve().name
    except (OSError, RuntimeError):
        return folder.name


def _comparable(lesson: Lesson) -> Lesson:
    # The position is compared through the order; a moved lesson is not a changed one.
    return dataclasses.replace(lesson, number=0)


def _compare(old: Course, new: Course) -> CourseChange | None:
    old_lessons = {lesson.slug: lesson for lesson in old.lessons}
    new_lessons = {lesson.slug: lesson for lesson in new.lessons}
    added = tuple(slug for slug in new_lessons if slug not in old_lessons)
    removed = tuple(slug for slug in old_lessons if slug not in new_lessons)
    changed = tuple(
        slug
        for slug, lesson in new_lessons.items()
        if slug in old_lessons and _comparable(old_lessons[slug]) != _comparable(lesson)
    )
    kept_order_old = [slug for slug in old_lessons if slug in new_lessons]
    kept_order_new = [slug for slug in new_lessons if slug in old_lessons]
    order_changed = kept_order_old != kept_order_new
    details_changed = dataclasses.replace(old, lessons=()) != dataclasses.replace(new, lessons=())
    if not (added or removed or changed or order_changed or details_changed):
        return None
    return CourseChange(
        slug=new.slug,
        lessons_added=added,
        lessons_removed=removed,
        lessons_changed=changed,
        order_changed=order_changed,
        details_changed=details_changed,
    )
