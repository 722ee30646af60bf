"""Hostile input: every chat command, typed answer, button and quiz answer, on both platforms' translation
paths and in the core, and hostile course files, never crash the bot, always get a helpful answer,
change nothing they may not, and never turn what a learner typed into formatting."""

from __future__ import annotations

import os
import re
import shutil
import string
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import telegram
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select
from typer.testing import CliRunner

from adapters.discord.translate import (
    MAX_CUSTOM_ID,
    Origin,
    SlashCommand,
    command_event,
    component_event,
    direct_message_event,
    sender_for,
)
from adapters.telegram.translate import BotIdentity, update_to_event
from bot.actions import VERBS
from bot.admin import AdminPolicy, AdminTools
from bot.admin_conversation import ADMIN_COMMAND_NAMES, AdminConversation
from bot.capabilities import DISCORD, TELEGRAM
from bot.catalog import Catalog
from bot.conversation import LEARNER_COMMANDS, Conversation
from bot.course_loader import load_course
from bot.db import Database
from bot.markup import fits
from bot.models import Learner
from bot.ports import (
    ButtonPressed,
    Capabilities,
    Command,
    LocationShared,
    Markup,
    QuizAnswered,
    Sender,
    TextPart,
    TextReceived,
)
from bot.render import render_lesson
from dripcourse.app import App
from dripcourse.cli import app as cli
from tests.conftest import SAMPLE_COURSES
from tests.e2e.telegram_app import emulator_settings, running_app
from tests.e2e.telegram_chat import TelegramChat
from tests.emulators.telegram_bot_api import TelegramEmulator, TelegramLimits, TelegramUser
from tests.fakes import FakeClock
from tests.hostile import (
    CAPABILITIES,
    DISCORD_DM_CHANNEL,
    EMOJI,
    LEARNER_IDS,
    LONG,
    MARKUP_INJECTION,
    OTHER_IDS,
    SQL_INJECTION,
    ZONE_COLUMNS,
    FuzzBed,
    hostile_text,
    poisoned_text,
)
from tests.markup_checks import telegram_html_problems

