"""Echoing a learner's answer back inside an error message: short, quoted and printable."""

from __future__ import annotations

import unicodedata

ECHO_LIMIT = 40
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def echo(text: str, limit: int = ECHO_LIMIT) -> str:
    """`text` clipped to `limit` characters and quoted, with control and invisible characters escaped."""
    clipped = text if len(text) <= limit else text[:limit] + "…"
    return repr(clipped)


def has_control_characters(text: str) -> bool:
    """True when `text` holds a control, format or unassigned code point (never part of a real answer)."""
    return any(unicodedata.category(char) in _INVISIBLE for char in text)
