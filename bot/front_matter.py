"""Lesson front matter: split it from the Markdown body and read it as YAML values that know their line.

Only PyYAML's safe loader composes the document, and values are built here node by node, so a tag can
never construct an object and an alias bomb or a deep nest is refused before it costs anything.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import yaml
from yaml.constructor import SafeConstructor

from bot.course_check import ProblemLog

MAX_DEPTH = 24
"""Nesting levels allowed; a lesson needs four."""
MAX_VALUES = 5_000
"""Values allowed after alias expansion; a lesson needs a few dozen."""
MAX_EVENTS = 50_000

ScalarValue = str | int | float | bool | None | dt.date

_SCALAR_TAGS = {
    "tag:yaml.org,2002:str": "str",
    "tag:yaml.org,2002:int": "int",
    "tag:yaml.org,2002:float": "float",
    "tag:yaml.org,2002:bool": "bool",
    "tag:yaml.org,2002:null": "null",
    "tag:yaml.org,2002:timestamp": "timestamp",
}


@dataclass(frozen=True)
class YamlScalar:
    value: ScalarValue
    line: int
    source: str
    """The text as written, for messages."""


@dataclass(frozen=True)
class YamlList:
    items: tuple[YamlValue, ...]
    line: int


@dataclass(frozen=True)
class YamlEntry:
    key: str
    line: int
    """The line of the key (a block value may start on the next one)."""
    value: YamlValue


@dataclass(frozen=True)
class YamlMap:
    entries: tuple[YamlEntry, ...]
    line: int
    unreadable_keys: frozenset[str] = frozenset()
    """Keys present whose value could not be read (already reported): not to be reported as missing."""

    def get(self, key: str) -> YamlEntry | None:
        for entry in self.entries:
            if entry.key == key:
                return entry
        return None


YamlValue = YamlScalar | YamlList | YamlMap


def describe(value: YamlValue) -> str:
    """What a value is, in a learner-facing word: `text`, `a number`, `a list`..."""
    if isinstance(value, YamlList):
        return "a list"
    if isinstance(value, YamlMap):
        return "a mapping"
    scalar = value.value
    if isinstance(scalar, bool):
        return "true/false"
    if isinstance(scalar, int | float):
        return "a number"
    if scalar is None:
        return "nothing"
    if isinstance(scalar, dt.date):
        return "a date"
    return "text"


@dataclass(frozen=True)
class LessonText:
    """A lesson file cut in two: YAML text starting at `yaml_first_line`, and the Markdown body."""

    yaml_text: str
    yaml_first_line: int
    body: str


def split_front_matter(path: Path, text: str, log: ProblemLog) -> LessonText | None:
    """The front matter between the first two `---` lines and the body after; None (logged) otherwise."""
    lines = text.split("\n")
    if lines[0].rstrip() != "---":
        log.error(
            path,
            1,
            "a lesson starts with YAML front matter: a line '---', then 'title: ...', then '---'",
        )
        return None
    for index in range(1, len(lines)):
        if lines[index].rstrip() in ("---", "..."):
            return LessonText(
                yaml_text="\n".join(lines[1:index]),
                yaml_first_line=2,
                body="\n".join(lines[index + 1 :]),
            )
    log.error(path, 1, "the front matter opened on this line is never closed with a line '---'")
    return None


class _Refused(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def parse_front_matter(path: Path, lesson: LessonText, log: ProblemLog) -> YamlValue | None:
    """The front matter as located values; None when it is empty or unreadable (the reason is logged)."""
    reader = _Reader(path, lesson, log)
    try:
        reader.prescan()
        node = yaml.compose(lesson.yaml_text, Loader=yaml.SafeLoader)
        if node is None:
            return None
        return reader.convert(node, depth=0)
    except yaml.YAMLError as error:
        log.error(path, reader.error_line(error), _yaml_error_message(error))
    except _Refused as refused:
        log.error(path, refused.line, refused.message)
    return None


class _Reader:
    def __init__(self, path: Path, lesson: LessonText, log: ProblemLog) -> None:
        self.path = path
        self.text = lesson.yaml_text
        self.first_line = lesson.yaml_first_line
        self.log = log
        self.values = 0
        self.constructor = SafeConstructor()

    def line_at(self, index: int) -> int:
        # Counted by "\n" alone, like the lesson file's own lines; YAML also breaks at "\r" and U+2028.
        return self.first_line + self.text.count("\n", 0, max(index, 0))

    def line_of(self, node: yaml.Node | yaml.Event) -> int:
        mark = node.start_mark
        return self.line_at(mark.index) if mark is not None else self.first_line

    def error_line(self, error: yaml.YAMLError) -> int:
        if isinstance(error, yaml.MarkedYAMLError):
            mark = error.problem_mark or error.context_mark
            if mark is not None:
                return self.line_at(mark.index)
        position = getattr(error, "position", None)
        if isinstance(position, int):
            return self.line_at(position)
        return self.first_line

    def prescan(self) -> None:
        """Refuse nesting the composer would recurse into too deeply, before it does."""
        depth = 0
        for count, event in enumerate(yaml.parse(self.text, Loader=yaml.SafeLoader)):
            if count > MAX_EVENTS:
                raise _Refused(self.line_of(event), "the front matter is far too long")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _Refused(
                        self.line_of(event),
                        f"the front matter nests more than {MAX_DEPTH} levels deep",
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1

    def convert(self, node: yaml.Node, depth: int) -> YamlValue | None:
        line = self.line_of(node)
        self.values += 1
        if self.values > MAX_VALUES:
            raise _Refused(
                line, f"the front matter expands to more than {MAX_VALUES} values (an alias counts as a copy)"
            )
        if depth > MAX_DEPTH:
            raise _Refused(
                line,
                f"the front matter nests more than {MAX_DEPTH} levels through aliases (a loop?)",
            )
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, line, depth)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != "tag:yaml.org,2002:seq":
                self.log.error(self.path, line, f"unsupported YAML tag {node.tag}")
                return None
            items = [self.convert(item, depth + 1) for item in node.value]
            return YamlList(tuple(item for item in items if item is not None), line)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, line)
        return None

    def _mapping(self, node: yaml.MappingNode, line: int, depth: int) -> YamlMap | None:
        if node.tag != "tag:yaml.org,2002:map":
            self.log.error(self.path, line, f"unsupported YAML tag {node.tag}")
            return None
        entries: list[YamlEntry] = []
        unreadable: set[str] = set()
        first_seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key_line = self.line_of(key_node)
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.log.error(self.path, key_line, "merge keys (<<) are not supported: write the keys out")
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                self.log.error(self.path, key_line, "a key must be plain text such as 'title'")
                continue
            key = str(key_node.value)
            if key in first_seen:
                self.log.error(
                    self.path, key_line, f"duplicate key {key!r} (first at line {first_seen[key]})"
                )
                continue
            first_seen[key] = key_line
            value = self.convert(value_node, depth + 1)
            if value is None:
                unreadable.add(key)
            else:
                entries.append(YamlEntry(key, key_line, value))
        return YamlMap(tuple(entries), line, frozenset(unreadable))

    def _scalar(self, node: yaml.ScalarNode, line: int) -> YamlScalar | None:
        source = str(node.value)
        kind = _SCALAR_TAGS.get(node.tag)
        if kind is None:
            self.log.error(self.path, line, f"unsupported YAML tag {node.tag}")
            return None
        if kind == "str":
            return YamlScalar(source, line, source)
        try:
            value = self.constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError, TypeError):
            if kind == "timestamp":
                self.log.error(self.path, line, f"{_short(source)} is not a valid date (write YYYY-MM-DD)")
            else:
                self.log.error(self.path, line, f"cannot read the value {_short(source)}")
            return None
        if not isinstance(value, str | int | float | bool | dt.date) and value is not None:
            self.log.error(self.path, line, f"cannot read the value {_short(source)}")
            return None
        return YamlScalar(value, line, source)


def _yaml_error_message(error: yaml.YAMLError) -> str:
    if isinstance(error, yaml.MarkedYAMLError):
        parts = [part for part in (error.problem, error.context) if part]
        detail = "; ".join(str(part) for part in parts) or "unreadable"
        return f"YAML syntax error: {detail}"
    if isinstance(error, yaml.reader.ReaderError):
        character = error.character if isinstance(error.character, int) else ord(error.character[:1] or " ")
        return f"YAML syntax error: the character U+{character:04X} is not allowed in YAML"
    return f"YAML syntax error: {error}"


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")
