"""Telegram's text formatting: HTML, MarkdownV2 and legacy Markdown parsed into plain text and entities.

The parsers follow the Bot API server's own rules and error wording ("can't parse entities: Unsupported
start tag "p" at byte offset 3"), so a bot that formats badly is refused here as it would be in
production. Entity offsets and lengths are in UTF-16 code units; length limits count code points.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)
_SIMPLE_HTML_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "u": "underline",
    "ins": "underline",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
}
_NAMED_CHARACTER_REFERENCES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_MARKDOWN_V2_RESERVED = "_*[]()~`>#+-=|{}.!"
_MENTION_LINK = re.compile(r"^tg://user\?id=(\d+)$")
_EMOJI_LINK = re.compile(r"^tg://emoji\?id=(\d+)$")


class EntityParseError(ValueError):
    """The text does not parse in its parse_mode; the message is Telegram's own wording."""


class UnsupportedParseMode(ValueError):
    """parse_mode names no dialect Telegram knows."""


@dataclass(frozen=True)
class FormattedText:
    text: str
    entities: tuple[dict[str, Any], ...] = ()


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def format_text(text: str, parse_mode: str | None, entities: list[Any] | None = None) -> FormattedText:
    """Parse `text` in `parse_mode` (any case) unless explicit `entities` replace it; trim whitespace."""
    mode = (parse_mode or "").strip().lower()
    if mode == "" or entities:
        parsed = FormattedText(text, tuple(_explicit_entities(entities)))
    elif mode == "html":
        parsed = _HtmlParser(text).parse()
    elif mode == "markdownv2":
        parsed = _MarkdownV2Parser(text).parse()
    elif mode == "markdown":
        parsed = _parse_legacy_markdown(text)
    else:
        raise UnsupportedParseMode(parse_mode)
    return _trimmed(parsed)


def _explicit_entities(entities: list[Any] | None) -> list[dict[str, Any]]:
    if not entities:
        return []
    valid: list[dict[str, Any]] = []
    for entity in entities:
        if not isinstance(entity, dict) or not isinstance(entity.get("type"), str):
            raise EntityParseError("can't parse MessageEntity")
        offset, length = entity.get("offset"), entity.get("length")
        if not isinstance(offset, int) or not isinstance(length, int) or offset < 0 or length < 0:
            raise EntityParseError("can't parse MessageEntity")
        if length > 0:
            valid.append(dict(entity))
    return valid


def _trimmed(parsed: FormattedText) -> FormattedText:
    """Telegram drops leading and trailing whitespace and clips entities to what remains."""
    stripped_start = parsed.text.lstrip()
    text = stripped_start.rstrip()
    shift = utf16_length(parsed.text) - utf16_length(stripped_start)
    end = utf16_length(text)
    entities: list[dict[str, Any]] = []
    for entity in parsed.entities:
        start = max(0, entity["offset"] - shift)
        stop = min(end, entity["offset"] + entity["length"] - shift)
        if stop > start:
            entities.append({**entity, "offset": start, "length": stop - start})
    entities.sort(key=lambda entity: (entity["offset"], -entity["length"]))
    return FormattedText(text, tuple(entities))


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _link_entity(url: str) -> dict[str, Any] | None:
    mention = _MENTION_LINK.match(url)
    if mention:
        return {
            "type": "text_mention",
            "user": {"id": int(mention.group(1)), "is_bot": False, "first_name": ""},
        }
    if re.match(r"^(https?|tg|ftp)://\S+$", url, re.IGNORECASE) or re.match(
        r"^[\w.-]+\.[a-z]{2,}(/\S*)?$", url
    ):
        return {"type": "text_link", "url": url}
    return None


@dataclass
class _OpenEntity:
    tag: str
    start: int
    begin_index: int
    entity: dict[str, Any] | None
    attributes: dict[str, str] = field(default_factory=dict)


