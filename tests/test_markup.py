"""Markdown into Telegram HTML, Discord Markdown and plain text; escaping; splitting under limits."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.markdown_dialects import DialectRenderer
from bot.markup import (
    TELEGRAM_MAX_ENTITIES,
    bold,
    escape_user_text,
    fits,
    italic,
    link,
    render_markdown,
    split_message,
    text_length,
)
from bot.markup_atoms import joined, utf16_len
from bot.ports import Markup
from tests.markup_checks import (
    discord_parser,
    flat_tokens,
    markdown_text,
    telegram_html_problems,
    telegram_visible_text,
)

HTML, DISCORD, PLAIN = Markup.TELEGRAM_HTML, Markup.DISCORD_MARKDOWN, Markup.PLAIN
ZWSP = "\u200b"


# --- each construct in each dialect ----------------------------------------------------------------

CONSTRUCTS = [
    # (markdown, telegram html, discord markdown, plain)
    ("**bold** and *it*", "<b>bold</b> and <i>it</i>", "**bold** and *it*", "bold and it"),
    (
        "~~gone~~ ||secret||",
        "<s>gone</s> <tg-spoiler>secret</tg-spoiler>",
        "~~gone~~ ||secret||",
        "gone secret",
    ),
    ("use `a < b`", "use <code>a &lt; b</code>", "use `a < b`", "use `a < b`"),
    ("``a`b``", "<code>a`b</code>", "``a`b``", "`a`b`"),
    ("x ````a```b```` y", "x <code>a```b</code> y", "x ``a`\u200b`\u200b`b`` y", "x `a```b` y"),
    (
        "[site](https://example.org/a_b?x=1&y=2)",
        '<a href="https://example.org/a_b?x=1&amp;y=2">site</a>',
        "[site](<https://example.org/a_b?x=1&y=2>)",
        "site (https://example.org/a_b?x=1&y=2)",
    ),
    ("<https://x.org>", '<a href="https://x.org">https://x.org</a>', "<https://x.org>", "https://x.org"),
    (
        "![a chart](https://x.org/c.png)",
        '<a href="https://x.org/c.png">a chart</a>',
        "[a chart](<https://x.org/c.png>)",
        "a chart (https://x.org/c.png)",
    ),
    ("[notes](../notes.md)", "notes", "notes", "notes"),
    ("# Title", "<b>Title</b>", "# Title", "Title\n====="),
    ("## Part *two*", "<b>Part <i>two</i></b>", "## Part *two*", "Part two\n--------"),
    ("### Small", "<b>Small</b>", "### Small", "SMALL"),
    ("#### Deeper **x**", "<b>Deeper x</b>", "**Deeper x**", "DEEPER X"),
    ("- one\n- two", "• one\n• two", "- one\n- two", "• one\n• two"),
    ("3. three\n4. four", "3. three\n4. four", "3. three\n4. four", "3. three\n4. four"),
    ("- a\n  - b\n    - c", "• a\n  ◦ b\n    ▪ c", "- a\n  - b\n    - c", "• a\n  ◦ b\n    ▪ c"),
    ("> quoted\n> text", "<blockquote>quoted text</blockquote>", "> quoted text", "> quoted text"),
    (
        "> one\n>\n> > two",
        "<blockquote>one\n\ntwo</blockquote>",
        "> one\n> \n> two",
        "> one\n> \n> > two",
    ),
    (
        "```python\nif a < b:\n    pass\n```",
        '<pre><code class="language-python">if a &lt; b:\n    pass</code></pre>',
        "```python\nif a < b:\n    pass\n```",
        "    if a < b:\n        pass",
    ),
    ("    indented", "<pre>indented</pre>", "```\nindented\n```", "    indented"),
    ("a  \nb", "a\nb", "a  \nb", "a\nb"),
    ("soft\nwrap", "soft wrap", "soft wrap", "soft wrap"),
    ("---", "─" * 12, "─" * 12, "-" * 12),
    (
        "| a | bb |\n|---|---:|\n| ccc | d |",
        "<pre>a   | bb\n----+---\nccc |  d</pre>",
        "```\na   | bb\n----+---\nccc |  d\n```",
        "    a   | bb\n    ----+---\n    ccc |  d",
    ),
    (
        "Tom & <b>Jerry</b>",
        "Tom &amp; &lt;b&gt;Jerry&lt;/b&gt;",
        "Tom & <" + ZWSP + "b>Jerry<" + ZWSP + "/b>",
        "Tom & <b>Jerry</b>",
    ),
]


@pytest.mark.parametrize(("markdown", "expected"), [(row[0], row[1]) for row in CONSTRUCTS])
def test_telegram_html_construct(markdown: str, expected: str) -> None:
    blocks = render_markdown(markdown, HTML)
    assert "\n\n".join(blocks) == expected
    assert all(telegram_html_problems(block) == [] for block in blocks)


@pytest.mark.parametrize(("markdown", "expected"), [(row[0], row[2]) for row in CONSTRUCTS])
def test_discord_markdown_construct(markdown: str, expected: str) -> None:
    assert "\n\n".join(render_markdown(markdown, DISCORD)) == expected


@pytest.mark.parametrize(("markdown", "expected"), [(row[0], row[3]) for row in CONSTRUCTS])
def test_plain_construct(markdown: str, expected: str) -> None:
    assert "\n\n".join(render_markdown(markdown, PLAIN)) == expected


def test_blocks_are_paragraph_level_and_headings_keep_with_the_next() -> None:
    markdown = "# T\n\nOne.\n\n- a\n- b\n\n```\ncode\n```\n\nTwo."
    assert render_markdown(markdown, HTML) == ["<b>T</b>\n\nOne.", "• a\n• b", "<pre>code</pre>", "Two."]
    assert render_markdown("", HTML) == []


def test_discord_neutralises_mentions_and_line_start_syntax() -> None:
    text = "\n\n".join(render_markdown("Ping @everyone and @here and <@123> <#9> <t:1:R>", DISCORD))
    assert "@everyone" not in text and "@here" not in text
    assert not re.search(r"<[@#t]", text)
    assert "<" + ZWSP + "@123>" in text
    # Escaped source characters that would start a list, quote or heading at a line's start stay literal.
    rendered = render_markdown("1986\\. A good year  \n\\- not a list  \n\\> not a quote", DISCORD)
    assert rendered == ["1986\\. A good year  \n\\- not a list  \n\\> not a quote"]


def test_discord_code_block_cannot_be_closed_from_inside() -> None:
    (block,) = render_markdown("````\nprint('```')\n````", DISCORD)
    assert block.count("```") == 2
    assert block.startswith("```\n") and block.endswith("\n```")


def test_telegram_never_passes_source_html_through() -> None:
    (block,) = render_markdown('<script>alert("x")</script> <a href="javascript:x">y</a>', HTML)
    assert "<script" not in block and "<a " not in block
    assert telegram_html_problems(block) == []
    (link_block,) = render_markdown("[x](javascript:alert(1))", HTML)
    assert "href" not in link_block


# --- helpers for the core's own phrases --------------------------------------------------------------


def test_bold_italic_link_escape_their_inputs() -> None:
    assert bold("a<b", HTML) == "<b>a&lt;b</b>"
    assert italic("*x*", DISCORD) == "*\\*x\\**"
    assert bold("x", PLAIN) == "x"
    assert link("R&D", "https://x.org/?a=1&b=2", HTML) == '<a href="https://x.org/?a=1&amp;b=2">R&amp;D</a>'
    assert link("docs", "https://x.org/a b", DISCORD) == "docs (https://x.org/a b)"
    assert link("docs", "https://x.org/", DISCORD) == "[docs](<https://x.org/>)"
    assert link("docs", "https://x.org/", PLAIN) == "docs (https://x.org/)"
    assert link("docs", "ftp://x.org/", HTML) == "docs (ftp://x.org/)"


# --- escape_user_text ----------------------------------------------------------------------------------

NASTY = st.sampled_from(
    [
        "<b>",
        "</b>",
        "<i>x</i>",
        "&amp;",
        "&",
        "*bold*",
        "**",
        "_",
        "__u__",
        "~~",
        "||",
        "`",
        "```",
        "[a](https://x.org)",
        "<https://x.org>",
        "![i](https://x.org/i.png)",
        "@everyone",
        "@here",
        "@Everyone",
        "<@123>",
        "<@&5>",
        "<#7>",
        "<:e:1>",
        "<t:1:R>",
        "</cmd:1>",
        "# ",
        "## ",
        "-# ",
        "> ",
        ">>> ",
        "- ",
        "+ ",
        "* ",
        "1. ",
        "2) ",
        "---",
        "===",
        "\\",
        "\\*",
        "\n",
        "\n\n",
        "  \n",
        "\t",
        " ",
        "word",
        "\u202e",
        "\u2066",
        "\u200f",
        "\u061c",
        "\x00",
        "\x1b[31m",
        "\r",
        "עברית",
        "😀",
        "https://x.org/a_b*c",
        "[x]: https://x.org",
        "| a | b |",
        "&#60;",
    ]
)
USER_TEXT = st.lists(st.one_of(NASTY, st.text(max_size=4)), max_size=25).map("".join)
FORMATTING = {
    "strong_open",
    "em_open",
    "s_open",
    "spoiler_open",
    "code_inline",
    "link_open",
    "image",
    "heading_open",
    "bullet_list_open",
    "ordered_list_open",
    "blockquote_open",
    "fence",
    "code_block",
    "hr",
    "table_open",
    "html_inline",
    "html_block",
}


def _sanitised(text: str) -> str:
    dropped = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    return "".join(
        c for c in text if c in "\n\t" or (ord(c) >= 32 and not 127 <= ord(c) < 160 and c not in dropped)
    )


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text.replace(ZWSP, ""))


@settings(max_examples=300, deadline=None)
@given(USER_TEXT)
def test_user_text_is_never_telegram_formatting(text: str) -> None:
    escaped = escape_user_text(text, HTML)
    assert telegram_html_problems(escaped) == []
    assert "<" not in escaped and ">" not in escaped
    assert telegram_visible_text(escaped) == _sanitised(text)


@settings(max_examples=300, deadline=None)
@given(USER_TEXT)
def test_user_text_is_never_discord_formatting(text: str) -> None:
    escaped = escape_user_text(text, DISCORD)
    tokens = flat_tokens(discord_parser().parse(escaped))
    assert FORMATTING.isdisjoint(token.type for token in tokens), escaped
    assert _squeezed(markdown_text(escaped, discord_parser())) == _squeezed(_sanitised(text))
    lowered = escaped.lower()
    assert "@everyone" not in lowered and "@here" not in lowered
    assert not re.search(r"<[@#:/&!]|<[at]:", escaped)
    for line in escaped.split("\n"):
        assert not re.match(r"\s*(-#|>|#)", line), line


@given(USER_TEXT)
def test_user_text_loses_controls_and_bidi_overrides(text: str) -> None:
    for markup in Markup:
        escaped = escape_user_text(text, markup)
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]", escaped)


# --- splitting -----------------------------------------------------------------------------------------

MARKDOWN_PIECES = st.sampled_from(
    [
        "word",
        "longerword",
        " ",
        " ",
        " ",
        "\n",
        "\n\n",
        "**",
        "*",
        "~~",
        "||",
        "`",
        "`co de`",
        "[link text](https://x.org/p)",
        "<https://x.org>",
        "- ",
        "1. ",
        "> ",
        "# ",
        "\n```py\nx = 1\ny = 2\n```\n",
        "a < b & c > d",
        "<b>",
        "😀",
        "e\u0301",
        "👩\u200d💻",
        "@everyone",
        "  \n",
        "| a | b |\n|---|---|\n| 1 | 2 |\n",
        "x" * 90,
    ]
)
MARKDOWN = st.lists(MARKDOWN_PIECES, min_size=1, max_size=80).map("".join)


def _whitespace_free(text: str) -> str:
    return re.sub(r"\s+", "", text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MARKDOWN, st.integers(min_value=24, max_value=400))
def test_telegram_split_keeps_every_message_valid_and_the_text_whole(markdown: str, limit: int) -> None:
    blocks = render_markdown(markdown, HTML)
    messages = split_message(blocks, limit, HTML)
    for message in messages:
        assert text_length(message, HTML) <= limit
        assert utf16_len(message) <= 8192
        assert telegram_html_problems(message) == [], message
    visible = "".join(telegram_visible_text(message) for message in messages)
    assert _whitespace_free(visible) == _whitespace_free(telegram_visible_text("\n\n".join(blocks)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MARKDOWN, st.integers(min_value=80, max_value=400))
def test_discord_split_keeps_every_message_valid_and_the_text_whole(markdown: str, limit: int) -> None:
    blocks = render_markdown(markdown, DISCORD)
    messages = split_message(blocks, limit, DISCORD)
    for message in messages:
        assert utf16_len(message) <= limit
        assert message.count("```") % 2 == 0, message
    seen = "".join(markdown_text(message) for message in messages)
    assert _whitespace_free(seen) == _whitespace_free(markdown_text("\n\n".join(blocks)))


@settings(max_examples=100, deadline=None)
@given(MARKDOWN, st.integers(min_value=10, max_value=300))
def test_plain_split_keeps_the_text_whole(markdown: str, limit: int) -> None:
    blocks = render_markdown(markdown, PLAIN)
    messages = split_message(blocks, limit, PLAIN)
    assert all(utf16_len(message) <= limit for message in messages)
    assert _whitespace_free("".join(messages)) == _whitespace_free("".join(blocks))


@settings(max_examples=150, deadline=None)
@given(MARKDOWN)
def test_discord_rendering_reads_back_as_itself(markdown: str) -> None:
    """Splitting relies on re-reading a Discord block: rendering its own output must change nothing.

    Except where two spans touch (`**a:**` + `*b*`): a zero-width space keeps them apart for Discord,
    while CommonMark's flanking rules read them differently; such a block is split as plain text.
    """
    for block in render_markdown(markdown, DISCORD):
        assume(not re.search("[*~|`]" + ZWSP + "[*~|`]", block))
        assert render_markdown(block, DISCORD) == [block]


@settings(max_examples=100, deadline=None)
@given(MARKDOWN)
def test_character_atoms_and_run_atoms_write_the_same_text(markdown: str) -> None:
    """The splitter's per-character atoms must join to exactly what `render_markdown` wrote."""
    for markup in Markup:
        fine = [joined(atoms) for atoms in DialectRenderer(markup, fine=True).blocks(markdown)]
        assert fine == render_markdown(markdown, markup)


