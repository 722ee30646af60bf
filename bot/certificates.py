"""Completion certificates: one PDF page with the learner, the course, the date, the instructor and a code.

The code is random (60 bits, Crockford base32 with a check character) and stored with what the
certificate says, so `dripcourse verify CODE` answers from the database, and a mistyped code is told
apart from an unknown one.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import secrets
from dataclasses import dataclass
from pathlib import Path

from babel.core import Locale, UnknownLocaleError
from babel.dates import format_date
from fpdf import FPDF
from sqlmodel import Session, col, select

from bot.content import Course
from bot.followups import learner_zone
from bot.i18n import _, base_language, lesson_language
from bot.models import Certificate, Enrollment, Learner
from bot.pacing import local_date

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base32: no I, L, O or U, so a code read aloud or retyped survives."""
CHECK_ALPHABET = ALPHABET + "*~$=U"
CODE_CHARACTERS = 12
_TYPOS = str.maketrans({"O": "0", "I": "1", "L": "1"})


def _check_character(body: str) -> str:
    value = 0
    for character in body:
        value = value * 32 + ALPHABET.index(character)
    return CHECK_ALPHABET[value % 37]


def new_code() -> str:
    """A fresh code such as "7K2M-9QXA-4TRB-F" (12 random characters and a check character)."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(CODE_CHARACTERS))
    return "-".join([body[0:4], body[4:8], body[8:12], _check_character(body)])


def normalize_code(text: str) -> str | None:
    """The canonical form of a typed code, or None when it cannot be one (wrong length or check)."""
    compact = "".join(text.upper().split()).replace("-", "").translate(_TYPOS)
    if len(compact) != CODE_CHARACTERS + 1:
        return None
    body, check = compact[:-1], compact[-1]
    if any(character not in ALPHABET for character in body) or _check_character(body) != check:
        return None
    return "-".join([body[0:4], body[4:8], body[8:12], check])


def issue(
    session: Session, course: Course, enrollment: Enrollment, learner: Learner, now: dt.datetime
) -> Certificate:
    """The certificate of this finished enrollment, created on first call (the same one after that)."""
    finished_at = enrollment.finished_at or now
    existing = session.exec(
        select(Certificate).where(
            col(Certificate.enrollment_id) == enrollment.id, col(Certificate.finished_at) == finished_at
        )
    ).first()
    if existing is not None:
        return existing
    zone = learner_zone(learner)
    certificate = Certificate(
        code=new_code(),
        enrollment_id=enrollment.id or 0,
        learner_id=learner.id or 0,
        course_slug=course.slug,
        learner_name=(learner.display_name or "").strip()[:128] or f"Learner {learner.id}",
        course_title=course.title[:256],
        instructor=", ".join(course.instructors)[:256],
        language=lesson_language(course, learner.language),
        finished_on=local_date(finished_at, zone),
        finished_at=finished_at,
        issued_at=now,
    )
    session.add(certificate)
    session.flush()
    return certificate


@dataclass(frozen=True)
class Verification:
    valid: bool
    certificate: Certificate | None
    reason: str = ""


def verify(session: Session, text: str) -> Verification:
    """Look a typed code up: valid with its certificate, or why not."""
    code = normalize_code(text)
    if code is None:
        return Verification(False, None, "not a certificate code (mistyped?)")
    certificate = session.exec(select(Certificate).where(col(Certificate.code) == code)).first()
    if certificate is None:
        return Verification(False, None, "no certificate has this code")
    return Verification(True, certificate)


# --- the PDF ---------------------------------------------------------------------------------------


def _font_file(name: str) -> Path | None:
    """A DejaVu font shipped with matplotlib (a dependency already): it covers most scripts' letters."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / name
    return path if path.is_file() else None


def _date_text(day: dt.date, language: str) -> str:
    try:
        locale = Locale.parse(base_language(language) or "en")
    except (UnknownLocaleError, ValueError):
        locale = Locale.parse("en")
    return format_date(day, "long", locale=locale)


def certificate_filename(certificate: Certificate) -> str:
    return f"certificate-{certificate.course_slug}.pdf"


def certificate_pdf(certificate: Certificate) -> bytes:
    """One landscape A4 page: who finished what, when, with whom, and the code to check it by."""
    language = certificate.language
    pdf = FPDF(orientation="landscape", format="A4")
    pdf.set_title(_(language, "Certificate of completion"))
    pdf.set_author(certificate.instructor or "dripcourse")
    pdf.set_creator("dripcourse")
    pdf.set_creation_date(certificate.issued_at)
    pdf.set_auto_page_break(False)
    regular, bold = _font_file("DejaVuSans.ttf"), _font_file("DejaVuSans-Bold.ttf")
    if regular is not None and bold is not None:
        pdf.add_font("Body", "", str(regular))
        pdf.add_font("Body", "B", str(bold))
        family = "Body"
    else:
        family = "Helvetica"
    pdf.add_page()
    width = pdf.w - 40
    pdf.set_draw_color(60, 90, 140)
    pdf.set_line_width(1.2)
    pdf.rect(10, 10, pdf.w - 20, pdf.h - 20)
    pdf.set_line_width(0.3)
    pdf.rect(14, 14, pdf.w - 28, pdf.h - 28)

    def line(text: str, size: float, *, style: str = "", gap: float = 4, color: int = 30) -> None:
        pdf.set_font(family, style, size)
        pdf.set_text_color(color, color, color)
        pdf.set_x(20)
        pdf.multi_cell(width, size * 0.5, _printable(text, family), align="C")
        pdf.ln(gap)

    pdf.set_y(38)
    line(_(language, "Certificate of completion"), 30, style="B", gap=10, color=40)
    line(_(language, "This certifies that"), 14, gap=6, color=90)
    line(certificate.learner_name, 28, style="B", gap=6)
    line(_(language, "has completed the course"), 14, gap=6, color=90)
    line(certificate.course_title, 22, style="B", gap=10)
    line(_(language, "on {date}", date=_date_text(certificate.finished_on, language)), 13, gap=3, color=70)
    if certificate.instructor:
        line(_(language, "Instructor: {name}", name=certificate.instructor), 13, gap=3, color=70)
    pdf.set_y(pdf.h - 42)
    line(_(language, "Verification code: {code}", code=certificate.code), 12, style="B", gap=2, color=40)
    line(_(language, "Check it with: dripcourse verify {code}", code=certificate.code), 10, gap=0, color=110)
    return bytes(pdf.output())


def _printable(text: str, family: str) -> str:
    """Text the font can set; the built-in Helvetica (no font file found) only knows Latin-1."""
    if family != "Helvetica":
        return text
    return text.encode("latin-1", "replace").decode("latin-1")