class _HtmlParser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.out: list[str] = []
        self.position = 0
        self.entities: list[dict[str, Any]] = []
        self.stack: list[_OpenEntity] = []

    def error(self, message: str) -> EntityParseError:
        return EntityParseError(message)

    def at(self, index: int) -> int:
        return _byte_offset(self.source, index)

    def emit(self, piece: str) -> None:
        self.out.append(piece)
        self.position += utf16_length(piece)

    def parse(self) -> FormattedText:
        source, index = self.source, 0
        while index < len(source):
            char = source[index]
            if char == "&":
                decoded, consumed = _character_reference(source, index)
                self.emit(decoded)
                index += consumed
            elif char != "<":
                self.emit(char)
                index += 1
            elif index + 1 < len(source) and source[index + 1] == "/":
                index = self.end_tag(index)
            else:
                index = self.start_tag(index)
        if self.stack:
            raise self.error(f'Can\'t find end tag corresponding to start tag "{self.stack[-1].tag}"')
        return FormattedText("".join(self.out), tuple(self.entities))

    def start_tag(self, begin: int) -> int:
        source, index = self.source, begin + 1
        name_end = index
        while name_end < len(source) and not source[name_end].isspace() and source[name_end] != ">":
            name_end += 1
        tag = source[index:name_end].lower()
        if tag not in HTML_TAGS:
            raise self.error(f'Unsupported start tag "{tag}" at byte offset {self.at(begin)}')
        attributes, index = self.attributes(tag, begin, name_end)
        self.stack.append(
            _OpenEntity(tag, self.position, begin, self.entity_for(tag, attributes, begin), attributes)
        )
        return index

    def attributes(self, tag: str, begin: int, index: int) -> tuple[dict[str, str], int]:
        source = self.source
        attributes: dict[str, str] = {}
        while True:
            while index < len(source) and source[index].isspace():
                index += 1
            if index >= len(source):
                raise self.error(f"Unclosed start tag at byte offset {self.at(begin)}")
            if source[index] == ">":
                return attributes, index + 1
            name_end = index
            while name_end < len(source) and (source[name_end].isalnum() or source[name_end] in "-_"):
                name_end += 1
            name = source[index:name_end].lower()
            if not name:
                raise self.error(f'Empty attribute name in the tag "{tag}" at byte offset {self.at(begin)}')
            index = name_end
            while index < len(source) and source[index].isspace():
                index += 1
            if index >= len(source) or source[index] != "=":
                attributes[name] = ""
                continue
            index += 1
            while index < len(source) and source[index].isspace():
                index += 1
            if index >= len(source):
                raise self.error(f"Unexpected end of name token at byte offset {self.at(index)}")
            if source[index] in "\"'":
                quote = source[index]
                close = source.find(quote, index + 1)
                if close < 0:
                    raise self.error(f"Unclosed end of attribute value at byte offset {self.at(index)}")
                attributes[name] = _decode_references(source[index + 1 : close])
                index = close + 1
            else:
                value_end = index
                while (
                    value_end < len(source) and not source[value_end].isspace() and source[value_end] != ">"
                ):
                    value_end += 1
                if value_end == index:
                    raise self.error(f"Unexpected end of name token at byte offset {self.at(index)}")
                attributes[name] = _decode_references(source[index:value_end])
                index = value_end

    def entity_for(self, tag: str, attributes: dict[str, str], begin: int) -> dict[str, Any] | None:
        if tag in _SIMPLE_HTML_TYPES:
            return {"type": _SIMPLE_HTML_TYPES[tag]}
        if tag == "a":
            return _link_entity(attributes.get("href", ""))
        if tag == "span":
            if attributes.get("class") != "tg-spoiler":
                raise self.error(f'Tag "span" must have class "tg-spoiler" at byte offset {self.at(begin)}')
            return {"type": "spoiler"}
        if tag == "tg-emoji":
            emoji_id = attributes.get("emoji-id", "")
            if not emoji_id.isdigit():
                raise self.error(
                    f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {self.at(begin)}'
                )
            return {"type": "custom_emoji", "custom_emoji_id": emoji_id}
        return {"type": "expandable_blockquote" if "expandable" in attributes else "blockquote"}

    def end_tag(self, begin: int) -> int:
        source = self.source
        close = source.find(">", begin)
        if close < 0:
            raise self.error(f"Unclosed end tag at byte offset {self.at(begin)}")
        name = source[begin + 2 : close].strip().lower()
        if not self.stack:
            raise self.error(f"Unexpected end tag at byte offset {self.at(begin)}")
        open_entity = self.stack[-1]
        if name and name != open_entity.tag:
            raise self.error(
                f'Unmatched end tag at byte offset {self.at(begin)}, expected "</{open_entity.tag}>", '
                f'found "</{name}>"'
            )
        self.stack.pop()
        self.close(open_entity)
        return close + 1

    def close(self, open_entity: _OpenEntity) -> None:
        length = self.position - open_entity.start
        if open_entity.entity is None or length <= 0:
            return
        language = open_entity.attributes.get("class", "")
        parent = self.stack[-1] if self.stack else None
        if (
            open_entity.tag == "code"
            and language.startswith("language-")
            and parent is not None
            and parent.tag == "pre"
            and parent.start == open_entity.start
        ):
            parent.attributes["language"] = language.removeprefix("language-")
            return
        entity = {**open_entity.entity, "offset": open_entity.start, "length": length}
        if open_entity.tag == "pre" and open_entity.attributes.get("language"):
            entity["language"] = open_entity.attributes["language"]
        self.entities.append(entity)


