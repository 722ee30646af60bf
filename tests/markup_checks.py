"""Readers of rendered text for the tests: what a platform would see in a message."""

from __future__ import annotations

import html
from html.parser import HTMLParser

from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token

from bot.markdown_dialects import BARE_URL, markdown_parser, spoiler_rule

TELEGRAM_TAGS = {"b", "i", "u", "s", "code", "pre", "a", "blockquote", "tg-spoiler"}


class _TagChecker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TELEGRAM_TAGS:
            self.problems.append(f"tag <{tag}> is not in Telegram's subset")
        for name, value in attrs:
            allowed = (tag == "a" and name == "href") or (
                tag == "code" and name == "class" and (value or "").startswith("language-")
            )
            if not allowed:
                self.problems.append(f"attribute {name} on <{tag}>")
        if tag == "blockquote" and "blockquote" in self.stack:
            self.problems.append("nested blockquote")
        if (
            self.stack
            and self.stack[-1] in ("code", "pre")
            and not (tag == "code" and self.stack[-1] == "pre")
        ):
            self.problems.append(f"<{tag}> inside <{self.stack[-1]}>")
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> does not close {self.stack[-1:] or 'anything'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if "<" in data or ">" in data:
            self.problems.append(f"unescaped angle bracket in {data!r}")
        self.text.append(data)

    def handle_entityref(self, name: str) -> None:
        if name not in ("lt", "gt", "amp", "quot"):
            self.problems.append(f"entity &{name}; is not one Telegram knows")
        self.text.append(html.unescape(f"&{name};"))

    def handle_charref(self, name: str) -> None:
        self.text.append(html.unescape(f"&#{name};"))


def telegram_html_problems(text: str) -> list[str]:
    """Why Telegram would reject `text` as HTML (unknown or unbalanced tags, stray brackets); [] if fine."""
    if "&" in text.replace("&lt;", "").replace("&gt;", "").replace("&amp;", "").replace("&quot;", ""):
        return [f"bare ampersand in {text!r}"]
    checker = _TagChecker()
    checker.feed(text)
    checker.close()
    if checker.stack:
        checker.problems.append(f"unclosed {checker.stack}")
    return checker.problems


def telegram_visible_text(text: str) -> str:
    checker = _TagChecker()
    checker.feed(text)
    checker.close()
    return "".join(checker.text)


def _bare_url(state: StateInline, silent: bool) -> bool:
    """Discord links a bare URL before reading anything inside it as formatting or an escape."""
    match = BARE_URL.search(state.src, state.pos, state.posMax)
    if match is None:
        return False
    terminator = state.md.inline.terminator_re.search(state.src, state.pos, match.start())
    if terminator is not None:
        return False
    if not silent:
        state.pending += state.src[state.pos : match.end()]
    state.pos = match.end()
    return True


def discord_parser() -> MarkdownIt:
    """Discord's reading of a message, approximated by CommonMark with its bare-URL rule first and
    without what Discord lacks (indented code blocks, HTML entities)."""
    parser = MarkdownIt("commonmark", {"html": False})
    parser.enable(["table", "strikethrough"])
    parser.disable(["code", "entity"])
    parser.inline.ruler.before("text", "bare_url", _bare_url)
    parser.inline.ruler.before("emphasis", "spoiler", spoiler_rule)
    if hasattr(parser.inline, "add_terminator_char"):
        parser.inline.add_terminator_char("|")
    return parser


def flat_tokens(tokens: list[Token]) -> list[Token]:
    result: list[Token] = []
    for token in tokens:
        result.append(token)
        if token.children:
            result.extend(flat_tokens(token.children))
    return result


def markdown_text(text: str, parser: MarkdownIt | None = None) -> str:
    """The characters a reader of the Markdown `text` sees, formatting and escapes removed."""
    tokens = flat_tokens((parser or markdown_parser()).parse(text))
    return "".join(
        token.content for token in tokens if token.type in ("text", "code_inline", "fence", "code_block")
    )