FUZZ = settings(
    max_examples=int(os.environ.get("DRIPCOURSE_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
PLATFORMS = st.sampled_from(sorted(CAPABILITIES))
LEARNER_COMMAND_NAMES = sorted({name for name, _ in LEARNER_COMMANDS} | {"tz", "cadence"})
ZONE_COMMANDS = {"timezone", "tz"}
BOT = BotIdentity(777000, "dripcourse_bot")


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzBed]:
    fuzz_bed = FuzzBed(tmp_path_factory.mktemp("fuzz-bed"))
    yield fuzz_bed
    fuzz_bed.close()


# --- the core ------------------------------------------------------------------------------------------


@FUZZ
@given(
    platform=PLATFORMS,
    name=st.sampled_from(LEARNER_COMMAND_NAMES + sorted(ADMIN_COMMAND_NAMES)) | hostile_text(),
    args=poisoned_text() | hostile_text().filter(lambda text: not text.strip()),
    private=st.booleans(),
)
def test_every_command_with_hostile_arguments_gets_a_helpful_answer_and_changes_nothing(
    bed: FuzzBed, platform: str, name: str, args: str, private: bool
) -> None:
    assume(name != "pause" or args.strip())  # a bare /pause is valid: it pauses until /resume
    zone = name.lower() in ZONE_COMMANDS
    bed.send(
        Command(bed.sender(platform, private=private), name.lower(), args),
        may_change=ZONE_COLUMNS if zone else None,
        may_format=name == "repeat",
    )


@FUZZ
@given(platform=PLATFORMS, step=st.sampled_from([None, "zone", "time", "pace"]), text=poisoned_text())
def test_typed_answers_at_every_step_get_a_helpful_answer_and_change_nothing(
    bed: FuzzBed, platform: str, step: str | None, text: str
) -> None:
    bed.set_awaiting(platform, step)
    bed.send(TextReceived(bed.sender(platform), text), may_change=ZONE_COLUMNS if step == "zone" else None)


def forged_actions(bed: FuzzBed, platform: str) -> st.SearchStrategy[str]:
    """Action strings naming things that are not the learner's: another learner's ids, made-up ids."""
    other = bed.ids[(platform, OTHER_IDS[platform])]
    mine = bed.ids[(platform, LEARNER_IDS[platform])]
    foreign_ids = st.sampled_from([str(value) for value in other.values()]) | st.integers(100, 10**12).map(
        str
    )
    verbs = sorted(set(VERBS) - {"zone", "lang", "enrol"})
    structured = st.builds(
        lambda verb, ids: ":".join([verb, *ids]),
        st.sampled_from(verbs),
        st.lists(
            foreign_ids | st.sampled_from(["yes", "no", "now", "local", "cancel", "0730", "daily"]),
            max_size=3,
        ),
    )
    own_quiz_out_of_range = (
        st.integers()
        .filter(lambda index: index not in (0, 1))
        .map(lambda index: f"quiz:{mine['delivery']}:{index}")
    )
    return st.one_of(
        structured,
        own_quiz_out_of_range,
        st.builds(lambda slug: f"enrol:{slug}", poisoned_text()),
        hostile_text().map(lambda text: text[:MAX_CUSTOM_ID]),
    )


@FUZZ
@given(platform=PLATFORMS, data=st.data())
def test_forged_and_garbage_buttons_are_refused_and_change_nothing(
    bed: FuzzBed, platform: str, data: st.DataObject
) -> None:
    action = data.draw(forged_actions(bed, platform))
    reply = bed.send(ButtonPressed(bed.sender(platform), action))
    assert any(isinstance(part, TextPart) for part in reply.parts)


@FUZZ
@given(
    poll=st.sampled_from(["own", "other"]) | hostile_text(),
    option=st.integers(min_value=-(2**63), max_value=2**63).filter(lambda index: index not in (0, 1)),
)
def test_quiz_answers_out_of_range_or_for_unknown_polls_change_nothing(
    bed: FuzzBed, poll: str, option: int
) -> None:
    polls = {"own": bed.polls[LEARNER_IDS["telegram"]], "other": bed.polls[OTHER_IDS["telegram"]]}
    if poll == "other":
        option = 0  # even a valid answer to another learner's poll is refused
    bed.send(QuizAnswered(bed.sender("telegram"), polls.get(poll, poll), option))


@FUZZ
@given(
    latitude=st.floats(allow_nan=True, allow_infinity=True) | st.floats(-90, 90),
    longitude=st.floats(allow_nan=True, allow_infinity=True) | st.floats(-180, 180),
)
def test_shared_locations_anywhere_or_nowhere_get_an_answer(
    bed: FuzzBed, latitude: float, longitude: float
) -> None:
    bed.set_awaiting("telegram", "zone")
    bed.send(LocationShared(bed.sender("telegram"), latitude, longitude), may_change=ZONE_COLUMNS)


# --- the platforms' translation paths ------------------------------------------------------------------

TELEGRAM_BOT = telegram.Bot("123456:fuzz-token-not-used-for-any-request")


def telegram_user(first_name: str) -> dict[str, Any]:
    return {
        "id": int(LEARNER_IDS["telegram"]),
        "is_bot": False,
        "first_name": first_name or "x",
        "language_code": "en",
    }


def telegram_chat(kind: str) -> dict[str, Any]:
    if kind == "private":
        return {"id": int(LEARNER_IDS["telegram"]), "type": "private", "first_name": "x"}
    return {"id": -1001234567890, "type": kind, "title": "A group"}


@st.composite
def telegram_updates(draw: st.DrawFn) -> dict[str, Any]:
    """Updates as Telegram would deliver them: typed text and commands, button presses, poll answers."""
    name = draw(hostile_text())
    kind = draw(st.sampled_from(["text", "command", "addressed", "button", "poll"]))
    chat = draw(st.sampled_from(["private", "group", "supergroup"]))
    message: dict[str, Any] = {
        "message_id": 10,
        "date": 1772431200,
        "chat": telegram_chat(chat),
        "from": telegram_user(name),
    }
    if kind in ("text", "command", "addressed"):
        text = draw(poisoned_text())
        if kind != "text":
            command = draw(st.sampled_from(LEARNER_COMMAND_NAMES))
            suffix = "@dripcourse_bot" if kind == "addressed" else ""
            text = f"/{command}{suffix} {text}"
        return {"update_id": 1, "message": {**message, "text": text[:4096]}}
    if kind == "button":
        data = draw(hostile_text()).encode()[:64].decode(errors="ignore")
        return {
            "update_id": 1,
            "callback_query": {
                "id": "1",
                "from": telegram_user(name),
                "chat_instance": "1",
                "data": data,
                "message": {**message, "from": {"id": BOT.id, "is_bot": True, "first_name": "Bot"}},
            },
        }
    option = draw(st.integers(min_value=2, max_value=2**31))
    return {
        "update_id": 1,
        "poll_answer": {
            "poll_id": draw(hostile_text()) or "p",
            "user": telegram_user(name),
            "option_ids": [option],
            "option_persistent_ids": [str(option)],
        },
    }


@FUZZ
@given(update=telegram_updates())
def test_telegram_updates_with_hostile_content_are_answered_safely(
    bed: FuzzBed, update: dict[str, Any]
) -> None:
    event = update_to_event(telegram.Update.de_json(update, TELEGRAM_BOT), BOT)
    if event is None:
        return  # text in a group not addressed to the bot: ignored, as it should be
    assume(not _bare_pause(event))
    zone = isinstance(event, Command) and event.name in ZONE_COMMANDS
    bed.set_awaiting("telegram", None)
    bed.send(event, may_change=ZONE_COLUMNS if zone else None, may_format=_is_repeat(event))


def discord_origin(in_dm: bool, name: str) -> Origin:
    return Origin(
        user_id=int(LEARNER_IDS["discord"]),
        display_name=name,
        locale=None,
        guild_id=None if in_dm else 555,
        channel_id=DISCORD_DM_CHANNEL if in_dm else 556,
        in_bot_dm=in_dm,
    )


@FUZZ
@given(
    in_dm=st.booleans(),
    name=hostile_text(),
    kind=st.sampled_from(["dm text", "dm command", "slash", "button"]),
    command=st.sampled_from(list(SlashCommand)),
    command_name=st.sampled_from(LEARNER_COMMAND_NAMES),
    option=st.sampled_from(["course", "zone", "at", "every", "custom", "until"]),
    value=poisoned_text(),
    custom_id=hostile_text(),
)
def test_discord_messages_commands_and_buttons_with_hostile_content_are_answered_safely(
    bed: FuzzBed,
    in_dm: bool,
    name: str,
    kind: str,
    command: SlashCommand,
    command_name: str,
    option: str,
    value: str,
    custom_id: str,
) -> None:
    sender = sender_for(discord_origin(in_dm or kind.startswith("dm"), name))
    if kind == "dm text":
        event = direct_message_event(sender, value)
    elif kind == "dm command":
        event = direct_message_event(sender, f"/{command_name} {value}")
    elif kind == "slash":
        event = command_event(sender, command, {option: value})
    else:
        event = component_event(sender, custom_id, None)
    if event is None:
        return  # an empty DM: nothing to answer
    assume(not _bare_pause(event))  # e.g. /pause with only an option it does not read
    bed.set_awaiting("discord", None)
    zone = isinstance(event, Command) and event.name in ZONE_COMMANDS
    bed.send(event, may_change=ZONE_COLUMNS if zone else None, may_format=_is_repeat(event))


def _bare_pause(event: object) -> bool:
    """A valid command in its own right: it pauses until /resume."""
    return isinstance(event, Command) and event.name == "pause" and not event.args.strip()


def _is_repeat(event: object) -> bool:
    return isinstance(event, Command) and event.name == "repeat"


# --- instructors' hostile arguments --------------------------------------------------------------------

ADMIN_FUZZED = sorted(ADMIN_COMMAND_NAMES - {"reload"})  # reload is exercised with hostile files below


@FUZZ
@given(platform=PLATFORMS, name=st.sampled_from(ADMIN_FUZZED), args=poisoned_text())
def test_instructor_commands_with_hostile_arguments_answer_without_crashing(
    bed: FuzzBed, platform: str, name: str, args: str
) -> None:
    instructor = bed.sender(platform, "1")
    # A broadcast's text is the instructor's Markdown, shown as a preview and kept as a draft.
    broadcast = name == "broadcast"
    bed.send(
        Command(instructor, name, args),
        may_change={"broadcast": {"*"}} if broadcast else None,
        may_format=broadcast or name in ("admin", "stats"),
    )


# --- over the wire: the Telegram emulator and the real app -----------------------------------------------

NASTY = [
    "",
    " ",
    *SQL_INJECTION[:2],
    *MARKUP_INJECTION,
    "\u202eevil\u202c",
    "a\x00b\x07c",
    EMOJI[1],
    "🎉" * 100,
    LONG[0],
    "99999",
]
HACKER = TelegramUser(6060, "<b>Mallory</b>", username="mallory", language_code="en")


@pytest.fixture
async def telegram_bot(clock: FakeClock, tmp_path: Path) -> AsyncIterator[tuple[App, TelegramEmulator]]:
    async with (
        TelegramEmulator(limits=TelegramLimits(enabled=False)) as emu,
        running_app(emulator_settings(emu, tmp_path / "hostile.db"), clock) as app,
    ):
        yield app, emu


async def test_over_telegram_typed_text_comes_back_as_text_never_as_formatting(
    telegram_bot: tuple[App, TelegramEmulator], caplog: pytest.LogCaptureFixture
) -> None:
    _app, emu = telegram_bot
    chat = TelegramChat(emu, HACKER)
    await chat.command("start", "async-learning", replies=2)
    for text in NASTY:
        if not text:
            continue  # Telegram delivers no empty messages
        [answer] = await chat.send(text)
        assert answer.entities == (), f"{text[:40]!r} came back formatted: {answer.entities}"
        assert answer.parse_mode == "HTML"
        shown = answer.text or ""
        if text in MARKUP_INJECTION and "&" not in text:
            assert text in shown, f"{text!r} is not shown as typed in {shown!r}"
        assert "\u202e" not in shown, "a right-to-left override reached the chat"
    [answer] = await chat.command("timezone", "<i>Paris</i>")
    assert answer.entities == ()
    [answer] = await chat.command("pause", "**3**")
    assert answer.entities == ()
    assert "**3**" in (answer.text or "")
    errors = [record for record in caplog.records if record.levelname == "ERROR"]
    assert not errors, [record.getMessage() for record in errors]


# --- course files --------------------------------------------------------------------------------------

MEDIA_PATHS = [
    "media/a.png",
    "../outside.png",
    "media/../../outside.png",
    "/etc/passwd",
    "C:\\Windows\\win.ini",
    "\\\\server\\share\\a.png",
    "~/.ssh/id_rsa",
    "file:///etc/passwd",
    "https://evil.example/a.png",
    "media/link-out.png",
    "media/loop.png",
    "media/folder-link",
    "media/empty.png",
    "media/huge.bin",
    "media/\x00.png",
    "media/" + "x" * 5000 + ".png",
    "media/nope.png",
]
MARKDOWN_BOMBS = [
    "> " * 3000 + "deep",
    "- " * 3000 + "deep",
    "*" * 20_000,
    "_a" * 10_000,
    "[x](" * 5000,
    "<script>alert(1)</script>\n<b>raw</b> &amp; &bogus;",
    "```\n" + "code\n" * 5000,
    "| a | b |\n|---|---|\n" + "| x | y |\n" * 2000,
    "word " * 50_000,
    "\u202e" * 100 + "\x00\x1b",
]


@pytest.fixture(scope="module")
def hostile_course_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile-courses")
    outside = root / "outside.png"
    outside.write_bytes(b"\x89PNG\r\n\x1a\nsecret")
    return root


def build_course(root: Path, toml: str, lessons: list[str]) -> Path:
    course = root / "hostile"
    if course.exists():
        shutil.rmtree(course)
    (course / "lessons").mkdir(parents=True)
    media = course / "media"
    media.mkdir()
    (media / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    (media / "empty.png").write_bytes(b"")
    (media / "link-out.png").symlink_to(root / "outside.png")
    (media / "loop.png").symlink_to(media / "loop.png")
    (media / "folder-link").symlink_to(root)
    with (media / "huge.bin").open("wb") as handle:
        handle.truncate(60 * 1000 * 1000)  # sparse: over Telegram's 50 MB, costs no disk
    (course / "course.toml").write_text(toml, encoding="utf-8", errors="surrogatepass")
    for number, lesson in enumerate(lessons, start=1):
        (course / "lessons" / f"{number:02d}-lesson-{number}.md").write_text(
            lesson, encoding="utf-8", errors="surrogatepass"
        )
    return course


TOML_VALUES = st.one_of(
    st.text(string.printable, max_size=40).map(
        lambda text: '"' + text.replace("\\", "").replace('"', "") + '"'
    ),
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(["true", "[]", "{}", "1979-05-27T07:32:00Z", "nan", "inf", '"every-0-days"', '"25:61"']),
)
COURSE_KEYS = [
    "title",
    "description",
    "language",
    "default_cadence",
    "default_time",
    "lessons",
    "languages",
    "tilte",
]


@st.composite
def course_tomls(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return draw(st.text(max_size=300))
    pairs = draw(st.dictionaries(st.sampled_from(COURSE_KEYS), TOML_VALUES, max_size=6))
    pairs.setdefault("title", '"Hostile"')
    return "".join(f"{key} = {value}\n" for key, value in pairs.items())


@st.composite
def lesson_files(draw: st.DrawFn) -> str:
    title = draw(hostile_text()).replace("\n", " ")[:300]
    media = draw(st.lists(st.sampled_from(MEDIA_PATHS), max_size=3))
    body = draw(st.sampled_from(MARKDOWN_BOMBS) | hostile_text())
    front = [f"title: {title!r}" if draw(st.booleans()) else f"title: {title}"]
    if media:
        front.append("media:")
        front += [f"  - image: {path!r}" for path in media]
    if draw(st.booleans()):
        front.append(
            "quiz: {question: Q?, options: [a, b], answer: "
            + draw(st.sampled_from(["a", "9", "-1", "[]"]))
            + "}"
        )
    return "---\n" + "\n".join(front) + "\n---\n" + body


def assert_every_problem_located(course: Path, problems: list[Any]) -> None:
    for problem in problems:
        assert Path(problem.path).resolve().is_relative_to(course.resolve()), problem
        text = Path(problem.path).read_bytes() if Path(problem.path).is_file() else b""
        assert 1 <= problem.line <= max(1, text.count(b"\n") + 1), problem
        assert problem.message


@settings(
    max_examples=int(os.environ.get("DRIPCOURSE_FUZZ_EXAMPLES", "60")) // 2,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
@given(toml=course_tomls(), lessons=st.lists(lesson_files(), min_size=1, max_size=3))
def test_hostile_course_files_are_reported_by_file_and_line_and_valid_ones_render(
    hostile_course_root: Path, toml: str, lessons: list[str]
) -> None:
    course_folder = build_course(hostile_course_root, toml, lessons)
    course, problems = load_course(course_folder)
    assert_every_problem_located(course_folder, problems)
    for lesson in course.lessons if course is not None else ():
        for media in lesson.media:
            assert media.path.resolve().is_relative_to(course_folder.resolve()), media.path
        for caps in (TELEGRAM, DISCORD):
            _assert_renders_within_limits(lesson, caps)


def _assert_renders_within_limits(lesson: Any, caps: Capabilities) -> None:
    for part in render_lesson(
        lesson,
        caps,
        delivery_id=1,
        enrollment_id=1,
        lesson_count=3,
        next_allowed=True,
        discuss_url=None,
        course_title="Hostile",
    ):
        if isinstance(part, TextPart):
            assert fits(part.text, caps.max_text_length, caps.markup), len(part.text)
            if caps.markup is Markup.TELEGRAM_HTML:
                assert telegram_html_problems(part.text) == []


LINE = re.compile(r"^.+:\d+: .+")


def test_check_answers_every_hostile_course_with_file_and_line(hostile_course_root: Path) -> None:
    lessons = [
        "---\ntitle: ok\nmedia:\n" + "".join(f"  - image: {path!r}\n" for path in MEDIA_PATHS[1:]) + "---\nx",
        "---\n"
        + "a: &a ["
        + ", ".join(["x"] * 50)
        + "]\n"
        + "".join(f"{n}: &{n} [{', '.join(['*' + p] * 50)}]\n" for p, n in zip("abcde", "bcdef", strict=True))
        + "---\nbomb",
        "x" * 1_100_000,
        "\ufeff---\ntitle: [\n---\n",
        "---\ntitle: " + "[" * 10_000 + "\n---\n",
        *MARKDOWN_BOMBS[:3],
    ]
    course = build_course(hostile_course_root, 'title = "Hostile"\nlessons = 7\n', lessons)
    result = CliRunner().invoke(cli, ["check", str(course)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    *lines, summary = result.output.strip().splitlines()
    assert lines and all(LINE.match(line) for line in lines), result.output[:2000]
    assert "error" in summary
    for fragment in ("leaves the course folder", "symlink pointing outside", "relative to the course folder"):
        assert fragment in result.output, fragment


# --- reload in a running bot ---------------------------------------------------------------------------

INSTRUCTOR = TelegramUser(1, "Ines")


def hostile_edits(course: Path, outside: Path) -> list[tuple[str, Any]]:
    """Ways an instructor (or an accident) can break the course folder while the bot runs."""
    first = sorted((course / "lessons").glob("01-*.md"))[0]

    def write(path: Path, content: bytes) -> Any:
        return lambda: path.write_bytes(content)

    def remove(path: Path) -> Any:
        return lambda: path.unlink()

    def link_out() -> None:
        first.unlink()
        first.symlink_to(outside)

    return [
        ("binary junk", write(first, os.urandom(4096))),
        (
            "billion laughs",
            write(
                first,
                (
                    "---\na: &a [x,x,x,x,x,x,x,x,x]\n"
                    + "".join(
                        f"{n}: &{n} [{','.join(['*' + p] * 9)}]\n"
                        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
                    )
                    + "title: T\n---\nbody"
                ).encode(),
            ),
        ),
        ("huge lesson", write(first, b"---\ntitle: T\n---\n" + b"x" * 2_000_000)),
        ("course.toml junk", write(course / "course.toml", b"title = [\n\xff\xfe")),
        ("course.toml gone", remove(course / "course.toml")),
        ("lesson symlinked outside", link_out),
        (
            "media path escapes",
            write(first, b"---\ntitle: T\nmedia:\n  - image: ../../../etc/passwd\n---\nx"),
        ),
    ]


async def test_reload_with_hostile_course_files_never_takes_the_bot_down(
    tmp_path: Path, clock: FakeClock, database: Database
) -> None:
    courses = tmp_path / "courses"
    shutil.copytree(SAMPLE_COURSES, courses)
    course = courses / "async-learning"
    catalog, problems = Catalog.load(courses)
    assert "async-learning" in catalog, problems
    original = {path: path.read_bytes() for path in course.rglob("*") if path.is_file()}
    caps = {"telegram": TELEGRAM}
    tools = AdminTools(database, catalog, clock, AdminPolicy({"telegram": ["1"]}), courses_root=courses)
    conversation = Conversation(database, catalog, clock, caps, admin=AdminConversation(tools, caps))
    instructor = bed_sender("1")
    learner = bed_sender("4242")
    await conversation.handle(Command(learner, "start", "async-learning"))
    outside = tmp_path / "secret.md"
    outside.write_text("---\ntitle: Secret\n---\nthe secret", encoding="utf-8")

    for label, edit in hostile_edits(course, outside):
        edit()
        reply = await conversation.handle(Command(instructor, "reload"))
        text = "\n".join(part.text for part in reply.parts if isinstance(part, TextPart))
        assert "something went wrong" not in text, (label, text)
        assert "Courses reloaded" in text, (label, text)
        assert catalog.get("async-learning") is not None, f"{label}: the running course was dropped"
        assert "Secret" not in repr(catalog.get("async-learning")), f"{label}: a file outside was read"
        answer = await conversation.handle(Command(learner, "courses"))
        assert "Learning on your own clock" in answer.parts[0].text  # type: ignore[union-attr]
        # Put the files back for the next edit.
        for path in list(course.rglob("*")):
            if path.is_symlink() or (path.is_file() and path not in original):
                path.unlink()
        for path, content in original.items():
            path.write_bytes(content)

    reply = await conversation.handle(Command(instructor, "reload"))
    assert "something went wrong" not in reply.parts[0].text  # type: ignore[union-attr]
    with Session(database.engine) as session:
        assert session.exec(select(Learner)).all(), "the learner is still there"


def bed_sender(user_id: str) -> Sender:
    return Sender("telegram", user_id, user_id, "Someone")
