"""The bot's own phrases in the learner's language, and which language a learner reads a course in.

Catalogues are gettext `.po` files under `bot/locale/<lang>/LC_MESSAGES/dripcourse.po`, compiled in
memory with Babel the first time a language is asked for, so no binary `.mo` is kept in the tree.
English is the source language: its catalogue holds the message ids and needs no translations.
"""

from __future__ import annotations

import datetime as dt
import functools
import gettext
import io
import logging
from importlib.resources import files

from babel.core import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from bot.content import Course

log = logging.getLogger(__name__)

DOMAIN = "dripcourse"
SOURCE_LANGUAGE = "en"


def base_language(code: str | None) -> str | None:
    """The primary language of a locale code: "de-AT" and "de_AT" -> "de"; None for nothing usable."""
    if not code:
        return None
    primary = code.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if primary.isalpha() and 2 <= len(primary) <= 3 else None


def shipped_languages() -> tuple[str, ...]:
    """Languages the bot's phrases are shipped in, the source language first."""
    root = files("bot") / "locale"
    found = sorted(
        entry.name
        for entry in root.iterdir()
        if entry.is_dir() and (entry / "LC_MESSAGES" / f"{DOMAIN}.po").is_file()
    )
    return (SOURCE_LANGUAGE, *[name for name in found if name != SOURCE_LANGUAGE])


@functools.lru_cache(maxsize=16)
def translations(language: str | None) -> gettext.NullTranslations:
    """The compiled catalogue for `language` (its base language); plain English when there is none."""
    base = base_language(language)
    if base is None or base == SOURCE_LANGUAGE:
        return gettext.NullTranslations()
    source = files("bot") / "locale" / base / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not source.is_file():
        return gettext.NullTranslations()
    with source.open("rb") as handle:
        catalog = read_po(handle, locale=base, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def translate(language: str | None, message: str, /, **values: object) -> str:
    """`message` in `language` (English when not translated), with `{name}` fields filled from `values`."""
    text = translations(language).gettext(message)
    if not values:
        return text
    try:
        return text.format(**values)
    except (KeyError, IndexError, ValueError):
        log.warning("translation of %r into %s has bad fields; using English", message, language)
        return message.format(**values)


_ = translate


def N_(message: str) -> str:
    """Marks a phrase for the catalogues where it is defined; it is translated where it is used."""
    return message


def course_languages(course: Course) -> tuple[str, ...]:
    """The languages a course's lessons are offered in, its own language first."""
    return course.languages or (course.language,)


def lesson_language(course: Course, preferred: str | None) -> str:
    """The course language to send a learner who prefers `preferred`: an exact match, then the same
    base language, else the course's own language."""
    offered = course_languages(course)
    if preferred:
        wanted = preferred.strip().replace("_", "-").lower()
        for language in offered:
            if language.lower() == wanted:
                return language
        base = base_language(wanted)
        for language in offered:
            if base_language(language) == base:
                return language
    return course.language


def local_date_text(moment: dt.datetime, zone: dt.tzinfo, language: str | None) -> str:
    """The local date of `moment` as people of `language` write it, e.g. "Mon 02 Mar" / "Mo. 02 März"."""
    local = moment.astimezone(zone)
    try:
        locale = Locale.parse(base_language(language) or SOURCE_LANGUAGE)
    except (UnknownLocaleError, ValueError):
        locale = Locale.parse(SOURCE_LANGUAGE)
    return format_date(local.date(), "EEE dd MMM", locale=locale)