def _character_reference(source: str, index: int) -> tuple[str, int]:
    """Decode `&lt;`, `&gt;`, `&amp;`, `&quot;` and numeric references; anything else stays literal."""
    match = re.match(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]+);", source[index:])
    if match is None:
        return "&", 1
    name = match.group(1)
    if name.startswith(("#x", "#X")):
        code = int(name[2:], 16)
    elif name.startswith("#"):
        code = int(name[1:])
    elif name in _NAMED_CHARACTER_REFERENCES:
        return _NAMED_CHARACTER_REFERENCES[name], match.end()
    else:
        return "&", 1
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return "&", 1
    return chr(code), match.end()


def _decode_references(value: str) -> str:
    pieces, index = [], 0
    while index < len(value):
        if value[index] == "&":
            decoded, consumed = _character_reference(value, index)
            pieces.append(decoded)
            index += consumed
        else:
            pieces.append(value[index])
            index += 1
    return "".join(pieces)


_MARKDOWN_V2_TYPE_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}


class _MarkdownV2Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.out: list[str] = []
        self.position = 0
        self.entities: list[dict[str, Any]] = []
        self.stack: list[tuple[str, int, int, int, str]] = []
        """(type, utf16 start, byte offset, index into out, language)"""
        self.quote_start: int | None = None
        self.quote_expandable = False

    def peek(self, index: int) -> str:
        return self.source[index] if index < len(self.source) else ""

    def emit(self, piece: str) -> None:
        self.out.append(piece)
        self.position += utf16_length(piece)

    def reserved(self, char: str) -> EntityParseError:
        return EntityParseError(f"Character '{char}' is reserved and must be escaped with the preceding '\\'")

    def parse(self) -> FormattedText:
        source, index = self.source, 0
        while index < len(source):
            char = source[index]
            at_line_start = index == 0 or source[index - 1] == "\n"
            if at_line_start:
                index = self.line_start(index)
                if index >= len(source):
                    break
                char = source[index]
            if char == "\\" and 0 < ord(self.peek(index + 1) or "\0") <= 126:
                self.emit(source[index + 1])
                index += 2
                continue
            top = self.stack[-1][0] if self.stack else None
            reserved = "`" if top in ("code", "pre") else _MARKDOWN_V2_RESERVED
            if char == "\n" and self.quote_start is not None and self.peek(index + 1) != ">":
                self.emit(char)
                self.close_quote()
                index += 1
                continue
            if char not in reserved:
                self.emit(char)
                index += 1
                continue
            if (
                char == "|"
                and self.peek(index + 1) == "|"
                and self.quote_expandable
                and self.peek(index + 2) in ("", "\n")
                and top != "spoiler"
            ):
                index += 2
                self.close_quote()
                continue
            if top is not None and self.ends(top, index):
                index = self.close_entity(index)
            else:
                index = self.open_entity(index)
        if self.stack:
            kind, _, byte_offset, _, _ = self.stack[-1]
            raise EntityParseError(
                f"Can't find end of {_MARKDOWN_V2_TYPE_NAMES[kind]} entity at byte offset {byte_offset}"
            )
        if self.quote_start is not None:
            self.close_quote()
        return FormattedText("".join(self.out), tuple(self.entities))

    def line_start(self, index: int) -> int:
        """Blockquote lines start with `>` (or `**>` for an expandable one); the marker is not text."""
        source = self.source
        if source.startswith("**>", index) and not self.stack:
            if self.quote_start is None:
                self.quote_start, self.quote_expandable = self.position, True
            return index + 3
        if source.startswith(">", index) and not self.stack:
            if self.quote_start is None:
                self.quote_start, self.quote_expandable = self.position, False
            return index + 1
        return index

    def close_quote(self) -> None:
        if self.quote_start is None:
            return
        text = "".join(self.out)
        end = utf16_length(text.rstrip("\n"))
        if end > self.quote_start:
            kind = "expandable_blockquote" if self.quote_expandable else "blockquote"
            self.entities.append({"type": kind, "offset": self.quote_start, "length": end - self.quote_start})
        self.quote_start, self.quote_expandable = None, False

    def ends(self, top: str, index: int) -> bool:
        char, following = self.source[index], self.peek(index + 1)
        return {
            "bold": char == "*",
            "italic": char == "_" and following != "_",
            "underline": char == "_" and following == "_",
            "strikethrough": char == "~",
            "spoiler": char == "|" and following == "|",
            "code": char == "`",
            "pre": self.source.startswith("```", index),
            "text_link": char == "]",
            "custom_emoji": char == "]",
        }[top]

    def open_entity(self, index: int) -> int:
        source, char, byte_offset = self.source, self.source[index], _byte_offset(self.source, index)
        language = ""
        if char == "_":
            kind = "underline" if self.peek(index + 1) == "_" else "italic"
            index += 2 if kind == "underline" else 1
        elif char in "*~[":
            kind = {"*": "bold", "~": "strikethrough", "[": "text_link"}[char]
            index += 1
        elif char == "|" and self.peek(index + 1) == "|":
            kind, index = "spoiler", index + 2
        elif char == "!" and self.peek(index + 1) == "[":
            kind, index = "custom_emoji", index + 2
        elif char == "`" and source.startswith("```", index):
            kind, index = "pre", index + 3
            language_end = index
            while (
                language_end < len(source)
                and not source[language_end].isspace()
                and source[language_end] != "`"
            ):
                language_end += 1
            if language_end > index and language_end < len(source) and source[language_end] != "`":
                language, index = source[index:language_end], language_end
            if self.peek(index) in ("\n", "\r"):
                index += (
                    2
                    if self.peek(index + 1) in ("\n", "\r") and self.peek(index + 1) != self.peek(index)
                    else 1
                )
        elif char == "`":
            kind, index = "code", index + 1
        else:
            raise self.reserved(char)
        self.stack.append((kind, self.position, byte_offset, len(self.out), language))
        return index

    def close_entity(self, index: int) -> int:
        kind, start, _, out_index, language = self.stack.pop()
        entity: dict[str, Any] | None = {"type": kind}
        if kind in ("underline", "spoiler"):
            index += 2
        elif kind == "pre":
            index += 3
            if language:
                entity = {"type": "pre", "language": language}
        elif kind in ("text_link", "custom_emoji"):
            entity, index = self.link_target(kind, index, out_index)
        else:
            index += 1
        if entity is not None and self.position > start:
            self.entities.append({**entity, "offset": start, "length": self.position - start})
        return index

    def link_target(self, kind: str, index: int, out_index: int) -> tuple[dict[str, Any] | None, int]:
        source = self.source
        if self.peek(index + 1) != "(":
            if kind == "custom_emoji":
                raise EntityParseError("Custom emoji entity must contain a tg://emoji URL")
            return _link_entity("".join(self.out[out_index:])), index + 1
        index += 2
        url_begin = index
        url: list[str] = []
        while index < len(source) and source[index] != ")":
            if source[index] == "\\" and 0 < ord(self.peek(index + 1) or "\0") <= 126:
                url.append(source[index + 1])
                index += 2
                continue
            url.append(source[index])
            index += 1
        if index >= len(source):
            raise EntityParseError(
                f"Can't find end of a URL at byte offset {_byte_offset(source, url_begin)}"
            )
        target = "".join(url)
        if kind == "custom_emoji":
            emoji = _EMOJI_LINK.match(target)
            if emoji is None:
                raise EntityParseError("Custom emoji URL must have an emoji identifier")
            return {"type": "custom_emoji", "custom_emoji_id": emoji.group(1)}, index + 1
        return _link_entity(target), index + 1


