"""The course content model: immutable values loaded from course files.

Lessons are keyed by a stable slug, never by position, so editing a course never moves a learner.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class MediaKind(StrEnum):
    IMAGE = "image"
    AUDIO = "audio"
    VOICE = "voice"
    VIDEO = "video"
    DOCUMENT = "document"


class Unlock(StrEnum):
    """When the next lesson may be released after this one."""

    ON_SCHEDULE = "on_schedule"
    AFTER_DONE = "after_done"
    AFTER_QUIZ = "after_quiz"


@dataclass(frozen=True)
class Media:
    kind: MediaKind
    path: Path
    """Absolute path of the file inside the course's folder."""
    caption: str = ""
    size_bytes: int = 0
    sha256: str = ""
    """Content hash: the key under which a platform's file id is remembered after the first upload."""


@dataclass(frozen=True)
class Quiz:
    question: str
    options: tuple[str, ...]
    correct_index: int
    explanation: str = ""


@dataclass(frozen=True)
class DripRules:
    min_days_after_previous: int = 0
    not_before: dt.date | None = None
    unlock: Unlock = Unlock.ON_SCHEDULE
    """This lesson is released only once the previous one is marked done (or its quiz answered)."""


@dataclass(frozen=True)
class Lesson:
    slug: str
    number: int
    """1-based position in the course's order, for display only."""
    title: str
    body_markdown: str
    media: tuple[Media, ...] = ()
    quiz: Quiz | None = None
    drip: DripRules = field(default_factory=DripRules)
    discussion_prompt: str = ""
    source_path: Path | None = None
    language: str = ""
    """The language of this text; empty for the course's own language."""
    translations: tuple[Lesson, ...] = ()
    """The same lesson in other languages (from `NN-slug.<lang>.md` siblings): same slug, media and rules."""

    def in_language(self, language: str) -> Lesson:
        """This lesson's translation into `language`, or the lesson itself when there is none."""
        for translation in self.translations:
            if translation.language == language:
                return translation
        return self


@dataclass(frozen=True)
class ReviewRules:
    """Spaced review of answered quizzes (course.toml `[review]`)."""

    enabled: bool = True
    per_day: int = 3
    """At most this many review cards are sent to one learner on one local date."""


@dataclass(frozen=True)
class NudgeRules:
    """Gentle reminders for learners who went quiet (course.toml `[nudges]`)."""

    after_days: int = 3
    """Days without a "Done" or an answer before a nudge."""
    max: int = 2
    """Nudges per quiet stretch; 0 turns nudges off."""
    quiet_start: dt.time = dt.time(21, 0)
    quiet_end: dt.time = dt.time(8, 0)
    """No nudge is sent between these local times (the range may wrap past midnight)."""


@dataclass(frozen=True)
class DiscussionChannels:
    telegram_chat_id: str | None = None
    discord_channel_id: str | None = None
    per_cohort: bool = False
    """Each cohort gets its own thread per lesson (learners outside a cohort share the course's)."""


@dataclass(frozen=True)
class Course:
    slug: str
    title: str
    description: str
    language: str
    default_cadence: str
    default_time: str
    """Local wall time "HH:MM" offered to new learners."""
    lessons: tuple[Lesson, ...]
    first_lesson_immediately: bool = True
    """Lesson 1 is released right after enrolment; otherwise at the first slot."""
    discussion: DiscussionChannels = field(default_factory=DiscussionChannels)
    instructors: tuple[str, ...] = ()
    root: Path | None = None
    languages: tuple[str, ...] = ()
    """Languages the lessons are offered in; the first is the course's `language`. Empty: only that one."""
    review: ReviewRules = field(default_factory=ReviewRules)
    nudges: NudgeRules = field(default_factory=NudgeRules)

    def lesson(self, slug: str) -> Lesson | None:
        for lesson in self.lessons:
            if lesson.slug == slug:
                return lesson
        return None

    def lesson_after(self, slug: str | None) -> Lesson | None:
        """The lesson that follows `slug` in the course order; the first lesson when `slug` is None.

        A slug that is no longer in the course (removed by a reload) yields None.
        """
        if slug is None:
            return self.lessons[0] if self.lessons else None
        for index, lesson in enumerate(self.lessons):
            if lesson.slug == slug:
                return self.lessons[index + 1] if index + 1 < len(self.lessons) else None
        return None

    def index_of(self, slug: str) -> int | None:
        for index, lesson in enumerate(self.lessons):
            if lesson.slug == slug:
                return index
        return None