def test_split_prefers_block_then_line_then_word_boundaries() -> None:
    blocks = ["first paragraph", "second paragraph"]
    assert split_message(blocks, 100, PLAIN) == ["first paragraph\n\nsecond paragraph"]
    assert split_message(blocks, 20, PLAIN) == blocks
    assert split_message(["one two\nthree four"], 15, PLAIN) == ["one two", "three four"]
    assert split_message(["one two three four"], 10, PLAIN) == ["one two", "three four"]
    assert split_message(["abcdefghij"], 4, PLAIN) == ["abcd", "efgh", "ij"]


def test_split_never_cuts_an_entity_a_surrogate_pair_or_a_joined_emoji() -> None:
    block = "&lt;" * 10
    assert split_message([block], 3, HTML) == ["&lt;&lt;&lt;", "&lt;&lt;&lt;", "&lt;&lt;&lt;", "&lt;"]
    assert split_message(["😀😀😀"], 4, PLAIN) == ["😀😀", "😀"]
    family = "👩\u200d💻"
    assert split_message([family * 3], 5, PLAIN) == [family, family, family]


def test_split_closes_and_reopens_formatting() -> None:
    block = "<b>bold <i>and italic words</i> here</b>"
    assert split_message([block], 15, HTML) == [
        "<b>bold <i>and italic</i></b>",
        "<b><i>words</i> here</b>",
    ]
    code = '<pre><code class="language-py">a = 1\nb = 2\nc = 3</code></pre>'
    assert split_message([code], 11, HTML) == [
        '<pre><code class="language-py">a = 1\nb = 2</code></pre>',
        '<pre><code class="language-py">c = 3</code></pre>',
    ]
    fence = "```py\na = 1\nb = 2\nc = 3\n```"
    assert split_message([fence], 22, DISCORD) == ["```py\na = 1\nb = 2\n```", "```py\nc = 3\n```"]
    assert split_message(["**bold words here**"], 12, DISCORD) == ["**bold**", "**words**", "**here**"]
    linked = "[several words of link](<https://x.org>)"
    assert split_message([linked], 35, DISCORD) == [
        "[several words of](<https://x.org>)",
        "[link](<https://x.org>)",
    ]


