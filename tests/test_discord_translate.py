"""Pure translation for Discord: chat ids, senders, commands and buttons in; parts to messages out."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.discord.choices import CourseChoices, time_choices, zone_choices
from adapters.discord.translate import (
    MAX_CONTENT,
    AdminRule,
    ButtonSpec,
    ButtonStyle,
    DirectMessage,
    MediaLinks,
    Origin,
    OutgoingMessage,
    PlainChannel,
    PrivateThread,
    SlashCommand,
    chat_id_of,
    command_event,
    component_event,
    direct_message_event,
    fallback_notice,
    fallback_thread_name,
    nonce_for,
    parse_chat_id,
    part_messages,
    sender_for,
    split_content,
)
from bot.content import MediaKind
from bot.ports import (
    AlbumPart,
    Button,
    ButtonPressed,
    Command,
    FilePart,
    LinkButton,
    MediaPart,
    QuizPart,
    RequestLocationButton,
    TextPart,
    TextReceived,
)
from bot.render import quiz_action, quiz_action_prefix
from tests.conftest import SAMPLE_COURSES

snowflakes = st.integers(min_value=1, max_value=2**63 - 1)
MIB = 1024 * 1024
NO_LINKS = MediaLinks()


def sizes(**by_name: int) -> object:
    return lambda path: by_name.get(path.name, 100)


def messages(part: object, links: MediaLinks = NO_LINKS, **by_name: int) -> list[OutgoingMessage]:
    return part_messages(part, media_links=links, size_of=sizes(**by_name))  # type: ignore[arg-type]


# --- chat ids ---------------------------------------------------------------------------------------


@given(
    st.one_of(
        st.builds(DirectMessage, snowflakes, st.none() | snowflakes),
        st.builds(PrivateThread, snowflakes, snowflakes),
        st.builds(PlainChannel, snowflakes),
    )
)
def test_every_destination_survives_its_chat_id(
    destination: DirectMessage | PrivateThread | PlainChannel,
) -> None:
    chat_id = chat_id_of(destination)
    assert len(chat_id) <= 64  # Learner.chat_id
    assert parse_chat_id(chat_id) == destination


@pytest.mark.parametrize(
    "chat_id", ["", "dm:", "dm:x", "dm:1:", "thread:5", "thread:1:2:3", "-100", "0", "12a"]
)
def test_malformed_chat_ids_are_refused(chat_id: str) -> None:
    with pytest.raises(ValueError, match="not a Discord chat id"):
        parse_chat_id(chat_id)


# --- senders and events -----------------------------------------------------------------------------


def origin(**overrides: object) -> Origin:
    values: dict[str, object] = {
        "user_id": 42,
        "display_name": "Ada",
        "locale": "pt-BR",
        "guild_id": 7,
        "channel_id": 9,
        "in_bot_dm": False,
    }
    values.update(overrides)
    return Origin(**values)  # type: ignore[arg-type]


def test_in_a_server_the_sender_points_at_the_learners_dm_and_is_not_private() -> None:
    sender = sender_for(origin())
    assert (sender.platform, sender.user_id, sender.chat_id) == ("discord", "42", "dm:42")
    assert sender.is_private is False
    assert sender.language_code == "pt-BR"
    assert sender.display_name == "Ada"


def test_in_the_bot_dm_the_sender_carries_the_dm_channel_and_is_private() -> None:
    sender = sender_for(origin(guild_id=None, channel_id=99, in_bot_dm=True))
    assert sender.chat_id == "dm:42:99"
    assert sender.is_private is True


@pytest.mark.parametrize(
    ("facts", "rule", "admin"),
    [
        ({}, AdminRule(), False),
        ({}, AdminRule(frozenset({"42"})), True),
        ({"role_ids": (555,)}, AdminRule(role="555"), True),
        ({"role_ids": (556,)}, AdminRule(role="555"), False),
        ({"role_names": ("Instructors",)}, AdminRule(role="Instructors", guild_ids=frozenset({7})), True),
        ({"role_names": ("Learners",)}, AdminRule(role="Instructors", guild_ids=frozenset({7})), False),
        # A role of that name in a server the config does not list is anybody's to create.
        ({"role_names": ("Instructors",)}, AdminRule(role="Instructors", guild_ids=frozenset({8})), False),
        ({"role_names": ("",)}, AdminRule(role="", guild_ids=frozenset({7})), False),
    ],
)
def test_the_admin_hint_comes_from_the_admin_list_or_the_configured_role(
    facts: dict[str, object], rule: AdminRule, admin: bool
) -> None:
    assert sender_for(origin(**facts), rule).is_admin_hint is admin


@pytest.mark.parametrize(
    ("command", "options", "name", "args"),
    [
        (SlashCommand.ENROLL, {"course": "async-learning"}, "start", "async-learning"),
        (SlashCommand.ENROLL, {"course": ""}, "start", ""),
        (SlashCommand.TIMEZONE, {"zone": "America/Sao_Paulo"}, "timezone", "America/Sao_Paulo"),
        (SlashCommand.TIME, {"at": " 07:30 ", "course": ""}, "time", "07:30"),
        (SlashCommand.TIME, {"at": "8pm", "course": "async-learning"}, "time", "async-learning 8pm"),
        (SlashCommand.PACE, {"every": "weekdays", "custom": "", "course": ""}, "pace", "weekdays"),
        (SlashCommand.PACE, {"every": "daily", "custom": "tue,thu", "course": ""}, "pace", "tue,thu"),
        (SlashCommand.PAUSE, {"until": "", "course": ""}, "pause", ""),
        (SlashCommand.PAUSE, {"until": "2026-12-24", "course": "x"}, "pause", "x 2026-12-24"),
        (SlashCommand.STOP, {"course": "x"}, "stop", "x"),
        (SlashCommand.HELP, {}, "help", ""),
        (SlashCommand.SCHEDULE, {}, "schedule", ""),
    ],
)
def test_slash_commands_become_the_cores_commands(
    command: SlashCommand, options: dict[str, object], name: str, args: str
) -> None:
    sender = sender_for(origin())
    assert command_event(sender, command, options) == Command(sender, name, args)


def test_every_slash_command_names_a_learner_command_the_core_knows() -> None:
    from bot.conversation import LEARNER_COMMANDS

    known = {name for name, _ in LEARNER_COMMANDS}
    sender = sender_for(origin())
    assert {command_event(sender, command, {}).name for command in SlashCommand} <= known


def test_any_button_press_carries_its_custom_id_to_the_core() -> None:
    sender = sender_for(origin())
    assert component_event(sender, "quiz:12:3", 555) == ButtonPressed(sender, "quiz:12:3", "555")
    assert component_event(sender, "done:1", None).message_id is None


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("Berlin", TextReceived),
        ("  8am ", TextReceived),
        ("/pause 3", Command),
        ("/ not a command", TextReceived),
        ("   ", type(None)),
    ],
)
def test_text_in_the_bot_dm_is_text_or_a_typed_command(typed: str, expected: type) -> None:
    event = direct_message_event(sender_for(origin(in_bot_dm=True)), typed)
    assert isinstance(event, expected)
    if isinstance(event, Command):
        assert (event.name, event.args) == ("pause", "3")


# --- parts to messages ------------------------------------------------------------------------------


def test_a_titled_lesson_text_is_an_embed_with_its_buttons() -> None:
    part = TextPart(
        "**Welcome** to lesson one.",
        (
            Button("✅ Done", "done:7"),
            Button("➡️ Next lesson", "next:3"),
            LinkButton("💬 Discuss", "https://discord.com/channels/1/2/3"),
            RequestLocationButton("📍 Send my location"),
        ),
        title="Lesson 1 of 8 · Welcome",
    )
    [message] = messages(part)
    assert message.embed_title == "Lesson 1 of 8 · Welcome"
    assert message.embed_description == "**Welcome** to lesson one."
    assert message.content == ""
    assert message.buttons == (
        ButtonSpec("✅ Done", ButtonStyle.SUCCESS, custom_id="done:7"),
        ButtonSpec("➡️ Next lesson", ButtonStyle.PRIMARY, custom_id="next:3"),
        ButtonSpec("💬 Discuss", ButtonStyle.LINK, url="https://discord.com/channels/1/2/3"),
    )


@given(st.text(min_size=0, max_size=6000))
def test_text_is_split_under_discords_limit_and_buttons_ride_on_the_last_message(text: str) -> None:
    sent = messages(TextPart(text, (Button("✅ Done", "done:1"),)))
    assert all(len(message.content) <= MAX_CONTENT for message in sent)
    assert all(message.buttons == () for message in sent[:-1])
    assert sent[-1].buttons == (ButtonSpec("✅ Done", ButtonStyle.SUCCESS, custom_id="done:1"),)
    if text.strip():
        assert "".join(message.content for message in sent).split() == text.split()


def test_split_content_keeps_short_text_whole_and_cuts_long_text_at_lines() -> None:
    assert split_content("short") == ["short"]
    lines = "\n".join(f"line {index:04d} " + "x" * 80 for index in range(60))
    chunks = split_content(lines)
    assert len(chunks) > 1
    assert all(len(chunk) <= MAX_CONTENT for chunk in chunks)
    assert all(chunk.startswith("line ") for chunk in chunks)


def test_a_quiz_is_its_question_with_one_button_per_option_answering_the_delivery() -> None:
    part = QuizPart(
        "❓ Which one?",
        ("Red", "Green", "Blue"),
        1,
        "Green, of course.",
        quiz_action_prefix(31),
        native=False,
    )
    [message] = messages(part)
    assert message.content == "❓ Which one?"
    assert [button.custom_id for button in message.buttons] == [quiz_action(31, index) for index in range(3)]
    assert [button.label for button in message.buttons] == ["Red", "Green", "Blue"]
    assert all(len(button.custom_id) <= 100 for button in message.buttons)


def test_media_is_attached_with_its_caption_and_buttons(tmp_path: Path) -> None:
    audio = tmp_path / "chime.wav"
    [message] = messages(
        MediaPart(MediaKind.AUDIO, audio, caption="A chime", buttons=(Button("Done", "done:1"),))
    )
    assert message.content == "A chime"
    assert [(a.filename, a.path) for a in message.attachments] == [("chime.wav", audio)]
    assert message.buttons[0].custom_id == "done:1"


def test_a_file_over_the_attachment_limit_is_linked_or_noted(tmp_path: Path) -> None:
    video = tmp_path / "course" / "media" / "talk one.mp4"
    links = MediaLinks("https://media.example.org/c/", tmp_path)
    [linked] = messages(
        MediaPart(MediaKind.VIDEO, video, caption="The talk"), links, **{"talk one.mp4": 11 * MIB}
    )
    assert linked.attachments == ()
    assert (
        linked.content
        == "The talk\n📎 talk one.mp4: <https://media.example.org/c/course/media/talk%20one.mp4>"
    )
    [noted] = messages(MediaPart(MediaKind.VIDEO, video), NO_LINKS, **{"talk one.mp4": 11 * MIB})
    assert noted.attachments == ()
    assert "too large to send here" in noted.content


def test_an_album_is_one_message_of_up_to_ten_files(tmp_path: Path) -> None:
    items = tuple(
        MediaPart(MediaKind.IMAGE, tmp_path / f"{index}.png", caption="Look" if index == 0 else "")
        for index in range(12)
    )
    first, second = messages(AlbumPart(items))
    assert first.content == "Look"
    assert len(first.attachments) == 10
    assert [a.filename for a in second.attachments] == ["10.png", "11.png"]


def test_a_generated_file_is_attached_from_memory() -> None:
    [message] = messages(FilePart("progress.csv", b"a,b\n", caption="Your progress"))
    assert message.content == "Your progress"
    assert [(a.filename, a.content) for a in message.attachments] == [("progress.csv", b"a,b\n")]


@given(st.text(max_size=40), st.integers(min_value=0, max_value=1000))
def test_nonces_are_short_stable_and_distinct_per_message(key: str, index: int) -> None:
    nonce = nonce_for(key, index)
    if not key:
        assert nonce is None
        return
    assert nonce is not None
    assert 0 < len(nonce) <= 25
    assert nonce == nonce_for(key, index)
    assert nonce != nonce_for(key, index + 1)
    assert nonce != nonce_for(key + ".", index)


def test_the_fallback_notice_mentions_the_learner_and_the_thread_is_named_for_them() -> None:
    assert fallback_notice(42).startswith("<@42> I could not send you a direct message")
    assert fallback_thread_name("  Ada   Lovelace ", 42) == "Lessons for Ada Lovelace"
    assert fallback_thread_name("", 42) == "Lessons for 42"
    assert len(fallback_thread_name("x" * 300, 42)) == 100


# --- autocomplete -----------------------------------------------------------------------------------


def test_course_suggestions_come_from_the_courses_folder() -> None:
    choices = CourseChoices(SAMPLE_COURSES)
    assert choices("") == [("Learning on your own clock", "async-learning")]
    assert choices("ASYNC") == [("Learning on your own clock", "async-learning")]
    assert choices("cooking") == []
    assert CourseChoices(None)("") == []


def test_zone_and_time_suggestions() -> None:
    assert ("Europe/Berlin", "Europe/Berlin") in zone_choices("Europe/Berl")
    assert len(zone_choices("")) == 25
    assert time_choices("") == [(time, time) for time in ("07:00", "08:00", "12:30", "18:00", "21:00")]
    assert time_choices("1") == [("1", "1"), ("12:30", "12:30"), ("18:00", "18:00")]
