"""Cohorts: a group of learners who join a course through one invite code and may start on one date.

An invite is `/start <code>`; on Telegram the same code rides in a deep link. Codes are lower case
(chat clients and `/start` handling fold case) and long enough not to be guessed.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import string

from sqlmodel import Session, select

from bot import usecases
from bot.catalog import Catalog
from bot.followups import learner_zone
from bot.models import Cohort, Enrollment, EnrollmentStatus, Learner

CODE_ALPHABET = string.ascii_lowercase + string.digits
CODE_LENGTH = 12
"""36**12 is about 4.7e18 codes: not guessable by trying."""
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def cohort_by_code(session: Session, code: str) -> Cohort | None:
    """The cohort whose invite code is `code` (any case), or None."""
    typed = code.strip().lower()
    if len(typed) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in typed):
        return None
    return session.exec(select(Cohort).where(Cohort.code == typed)).first()


def cohort_start(cohort: Cohort, learner: Learner) -> dt.datetime | None:
    """The start of the cohort's first day in the learner's own zone, as aware UTC; None without a date."""
    if cohort.start_date is None:
        return None
    zone = learner_zone(learner)
    return dt.datetime.combine(cohort.start_date, dt.time(0, 0), tzinfo=zone).astimezone(dt.UTC)


def hold_until_cohort_start(
    session: Session, catalog: Catalog, learner: Learner, enrollment: Enrollment, now: dt.datetime
) -> None:
    """A learner who joins a cohort before its start date waits, paused, until that local date begins."""
    if enrollment.cohort_id is None or enrollment.lessons_released:
        return
    cohort = session.get(Cohort, enrollment.cohort_id)
    if cohort is None:
        return
    start = cohort_start(cohort, learner)
    if start is None or start <= now:
        return
    enrollment.status = EnrollmentStatus.PAUSED
    enrollment.paused_until = start
    usecases.recompute(catalog, enrollment, learner, now)
    session.add(enrollment)