def test_split_counts_telegram_length_in_visible_utf16_units() -> None:
    block = "<b>" + "😀" * 10 + "</b>"
    assert text_length(block, HTML) == 20
    assert split_message([block], 20, HTML) == [block]
    assert split_message([block], 19, HTML) == ["<b>" + "😀" * 9 + "</b>", "<b>😀</b>"]
    assert text_length("a &amp; b", HTML) == 5


def test_split_caps_telegram_entities_per_message() -> None:
    block = " ".join("<b>x</b>" for _ in range(250))
    messages = split_message([block], 4096, HTML)
    assert len(messages) == 3
    assert all(message.count("<b>") <= TELEGRAM_MAX_ENTITIES for message in messages)
    assert not fits(block, 4096, HTML)


def test_a_cut_never_starts_a_message_with_markdown_block_syntax() -> None:
    messages = split_message(["alpha beta - gamma 2. delta"], 12, DISCORD)
    assert all(not re.match(r"[-+>=]|\d+[.)]", message) for message in messages)
    assert "".join(messages).replace(" ", "") == "alphabeta-gamma2.delta"


@pytest.mark.parametrize(("markup", "limit"), [(HTML, 4096), (DISCORD, 2000), (PLAIN, 4096)])
def test_a_ten_thousand_character_lesson_splits_under_the_limit(markup: Markup, limit: int) -> None:
    paragraph = "An *asynchronous* course lets each learner keep their own **pace**; this is sentence {}. "
    sections = []
    for section in range(13):
        sections.append(f"## Section {section}\n\n" + "".join(paragraph.format(i) for i in range(7)))
        sections.append("```python\n" + "\n".join(f"await step_{i}()" for i in range(12)) + "\n```")
    markdown = "\n\n".join(sections)
    assert len(markdown) >= 10_000
    blocks = render_markdown(markdown, markup)
    messages = split_message(blocks, limit, markup)
    assert len(messages) >= 10_000 // limit + 1
    for message in messages:
        assert text_length(message, markup) <= limit
        if markup is HTML:
            assert telegram_html_problems(message) == []
        if markup is DISCORD:
            assert message.count("```") % 2 == 0
    # Whole blocks are never cut when they fit: each message starts at a block's start.
    assert all(any(message.startswith(block) for block in blocks) for message in messages)
