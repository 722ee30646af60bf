"""Lesson Markdown rendered into a platform's dialect (Telegram HTML, Discord Markdown or plain text).

The Markdown is parsed by markdown-it (CommonMark with tables, ~~strikethrough~~ and ||spoilers||; raw
HTML in the source is kept as text) and walked once per dialect. The result is a list of top-level
blocks, each a list of atoms, so a splitter can cut a long block without breaking its formatting.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence

from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from markdown_it.tree import SyntaxTreeNode

from bot.markup_atoms import Atom, AtomKind, char_atom, joined, utf16_len
from bot.ports import Markup

# --- parsing -------------------------------------------------------------------------------------------


def spoiler_rule(state: StateInline, silent: bool) -> bool:
    """`||hidden||`: Discord's spoiler syntax, also understood for Telegram's tg-spoiler."""
    start = state.pos
    if not state.src.startswith("||", start):
        return False
    content_start = start + 2
    state.pos = content_start
    close = -1
    while state.pos < state.posMax:
        if state.src.startswith("||", state.pos):
            close = state.pos
            break
        state.md.inline.skipToken(state)
    state.pos = start
    if close <= content_start:
        return False
    if not silent:
        state.push("spoiler_open", "span", 1)
        old_max = state.posMax
        state.pos, state.posMax = content_start, close
        state.md.inline.tokenize(state)
        state.posMax = old_max
        state.push("spoiler_close", "span", -1)
    state.pos = close + 2
    return True


@functools.cache
def markdown_parser() -> MarkdownIt:
    """CommonMark with tables, strikethrough and spoilers; raw HTML is not interpreted."""
    parser = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    parser.enable(["table", "strikethrough"])
    parser.inline.ruler.before("emphasis", "spoiler", spoiler_rule)
    if hasattr(parser.inline, "add_terminator_char"):
        parser.inline.add_terminator_char("|")
    return parser


# --- escaping text for each dialect --------------------------------------------------------------------

_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
ZWSP = "\u200b"


def keeps(char: str, *, strip_bidi: bool) -> bool:
    """False for characters never shown: controls other than newline and tab, lone surrogates, and
    (for text a learner typed) the bidi embedding, override and isolate controls."""
    if char in "\n\t":
        return True
    if unicodedata.category(char) in ("Cc", "Cs"):
        return False
    return not (strip_bidi and char in _BIDI_CONTROLS)


_HTML_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def html_piece(char: str) -> str:
    return _HTML_ESCAPES.get(char, char)


def html_attribute(value: str) -> str:
    return "".join(_HTML_ESCAPES.get(char, char) for char in value).replace('"', "&quot;")


# Characters that could start formatting anywhere in a Discord line, and those only at a line's start.
_DISCORD_ANYWHERE = frozenset("\\*_~`|[#")
_DISCORD_LINE_START = frozenset(">-+=")
# Discord's own pattern for a bare link: it is matched before any escape, so nothing inside is escaped.
BARE_URL = re.compile(r"https?://[^\s<]+[^<.,:;\"')\]\s]")
_MASS_MENTION = re.compile(r"@(?=everyone|here)", re.IGNORECASE)
_ANGLE_MENTION = re.compile(r"<(?=[@#:/&!]|[at]:)")
_ANY_ANGLE = re.compile(r"<(?=[A-Za-z@#:/&!])")
_ORDERED_MARKER = re.compile(r"[0-9]{1,9}(?=[.)])")
_FENCE_RUN = re.compile(r"``(?=`)")
_BACKTICK_RUN = re.compile(r"`(?=`)")


def mention_breaks(text: str, *, every_angle: bool) -> set[int]:
    """Positions after which a zero-width space stops Discord from reading a mention. In text every
    `<` that could open a mention, channel, emoji, timestamp or `<url>` gets one (a backslash would do
    the same, but a bare URL just before it would swallow the backslash)."""
    angles = _ANY_ANGLE if every_angle else _ANGLE_MENTION
    return {match.start() for match in _MASS_MENTION.finditer(text)} | {
        match.start() for match in angles.finditer(text)
    }


def discord_pieces(text: str, at_line_start: bool) -> tuple[list[str], bool]:
    """One escaped piece per character of `text` (backslash escapes, mention breaks) and whether the
    text ends at the start of a line. Bare URLs stay unescaped: Discord links them before unescaping."""
    in_url: set[int] = set()
    for match in BARE_URL.finditer(text):
        in_url.update(range(match.start(), match.end()))
    breaks = mention_breaks(text, every_angle=True)
    pieces: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\n":
            pieces.append(char)
            at_line_start = True
            index += 1
            continue
        if at_line_start and char.isspace():
            pieces.append(char)
            index += 1
            continue
        if at_line_start and (marker := _ORDERED_MARKER.match(text, index)):
            pieces.extend(marker.group(0))
            pieces.append("\\" + text[marker.end()])
            index = marker.end() + 1
            at_line_start = False
            continue
        piece = char
        if index not in in_url and (
            char in _DISCORD_ANYWHERE or (at_line_start and char in _DISCORD_LINE_START)
        ):
            piece = "\\" + char
        if index in breaks:
            piece += ZWSP
        pieces.append(piece)
        at_line_start = False
        index += 1
    return pieces, at_line_start


def discord_code(text: str, *, block: bool) -> str:
    """Code shown verbatim by Discord: no live mention, no ``` run that would end a block and, in a
    span, no backtick run at all (a span opened by ``` would read as a block)."""
    breaks = mention_breaks(text, every_angle=False)
    text = "".join(char + ZWSP if index in breaks else char for index, char in enumerate(text))
    return (_FENCE_RUN if block else _BACKTICK_RUN).sub(lambda run: run.group(0) + ZWSP, text)


def display_width(text: str) -> int:
    """Columns a monospace font gives `text` (wide East Asian characters take two, marks none)."""
    width = 0
    for char in text:
        if unicodedata.combining(char) or char == ZWSP:
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


# --- the emitter: atoms with the current line prefix ---------------------------------------------------


class _Emitter:
    """Collects atoms. Fine atoms (one per character) serve the splitter; coarse ones (one per run of
    text) only build the string, much faster. Both join to exactly the same text."""

    def __init__(self, markup: Markup, *, fine: bool) -> None:
        self.markup = markup
        self.fine = fine
        self.atoms: list[Atom] = []
        self.prefix = ""
        """Written after every line break: indentation inside list items, `> ` inside Discord quotes."""
        self.at_line_start = True
        self.upper = False

    def text(self, text: str) -> None:
        """Text from the source, escaped for the dialect."""
        if self.upper:
            text = text.upper()
        if self.at_line_start:
            text = text.lstrip()
        text = "".join(char for char in text if keeps(char, strip_bidi=False))
        for line_index, line in enumerate(text.split("\n")):
            if line_index:
                self.newline()
            if not line:
                continue
            if self.markup is Markup.DISCORD_MARKDOWN:
                pieces, self.at_line_start = discord_pieces(line, self.at_line_start)
                self._add(line, pieces, escaped_visible=True)
            else:
                html = self.markup is Markup.TELEGRAM_HTML
                self._add(
                    line, [html_piece(char) for char in line] if html else list(line), escaped_visible=False
                )
                self.at_line_start = False

    def _add(self, source: str, pieces: list[str], *, escaped_visible: bool) -> None:
        if self.fine:
            self.atoms.extend(
                char_atom(char, piece, utf16_len(piece if escaped_visible else char))
                for char, piece in zip(source, pieces, strict=True)
            )
        else:
            raw = "".join(pieces)
            self.atoms.append(Atom(AtomKind.TEXT, raw, utf16_len(raw if escaped_visible else source)))

    def literal(self, text: str) -> None:
        """Text that is already in the dialect (list bullets, heading marks); lines keep the prefix."""
        for line_index, line in enumerate(text.split("\n")):
            if line_index:
                self.newline()
            if line:
                self._add(line, list(line), escaped_visible=True)
        self.at_line_start = False

    def unit(self, raw: str) -> None:
        """Dialect text that must never be cut (a link target)."""
        self.atoms.append(Atom(AtomKind.TEXT, raw, utf16_len(raw)))
        self.at_line_start = False

    def code(self, text: str) -> None:
        """Verbatim code inside a code span or block (already made safe for Discord by the caller)."""
        html = self.markup is Markup.TELEGRAM_HTML
        text = "".join(char for char in text if keeps(char, strip_bidi=False))
        for line_index, line in enumerate(text.split("\n")):
            if line_index:
                self.newline()
            if line:
                self._add(
                    line,
                    [html_piece(char) for char in line] if html else list(line),
                    escaped_visible=not html,
                )
        self.at_line_start = False

    def open(self, raw: str, closer: str) -> None:
        html = self.markup is Markup.TELEGRAM_HTML
        last = self.atoms[-1] if self.atoms else None
        if (
            not html
            and raw
            and last is not None
            and last.kind is AtomKind.CLOSE
            and last.raw.endswith(raw[0])
        ):
            if raw == closer == last.raw:
                # Two touching spans of one style are one span: drop the close, keep the first opening.
                self.atoms.pop()
                return
            # `**a***b*` would read as other spans: a zero-width space keeps the two apart.
            self.atoms.append(Atom(AtomKind.TEXT, ZWSP, 1))
        self.at_line_start = False
        self.atoms.append(
            Atom(
                AtomKind.OPEN,
                raw,
                0 if html else utf16_len(raw),
                closer=closer,
                closer_visible=0 if html else utf16_len(closer),
            )
        )

    def close(self, raw: str) -> None:
        self.atoms.append(
            Atom(AtomKind.CLOSE, raw, 0 if self.markup is Markup.TELEGRAM_HTML else utf16_len(raw))
        )

    def newline(self, lead: str = "") -> None:
        self.trim_end()
        raw = lead + "\n" + self.prefix
        self.atoms.append(Atom(AtomKind.NEWLINE, raw, utf16_len(raw)))
        self.at_line_start = True

    def trim_end(self) -> None:
        """Drop the spaces that end the line so far: they show nowhere and would end a span badly."""
        while self.atoms and self.atoms[-1].kind in (AtomKind.SPACE, AtomKind.TEXT):
            last = self.atoms.pop()
            trimmed = "" if last.kind is AtomKind.SPACE else last.raw.rstrip(" \t")
            if trimmed:
                self.atoms.append(
                    last._replace(raw=trimmed, visible=last.visible - (len(last.raw) - len(trimmed)))
                )
                return


# --- the renderer ---------------------------------------------------------------------------------------

_HTML_STYLES = {"strong": "b", "em": "i", "s": "s", "spoiler": "tg-spoiler"}
_DISCORD_STYLES = {"strong": "**", "em": "*", "s": "~~", "spoiler": "||"}
_BULLETS = ("•", "◦", "▪")
HORIZONTAL_RULE = "─" * 12
_LINK_SCHEMES = {
    Markup.TELEGRAM_HTML: ("http://", "https://", "tg://", "mailto:"),
    Markup.DISCORD_MARKDOWN: ("http://", "https://"),
    Markup.PLAIN: ("http://", "https://", "mailto:"),
}
_CODE_LANGUAGE = re.compile(r"[a-z0-9_+\-.#]{1,32}")


def linkable(url: str, markup: Markup) -> bool:
    """True when the dialect can carry `url` as a link (absolute, with a scheme the platform accepts)."""
    return url.lower().startswith(_LINK_SCHEMES[markup]) and not any(char.isspace() for char in url)


def discord_link_target(url: str) -> str:
    return url.replace("<", "%3C").replace(">", "%3E")


class DialectRenderer:
    """Walks a markdown-it syntax tree once and emits atoms in one dialect."""

    def __init__(self, markup: Markup, *, softbreak_as_newline: bool = False, fine: bool = False) -> None:
        self.markup = markup
        self.softbreak_as_newline = softbreak_as_newline
        self.fine = fine
        """One atom per character (for the splitter) instead of one per run of text."""
        self.out = _Emitter(markup, fine=fine)
        self._active_styles: set[str] = set()
        self._quote_depth = 0
        self._list_depth = 0
        self._in_heading = False

    def blocks(self, markdown: str) -> list[list[Atom]]:
        """The atoms of each non-empty top-level block of `markdown`; a heading shares the block that
        follows it, so no message ends with a heading whose section starts in the next one."""
        root = SyntaxTreeNode(markdown_parser().parse(markdown))
        result: list[list[Atom]] = []
        heading: list[Atom] = []
        for node in root.children:
            self.out = _Emitter(self.markup, fine=self.fine)
            self._block(node)
            self.out.trim_end()
            if not joined(self.out.atoms).strip():
                continue
            atoms = self.out.atoms
            if heading:
                separator = Atom(AtomKind.NEWLINE, "\n", 1)
                atoms = [*heading, separator, separator, *atoms]
            heading = atoms if node.type == "heading" else []
            if not heading:
                result.append(atoms)
        if heading:
            result.append(heading)
        return result

    # blocks

    def _children(self, nodes: Sequence[SyntaxTreeNode], *, in_list_item: bool = False) -> None:
        for index, node in enumerate(nodes):
            if index:
                self.out.newline()
                if not (in_list_item and _interrupts_paragraph(node)):
                    self.out.newline()
            self._block(node)

    def _block(self, node: SyntaxTreeNode) -> None:
        kind = node.type
        if kind == "paragraph":
            self.inline_of(node)
        elif kind == "heading":
            self._heading(node)
        elif kind in ("bullet_list", "ordered_list"):
            self._list(node)
        elif kind == "blockquote":
            self._quote(node)
        elif kind in ("fence", "code_block"):
            self._code_block(node.content, node.info)
        elif kind == "hr":
            self.out.literal(HORIZONTAL_RULE if self.markup is not Markup.PLAIN else "-" * 12)
        elif kind == "table":
            self._table(node)
        elif node.children:
            self._children(node.children)
        else:
            self.out.text(node.content)

    def _heading(self, node: SyntaxTreeNode) -> None:
        self._in_heading = True
        self._heading_line(node)
        self._in_heading = False

    def _heading_line(self, node: SyntaxTreeNode) -> None:
        level = int(node.tag[1:])
        if self.markup is Markup.TELEGRAM_HTML:
            self._styled("strong", node.children)
        elif self.markup is Markup.DISCORD_MARKDOWN:
            if level <= 3:
                self.out.literal("#" * level + " ")
                self.out.at_line_start = True
                self.inline_of(node)
            else:
                self._styled("strong", node.children)
        else:
            start = len(self.out.atoms)
            self.out.upper = level >= 3
            self.inline_of(node)
            self.out.upper = False
            if level <= 2:
                width = display_width(joined(self.out.atoms[start:]))
                self.out.newline()
                self.out.literal(("=" if level == 1 else "-") * max(width, 3))

    def _list(self, node: SyntaxTreeNode) -> None:
        ordered = node.type == "ordered_list"
        start = int(node.attrs.get("start", 1)) if ordered else 1
        bullet = "- " if self.markup is Markup.DISCORD_MARKDOWN else _BULLETS[self._list_depth % 3] + " "
        outer_prefix = self.out.prefix
        self._list_depth += 1
        for index, item in enumerate(node.children):
            if index:
                self.out.newline()
            marker = f"{start + index}. " if ordered else bullet
            self.out.literal(marker)
            self.out.at_line_start = True
            self.out.prefix = outer_prefix + " " * len(marker)
            if (
                self.markup is Markup.DISCORD_MARKDOWN
                and item.children
                and self._opens_list(item.children[0])
            ):
                # "- - -" would read as a horizontal rule: a list opening an item starts on the next line.
                self.out.newline()
            self._children(item.children, in_list_item=True)
            self.out.prefix = outer_prefix
        self._list_depth -= 1

    def _opens_list(self, node: SyntaxTreeNode) -> bool:
        """True when rendering `node` starts with a list marker (through quotes that merge away)."""
        if node.type == "blockquote" and self._quote_depth and node.children:
            return self._opens_list(node.children[0])
        return _is_list(node)

    def _quote(self, node: SyntaxTreeNode) -> None:
        # Telegram cannot nest blockquotes and Discord shows only one level: inner quotes merge.
        if self._quote_depth and self.markup is not Markup.PLAIN:
            self._children(node.children)
            return
        self._quote_depth += 1
        if self.markup is Markup.TELEGRAM_HTML:
            self.out.open("<blockquote>", "</blockquote>")
            self._children(node.children)
            self.out.close("</blockquote>")
        else:
            outer_prefix = self.out.prefix
            self.out.open("> ", "")
            self.out.at_line_start = True
            self.out.prefix = outer_prefix + "> "
            self._children(node.children)
            self.out.prefix = outer_prefix
            self.out.close("")
        self._quote_depth -= 1

    def _code_block(self, content: str, info: str) -> None:
        content = content.removesuffix("\n")
        words = info.split()
        language = words[0].lower() if words else ""
        if not _CODE_LANGUAGE.fullmatch(language):
            language = ""
        if self.markup is Markup.TELEGRAM_HTML:
            outer_prefix = self.out.prefix
            self.out.prefix = ""
            self.out.open("<pre>", "</pre>")
            if language:
                self.out.open(f'<code class="language-{html_attribute(language)}">', "</code>")
            self.out.code(content)
            if language:
                self.out.close("</code>")
            self.out.close("</pre>")
            self.out.prefix = outer_prefix
        elif self.markup is Markup.DISCORD_MARKDOWN:
            opener = f"```{language}\n{self.out.prefix}"
            closer = f"\n{self.out.prefix}```"
            self.out.open(opener, closer)
            self.out.code(discord_code(content, block=True))
            self.out.close(closer)
        else:
            outer_prefix = self.out.prefix
            self.out.prefix = outer_prefix + "    "
            self.out.literal("    ")
            self.out.code(content)
            self.out.prefix = outer_prefix

    def _table(self, node: SyntaxTreeNode) -> None:
        rows: list[list[str]] = []
        aligns: list[str] = []
        header_rows = 0
        for section in node.children:
            for row_node in section.children:
                rows.append([inline_plain_text(cell) for cell in row_node.children])
                if section.type == "thead":
                    header_rows += 1
                    aligns = [
                        str(cell.attrs.get("style", "")).removeprefix("text-align:")
                        for cell in row_node.children
                    ]
        columns = max((len(cells) for cells in rows), default=0)
        widths = [
            max((display_width(cells[i]) for cells in rows if i < len(cells)), default=0)
            for i in range(columns)
        ]
        lines = []
        for row_index, cells in enumerate(rows):
            padded = []
            for column in range(columns):
                cell = cells[column] if column < len(cells) else ""
                gap = widths[column] - display_width(cell)
                align = aligns[column] if column < len(aligns) else ""
                if align == "right":
                    padded.append(" " * gap + cell)
                elif align == "center":
                    padded.append(" " * (gap // 2) + cell + " " * (gap - gap // 2))
                else:
                    padded.append(cell + " " * gap)
            lines.append(" | ".join(padded).rstrip())
            if row_index + 1 == header_rows:
                lines.append("-+-".join("-" * width for width in widths))
        self._code_block("\n".join(lines), "")

    # inline

    def inline_of(self, node: SyntaxTreeNode) -> None:
        for child in node.children:
            if child.type == "inline":
                self._inline(child.children)

    def _inline(self, nodes: Sequence[SyntaxTreeNode]) -> None:
        for node in nodes:
            kind = node.type
            if kind == "text":
                self.out.text(node.content)
            elif kind == "softbreak":
                if self.softbreak_as_newline:
                    self.out.newline()
                else:
                    self.out.text(" ")
            elif kind == "hardbreak":
                if self._in_heading:
                    self.out.text(" ")
                elif not self.out.at_line_start:
                    self.out.newline("  " if self.markup is Markup.DISCORD_MARKDOWN else "")
            elif kind in _HTML_STYLES:
                self._styled(kind, node.children)
            elif kind == "code_inline":
                self._code_span(node.content)
            elif kind in ("link", "image"):
                self._link(str(node.attrs.get("href" if kind == "link" else "src", "")), node)
            elif node.children:
                self._inline(node.children)
            else:
                self.out.text(node.content)

    def _styled(self, style: str, children: Sequence[SyntaxTreeNode]) -> None:
        marks = self._marks(style)
        if marks is None or style in self._active_styles or not _has_content(children):
            self._inline_or_blocks(children)
            return
        opener, closer = marks
        self._active_styles.add(style)
        self.out.open(opener, closer)
        self._inline_or_blocks(children)
        self.out.close(closer)
        self._active_styles.discard(style)

    def _inline_or_blocks(self, children: Sequence[SyntaxTreeNode]) -> None:
        if children and children[0].type == "inline":
            for child in children:
                self._inline(child.children)
        else:
            self._inline(children)

    def _marks(self, style: str) -> tuple[str, str] | None:
        if self.markup is Markup.TELEGRAM_HTML:
            tag = _HTML_STYLES[style]
            return f"<{tag}>", f"</{tag}>"
        if self.markup is Markup.DISCORD_MARKDOWN:
            mark = _DISCORD_STYLES[style]
            return mark, mark
        return None

    def _code_span(self, content: str) -> None:
        if self.markup is Markup.TELEGRAM_HTML:
            self.out.open("<code>", "</code>")
            self.out.code(content)
            self.out.close("</code>")
        elif self.markup is Markup.DISCORD_MARKDOWN:
            content = discord_code(content, block=False)
            longest = max((len(run) for run in re.findall("`+", content)), default=0)
            fence = "`" * (longest + 1)
            padded = content.startswith("`") or content.endswith("`")
            # CommonMark strips one space from each end of `  x  `: keep such spaces by adding one more.
            padded = padded or (content[:1] == content[-1:] == " " and bool(content.strip()))
            opener, closer = (fence + " ", " " + fence) if padded else (fence, fence)
            self.out.open(opener, closer)
            self.out.code(content)
            self.out.close(closer)
        else:
            self.out.literal("`")
            self.out.code(content)
            self.out.literal("`")

    def _link(self, url: str, node: SyntaxTreeNode) -> None:
        label_is_url = not node.children
        if not linkable(url, self.markup):
            if label_is_url:
                self.out.text(url)
            self._inline(node.children)
            return
        if self.markup is Markup.TELEGRAM_HTML:
            self.out.open(f'<a href="{html_attribute(url)}">', "</a>")
            self._link_label(url, node, label_is_url)
            self.out.close("</a>")
        elif self.markup is Markup.DISCORD_MARKDOWN:
            if label_is_url or node.markup == "autolink":
                # `<url>`: Discord links it without reading past its end (a bare URL runs on) or embedding it.
                self.out.unit(f"<{url}>")
                return
            closer = f"](<{discord_link_target(url)}>)"
            if self.out.atoms and self.out.atoms[-1].raw.endswith("!"):
                self.out.unit(ZWSP)  # `![` would open an image in CommonMark
            self.out.open("[", closer)
            self._link_label(url, node, label_is_url)
            self.out.close(closer)
        else:
            start = len(self.out.atoms)
            self._link_label(url, node, label_is_url)
            label = joined(self.out.atoms[start:])
            if url not in (label, "mailto:" + label):
                self.out.text(f" ({url})")

    def _link_label(self, url: str, node: SyntaxTreeNode, label_is_url: bool) -> None:
        if label_is_url:
            self.out.text(url)
        else:
            self._inline(node.children)


def _has_content(nodes: Sequence[SyntaxTreeNode]) -> bool:
    """True when the inline nodes show something (an empty span would print its marks literally)."""
    for node in nodes:
        if node.type in ("code_inline", "link", "image") or (node.type == "text" and node.content.strip()):
            return True
        if _has_content(node.children):
            return True
    return False


def _is_list(node: SyntaxTreeNode) -> bool:
    return node.type in ("bullet_list", "ordered_list")


def _interrupts_paragraph(node: SyntaxTreeNode) -> bool:
    """A nested list that CommonMark lets follow a paragraph line directly (kept tight under an item)."""
    if node.type == "bullet_list":
        return True
    return node.type == "ordered_list" and int(node.attrs.get("start", 1)) == 1


def inline_plain_text(node: SyntaxTreeNode) -> str:
    """The plain text of an inline container (a table cell), on one line."""
    renderer = DialectRenderer(Markup.PLAIN)
    renderer.inline_of(node)
    return joined(renderer.out.atoms).replace("\n", " ")
