"""One lesson file, `lessons/NN-<slug>.md`: YAML front matter and a Markdown body, checked key by key."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from bot.content import DripRules, Lesson, Media, MediaKind, Quiz, Unlock
from bot.course_check import (
    MAX_FRONT_MATTER_CHARS,
    MAX_LESSON_FILE_BYTES,
    QUIZ_MAX_EXPLANATION,
    QUIZ_MAX_OPTION,
    QUIZ_MAX_OPTIONS,
    QUIZ_MAX_QUESTION,
    QUIZ_MIN_OPTIONS,
    TELEGRAM_MAX_CAPTION,
    ProblemLog,
    closest,
    read_course_text,
    unknown_key_message,
    unknown_value_message,
)
from bot.course_media import check_media
from bot.front_matter import (
    YamlEntry,
    YamlList,
    YamlMap,
    YamlScalar,
    YamlValue,
    describe,
    parse_front_matter,
    split_front_matter,
)

FRONT_MATTER_KEYS = frozenset(
    {"title", "media", "quiz", "min_days_after_previous", "not_before", "unlock", "discussion"}
)
MEDIA_KIND_KEYS = frozenset(kind.value for kind in MediaKind)
MEDIA_KEYS = MEDIA_KIND_KEYS | {"caption"}
QUIZ_KEYS = frozenset({"question", "options", "answer", "explanation"})
DISCUSSION_KEYS = frozenset({"prompt"})
MAX_TITLE = 256
"""Discord's limit for an embed title, the tighter of the platforms."""
MAX_DAYS_AFTER_PREVIOUS = 3650

_LESSON_FILE = re.compile(r"^([0-9]{1,4})-([a-z0-9][a-z0-9_-]{0,63})\.md$")


@dataclass(frozen=True)
class LessonName:
    number: int
    slug: str


def parse_lesson_name(file_name: str) -> LessonName | None:
    """`03-spaced-review.md` -> (3, "spaced-review"); None for any other name."""
    match = _LESSON_FILE.match(file_name)
    if match is None:
        return None
    return LessonName(int(match.group(1)), match.group(2))


@dataclass(frozen=True)
class LessonDraft:
    """A lesson read from its file, before its place in the course is known."""

    path: Path
    name: LessonName
    title: str
    body: str
    media: tuple[Media, ...]
    quiz: Quiz | None
    drip: DripRules
    discussion_prompt: str
    unlock_line: int

    def to_lesson(self, number: int) -> Lesson:
        return Lesson(
            slug=self.name.slug,
            number=number,
            title=self.title,
            body_markdown=self.body,
            media=self.media,
            quiz=self.quiz,
            drip=self.drip,
            discussion_prompt=self.discussion_prompt,
            source_path=self.path,
        )


def read_lesson(course_root: Path, path: Path, name: LessonName, log: ProblemLog) -> LessonDraft | None:
    """The lesson in `path`, or None when it has errors (all of them logged)."""
    text = read_course_text(path, MAX_LESSON_FILE_BYTES, log)
    if text is None:
        return None
    parts = split_front_matter(path, text, log)
    if parts is None:
        return None
    if len(parts.yaml_text) > MAX_FRONT_MATTER_CHARS:
        log.error(path, 1, f"the front matter is over {MAX_FRONT_MATTER_CHARS} characters")
        return None
    errors_before = len(log.problems)
    front_matter = parse_front_matter(path, parts, log)
    if front_matter is None:
        if len(log.problems) == errors_before:
            log.error(path, 1, "the front matter is empty; it needs at least a title")
        return None
    if not isinstance(front_matter, YamlMap):
        log.error(
            path,
            front_matter.line,
            f"the front matter must be keys and values (title: ...), not {describe(front_matter)}",
        )
        return None
    draft = _LessonReader(course_root, path, name, log).read(front_matter, parts.body.strip())
    errors = sum(problem.is_error for problem in log.problems[errors_before:])
    return draft if errors == 0 else None


