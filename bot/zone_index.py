"""The IANA zone names, indexed for lookup: exact, case-folded and by place (Europe/Berlin -> "berlin").

Built once on first use from zoneinfo and the tables shipped with tzdata; importing does nothing.
"""

from __future__ import annotations

import functools
import re
import unicodedata
import zoneinfo
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

_SEPARATORS = re.compile(r"[\s_\-.,'’`()]+")


def fold(text: str) -> str:
    """Lower case without accents, with spaces, underscores and hyphens all one space: the index key."""
    if not text.isascii():
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(char for char in decomposed if not unicodedata.combining(char))
    text = _SEPARATORS.sub(" ", text.casefold()).strip()
    if "/" in text:
        text = "/".join(part.strip() for part in text.split("/"))
    return text


@dataclass(frozen=True)
class ZoneIndex:
    """What zone lookups need, built once."""

    names: frozenset[str]
    by_lower: dict[str, str]
    presented: dict[str, str]
    """Every name -> the name to store and show (backward links such as Asia/Calcutta -> Asia/Kolkata)."""
    by_folded: dict[str, str]
    by_place: dict[str, str]
    place_keys: list[str]
    place_targets: list[str]


def _tzdata_text(filename: str) -> str:
    """A table shipped with the IANA data (the tzdata package, else the system copy); "" when absent."""
    try:
        return resources.files("tzdata").joinpath("zoneinfo", filename).read_text(encoding="utf-8")
    except (OSError, ModuleNotFoundError):
        pass
    try:
        return Path("/usr/share/zoneinfo", filename).read_text(encoding="utf-8")
    except OSError:
        return ""


def _is_region_name(name: str) -> bool:
    return "/" in name and not name.startswith("Etc/")


@functools.cache
def zone_index() -> ZoneIndex:
    """The index of every IANA name on this machine (cached)."""
    names = frozenset(zoneinfo.available_timezones())
    links: dict[str, str] = {}
    for line in _tzdata_text("tzdata.zi").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "L":
            links[parts[2]] = parts[1]
    # zones the IANA tables list for a country: the names to show (Europe/Amsterdam, not its link target)
    listed: set[str] = set()
    for table in ("zone.tab", "zone1970.tab"):
        for line in _tzdata_text(table).splitlines():
            fields = line.split("\t")
            if not line.startswith("#") and len(fields) >= 3 and fields[2] in names:
                listed.add(fields[2])
    listed = listed or set(names)
    presented: dict[str, str] = {}
    for name in names:
        target = links.get(name, name)
        renamed = target in listed and name not in listed and (_is_region_name(name) or name.istitle())
        presented[name] = target if renamed else name
    by_folded: dict[str, str] = {}
    by_place: dict[str, str] = {}
    place_keys: list[str] = []
    place_targets: list[str] = []
    # listed names first, so a place maps to the zone a country is listed under, not to a backward link
    for name in sorted(names, key=lambda zone: (zone not in listed, zone)):
        shown = presented[name]
        by_folded.setdefault(fold(name), shown)
        if not _is_region_name(name) and not name.istitle():
            continue
        place = fold(name.rsplit("/", 1)[-1])
        if place not in by_place:
            by_place[place] = shown
            place_keys.append(place)
            place_targets.append(shown)
    return ZoneIndex(
        names=names,
        by_lower={name.lower(): name for name in sorted(names)},
        presented=presented,
        by_folded=by_folded,
        by_place=by_place,
        place_keys=place_keys,
        place_targets=place_targets,
    )