def _parse_legacy_markdown(source: str) -> FormattedText:
    out: list[str] = []
    entities: list[dict[str, Any]] = []
    position, index = 0, 0
    while index < len(source):
        char = source[index]
        if char == "\\" and index + 1 < len(source) and source[index + 1] in "_*`[":
            out.append(source[index + 1])
            position += 1
            index += 2
            continue
        if char not in "_*`[":
            out.append(char)
            position += utf16_length(char)
            index += 1
            continue
        begin = index
        is_pre = source.startswith("```", index)
        terminator = "```" if is_pre else ("]" if char == "[" else char)
        index += 3 if is_pre else 1
        language = ""
        if is_pre:
            line_end = source.find("\n", index)
            first_line = source[index:line_end] if line_end >= 0 else ""
            if line_end >= 0 and first_line and not any(ch.isspace() or ch == "`" for ch in first_line):
                language, index = first_line, line_end + 1
        close = source.find(terminator, index)
        if close < 0:
            raise EntityParseError(
                f"Can't find end of the entity starting at byte offset {_byte_offset(source, begin)}"
            )
        inner = source[index:close]
        start = position
        out.append(inner)
        position += utf16_length(inner)
        index = close + len(terminator)
        entity: dict[str, Any] | None
        if char == "[":
            url = ""
            if index < len(source) and source[index] == "(":
                url_end = source.find(")", index)
                if url_end < 0:
                    raise EntityParseError(
                        f"Can't find end of the entity starting at byte offset {_byte_offset(source, begin)}"
                    )
                url, index = source[index + 1 : url_end], url_end + 1
            entity = _link_entity(url)
        elif is_pre:
            entity = {"type": "pre", **({"language": language} if language else {})}
        else:
            entity = {"type": {"_": "italic", "*": "bold", "`": "code"}[char]}
        if entity is not None and position > start:
            entities.append({**entity, "offset": start, "length": position - start})
    return FormattedText("".join(out), tuple(entities))
