"""Rendered text as atoms: the smallest pieces a long message may be split between.

An atom is one character (or an HTML entity, or a backslash escape with its character), a space, a line
break, or a formatting marker that opens or closes a span. A splitter that cuts only between atoms and
closes the open markers at each cut never breaks an entity, an escape, a surrogate pair or a tag.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable
from enum import Enum
from typing import NamedTuple


class AtomKind(Enum):
    TEXT = "text"
    SPACE = "space"
    NEWLINE = "newline"
    OPEN = "open"
    CLOSE = "close"


class Atom(NamedTuple):
    kind: AtomKind
    raw: str
    """Exactly what goes into the message."""
    visible: int
    """UTF-16 code units the platform counts toward its length limit."""
    closer: str = ""
    """For OPEN atoms: the raw text that ends the span (emitted when a split cuts through it)."""
    closer_visible: int = 0

    @property
    def raw_units(self) -> int:
        if len(self.raw) == 1:
            return 2 if ord(self.raw) > 0xFFFF else 1
        return utf16_len(self.raw)


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram counts (astral characters count twice)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def char_atom(source: str, raw: str, visible: int) -> Atom:
    """The atom for one source character rendered as `raw` (an escape, an entity or the character)."""
    if source == "\n":
        return Atom(AtomKind.NEWLINE, raw, visible)
    if source in " \t":
        return Atom(AtomKind.SPACE, raw, visible)
    return Atom(AtomKind.TEXT, raw, visible)


def joined(atoms: Iterable[Atom]) -> str:
    return "".join(atom.raw for atom in atoms)


def joins_previous(atom: Atom) -> bool:
    """True when a cut before this atom would split a user-perceived character (a combining mark, ZWJ...)."""
    if atom.kind is not AtomKind.TEXT or not atom.raw:
        return False
    first = atom.raw[0]
    return (
        unicodedata.category(first) in ("Mn", "Me", "Mc")
        or first in "\u200d\ufe0e\ufe0f"
        or 0x1F3FB <= ord(first) <= 0x1F3FF
        or 0xE0020 <= ord(first) <= 0xE007F
    )


def joins_next(atom: Atom) -> bool:
    """True when a cut after this atom would split a user-perceived character."""
    return atom.kind is AtomKind.TEXT and atom.raw.endswith("\u200d")


# --- lexers for text that is already rendered --------------------------------------------------------

_HTML_PIECE = re.compile(
    r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)[^<>]*>|&(#[0-9]+|#[xX][0-9a-fA-F]+|[a-zA-Z]+);|[^<&]+|.", re.S
)


def lex_html(text: str) -> list[Atom]:
    """Atoms of Telegram HTML: tags are markers (invisible), entities and characters are visible text."""
    atoms: list[Atom] = []
    for match in _HTML_PIECE.finditer(text):
        piece = match.group(0)
        if match.group(2) is not None:
            if match.group(1):
                atoms.append(Atom(AtomKind.CLOSE, piece, 0))
            else:
                atoms.append(Atom(AtomKind.OPEN, piece, 0, closer=f"</{match.group(2)}>"))
        elif match.group(3) is not None:
            atoms.append(Atom(AtomKind.TEXT, piece, utf16_len(html.unescape(piece))))
        else:
            atoms.extend(lex_plain(piece))
    return atoms


def lex_plain(text: str) -> list[Atom]:
    """Atoms of text without markers: every character counts as itself."""
    return [Atom(_CHAR_KINDS.get(char, AtomKind.TEXT), char, 2 if ord(char) > 0xFFFF else 1) for char in text]


_CHAR_KINDS = {"\n": AtomKind.NEWLINE, " ": AtomKind.SPACE, "\t": AtomKind.SPACE}


_ESCAPED_PIECE = re.compile(r"\\[!-/:-@\[-`{-~]|.", re.S)


def lex_escaped_markdown(text: str) -> list[Atom]:
    """Atoms of backslash-escaped Markdown text: an escape and its character stay together."""
    atoms: list[Atom] = []
    for match in _ESCAPED_PIECE.finditer(text):
        piece = match.group(0)
        atoms.append(char_atom(piece[-1], piece, utf16_len(piece)))
    return atoms
