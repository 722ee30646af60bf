"""A lesson as the ordered parts one platform can send: text, media, quiz and the lesson's buttons.

Adapters stay thin: everything here is already in the platform's dialect and under its limits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from bot.actions import encode
from bot.content import Lesson, Media, MediaKind, Quiz
from bot.i18n import N_, _
from bot.markdown_dialects import keeps
from bot.markup import (
    BLOCK_SEPARATOR,
    bold,
    escape_user_text,
    fits,
    italic,
    render_markdown,
    split_message,
)
from bot.markup_atoms import utf16_len
from bot.ports import (
    AlbumPart,
    AnyButton,
    Button,
    Capabilities,
    LinkButton,
    Markup,
    MediaPart,
    OutboundPart,
    QuizPart,
    Reply,
    TextPart,
)

DONE_LABEL = N_("✅ Done")
NEXT_LABEL = N_("➡️ Next lesson")
DISCUSS_LABEL = N_("💬 Discuss")
READY_PROMPT = N_("When you are ready:")
ALBUM_SIZE = (2, 10)
NATIVE_QUIZ_OPTIONS = (2, 10)
EMBED_TITLE_LIMIT = 256
OPTION_LABEL_LIMIT = 40
"""Longer options are listed in the question and answered by number (button labels get truncated)."""


def quiz_action(delivery_id: int, option_index: int) -> str:
    """The action that answers option `option_index` of the quiz sent with delivery `delivery_id`."""
    return encode("quiz", delivery_id, option_index)


def quiz_action_prefix(delivery_id: int) -> str:
    """`quiz_action(delivery_id, i) == quiz_action_prefix(delivery_id) + str(i)` for every option i."""
    return encode("quiz", delivery_id) + ":"


def lesson_heading(lesson: Lesson, lesson_count: int, language: str | None = None) -> str:
    return _(
        language or lesson.language or None,
        "Lesson {number} of {count} · {title}",
        number=lesson.number,
        count=lesson_count,
        title=lesson.title,
    )


def render_lesson(
    lesson: Lesson,
    capabilities: Capabilities,
    *,
    delivery_id: int,
    enrollment_id: int,
    lesson_count: int,
    next_allowed: bool,
    discuss_url: str | None,
    course_title: str = "",
    language: str | None = None,
    body: Sequence[OutboundPart] | None = None,
) -> list[OutboundPart]:
    """The ordered parts of one lesson: heading and body, media, quiz, then the lesson's buttons.

    The buttons ride on the last text or media part; after a quiz or an album, which cannot carry
    them, a short text part carries them. The heading and labels are in `language` (by default the
    lesson's own). Raises ValueError if an action exceeds the button data limit.
    `body` is `lesson_body` of the same lesson, capabilities, lesson count, title and language, when kept.
    """
    language = language or lesson.language or None
    if body is None:
        body = lesson_body(
            lesson, capabilities, lesson_count=lesson_count, course_title=course_title, language=language
        )
    parts = list(body)
    if lesson.quiz is not None:
        parts.append(render_quiz(lesson.quiz, capabilities, delivery_id=delivery_id))
    buttons = lesson_buttons(
        capabilities,
        delivery_id=delivery_id,
        enrollment_id=enrollment_id,
        next_allowed=next_allowed,
        discuss_url=discuss_url,
        language=language,
    )
    last = parts[-1]
    if isinstance(last, TextPart | MediaPart):
        parts[-1] = dataclasses.replace(last, buttons=buttons)
    else:
        ready = _(language, READY_PROMPT)
        parts.append(TextPart(escape_user_text(ready, capabilities.markup), buttons=buttons))
    return parts


def lesson_body(
    lesson: Lesson,
    capabilities: Capabilities,
    *,
    lesson_count: int,
    course_title: str = "",
    language: str | None = None,
) -> tuple[OutboundPart, ...]:
    """The parts of a lesson that are the same for every learner: heading and body, then media."""
    return (
        *_text_parts(lesson, capabilities, lesson_count, course_title, language or lesson.language or None),
        *_media_parts(lesson.media, capabilities),
    )


def lesson_buttons(
    capabilities: Capabilities,
    *,
    delivery_id: int,
    enrollment_id: int,
    next_allowed: bool,
    discuss_url: str | None,
    language: str | None = None,
) -> tuple[Button | LinkButton, ...]:
    """Done, Next lesson (only when the learner may pull it now) and Discuss (when there is a thread)."""
    buttons: list[Button | LinkButton] = [
        Button(_(language, DONE_LABEL), _fitting(encode("done", delivery_id), capabilities))
    ]
    if next_allowed:
        buttons.append(Button(_(language, NEXT_LABEL), _fitting(encode("next", enrollment_id), capabilities)))
    if discuss_url:
        buttons.append(LinkButton(_(language, DISCUSS_LABEL), discuss_url))
    return tuple(buttons)


def _fitting(action: str, capabilities: Capabilities) -> str:
    if len(action.encode()) > capabilities.max_button_data:
        raise ValueError(
            f"action {action!r} exceeds {capabilities.platform}'s {capabilities.max_button_data}"
        )
    return action


# --- text ---------------------------------------------------------------------------------------------


def _text_parts(
    lesson: Lesson, capabilities: Capabilities, lesson_count: int, course_title: str, language: str | None
) -> list[TextPart]:
    markup = capabilities.markup
    heading = lesson_heading(lesson, lesson_count, language)
    blocks: list[str] = []
    if course_title:
        blocks.append(italic(course_title, markup))
    title = ""
    if markup is Markup.DISCORD_MARKDOWN:
        title = _truncate(heading, EMBED_TITLE_LIMIT)
    else:
        blocks.append(_heading_block(heading, markup))
    blocks.extend(render_markdown(lesson.body_markdown, markup))
    if lesson.discussion_prompt:
        prompt = render_markdown(lesson.discussion_prompt, markup)
        if prompt:
            blocks.append("💬 " + prompt[0])
            blocks.extend(prompt[1:])
    messages = split_message(blocks, capabilities.max_text_length, markup) or [""]
    return [TextPart(text, title=title if index == 0 else "") for index, text in enumerate(messages)]


def _heading_block(heading: str, markup: Markup) -> str:
    if markup is Markup.PLAIN:
        return heading + "\n" + "=" * len(heading)
    return bold(heading, markup)


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# --- media --------------------------------------------------------------------------------------------


def _media_parts(media: Sequence[Media], capabilities: Capabilities) -> list[OutboundPart]:
    parts: list[OutboundPart] = []
    run: list[MediaPart] = []

    def flush() -> None:
        parts.extend(_albums(run, capabilities))
        run.clear()

    for item in media:
        if item.size_bytes > capabilities.max_upload_bytes:
            flush()
            notice = f"📎 {item.path.name} is too large to send here."
            parts.append(TextPart(escape_user_text(notice, capabilities.markup)))
            continue
        kind = item.kind
        if kind is MediaKind.IMAGE and item.size_bytes > capabilities.max_photo_bytes:
            kind = MediaKind.DOCUMENT
        caption = BLOCK_SEPARATOR.join(render_markdown(item.caption, capabilities.markup))
        moved: list[TextPart] = []
        if caption and not fits(caption, capabilities.max_caption_length, capabilities.markup):
            moved = render_text_reply(caption, capabilities)
            caption = ""
        part = MediaPart(kind=kind, path=item.path, caption=caption, file_key=item.sha256)
        groupable = capabilities.albums and kind in (MediaKind.IMAGE, MediaKind.VIDEO)
        if moved or not groupable:
            flush()
        parts.extend(moved)
        if groupable:
            run.append(part)
        else:
            parts.append(part)
    flush()
    return parts


def _albums(run: Sequence[MediaPart], capabilities: Capabilities) -> list[OutboundPart]:
    smallest, largest = ALBUM_SIZE
    parts: list[OutboundPart] = []
    for start in range(0, len(run), largest):
        chunk = tuple(run[start : start + largest])
        if capabilities.albums and len(chunk) >= smallest:
            parts.append(AlbumPart(chunk))
        else:
            parts.extend(chunk)
    return parts


# --- quiz ---------------------------------------------------------------------------------------------


def render_quiz(quiz: Quiz, capabilities: Capabilities, *, delivery_id: int) -> QuizPart:
    """A native quiz poll where the platform has one and the quiz fits its limits, else question + buttons.

    Native: question and explanation are plain text. Fallback: the question is in the platform's
    dialect (with the options listed and numbered when one is too long for a button) and the
    explanation too; options are always plain button labels.
    """
    prefix = quiz_action_prefix(delivery_id)
    _fitting(quiz_action(delivery_id, max(len(quiz.options) - 1, 0)), capabilities)
    options = tuple(_plain_line(option) for option in quiz.options)
    question_plain = BLOCK_SEPARATOR.join(render_markdown(quiz.question, Markup.PLAIN))
    explanation_plain = BLOCK_SEPARATOR.join(render_markdown(quiz.explanation, Markup.PLAIN))
    if capabilities.native_quiz and _fits_native(question_plain, options, explanation_plain, capabilities):
        return QuizPart(question_plain, options, quiz.correct_index, explanation_plain, prefix, native=True)
    markup = capabilities.markup
    blocks = [
        "❓ " + block if index == 0 else block
        for index, block in enumerate(render_markdown(quiz.question, markup))
    ]
    labels = options
    if any(len(option) > OPTION_LABEL_LIMIT for option in options):
        blocks.append(
            "\n".join(
                f"{index + 1}. {escape_user_text(option, markup)}" for index, option in enumerate(options)
            )
        )
        labels = tuple(str(index + 1) for index in range(len(options)))
    explanation = BLOCK_SEPARATOR.join(render_markdown(quiz.explanation, markup))
    return QuizPart(
        BLOCK_SEPARATOR.join(blocks), labels, quiz.correct_index, explanation, prefix, native=False
    )


def _plain_line(text: str) -> str:
    return " ".join("".join(char for char in text if keeps(char, strip_bidi=True)).split())


def _fits_native(
    question: str, options: tuple[str, ...], explanation: str, capabilities: Capabilities
) -> bool:
    fewest, most = NATIVE_QUIZ_OPTIONS
    return (
        0 < utf16_len(question) <= capabilities.max_quiz_question
        and fewest <= len(options) <= most
        and all(0 < utf16_len(option) <= capabilities.max_quiz_option for option in options)
        and utf16_len(explanation) <= capabilities.max_quiz_explanation
        and explanation.count("\n") <= 2
    )


def render_quiz_feedback(quiz: Quiz, chosen_index: int, capabilities: Capabilities) -> TextPart:
    """A "Right!" or the right answer, then the explanation; cut to one message of the platform."""
    markup = capabilities.markup
    if chosen_index == quiz.correct_index:
        blocks = [escape_user_text("✅ Right!", markup)]
    else:
        answer = quiz.options[quiz.correct_index] if 0 <= quiz.correct_index < len(quiz.options) else ""
        blocks = [
            escape_user_text("❌ Not quite — the answer is ", markup) + bold(_plain_line(answer), markup)
        ]
    blocks.extend(render_markdown(quiz.explanation, markup))
    return TextPart(split_message(blocks, capabilities.max_text_length, markup)[0])


# --- replies and previews -----------------------------------------------------------------------------


def say(capabilities: Capabilities, text: str, buttons: Sequence[AnyButton] = ()) -> Reply:
    """A private answer in plain text (a core phrase that may quote what the user typed)."""
    return Reply(tuple(render_plain_text(text, capabilities, buttons)), private=True)


def render_plain_text(
    text: str, capabilities: Capabilities, buttons: Sequence[AnyButton] = ()
) -> list[TextPart]:
    """Plain text escaped for the platform's dialect, split under its limit, the buttons on the last part."""
    return render_text_reply(escape_user_text(text, capabilities.markup), capabilities, buttons)


def render_text_reply(
    text: str, capabilities: Capabilities, buttons: Sequence[AnyButton] = ()
) -> list[TextPart]:
    """A phrase already in the platform's dialect, split under its limit, the buttons on the last part."""
    messages = split_message([text], capabilities.max_text_length, capabilities.markup)
    if not messages:
        return [TextPart(text, buttons=tuple(buttons))] if buttons else []
    parts = [TextPart(message) for message in messages]
    parts[-1] = dataclasses.replace(parts[-1], buttons=tuple(buttons))
    return parts
