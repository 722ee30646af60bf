"""The course loader and checker: every fault is reported with its file and line, and nothing crashes it."""

from __future__ import annotations

import hashlib
import os
import shutil
import string
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.content import MediaKind, Unlock
from bot.course_check import Problem, display_path
from bot.course_loader import check_courses, course_folders, load_course

SAMPLE = Path(__file__).resolve().parent.parent / "courses" / "async-learning"
WELCOME = "lessons/01-your-own-clock.md"
CADENCE = "lessons/02-time-and-cadence.md"
MOTIVATION = "lessons/03-motivation.md"
NOTES = "lessons/04-notes-that-last.md"
SPACED = "lessons/06-spaced-review.md"
FINISHING = "lessons/08-finishing.md"


@pytest.fixture
def course(tmp_path: Path) -> Path:
    """A private copy of the sample course to plant faults in."""
    return Path(shutil.copytree(SAMPLE, tmp_path / "async-learning", symlinks=True))


def replace_once(path: Path, old: str, new: str) -> int:
    """Replace `old` (which must occur exactly once) and return the 1-based line where `new` starts."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path}"
    at = text.index(old)
    path.write_text(text.replace(old, new), encoding="utf-8")
    return text.count("\n", 0, at) + 1


def write_lesson(course: Path, name: str, text: str) -> Path:
    path = course / "lessons" / name
    path.write_text(text, encoding="utf-8")
    return path


def find(problems: list[Problem], path: Path, line: int, fragment: str) -> Problem:
    """The one problem at `path:line` whose message contains `fragment`; fails listing them all."""
    matches = [p for p in problems if p.path == path and p.line == line and fragment in p.message]
    listing = "\n".join(f"  {p} [{p.severity}]" for p in problems)
    assert len(matches) == 1, f"expected {path.name}:{line}: ...{fragment}... in:\n{listing}"
    return matches[0]


def errors(problems: list[Problem]) -> list[Problem]:
    return [problem for problem in problems if problem.is_error]


# --- faults planted in a copy of the sample course: (what, plant) -> (file, line, message fragment) ----

Fault = Callable[[Path], tuple[str, int, str]]


def misspelt_title(course: Path) -> tuple[str, int, str]:
    line = replace_once(course / CADENCE, "\ntitle: Choosing", "\ntitel: Choosing") + 1
    return CADENCE, line, "unknown key 'titel' (did you mean 'title'?)"


def missing_media(course: Path) -> tuple[str, int, str]:
    line = replace_once(
        course / SPACED, "image: media/forgetting-curve.png", "image: media/forgeting-curve.png"
    )
    return SPACED, line, "image 'media/forgeting-curve.png': no such file"


def bad_yaml(course: Path) -> tuple[str, int, str]:
    line = replace_once(course / MOTIVATION, "discussion: What is one", "discussion: [What is one")
    return MOTIVATION, line, "YAML syntax error"


def long_quiz_option(course: Path) -> tuple[str, int, str]:
    line = replace_once(
        course / NOTES, "    - A photo of the screen\n", "    - A photo" + " very" * 30 + "\n"
    )
    return NOTES, line, "quiz option 4 is 157 characters; the limit is 100"


def media_leaving_folder(course: Path) -> tuple[str, int, str]:
    (course.parent / "outside.pdf").write_bytes(b"%PDF-1.4 secret")
    line = replace_once(
        course / NOTES, "document: media/weekly-review-worksheet.pdf", "document: ../outside.pdf"
    )
    return NOTES, line, "leaves the course folder"


def media_symlink_outside(course: Path) -> tuple[str, int, str]:
    (course.parent / "secret.wav").write_bytes(b"RIFF not really")
    (course / "media" / "chime.wav").symlink_to(course.parent / "secret.wav")
    line = replace_once(course / WELCOME, "audio: media/session-chime.wav", "audio: media/chime.wav")
    return WELCOME, line, "symlink pointing outside the course folder"


def duplicate_slug(course: Path) -> tuple[str, int, str]:
    shutil.copy(course / FINISHING, course / "lessons" / "09-finishing.md")
    return "lessons/09-finishing.md", 1, "duplicate lesson slug 'finishing': 08-finishing.md"


def unknown_cadence(course: Path) -> tuple[str, int, str]:
    line = replace_once(course / "course.toml", 'default_cadence = "daily"', 'default_cadence = "dayly"')
    return "course.toml", line, "unknown cadence 'dayly'"


def toml_syntax_error(course: Path) -> tuple[str, int, str]:
    line = replace_once(course / "course.toml", 'language = "en"', 'language = "en')
    return "course.toml", line, "TOML syntax error"


FAULTS: list[Fault] = [
    misspelt_title,
    missing_media,
    bad_yaml,
    long_quiz_option,
    media_leaving_folder,
    media_symlink_outside,
    duplicate_slug,
    unknown_cadence,
    toml_syntax_error,
]


@pytest.mark.parametrize("plant", FAULTS, ids=lambda fault: fault.__name__)
def test_each_planted_fault_is_reported_at_its_file_and_line(course: Path, plant: Fault) -> None:
    relative, line, fragment = plant(course)
    loaded, problems = load_course(course)
    assert loaded is None
    problem = find(problems, course / relative, line, fragment)
    assert problem.severity == "error"
    assert len(errors(problems)) == 1, "one fault, one error"


def test_every_fault_is_reported_not_just_the_first(course: Path) -> None:
    # The TOML error stops course.toml from being read, so the cadence fault is planted on its own.
    expected = [plant(course) for plant in FAULTS if plant is not unknown_cadence]
    loaded, problems = load_course(course)
    assert loaded is None
    for relative, line, fragment in expected:
        find(problems, course / relative, line, fragment)
    assert len(errors(problems)) == len(expected)


def test_problem_prints_as_file_line_message_relative_to_the_current_folder(
    course: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    misspelt_title(course)
    monkeypatch.chdir(course.parent)
    [problem] = load_course(course)[1]
    assert str(problem) == f"async-learning/{CADENCE}:2: unknown key 'titel' (did you mean 'title'?)"
    monkeypatch.chdir(course / "media")
    assert display_path(problem.path) == str(problem.path)


# --- one check at a time, each with its line ---------------------------------------------------------


def lesson(front_matter: str, body: str = "Some words.") -> str:
    return f"---\n{front_matter.strip()}\n---\n{body}\n"


def check_lesson(course: Path, front_matter: str, body: str = "Some words.") -> tuple[Path, list[Problem]]:
    path = write_lesson(course, "09-extra.md", lesson(front_matter, body))
    return path, load_course(course)[1]


@pytest.mark.parametrize(
    ("front_matter", "line", "fragment"),
    [
        (
            "title: T\nmedia:\n  - image: media/forgetting-curve.png\n    captoin: hi",
            4,
            "did you mean 'caption'",
        ),
        ("title: T\nquiz:\n  question: Q?\n  optoins: [a, b]\n  answer: a", 4, "did you mean 'options'"),
        ("title: T\nunlok: after_done", 2, "did you mean 'unlock'"),
        ("title: T\nunlock: after_dun", 2, "unknown unlock 'after_dun' (did you mean 'after_done'?)"),
        ("title: 42", 1, "title must be text, not a number (put it in quotes)"),
        ("title: [a, b]", 1, "title must be text, not a list"),
        (
            "title: T\nquiz:\n  question: Q?\n  options: a, b\n  answer: 1",
            4,
            "options must be a list, not text",
        ),
        (
            "title: T\nquiz:\n  question: Q?\n  options: [yes, no]\n  answer: 1",
            4,
            "not true/false (put it in quotes)",
        ),
        ("title: T\nquiz:\n  question: Q?\n  options: [only]\n  answer: 1", 4, "2 to 10 options, not 1"),
        (
            "title: T\nquiz:\n  question: Q?\n  options: [a, b, c, d, e, f, g, h, i, j, k]\n  answer: 1",
            4,
            "2 to 10 options, not 11",
        ),
        (
            "title: T\nquiz:\n  question: Q?\n  options: [a, b]\n  answer: c",
            5,
            "answer 'c' is not one of the options",
        ),
        (
            "title: T\nquiz:\n  question: Q?\n  options: [a, b]\n  answer: 3",
            5,
            "not an option number (1 to 2)",
        ),
        ("title: T\nquiz:\n  question: Q?\n  options: [a, a]\n  answer: 1", 4, "option 2 repeats option 1"),
        ("title: T\nquiz:\n  question: Q?\n  options: [a, b]", 2, "the quiz needs an answer"),
        (f"title: T\nquiz:\n  question: {'Q' * 301}\n  options: [a, b]\n  answer: 1", 3, "301 characters"),
        (
            f"title: T\nquiz:\n  question: Q\n  options: [a, b]\n  answer: 1\n  explanation: {'E' * 201}",
            6,
            "explanation is 201 characters; the limit is 200",
        ),
        ("title: T\nnot_before: 01/09/2025", 2, "not_before must be a date written YYYY-MM-DD"),
        ("title: T\nnot_before: 2025-13-01", 2, "'2025-13-01' is not a valid date"),
        ("title: T\nnot_before: 2025-09-01 10:00", 2, "not_before must be a date"),
        ("title: T\nmin_days_after_previous: -1", 2, "min_days_after_previous must be a whole number"),
        ("title: T\nmin_days_after_previous: true", 2, "min_days_after_previous must be a whole number"),
        ("title: T\ndiscussion:\n  promt: Hi", 3, "did you mean 'prompt'"),
        ("title: T\nmedia: media/forgetting-curve.png", 2, "media must be a list"),
        ("title: T\nmedia:\n  - media/forgetting-curve.png", 3, "a media entry is a mapping"),
        ("title: T\nmedia:\n  - image: a.png\n    audio: b.wav", 3, "exactly one of"),
        ("title: T\nmedia:\n  - image: /etc/hostname", 3, "relative to the course folder"),
        ("title: T\nmedia:\n  - image: media/weekly-review-worksheet.pdf", 3, "images must be PNG, JPEG"),
        ("title: T\ntitle: U", 2, "duplicate key 'title' (first at line 2)"),
        ("title: !!python/object:os.system ls", 1, "unsupported YAML tag"),
        ("- title\n- T", 1, "must be keys and values (title: ...), not a list"),
        ("just some words", 1, "must be keys and values (title: ...), not text"),
        ("media: []", 1, "needs a title"),
    ],
)
def test_lesson_front_matter_checks(course: Path, front_matter: str, line: int, fragment: str) -> None:
    path, problems = check_lesson(course, front_matter)
    # Front matter line n is file line n + 1, after the opening '---'.
    problem = find(problems, path, line + 1, fragment)
    assert problem.is_error


def test_file_level_lesson_problems(course: Path) -> None:
    lessons = course / "lessons"
    (lessons / "10-no-front-matter.md").write_text("# Just Markdown\n", encoding="utf-8")
    (lessons / "11-unclosed.md").write_text("---\ntitle: T\nbody\n", encoding="utf-8")
    (lessons / "12-latin1.md").write_bytes(b"---\ntitle: caf\xe9\n---\n")
    (lessons / "13-binary.md").write_bytes(b"---\ntitle: T\n---\n\x00\x01\x02")
    (lessons / "14-huge.md").write_bytes(b"---\ntitle: T\n---\n" + b"words " * 200_000)
    (lessons / "15-empty.md").write_text("---\ntitle: Nothing here\n---\n\n", encoding="utf-8")
    (lessons / "Welcome.md").write_text(lesson("title: T"), encoding="utf-8")
    (lessons / "notes.txt").write_text("draft", encoding="utf-8")
    problems = load_course(course)[1]
    find(problems, lessons / "10-no-front-matter.md", 1, "starts with YAML front matter")
    find(problems, lessons / "11-unclosed.md", 1, "never closed")
    find(problems, lessons / "12-latin1.md", 2, "not UTF-8 text (byte 0xe9)")
    find(problems, lessons / "13-binary.md", 4, "NUL character")
    find(problems, lessons / "14-huge.md", 1, "the limit is 1.0 MB")
    assert find(problems, lessons / "15-empty.md", 2, "no text, no media and no quiz").severity == "warning"
    find(problems, lessons / "Welcome.md", 1, "named NN-slug.md")
    assert find(problems, lessons / "notes.txt", 1, "not a lesson").severity == "warning"


def test_course_toml_checks(course: Path) -> None:
    toml = course / "course.toml"
    replace_once(toml, 'title = "Learning', 'titel = "Learning')
    time_line = replace_once(toml, 'default_time = "08:00"', 'default_time = "25:00"')
    list_line = replace_once(toml, '    "motivation",\n', '    "motivation",\n    "no-such-lesson",\n') + 1
    replace_once(toml, "first_lesson_immediately = true", "first_lesson_immediately = 1")
    toml.write_text(toml.read_text() + '\n[discussion]\ntelegram_chat = "-100123"\n', encoding="utf-8")
    problems = load_course(course)[1]
    find(problems, toml, 3, "unknown key 'titel' (did you mean 'title'?)")
    find(problems, toml, 1, "needs a title")
    find(problems, toml, time_line, "default_time")
    find(problems, toml, list_line, "no lesson file lessons/NN-no-such-lesson.md")
    find(problems, toml, time_line + 1, "first_lesson_immediately must be true or false")
    last = toml.read_text().count("\n")
    find(problems, toml, last, "unknown key 'telegram_chat' (did you mean 'telegram_chat_id'?)")


def test_lesson_list_leaving_out_a_lesson_is_a_warning(course: Path) -> None:
    replace_once(course / "course.toml", '    "finishing",\n', "")
    loaded, problems = load_course(course)
    assert loaded is not None
    assert [lesson.slug for lesson in loaded.lessons][-1] == "missed-days"
    assert find(problems, course / FINISHING, 1, "not in course.toml's lessons list").severity == "warning"


def test_without_a_lesson_list_the_file_names_give_the_order(course: Path) -> None:
    text = (course / "course.toml").read_text()
    start, end = text.index("lessons = ["), text.index("]\n", text.index("lessons = [")) + 2
    (course / "course.toml").write_text(text[:start] + text[end:])
    (course / "lessons" / "06-spaced-review.md").rename(course / "lessons" / "10-spaced-review.md")
    loaded, problems = load_course(course)
    assert loaded is not None
    # lesson 7 unlocks after lesson 6's quiz; lesson 6 now comes last, so that gate waits for a Done instead
    find(
        problems,
        course / "lessons" / "07-missed-days.md",
        3,
        "previous lesson 'discussion-threads' has no quiz",
    )
    slugs = [lesson.slug for lesson in loaded.lessons]
    assert slugs[-1] == "spaced-review"
    assert [lesson.number for lesson in loaded.lessons] == list(range(1, 9))


def test_media_size_limits(course: Path) -> None:
    media = course / "media"
    with (media / "big.png").open("wb") as handle:
        handle.truncate(10_000_001)
    with (media / "talk.mp4").open("wb") as handle:
        handle.truncate(11 * 1024 * 1024)
    with (media / "film.mp4").open("wb") as handle:
        handle.truncate(50_000_001)
    (media / "nothing.pdf").write_bytes(b"")
    front_matter = (
        "title: T\nmedia:\n  - image: media/big.png\n  - video: media/talk.mp4\n"
        "  - video: media/film.mp4\n  - document: media/nothing.pdf"
    )
    path, problems = check_lesson(course, front_matter)
    find(problems, path, 4, "Telegram takes photos up to 10 MB")
    warning = find(problems, path, 5, "over Discord's 10 MiB attachment limit")
    assert warning.severity == "warning"
    assert "discord.media_base_url" in warning.message
    find(problems, path, 6, "Telegram bots may upload up to 50 MB")
    find(problems, path, 7, "is empty")
    assert len(errors(problems)) == 3


def test_a_file_just_under_discord_limit_is_fine_and_hashed(course: Path) -> None:
    (course / "media" / "clip.mp4").write_bytes(b"\x00\x01" * 1000)
    replace_once(course / "course.toml", '    "finishing",\n', '    "finishing",\n    "extra",\n')
    path = write_lesson(
        course, "09-extra.md", lesson("title: T\nmedia:\n  - video: media/clip.mp4\n    caption: A clip")
    )
    loaded, problems = load_course(course)
    assert problems == []
    assert loaded is not None
    extra = loaded.lesson("extra")
    assert extra is not None
    assert extra.source_path == path
    [clip] = extra.media
    assert clip.kind is MediaKind.VIDEO
    assert clip.caption == "A clip"
    assert clip.size_bytes == 2000
    assert clip.sha256 == hashlib.sha256(b"\x00\x01" * 1000).hexdigest()
    assert clip.path == (course / "media" / "clip.mp4").resolve()


def test_drip_rules_and_discussion_forms_are_read(course: Path) -> None:
    write_lesson(
        course,
        "09-extra.md",
        lesson(
            "title: T\nmin_days_after_previous: 2\nnot_before: 2030-01-15\nunlock: after_done\n"
            "discussion:\n  prompt: What next?"
        ),
    )
    write_lesson(course, "10-more.md", lesson("title: U\nnot_before: '2030-02-01'\ndiscussion: Why?"))
    replace_once(
        course / "course.toml", '    "finishing",\n', '    "finishing",\n    "extra",\n    "more",\n'
    )
    loaded, problems = load_course(course)
    assert problems == []
    assert loaded is not None
    extra, more = loaded.lesson("extra"), loaded.lesson("more")
    assert extra is not None
    assert more is not None
    assert (extra.drip.min_days_after_previous, extra.drip.unlock) == (2, Unlock.AFTER_DONE)
    assert str(extra.drip.not_before) == "2030-01-15"
    assert str(more.drip.not_before) == "2030-02-01"
    assert (extra.discussion_prompt, more.discussion_prompt) == ("What next?", "Why?")
    assert (extra.number, more.number) == (9, 10)


def test_gate_on_the_first_lesson_is_a_warning(course: Path) -> None:
    line = replace_once(course / WELCOME, "title: Welcome", "unlock: after_done\ntitle: Welcome")
    loaded, problems = load_course(course)
    assert loaded is not None
    assert find(problems, course / WELCOME, line, "no effect on the first lesson").severity == "warning"


def test_lesson_file_symlinked_outside_the_course(course: Path) -> None:
    outside = course.parent / "elsewhere.md"
    outside.write_text(lesson("title: T"), encoding="utf-8")
    (course / "lessons" / "09-extra.md").symlink_to(outside)
    find(load_course(course)[1], course / "lessons" / "09-extra.md", 1, "symlink pointing outside")


def test_empty_course_and_missing_course_toml(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    (empty / "lessons").mkdir(parents=True)
    (empty / "course.toml").write_text('title = "Empty"\n', encoding="utf-8")
    loaded, problems = load_course(empty)
    assert loaded is None
    find(problems, empty / "course.toml", 1, "the course has no lessons")
    no_toml = tmp_path / "no-toml"
    shutil.copytree(SAMPLE / "lessons", no_toml / "lessons")
    find(load_course(no_toml)[1], no_toml / "course.toml", 1, "file not found")


def test_course_slug_comes_from_a_plain_folder_name(tmp_path: Path) -> None:
    folder = Path(shutil.copytree(SAMPLE, tmp_path / "Async Learning"))
    find(load_course(folder)[1], folder / "course.toml", 1, "the folder name 'Async Learning'")


def test_check_courses_takes_a_root_a_course_or_its_toml(course: Path, tmp_path: Path) -> None:
    assert check_courses(tmp_path) == []
    assert check_courses(course) == []
    assert check_courses(course / "course.toml") == []
    assert course_folders(tmp_path)[0] == [course]
    (tmp_path / "draft" / "lessons").mkdir(parents=True)
    [warning] = check_courses(tmp_path)
    assert (warning.path, warning.severity) == (tmp_path / "draft" / "course.toml", "warning")
    [missing] = check_courses(tmp_path / "nowhere")
    assert (missing.path, missing.line, missing.message) == (tmp_path / "nowhere", 1, "no such folder")
    shutil.rmtree(course)
    [none] = [problem for problem in check_courses(tmp_path) if problem.is_error]
    assert "no courses here" in none.message


# --- hostile front matter: never a crash, always a file and a line ------------------------------------

BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.mark.parametrize(
    ("front_matter", "fragment"),
    [
        (BILLION_LAUGHS + "title: T", "expands to more than"),
        ("title: " + "[" * 5000 + "]" * 5000, "nests more than"),
        ("title: T\nloop: &loop [*loop]", "nests more than"),
        ("title: T\n" + "x" * 70_000, "front matter is over"),
    ],
    ids=["billion-laughs", "deep-nesting", "recursive-alias", "long-front-matter"],
)
def test_hostile_front_matter_is_refused_quickly(course: Path, front_matter: str, fragment: str) -> None:
    path, problems = check_lesson(course, front_matter)
    [problem] = [problem for problem in problems if problem.path == path]
    assert fragment in problem.message
    assert problem.line >= 1


@pytest.fixture(scope="module")
def fuzz_course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    course = tmp_path_factory.mktemp("fuzz") / "fuzz"
    (course / "lessons").mkdir(parents=True)
    (course / "media").mkdir()
    (course / "media" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (course / "course.toml").write_text('title = "Fuzz"\n', encoding="utf-8")
    return course


def assert_located(course: Path, lesson_bytes: bytes) -> None:
    path = course / "lessons" / "01-fuzz.md"
    path.write_bytes(lesson_bytes)
    loaded, problems = load_course(course)
    lines = lesson_bytes.count(b"\n") + 1
    for problem in problems:
        assert problem.path == path
        assert 1 <= problem.line <= lines, problem
        assert problem.message
        assert str(problem).count(":") >= 2
    assert (loaded is None) == any(problem.is_error for problem in problems)


KEYS = [
    "title",
    "media",
    "quiz",
    "unlock",
    "discussion",
    "not_before",
    "min_days_after_previous",
    "image",
    "audio",
    "caption",
    "question",
    "options",
    "answer",
    "explanation",
    "prompt",
    "titel",
    "<<",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True),
    st.text(max_size=120),
    st.dates().map(str),
    st.sampled_from(["media/a.png", "../a.png", "/etc/passwd", "after_quiz", "after_done", "2025-02-30"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=12) | st.dictionaries(st.sampled_from(KEYS), children, max_size=6)
    ),
    max_leaves=30,
)
YAML_TOKENS = [
    *string.printable,
    "&a ",
    "*a",
    "&b ",
    "*b",
    "- ",
    ": ",
    "!!",
    "\t",
    "é",
    "\u2028",
    "\x85",
    "\ufeff",
]
YAMLISH = st.lists(st.sampled_from(YAML_TOKENS), max_size=200).map("".join)
FUZZ_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ_SETTINGS
@given(front_matter=st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=8), body=st.text(max_size=50))
def test_fuzz_dumped_dictionaries(fuzz_course: Path, front_matter: dict[str, object], body: str) -> None:
    dumped = yaml.safe_dump(front_matter, allow_unicode=True)
    assert_located(fuzz_course, f"---\n{dumped}---\n{body}".encode())


@FUZZ_SETTINGS
@given(front_matter=YAMLISH)
def test_fuzz_yaml_like_text(fuzz_course: Path, front_matter: str) -> None:
    assert_located(fuzz_course, f"---\ntitle: T\n{front_matter}\n---\nbody\n".encode())


@FUZZ_SETTINGS
@given(
    anchors=st.lists(
        st.tuples(st.sampled_from("abc"), st.sampled_from("abc"), st.integers(1, 12)), max_size=8
    )
)
def test_fuzz_anchors_and_aliases(fuzz_course: Path, anchors: list[tuple[str, str, int]]) -> None:
    lines = ["x: &a [1, 2]", "y: &b {k: v}", "z: &c t"]
    for index, (name, alias, copies) in enumerate(anchors):
        lines.append(f"k{index}: &{name} [{', '.join([f'*{alias}'] * copies)}]")
    assert_located(fuzz_course, ("---\n" + "\n".join(lines) + "\ntitle: T\n---\nbody\n").encode())


@FUZZ_SETTINGS
@given(junk=st.binary(max_size=400), prefix=st.sampled_from([b"", b"---\n", b"---\ntitle: T\n"]))
def test_fuzz_junk_bytes(fuzz_course: Path, junk: bytes, prefix: bytes) -> None:
    assert_located(fuzz_course, prefix + junk + b"\n---\n")


def test_unreadable_lesson_is_a_problem_not_a_crash(course: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can read any file")
    (course / FINISHING).chmod(0)
    find(load_course(course)[1], course / FINISHING, 1, "cannot read this file")
