"""The course funnel as a PNG: how many learners enrolled, got each lesson, and marked it done.

Drawn with matplotlib's Agg canvas on a private `Figure` (no pyplot global state), so charts can be
drawn from any thread; matplotlib is imported on first use, not at start-up.
"""

from __future__ import annotations

import io

from bot.stats import CourseStats

WIDTH_INCHES = 8.0
ROW_INCHES = 0.42
MIN_HEIGHT_INCHES = 2.6
DPI = 110
MAX_LABEL = 38
DELIVERED_COLOUR = "#9ecae1"
DONE_COLOUR = "#3182bd"
ENROLLED_COLOUR = "#bdbdbd"


def funnel_png(stats: CourseStats) -> bytes:
    """A horizontal bar per lesson (delivered, with the done share darker), enrolled on top; PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    labels = ["Enrolled"] + [_label(lesson.number, lesson.title) for lesson in stats.lessons]
    delivered = [stats.enrolled] + [lesson.delivered for lesson in stats.lessons]
    done = [0] + [lesson.done for lesson in stats.lessons]
    height = max(MIN_HEIGHT_INCHES, 1.4 + ROW_INCHES * len(labels))
    figure = Figure(figsize=(WIDTH_INCHES, height), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    rows = list(range(len(labels)))
    axes.barh(rows[:1], delivered[:1], color=ENROLLED_COLOUR, label="enrolled")
    if stats.lessons:
        axes.barh(rows[1:], delivered[1:], color=DELIVERED_COLOUR, label="delivered")
        axes.barh(rows[1:], done[1:], color=DONE_COLOUR, label="marked done")
    peak = max([*delivered, 1])
    for row, (count, finished) in enumerate(zip(delivered, done, strict=True)):
        text = str(count) if row == 0 else f"{count} ({finished} done)"
        axes.text(count + peak * 0.01, row, text, va="center", fontsize=8)
    axes.set_yticks(rows, labels, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, peak * 1.25)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("learners")
    axes.set_title(_clip(f"{stats.title}: learner funnel", 70), fontsize=11)
    axes.legend(loc="lower right", fontsize=8)
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _label(number: int, title: str) -> str:
    return _clip(f"{number}. {title}", MAX_LABEL)


def _clip(text: str, limit: int) -> str:
    # Mathtext would treat "$" as a formula delimiter in a lesson title.
    text = text.replace("$", r"\$")
    return text if len(text) <= limit else text[: limit - 1] + "…"
