"""Text in each platform's dialect: Markdown conversion, escaping, and splitting under length limits.

Pure functions. `render_markdown` turns lesson Markdown into balanced blocks; `split_message` packs
blocks into messages under a platform's limit, cutting an over-long block at line, then word boundaries
and closing and reopening its formatting at each cut so every message stays valid on its own.
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass

from bot.markdown_dialects import (
    DialectRenderer,
    discord_link_target,
    discord_pieces,
    html_attribute,
    html_piece,
    keeps,
    linkable,
)
from bot.markup_atoms import (
    Atom,
    AtomKind,
    joined,
    joins_next,
    joins_previous,
    lex_escaped_markdown,
    lex_html,
    lex_plain,
    utf16_len,
)
from bot.ports import Markup

# Telegram counts a message's length after parsing its HTML, but also refuses markup far larger than
# the text (error Entities_too_long, near 9500 characters) and ignores formatting after 100 entities.
TELEGRAM_MAX_RAW_HTML = 8192
TELEGRAM_MAX_ENTITIES = 100
BLOCK_SEPARATOR = "\n\n"


def render_markdown(markdown: str, markup: Markup) -> list[str]:
    """The top-level blocks of `markdown` in the dialect, each a complete, balanced fragment."""
    return list(_rendered(markdown, markup))


@functools.lru_cache(maxsize=256)
def _rendered(markdown: str, markup: Markup) -> tuple[str, ...]:
    # The sender renders the same lesson for every learner: parse it once per dialect.
    return tuple(joined(atoms) for atoms in DialectRenderer(markup).blocks(markdown))


# --- escaping and the core's own phrases ------------------------------------------------------------


def escape_user_text(text: str, markup: Markup) -> str:
    """`text` shown verbatim, never read as formatting or a mention; controls and bidi overrides removed."""
    text = "".join(char for char in text if keeps(char, strip_bidi=True))
    if markup is Markup.TELEGRAM_HTML:
        return "".join(html_piece(char) for char in text)
    if markup is Markup.DISCORD_MARKDOWN:
        pieces, _ = discord_pieces(text, at_line_start=True)
        return "".join(pieces)
    return text


def bold(text: str, markup: Markup) -> str:
    escaped = escape_user_text(text, markup)
    if not escaped or markup is Markup.PLAIN:
        return escaped
    return f"<b>{escaped}</b>" if markup is Markup.TELEGRAM_HTML else f"**{escaped}**"


def italic(text: str, markup: Markup) -> str:
    escaped = escape_user_text(text, markup)
    if not escaped or markup is Markup.PLAIN:
        return escaped
    return f"<i>{escaped}</i>" if markup is Markup.TELEGRAM_HTML else f"*{escaped}*"


def link(text: str, url: str, markup: Markup) -> str:
    """A link labelled `text`; a URL the dialect cannot link is shown after the label instead."""
    label = escape_user_text(text or url, markup)
    if not linkable(url, markup) or markup is Markup.PLAIN:
        if url == text:
            return label
        return f"{label} ({escape_user_text(url, markup)})"
    if markup is Markup.TELEGRAM_HTML:
        return f'<a href="{html_attribute(url)}">{label}</a>'
    return f"[{label}](<{discord_link_target(url)}>)"


# --- measuring ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Budget:
    visible: int
    raw: int | None
    markers: int | None

    def allows(self, visible: int, raw: int, markers: int) -> bool:
        return (
            visible <= self.visible
            and (self.raw is None or raw <= self.raw)
            and (self.markers is None or markers <= self.markers)
        )


@dataclass(frozen=True)
class _Cost:
    visible: int = 0
    raw: int = 0
    markers: int = 0

    def __add__(self, other: _Cost) -> _Cost:
        return _Cost(self.visible + other.visible, self.raw + other.raw, self.markers + other.markers)


def _budget(limit: int, markup: Markup) -> _Budget:
    if markup is Markup.TELEGRAM_HTML:
        return _Budget(limit, max(limit, TELEGRAM_MAX_RAW_HTML), TELEGRAM_MAX_ENTITIES)
    return _Budget(limit, None, None)


_HTML_TAG = re.compile(r"<(/?)[a-zA-Z][a-zA-Z0-9-]*[^<>]*>")


def _cost(text: str, markup: Markup) -> _Cost:
    if markup is Markup.TELEGRAM_HTML:
        tags = _HTML_TAG.findall(text)
        visible = utf16_len(html.unescape(_HTML_TAG.sub("", text)))
        return _Cost(visible, utf16_len(text), sum(1 for closing in tags if not closing))
    length = utf16_len(text)
    return _Cost(length, length, 0)


def text_length(text: str, markup: Markup) -> int:
    """The length a platform counts: visible UTF-16 units for HTML, the raw text's units otherwise."""
    return _cost(text, markup).visible


