"""A learner's upcoming lessons as an iCalendar (`.ics`) file, in their own time zone.

Each event's UID is stable per enrollment and lesson and its SEQUENCE grows with every new file, so a
calendar app that imports a fresh file after a change of time, zone or pace moves the events it
already has instead of adding copies.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import icalendar

from bot.catalog import Catalog
from bot.i18n import _, lesson_language
from bot.models import Enrollment, Learner
from bot.timezones import load_zone
from bot.usecases import upcoming_releases

EVENT_LENGTH = dt.timedelta(minutes=15)
LESSONS_AHEAD = 60
PRODUCT_ID = "-//dripcourse//lesson calendar//EN"
FILENAME = "dripcourse-lessons.ics"


@dataclass(frozen=True)
class CalendarEntry:
    uid: str
    start: dt.datetime
    """Aware UTC instant."""
    title: str
    description: str = ""


def build_calendar(
    entries: Sequence[CalendarEntry], zone_name: str, now: dt.datetime, *, name: str = "dripcourse"
) -> bytes:
    """The `.ics` bytes: one event per entry, in `zone_name` (an IANA zone; anything else in UTC)."""
    zone = load_zone(zone_name)
    local_zone: dt.tzinfo = zone if isinstance(zone, ZoneInfo) else dt.UTC
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    if isinstance(zone, ZoneInfo):
        calendar.add("x-wr-timezone", zone.key)
    sequence = int(now.timestamp()) // 60
    for entry in entries:
        event = icalendar.Event()
        event.add("uid", entry.uid)
        event.add("dtstamp", now.astimezone(dt.UTC))
        event.add("sequence", sequence)
        event.add("dtstart", entry.start.astimezone(local_zone))
        event.add("duration", EVENT_LENGTH)
        event.add("summary", entry.title)
        if entry.description:
            event.add("description", entry.description)
        event.add("transp", "TRANSPARENT")
        calendar.add_component(event)
    if isinstance(zone, ZoneInfo):
        calendar.add_missing_timezones()
    return bytes(calendar.to_ical())


def learner_entries(
    catalog: Catalog,
    learner: Learner,
    enrollments: Sequence[Enrollment],
    now: dt.datetime,
    *,
    ahead: int = LESSONS_AHEAD,
) -> list[CalendarEntry]:
    """The upcoming lessons of every enrollment, at the instants `/schedule` shows, earliest first."""
    entries: list[CalendarEntry] = []
    language = learner.language
    for enrollment in enrollments:
        course = catalog.get(enrollment.course_slug)
        if course is None:
            continue
        for slug, at in upcoming_releases(catalog, learner, enrollment, now, count=ahead):
            lesson = course.lesson(slug)
            number = (course.index_of(slug) or 0) + 1
            title = lesson.in_language(lesson_language(course, language)).title if lesson else slug
            entries.append(
                CalendarEntry(
                    uid=f"{enrollment.id}-{slug}@dripcourse",
                    start=at,
                    title=_(language, "Lesson {number}: {title}", number=number, title=title),
                    description=_(
                        language, "{course}: your next lesson arrives in the chat.", course=course.title
                    ),
                )
            )
    entries.sort(key=lambda entry: entry.start)
    return entries
