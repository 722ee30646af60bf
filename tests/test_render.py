"""A lesson rendered into parts for Telegram, Discord and the console."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from bot.actions import decode
from bot.capabilities import CONSOLE, DISCORD, TELEGRAM, telegram_capabilities
from bot.content import Lesson, Media, MediaKind, Quiz
from bot.markup import fits, text_length
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
    TextPart,
)
from bot.render import (
    lesson_body,
    quiz_action,
    quiz_action_prefix,
    render_lesson,
    render_quiz_feedback,
    render_text_reply,
)
from tests.markup_checks import telegram_html_problems

SAMPLE_COURSE = Path(__file__).resolve().parent.parent / "courses" / "async-learning"
QUIZ = Quiz(
    question="Which `await` runs first?",
    options=("The first one", "The second one", "Both at once"),
    correct_index=0,
    explanation="Awaits run *in order*.",
)


def make_lesson(**changes: object) -> Lesson:
    lesson = Lesson(slug="clocks", number=2, title="Time & <zones>", body_markdown="Read **this** first.")
    return dataclasses.replace(lesson, **changes)  # type: ignore[arg-type]


def image(name: str, caption: str = "", size: int = 1000, kind: MediaKind = MediaKind.IMAGE) -> Media:
    return Media(
        kind=kind, path=Path("/course/media") / name, caption=caption, size_bytes=size, sha256="h-" + name
    )


def render(
    lesson: Lesson,
    capabilities: Capabilities = TELEGRAM,
    *,
    next_allowed: bool = False,
    discuss_url: str | None = None,
) -> list[OutboundPart]:
    return render_lesson(
        lesson,
        capabilities,
        delivery_id=4321,
        enrollment_id=77,
        lesson_count=8,
        next_allowed=next_allowed,
        discuss_url=discuss_url,
    )


def buttons_of(part: OutboundPart) -> tuple[AnyButton, ...]:
    assert isinstance(part, TextPart | MediaPart)
    return part.buttons


def assert_within_limits(parts: list[OutboundPart], capabilities: Capabilities) -> None:
    markup = capabilities.markup
    for part in parts:
        texts: list[tuple[str, int]] = []
        if isinstance(part, TextPart):
            texts.append((part.text, capabilities.max_text_length))
        elif isinstance(part, MediaPart):
            texts.append((part.caption, capabilities.max_caption_length))
        elif isinstance(part, AlbumPart):
            texts.extend((item.caption, capabilities.max_caption_length) for item in part.items)
            assert 2 <= len(part.items) <= 10
        elif isinstance(part, QuizPart) and not part.native:
            texts.append((part.question, capabilities.max_text_length))
        for text, limit in texts:
            assert fits(text, limit, markup), (text_length(text, markup), limit)
            if markup is Markup.TELEGRAM_HTML:
                assert telegram_html_problems(text) == []
        for button in getattr(part, "buttons", ()):
            if isinstance(button, Button):
                assert len(button.action.encode()) <= capabilities.max_button_data
                assert decode(button.action) is not None


# --- capabilities -------------------------------------------------------------------------------------


def test_platform_presets() -> None:
    assert (TELEGRAM.max_text_length, TELEGRAM.max_caption_length, TELEGRAM.markup) == (
        4096,
        1024,
        Markup.TELEGRAM_HTML,
    )
    assert TELEGRAM.native_quiz and TELEGRAM.threads and TELEGRAM.albums
    assert (TELEGRAM.max_upload_bytes, TELEGRAM.max_photo_bytes, TELEGRAM.max_button_data) == (
        50_000_000,
        10_000_000,
        64,
    )
    assert (TELEGRAM.max_quiz_question, TELEGRAM.max_quiz_option, TELEGRAM.max_quiz_explanation) == (
        300,
        100,
        200,
    )
    assert (DISCORD.max_text_length, DISCORD.max_caption_length, DISCORD.markup) == (
        2000,
        2000,
        Markup.DISCORD_MARKDOWN,
    )
    assert not DISCORD.native_quiz and DISCORD.threads and not DISCORD.albums
    assert (DISCORD.max_upload_bytes, DISCORD.max_button_data) == (10 * 1024 * 1024, 100)
    assert (CONSOLE.markup, CONSOLE.max_text_length, CONSOLE.threads) == (Markup.PLAIN, 100_000, False)
    assert CONSOLE.max_upload_bytes > 10**15
    assert telegram_capabilities(local_bot_api=False) == TELEGRAM
    assert telegram_capabilities(local_bot_api=True).max_upload_bytes == 2000 * 1000 * 1000
    with pytest.raises(dataclasses.FrozenInstanceError):
        TELEGRAM.max_text_length = 1  # type: ignore[misc]


# --- text and buttons ---------------------------------------------------------------------------------


def test_telegram_lesson_is_heading_and_body_with_the_buttons() -> None:
    (part,) = render(make_lesson(), discuss_url="https://t.me/c/1/2")
    assert isinstance(part, TextPart)
    assert part.text == "<b>Lesson 2 of 8 · Time &amp; &lt;zones&gt;</b>\n\nRead <b>this</b> first."
    assert part.buttons == (
        Button("✅ Done", "done:4321"),
        LinkButton("💬 Discuss", "https://t.me/c/1/2"),
    )


def test_discord_puts_the_heading_in_the_title() -> None:
    (part,) = render(make_lesson(), DISCORD)
    assert isinstance(part, TextPart)
    assert part.title == "Lesson 2 of 8 · Time & <zones>"
    assert part.text == "Read **this** first."


def test_console_lesson_is_plain_text() -> None:
    (part,) = render(make_lesson(), CONSOLE)
    assert isinstance(part, TextPart)
    assert part.text.startswith("Lesson 2 of 8 · Time & <zones>\n=====")
    assert part.text.endswith("Read this first.")


def test_course_title_and_discussion_prompt_join_the_text() -> None:
    lesson = make_lesson(discussion_prompt="Where are *you* learning from?")
    (part,) = render_lesson(
        lesson,
        TELEGRAM,
        delivery_id=1,
        enrollment_id=1,
        lesson_count=3,
        next_allowed=False,
        discuss_url=None,
        course_title="Clocks 101",
    )
    assert isinstance(part, TextPart)
    assert part.text.startswith("<i>Clocks 101</i>\n\n<b>Lesson 2 of 3")
    assert part.text.endswith("💬 Where are <i>you</i> learning from?")


def test_next_button_only_when_the_learner_may_pull_the_next_lesson() -> None:
    without = buttons_of(render(make_lesson())[-1])
    with_next = buttons_of(render(make_lesson(), next_allowed=True)[-1])
    assert [button.label for button in without] == ["✅ Done"]
    assert [button.label for button in with_next] == ["✅ Done", "➡️ Next lesson"]
    next_button = with_next[1]
    assert isinstance(next_button, Button)
    action = decode(next_button.action)
    assert action is not None and (action.verb, action.args) == ("next", ("77",))


def test_every_action_decodes_back() -> None:
    parts = render(make_lesson(quiz=QUIZ), DISCORD, next_allowed=True)
    quiz = next(part for part in parts if isinstance(part, QuizPart))
    decoded = [decode(f"{quiz.answer_action_prefix}{i}") for i in range(len(quiz.options))]
    assert [(a.verb, a.args) for a in decoded if a] == [("quiz", ("4321", str(i))) for i in range(3)]
    done = decode(buttons_of(parts[-1])[0].action)  # type: ignore[union-attr]
    assert done is not None and (done.verb, done.args) == ("done", ("4321",))


def test_quiz_action_contract() -> None:
    assert quiz_action(4321, 2) == "quiz:4321:2"
    assert quiz_action_prefix(4321) + "2" == quiz_action(4321, 2)


def test_actions_that_do_not_fit_the_platform_are_refused() -> None:
    tiny = dataclasses.replace(TELEGRAM, max_button_data=6)
    with pytest.raises(ValueError, match="exceeds"):
        render(make_lesson(), tiny)


def test_only_text_or_media_carry_buttons_otherwise_a_short_part_follows() -> None:
    after_quiz = render(make_lesson(quiz=QUIZ))
    assert isinstance(after_quiz[-2], QuizPart)
    assert after_quiz[-1] == TextPart("When you are ready:", buttons=(Button("✅ Done", "done:4321"),))
    after_album = render(make_lesson(media=(image("a.png"), image("b.png"))))
    assert isinstance(after_album[-2], AlbumPart)
    assert isinstance(after_album[-1], TextPart) and after_album[-1].buttons
    after_file = render(make_lesson(media=(image("notes.pdf", kind=MediaKind.DOCUMENT),)))
    assert isinstance(after_file[-1], MediaPart) and after_file[-1].buttons
    assert isinstance(after_file[0], TextPart) and not after_file[0].buttons


# --- media --------------------------------------------------------------------------------------------


def test_media_follow_the_text_in_order_with_rendered_captions() -> None:
    media = (
        image("chime.wav", "A *short* chime", kind=MediaKind.AUDIO),
        image("chart.png", "The <curve>"),
    )
    parts = render(make_lesson(media=media))
    assert [type(part) for part in parts] == [TextPart, MediaPart, MediaPart]
    audio, chart = parts[1], parts[2]
    assert isinstance(audio, MediaPart) and isinstance(chart, MediaPart)
    assert (audio.kind, audio.caption, audio.file_key) == (
        MediaKind.AUDIO,
        "A <i>short</i> chime",
        "h-chime.wav",
    )
    assert chart.caption == "The &lt;curve&gt;"
    assert chart.path == Path("/course/media/chart.png")


def test_a_caption_over_the_limit_moves_into_a_text_part_before_its_media() -> None:
    long_caption = "word " * 300
    parts = render(make_lesson(media=(image("a.mp3", long_caption, kind=MediaKind.AUDIO),)))
    assert [type(part) for part in parts] == [TextPart, TextPart, MediaPart]
    moved, media = parts[1], parts[2]
    assert isinstance(moved, TextPart) and isinstance(media, MediaPart)
    assert moved.text == long_caption.strip()
    assert media.caption == "" and media.buttons
    short = render(make_lesson(media=(image("a.mp3", "word " * 150, kind=MediaKind.AUDIO),)))
    assert [type(part) for part in short] == [TextPart, MediaPart]
    on_discord = render(make_lesson(media=(image("a.mp3", long_caption, kind=MediaKind.AUDIO),)), DISCORD)
    assert [type(part) for part in on_discord] == [TextPart, MediaPart]


def test_consecutive_pictures_become_albums_of_two_to_ten() -> None:
    pictures = tuple(image(f"p{i}.png", f"picture {i}") for i in range(12))
    parts = render(
        make_lesson(media=(*pictures, image("doc.pdf", kind=MediaKind.DOCUMENT), image("last.png")))
    )
    kinds = [type(part) for part in parts]
    assert kinds == [TextPart, AlbumPart, AlbumPart, MediaPart, MediaPart]
    first, second = parts[1], parts[2]
    assert isinstance(first, AlbumPart) and isinstance(second, AlbumPart)
    assert [item.file_key for item in first.items] == [f"h-p{i}.png" for i in range(10)]
    assert len(second.items) == 2 and second.items[0].caption == "picture 10"
    on_discord = render(make_lesson(media=pictures[:3]), DISCORD)
    assert [type(part) for part in on_discord] == [TextPart, MediaPart, MediaPart, MediaPart]


def test_a_moved_caption_ends_an_album_run() -> None:
    media = (image("a.png"), image("b.png"), image("c.png", "x " * 600), image("d.png"))
    kinds = [type(part) for part in render(make_lesson(media=media))]
    assert kinds == [TextPart, AlbumPart, TextPart, AlbumPart, TextPart]


def test_files_over_the_platform_limits() -> None:
    big_photo = image("huge.png", size=20_000_000)
    too_big = image("film.mp4", size=60_000_000, kind=MediaKind.VIDEO)
    parts = render(make_lesson(media=(big_photo, too_big)))
    assert isinstance(parts[1], MediaPart) and parts[1].kind is MediaKind.DOCUMENT
    assert isinstance(parts[2], TextPart) and "film.mp4 is too large" in parts[2].text
    local = render(make_lesson(media=(too_big,)), telegram_capabilities(local_bot_api=True))
    assert isinstance(local[1], MediaPart) and local[1].kind is MediaKind.VIDEO


# --- quiz ---------------------------------------------------------------------------------------------


def quiz_part(parts: list[OutboundPart]) -> QuizPart:
    return next(part for part in parts if isinstance(part, QuizPart))


def test_telegram_sends_a_native_quiz_when_it_fits() -> None:
    quiz = quiz_part(render(make_lesson(quiz=QUIZ)))
    assert quiz.native
    assert quiz.question == "Which `await` runs first?"
    assert quiz.options == QUIZ.options and quiz.correct_index == 0
    assert quiz.explanation == "Awaits run in order."
    assert quiz.answer_action_prefix == "quiz:4321:"


@pytest.mark.parametrize(
    "change",
    [
        {"options": ("x" * 101, "short")},
        {"question": "Why? " * 70},
        {"explanation": "Because. " * 30},
        {"options": tuple(str(i) for i in range(11)), "correct_index": 3},
        {"options": ("only one",)},
    ],
)
def test_telegram_falls_back_to_buttons_when_the_quiz_exceeds_native_limits(
    change: dict[str, object],
) -> None:
    quiz = dataclasses.replace(QUIZ, **change)  # type: ignore[arg-type]
    assert not quiz_part(render(make_lesson(quiz=quiz))).native


def test_discord_always_shows_the_quiz_as_buttons() -> None:
    quiz = quiz_part(render(make_lesson(quiz=QUIZ), DISCORD))
    assert not quiz.native
    assert quiz.question == "❓ Which `await` runs first?"
    assert quiz.options == QUIZ.options
    assert quiz.explanation == "Awaits run *in order*."


def test_fallback_lists_long_options_and_numbers_the_buttons() -> None:
    options = ("A very long option that would never fit on a button label, " * 2, "<b>Short</b>")
    quiz = quiz_part(render(make_lesson(quiz=dataclasses.replace(QUIZ, options=options)), TELEGRAM))
    assert not quiz.native
    assert quiz.options == ("1", "2")
    assert quiz.question.endswith(f"1. {options[0].strip()}\n2. &lt;b&gt;Short&lt;/b&gt;")
    assert telegram_html_problems(quiz.question) == []


def test_quiz_feedback() -> None:
    right = render_quiz_feedback(QUIZ, 0, TELEGRAM)
    assert right.text == "✅ Right!\n\nAwaits run <i>in order</i>."
    tricky = dataclasses.replace(QUIZ, options=("<b>a</b>", "b"))
    wrong = render_quiz_feedback(tricky, 1, TELEGRAM)
    assert wrong.text.startswith("❌ Not quite — the answer is <b>&lt;b&gt;a&lt;/b&gt;</b>")
    assert telegram_html_problems(wrong.text) == []
    assert render_quiz_feedback(QUIZ, 99, DISCORD).text.startswith(
        "❌ Not quite — the answer is **The first one**"
    )


# --- replies and previews -----------------------------------------------------------------------------


def test_text_reply_is_split_and_carries_its_buttons_last() -> None:
    done = Button("OK", "done:1")
    (short,) = render_text_reply("<b>Saved.</b>", TELEGRAM, [done])
    assert short == TextPart("<b>Saved.</b>", buttons=(done,))
    long_text = "\n".join(f"line {i} of the answer" for i in range(300))
    parts = render_text_reply(long_text, DISCORD, [done])
    assert len(parts) >= 3
    assert all(len(part.text) <= 2000 for part in parts)
    assert [part.buttons for part in parts] == [()] * (len(parts) - 1) + [(done,)]
    assert render_text_reply("", TELEGRAM) == []


# --- whole lessons --------------------------------------------------------------------------------------

LONG_BODY = "\n\n".join(
    f"## Part {i}\n\n"
    + "Each learner keeps *their own* **clock**, and the course follows it. " * 12
    + "\n\n```python\n"
    + "\n".join(f"await lesson_{j}()" for j in range(10))
    + "\n```"
    for i in range(10)
)


@pytest.mark.parametrize("capabilities", [TELEGRAM, DISCORD, CONSOLE], ids=lambda c: c.platform)
def test_a_long_lesson_is_split_under_each_limit(capabilities: Capabilities) -> None:
    assert len(LONG_BODY) >= 10_000
    parts = render(make_lesson(body_markdown=LONG_BODY, quiz=QUIZ), capabilities, next_allowed=True)
    assert_within_limits(parts, capabilities)
    text_parts = [part for part in parts if isinstance(part, TextPart)]
    expected = 1 if capabilities is CONSOLE else len(LONG_BODY) // capabilities.max_text_length + 1
    assert len(text_parts) >= expected
    if capabilities is DISCORD:
        assert text_parts[0].title and not any(part.title for part in text_parts[1:])


@pytest.mark.skipif(
    not SAMPLE_COURSE.is_dir(), reason="the sample course courses/async-learning is not written yet"
)
@pytest.mark.parametrize("capabilities", [TELEGRAM, DISCORD, CONSOLE], ids=lambda c: c.platform)
def test_every_sample_lesson_renders(capabilities: Capabilities) -> None:
    from bot.course_loader import load_course

    course, problems = load_course(SAMPLE_COURSE)
    assert course is not None, problems
    for index, lesson in enumerate(course.lessons):
        parts = render_lesson(
            lesson,
            capabilities,
            delivery_id=10_000 + index,
            enrollment_id=5,
            lesson_count=len(course.lessons),
            next_allowed=index + 1 < len(course.lessons),
            discuss_url="https://example.org/thread",
            course_title=course.title,
        )
        assert_within_limits(parts, capabilities)
        assert isinstance(parts[0], TextPart) and parts[0].text
        media = [part for part in parts if isinstance(part, MediaPart)]
        assert [part.path for part in media] == [item.path for item in lesson.media]
        if lesson.quiz is not None:
            assert quiz_part(parts).native is (capabilities is TELEGRAM)


def test_a_kept_lesson_body_renders_the_same_parts() -> None:
    lesson = Lesson(slug="one", number=1, title="One", body_markdown="Some *text* to read.")
    arguments: dict[str, Any] = {
        "delivery_id": 7,
        "enrollment_id": 3,
        "lesson_count": 2,
        "next_allowed": True,
        "discuss_url": None,
        "course_title": "A course",
    }
    for capabilities in (TELEGRAM, DISCORD):
        body = lesson_body(lesson, capabilities, lesson_count=2, course_title="A course")
        assert render_lesson(lesson, capabilities, body=body, **arguments) == render_lesson(
            lesson, capabilities, **arguments
        )
        assert all(not getattr(part, "buttons", ()) for part in body)  # the learner's buttons are not in it