def fits(text: str, limit: int, markup: Markup) -> bool:
    """True when `text` can be sent as one message (or caption) of at most `limit`."""
    cost = _cost(text, markup)
    return _budget(limit, markup).allows(cost.visible, cost.raw, cost.markers)


# --- splitting ----------------------------------------------------------------------------------------


def split_message(blocks: list[str], limit: int, markup: Markup) -> list[str]:
    """Pack `blocks` into messages within `limit`, cutting only between blocks when a block fits whole.

    An over-long block is cut at line, then word, then character boundaries (never inside an entity,
    an escape, a surrogate pair or a combined character); formatting open at a cut is closed at the end
    of one message and reopened at the start of the next.
    """
    budget = _budget(limit, markup)
    separator = _cost(BLOCK_SEPARATOR, markup)
    messages: list[str] = []
    current = ""
    current_cost = _Cost()
    for block in blocks:
        if not block.strip():
            continue
        cost = _cost(block, markup)
        if current:
            together = current_cost + separator + cost
            if budget.allows(together.visible, together.raw, together.markers):
                current += BLOCK_SEPARATOR + block
                current_cost = together
                continue
            messages.append(current)
        if budget.allows(cost.visible, cost.raw, cost.markers):
            current, current_cost = block, cost
            continue
        pieces = _split_atoms(_atoms(block, markup), budget)
        messages.extend(pieces[:-1])
        current = pieces[-1]
        current_cost = _cost(current, markup)
    if current:
        messages.append(current)
    return messages


def _atoms(block: str, markup: Markup) -> list[Atom]:
    if markup is Markup.TELEGRAM_HTML:
        return lex_html(block)
    if markup is Markup.DISCORD_MARKDOWN:
        return _discord_atoms(block)
    return lex_plain(block)


def _discord_atoms(block: str) -> list[Atom]:
    """The block's atoms with its formatting spans, recovered by parsing it again; plain escaped text
    atoms when the block is not in the form `render_markdown` writes."""
    renderer = DialectRenderer(Markup.DISCORD_MARKDOWN, softbreak_as_newline=True, fine=True)
    atoms: list[Atom] = []
    for index, block_atoms in enumerate(renderer.blocks(block)):
        if index:
            atoms.extend(lex_plain(BLOCK_SEPARATOR))
        atoms.extend(block_atoms)
    if joined(atoms) == block:
        return atoms
    return lex_escaped_markdown(block)


_NEWLINE_CUT, _SPACE_CUT, _CHARACTER_CUT = 0, 1, 2
_CUT_ATOM = {_NEWLINE_CUT: AtomKind.NEWLINE, _SPACE_CUT: AtomKind.SPACE}
# Text that Markdown would read as a quote, list or heading underline if a message started with it.
_LINE_START_SYNTAX = re.compile(r"[>\-+=]|[0-9]{1,9}[.)]")


def _cut_kind(atoms: list[Atom], index: int) -> int | None:
    """What kind of boundary lies before atoms[index], or None where a cut is not allowed."""
    before, atom = atoms[index - 1], atoms[index]
    if before.kind is AtomKind.OPEN or atom.kind is AtomKind.CLOSE:
        return None
    if atom.kind is AtomKind.NEWLINE:
        return _NEWLINE_CUT
    resumes_at = index
    while resumes_at < len(atoms) and _blank(atoms[resumes_at]):
        resumes_at += 1
    if _LINE_START_SYNTAX.match(joined(atoms[resumes_at : resumes_at + 11])):
        return None
    if atom.kind is AtomKind.SPACE:
        return _SPACE_CUT
    if joins_previous(atom) or joins_next(before):
        return None
    return _CHARACTER_CUT