class _LessonReader:
    def __init__(self, course_root: Path, path: Path, name: LessonName, log: ProblemLog) -> None:
        self.course_root = course_root
        self.path = path
        self.name = name
        self.log = log
        self.failed = False
        self.misspelt: set[str] = set()
        """Known keys that an unknown key was taken for: reported once, as a misspelling, not as missing."""

    def error(self, line: int, message: str) -> None:
        self.failed = True
        self.log.error(self.path, line, message)

    def read(self, front: YamlMap, body: str) -> LessonDraft | None:
        self.check_keys(front, FRONT_MATTER_KEYS)
        title = self.title(front)
        media_entry = front.get("media")
        media = self.media(media_entry.value) if media_entry else ()
        quiz_entry = front.get("quiz")
        quiz = self.quiz(quiz_entry) if quiz_entry else None
        drip = self.drip(front)
        discussion_entry = front.get("discussion")
        prompt = self.discussion(discussion_entry) if discussion_entry else ""
        if not body and not media and quiz is None and not self.failed:
            self.log.warning(self.path, front.line, "the lesson has no text, no media and no quiz")
        if self.failed or title is None:
            return None
        unlock_entry = front.get("unlock")
        return LessonDraft(
            path=self.path,
            name=self.name,
            title=title,
            body=body,
            media=media,
            quiz=quiz,
            drip=drip,
            discussion_prompt=prompt,
            unlock_line=unlock_entry.line if unlock_entry else front.line,
        )

    def check_keys(self, mapping: YamlMap, allowed: Collection[str], where: str = "") -> None:
        for entry in mapping.entries:
            if entry.key not in allowed:
                self.error(entry.line, where + unknown_key_message(entry.key, allowed))
                suggestion = closest(entry.key, allowed)
                if suggestion is not None:
                    self.misspelt.add(suggestion)

    def text(self, value: YamlValue, what: str, limit: int | None = None) -> str | None:
        if not isinstance(value, YamlScalar) or not isinstance(value.value, str):
            hint = " (put it in quotes)" if isinstance(value, YamlScalar) and value.value is not None else ""
            self.error(value.line, f"{what} must be text, not {describe(value)}{hint}")
            return None
        text = value.value.strip()
        if limit is not None and len(text) > limit:
            self.error(value.line, f"{what} is {len(text)} characters; the limit is {limit}")
            return None
        return text

    def title(self, front: YamlMap) -> str | None:
        entry = front.get("title")
        if entry is None:
            if "title" not in front.unreadable_keys and "title" not in self.misspelt:
                self.error(front.line, "the front matter needs a title: 'title: Your lesson title'")
            return None
        title = self.text(entry.value, "title", MAX_TITLE)
        if title == "":
            self.error(entry.line, "the title is empty")
            return None
        return title

    def media(self, value: YamlValue) -> tuple[Media, ...]:
        if not isinstance(value, YamlList):
            self.error(
                value.line,
                f"media must be a list of entries such as '- image: media/chart.png', not {describe(value)}",
            )
            return ()
        found: list[Media] = []
        for item in value.items:
            media = self.media_entry(item)
            if media is not None:
                found.append(media)
        return tuple(found)

    def media_entry(self, item: YamlValue) -> Media | None:
        if not isinstance(item, YamlMap):
            self.error(
                item.line,
                f"a media entry is a mapping such as '- image: media/chart.png', not {describe(item)}",
            )
            return None
        self.check_keys(item, MEDIA_KEYS, "media: ")
        kinds = [entry for entry in item.entries if entry.key in MEDIA_KIND_KEYS]
        if len(kinds) != 1:
            found = " and ".join(entry.key for entry in kinds) or "none"
            self.error(
                item.line,
                f"a media entry has exactly one of {', '.join(sorted(MEDIA_KIND_KEYS))} (found {found})",
            )
            return None
        caption_entry = item.get("caption")
        caption = self.text(caption_entry.value, "caption", TELEGRAM_MAX_CAPTION) if caption_entry else ""
        written = self.text(kinds[0].value, kinds[0].key)
        if written is None or caption is None:
            return None
        media = check_media(
            self.course_root,
            MediaKind(kinds[0].key),
            written,
            caption,
            self.path,
            kinds[0].value.line,
            self.log,
        )
        if media is None:
            self.failed = True
        return media

    def quiz(self, entry: YamlEntry) -> Quiz | None:
        value = entry.value
        if not isinstance(value, YamlMap):
            self.error(
                value.line, f"quiz must be a mapping with question, options, answer, not {describe(value)}"
            )
            return None
        self.check_keys(value, QUIZ_KEYS, "quiz: ")
        missing = [key for key in ("question", "options", "answer") if value.get(key) is None]
        for key in missing:
            if key not in value.unreadable_keys and key not in self.misspelt:
                self.error(entry.line, f"the quiz needs {'an' if key == 'answer' else 'a'} {key}")
        question_entry = value.get("question")
        question = (
            self.text(question_entry.value, "the quiz question", QUIZ_MAX_QUESTION)
            if question_entry
            else None
        )
        if question == "" and question_entry:
            self.error(question_entry.line, "the quiz question is empty")
        explanation_entry = value.get("explanation")
        explanation = (
            self.text(explanation_entry.value, "the quiz explanation", QUIZ_MAX_EXPLANATION)
            if explanation_entry
            else ""
        )
        options_entry = value.get("options")
        options = self.options(options_entry.value) if options_entry else None
        answer_entry = value.get("answer")
        if options is None or answer_entry is None:
            return None
        correct = self.answer(answer_entry.value, options)
        if not question or correct is None or explanation is None:
            return None
        return Quiz(question=question, options=options, correct_index=correct, explanation=explanation)

    def options(self, value: YamlValue) -> tuple[str, ...] | None:
        if not isinstance(value, YamlList):
            self.error(value.line, f"quiz options must be a list, not {describe(value)}")
            return None
        if not QUIZ_MIN_OPTIONS <= len(value.items) <= QUIZ_MAX_OPTIONS:
            self.error(
                value.line,
                f"a quiz has {QUIZ_MIN_OPTIONS} to {QUIZ_MAX_OPTIONS} options, not {len(value.items)}",
            )
            return None
        options: list[str] = []
        for number, item in enumerate(value.items, 1):
            option = self.text(item, f"quiz option {number}", QUIZ_MAX_OPTION)
            if option == "":
                self.error(item.line, f"quiz option {number} is empty")
            elif option is not None and option in options:
                self.error(item.line, f"quiz option {number} repeats option {options.index(option) + 1}")
            elif option is not None:
                options.append(option)
                continue
            return None
        return tuple(options) if len(options) == len(value.items) else None

    def answer(self, value: YamlValue, options: tuple[str, ...]) -> int | None:
        if (
            isinstance(value, YamlScalar)
            and isinstance(value.value, int)
            and not isinstance(value.value, bool)
        ):
            if 1 <= value.value <= len(options):
                return value.value - 1
            self.error(
                value.line, f"the quiz answer {value.value} is not an option number (1 to {len(options)})"
            )
            return None
        if isinstance(value, YamlScalar) and isinstance(value.value, str):
            answer = value.value.strip()
            if answer in options:
                return options.index(answer)
            self.error(
                value.line,
                f"the quiz answer {answer!r} is not one of the options; write an option's text or its number",
            )
            return None
        self.error(value.line, f"the quiz answer is an option's text or its number, not {describe(value)}")
        return None

    def drip(self, front: YamlMap) -> DripRules:
        min_days = 0
        entry = front.get("min_days_after_previous")
        if entry is not None:
            value = entry.value
            if (
                isinstance(value, YamlScalar)
                and isinstance(value.value, int)
                and not isinstance(value.value, bool)
                and 0 <= value.value <= MAX_DAYS_AFTER_PREVIOUS
            ):
                min_days = value.value
            else:
                self.error(
                    value.line,
                    f"min_days_after_previous must be a whole number from 0 to {MAX_DAYS_AFTER_PREVIOUS}",
                )
        not_before_entry = front.get("not_before")
        not_before = self.date(not_before_entry.value, "not_before") if not_before_entry else None
        unlock = Unlock.ON_SCHEDULE
        unlock_entry = front.get("unlock")
        if unlock_entry is not None:
            written = self.text(unlock_entry.value, "unlock")
            allowed = [member.value for member in Unlock]
            if written is not None and written in allowed:
                unlock = Unlock(written)
            elif written is not None:
                self.error(unlock_entry.value.line, unknown_value_message("unlock", written, allowed))
        return DripRules(min_days_after_previous=min_days, not_before=not_before, unlock=unlock)

    def date(self, value: YamlValue, what: str) -> dt.date | None:
        if isinstance(value, YamlScalar):
            if isinstance(value.value, dt.date) and not isinstance(value.value, dt.datetime):
                return value.value
            if isinstance(value.value, str):
                try:
                    return dt.date.fromisoformat(value.value.strip())
                except ValueError:
                    pass
        self.error(value.line, f"{what} must be a date written YYYY-MM-DD, e.g. 2025-09-01")
        return None

    def discussion(self, entry: YamlEntry) -> str:
        value = entry.value
        if isinstance(value, YamlMap):
            self.check_keys(value, DISCUSSION_KEYS, "discussion: ")
            prompt = value.get("prompt")
            if prompt is None:
                if "prompt" not in value.unreadable_keys:
                    self.error(entry.line, "discussion needs a prompt: 'prompt: What surprised you?'")
                return ""
            return self.text(prompt.value, "the discussion prompt") or ""
        return self.text(value, "discussion (the prompt)") or ""
