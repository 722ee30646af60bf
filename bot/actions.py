"""Button action strings: short, stable, parsed back without any in-memory registry.

They fit Telegram's 64 bytes of callback data and Discord's 100-character custom_id, and carry only
ids the core re-checks against the pressing user, so a forged or stale action changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_ACTION_BYTES = 64


@dataclass(frozen=True)
class Action:
    verb: str
    args: tuple[str, ...]


# verb -> meaning; arguments are ids or slugs, never free text
VERBS = {
    "enrol": "enrol in course <slug>",
    "zone": "set time zone <enrollment id> <zone name>",
    "time": "set time of day <enrollment id> <HHMM>",
    "pace": "set cadence <enrollment id> <cadence>",
    "done": "mark delivery <id> done",
    "next": "pull the next lesson of enrollment <id>",
    "quiz": "answer quiz of delivery <id> with option <i>",
    "stop": "confirm unenrolling enrollment <id>",
    "keep": "cancel unenrolling enrollment <id>",
    "bcast": "broadcast <id>: send <now>, at each learner's <local> time, or <cancel> it",
    "more": "show more choices for <step> of enrollment <id>",
    "forget": "delete everything stored about learner <id>: <yes>, or <no> to keep it",
    "rev": "answer review card <id> with option <i>",
    "lang": "read lessons and the bot in language <code>",
}

_TOKEN = re.compile(r"^[A-Za-z0-9_+\-./,]{1,48}$")


def encode(verb: str, *args: str | int) -> str:
    """`verb:arg1:arg2`; raises ValueError when a part is not a plain token or the result is too long."""
    if verb not in VERBS:
        raise ValueError(f"unknown action verb {verb!r}")
    parts = [str(arg) for arg in args]
    for part in parts:
        if not _TOKEN.match(part):
            raise ValueError(f"action argument {part!r} is not a plain token")
    action = ":".join([verb, *parts])
    if len(action.encode()) > MAX_ACTION_BYTES:
        raise ValueError(f"action {action!r} is longer than {MAX_ACTION_BYTES} bytes")
    return action


def decode(action: str) -> Action | None:
    """The parsed action, or None for anything malformed (forged, truncated, from an old version)."""
    if not action or len(action.encode()) > MAX_ACTION_BYTES:
        return None
    verb, *args = action.split(":")
    if verb not in VERBS or not all(_TOKEN.match(arg) for arg in args):
        return None
    return Action(verb, tuple(args))