def _split_atoms(atoms: list[Atom], budget: _Budget) -> list[str]:
    pieces: list[str] = []
    carried: tuple[Atom, ...] = ()
    start = 0
    while start < len(atoms):
        cut, stack = _next_cut(atoms, start, carried, budget)
        end = cut
        closing = stack
        if cut < len(atoms):
            # Spans do not end on whitespace or open empty: leave both to the next message.
            while end > start + 1 and (_blank(atoms[end - 1]) or atoms[end - 1].kind is AtomKind.OPEN):
                if atoms[end - 1].kind is AtomKind.OPEN:
                    closing = closing[:-1]
                end -= 1
        closers = "".join(marker.closer for marker in reversed(closing))
        pieces.append(joined(carried) + joined(atoms[start:end]) + closers)
        start = cut
        if start < len(atoms) and atoms[start].kind is AtomKind.NEWLINE:
            while start < len(atoms) and atoms[start].kind is AtomKind.NEWLINE:
                start += 1
            while start < len(atoms) and atoms[start].kind is AtomKind.TEXT and atoms[start].raw.isspace():
                start += 1
        else:
            while start < len(atoms) and _blank(atoms[start]):
                start += 1
        # A span that closes right at the cut is already closed: do not reopen it empty.
        while start < len(atoms) and atoms[start].kind is AtomKind.CLOSE and stack:
            stack = stack[:-1]
            start += 1
        carried = stack
    return pieces


def _blank(atom: Atom) -> bool:
    """Whitespace a message may lose at a cut (formatting must not open or close next to it)."""
    return atom.kind is AtomKind.SPACE or (atom.kind is AtomKind.TEXT and atom.raw.isspace())


def _next_cut(
    atoms: list[Atom], start: int, carried: tuple[Atom, ...], budget: _Budget
) -> tuple[int, tuple[Atom, ...]]:
    """Where the message starting at `start` (reopening `carried`) ends, and the markers open there.

    A message's size with its open markers closed never shrinks as atoms are added (a close costs what
    it saves), so every boundary before the first atom that overflows fits: the best cut is the last
    line boundary among them, else the last word boundary, else the last character boundary.
    """
    visible = sum(marker.visible for marker in carried)
    raw = sum(marker.raw_units for marker in carried)
    markers = len(carried) if budget.markers is not None else 0
    stack = carried
    close_visible = sum(marker.closer_visible for marker in stack)
    close_raw = sum(utf16_len(marker.closer) for marker in stack)
    stacks: list[tuple[Atom, ...]] = []
    first_text = -1
    index = start
    while index < len(atoms):
        atom = atoms[index]
        stacks.append(stack)
        kind = atom.kind
        visible += atom.visible
        raw += atom.raw_units
        if kind is AtomKind.OPEN:
            markers += 1
            close_visible += atom.closer_visible
            close_raw += utf16_len(atom.closer)
        elif kind is AtomKind.CLOSE and stack:
            close_visible -= stack[-1].closer_visible
            close_raw -= utf16_len(stack[-1].closer)
        if not budget.allows(visible + close_visible, raw + close_raw, markers):
            break
        if kind is AtomKind.OPEN:
            stack = (*stack, atom)
        elif kind is AtomKind.CLOSE and stack:
            stack = stack[:-1]
        elif kind is AtomKind.TEXT and first_text < 0:
            first_text = index
        index += 1
    else:
        return index, stack
    if first_text >= 0:
        for wanted in (_NEWLINE_CUT, _SPACE_CUT, _CHARACTER_CUT):
            for cut in range(index, first_text, -1):
                if wanted is not _CHARACTER_CUT and atoms[cut].kind is not _CUT_ATOM[wanted]:
                    continue
                if _cut_kind(atoms, cut) == wanted:
                    return cut, stacks[cut - start]
    # No boundary fits with its formatting closed: cut before the atom that overflowed, or, when even
    # the first atom is too long, after it, so that every message makes progress.
    if index > start:
        return index, stacks[index - start]
    return start + 1, _stack_after(carried, atoms[start])


def _stack_after(carried: tuple[Atom, ...], atom: Atom) -> tuple[Atom, ...]:
    if atom.kind is AtomKind.OPEN:
        return (*carried, atom)
    if atom.kind is AtomKind.CLOSE and carried:
        return carried[:-1]
    return carried
