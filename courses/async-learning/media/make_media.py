"""Generate the sample course's media: a forgetting-curve chart, a review worksheet and a session chime.

Run from anywhere: `python courses/async-learning/media/make_media.py [OUTPUT_FOLDER]` (default: this
folder). The output is deterministic so regenerated files only change when this script does.
"""

from __future__ import annotations

import array
import math
import sys
import wave
from pathlib import Path

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

HERE = Path(__file__).resolve().parent
CHART = "forgetting-curve.png"
WORKSHEET = "weekly-review-worksheet.pdf"
CHIME = "session-chime.wav"

INK = "#2f3b52"
ACCENT = "#e07a5f"
CALM = "#3d8b7d"
MUTED = "#9aa3b5"


def retention(days: float, stability: float, floor: float = 0.15) -> float:
    """Share of what was learned still recallable after `days`: a decay towards a small lasting floor."""
    return floor + (1 - floor) * math.exp(-days / stability)


def forgetting_curve(path: Path) -> None:
    """Retention over 30 days, with no review and with reviews on days 1, 3, 7 and 16."""
    steps = [day / 10 for day in range(301)]
    no_review = [100 * retention(day, 1.5) for day in steps]
    reviews = [1.0, 3.0, 7.0, 16.0]
    with_review: list[float] = []
    for day in steps:
        done = [review for review in reviews if review <= day]
        last = done[-1] if done else 0.0
        stability = 1.5 * (2.5 ** len(done))  # each review makes the memory last longer
        with_review.append(100 * retention(day - last, stability))

    figure = Figure(figsize=(6.4, 3.6), dpi=100)
    axes = figure.add_subplot()
    axes.plot(steps, no_review, color=ACCENT, linewidth=2, label="learned once, never reviewed")
    axes.plot(steps, with_review, color=CALM, linewidth=2, label="reviewed on days 1, 3, 7 and 16")
    for review in reviews:
        axes.axvline(review, color=MUTED, linewidth=0.8, linestyle=":")
    axes.set_xlim(0, 30)
    axes.set_ylim(0, 105)
    axes.set_xlabel("days since the lesson", color=INK)
    axes.set_ylabel("what you can still recall (%)", color=INK)
    axes.set_title(
        "The forgetting curve, and how spaced review flattens it (illustrative)", color=INK, fontsize=11
    )
    axes.legend(frameon=False, fontsize=9, loc="center right")
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.tick_params(colors=INK, labelsize=9)
    figure.tight_layout()
    figure.savefig(path, format="png", metadata={"Software": None})


WORKSHEET_SECTIONS = [
    ("1. Recall first", "Without looking, write the three ideas from this week you most want to keep."),
    ("2. Check and fill the gaps", "Now open the lessons. What did you miss or get wrong? Note it here."),
    ("3. Connect", "Where could you use one of these ideas in the next seven days?"),
    ("4. Ask", "One question to post in the discussion thread (with what you already tried)."),
    ("5. Plan", "When will you study next week? Day, time, place, and what you will do first."),
]


def worksheet(path: Path) -> None:
    """A one-page A4 weekly review worksheet with room to write."""
    figure = Figure(figsize=(8.27, 11.69))
    figure.text(0.08, 0.94, "Weekly review worksheet", fontsize=20, color=INK, weight="bold")
    figure.text(
        0.08,
        0.915,
        "Learning on your own clock  ·  15 minutes, once a week  ·  Week of: ____________",
        fontsize=10,
        color=MUTED,
    )
    top = 0.87
    for heading, prompt in WORKSHEET_SECTIONS:
        figure.text(0.08, top, heading, fontsize=13, color=CALM, weight="bold")
        figure.text(0.08, top - 0.022, prompt, fontsize=10, color=INK)
        for line in range(4):
            y = top - 0.055 - line * 0.026
            figure.add_artist(Line2D([0.08, 0.92], [y, y], color=MUTED, linewidth=0.6))
        top -= 0.165
    figure.text(
        0.08,
        0.035,
        "Recall before you reread: the effort of remembering is what makes it stick.",
        fontsize=9,
        color=MUTED,
        style="italic",
    )
    with PdfPages(path, metadata={"CreationDate": None, "Producer": None, "Creator": None}) as pdf:
        pdf.savefig(figure)


def chime(path: Path, rate: int = 11025, seconds: float = 3.0) -> None:
    """A soft two-note chime (E5 then C5 with gentle overtones), mono 16-bit, fading out."""
    notes = [(0.0, 659.25), (0.45, 523.25)]
    partials = [(1.0, 1.0), (2.0, 0.35), (3.0, 0.12), (4.2, 0.05)]
    samples = array.array("h")
    total = int(rate * seconds)
    for index in range(total):
        t = index / rate
        value = 0.0
        for start, frequency in notes:
            if t < start:
                continue
            since = t - start
            attack = min(since / 0.01, 1.0)  # a 10 ms rise avoids a click
            envelope = attack * math.exp(-since * 1.8)
            for ratio, weight in partials:
                value += weight * envelope * math.sin(2 * math.pi * frequency * ratio * since)
        fade = min((total - index) / (0.2 * rate), 1.0)
        samples.append(int(max(-1.0, min(1.0, 0.32 * value * fade)) * 32767))
    if sys.byteorder == "big":
        samples.byteswap()
    with wave.open(str(path), "wb") as output:
        output.setnchannels(1)
        output.setsampwidth(2)
        output.setframerate(rate)
        output.writeframes(samples.tobytes())


def make_all(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    forgetting_curve(folder / CHART)
    worksheet(folder / WORKSHEET)
    chime(folder / CHIME)
    return [folder / CHART, folder / WORKSHEET, folder / CHIME]


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    for made in make_all(target):
        print(f"{made}: {made.stat().st_size} bytes")
