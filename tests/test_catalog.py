"""The catalog serves valid courses and reloads them one by one, keeping a running course that broke."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.catalog import Catalog, CourseChange

SAMPLE = Path(__file__).resolve().parent.parent / "courses" / "async-learning"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "courses"
    shutil.copytree(SAMPLE, root / "async-learning")
    return root


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1
    path.write_text(text.replace(old, new), encoding="utf-8")


def second_course(root: Path, slug: str, title: str) -> Path:
    folder = root / slug
    (folder / "lessons").mkdir(parents=True)
    (folder / "course.toml").write_text(f'title = "{title}"\n', encoding="utf-8")
    (folder / "lessons" / "01-hello.md").write_text("---\ntitle: Hello\n---\nHi there.\n", encoding="utf-8")
    return folder


def test_load_get_and_courses_sorted_by_title(root: Path) -> None:
    second_course(root, "zz-basics", "A first course")
    catalog, problems = Catalog.load(root)
    assert problems == []
    assert [course.slug for course in catalog.courses()] == ["zz-basics", "async-learning"]
    course = catalog.get("async-learning")
    assert course is not None
    assert course.title == "Learning on your own clock"
    assert catalog.get("nope") is None
    assert "zz-basics" in catalog
    assert len(catalog) == 2


def test_load_leaves_out_an_invalid_course_and_reports_it(root: Path) -> None:
    broken = second_course(root, "broken", "Broken")
    (broken / "lessons" / "01-hello.md").write_text("---\ntitel: Hello\n---\n", encoding="utf-8")
    catalog, problems = Catalog.load(root)
    assert [course.slug for course in catalog.courses()] == ["async-learning"]
    [problem] = problems
    assert (problem.path, problem.line) == (broken / "lessons" / "01-hello.md", 2)


def test_reload_without_changes_reports_none(root: Path) -> None:
    catalog, _ = Catalog.load(root)
    before = catalog.get("async-learning")
    report = catalog.reload(root)
    assert report.unchanged
    assert report.problems == ()
    assert report.summary() == "no changes"
    assert catalog.get("async-learning") == before


def test_reload_reports_changed_added_and_removed_lessons(root: Path) -> None:
    catalog, _ = Catalog.load(root)
    course = root / "async-learning"
    edit(course / "lessons" / "03-motivation.md", "There will be days", "Some days")
    (course / "lessons" / "08-finishing.md").unlink()
    (course / "lessons" / "09-bonus.md").write_text("---\ntitle: Bonus\n---\nMore.\n", encoding="utf-8")
    edit(course / "course.toml", '    "finishing",\n', '    "bonus",\n')
    report = catalog.reload(root)
    assert report.changed == (
        CourseChange(
            slug="async-learning",
            lessons_added=("bonus",),
            lessons_removed=("finishing",),
            lessons_changed=("motivation",),
        ),
    )
    assert report.errors == ()
    served = catalog.get("async-learning")
    assert served is not None
    assert served.lesson("finishing") is None
    motivation = served.lesson("motivation")
    assert motivation is not None
    assert "Some days" in motivation.body_markdown
    assert "new lessons bonus" in report.summary()


def test_reload_spots_new_media_content_and_reordering(root: Path) -> None:
    catalog, _ = Catalog.load(root)
    course = root / "async-learning"
    with (course / "media" / "session-chime.wav").open("ab") as chime:
        chime.write(b"\x00\x00")
    edit(
        course / "course.toml",
        '    "motivation",\n    "notes-that-last",\n',
        '    "notes-that-last",\n    "motivation",\n',
    )
    report = catalog.reload(root)
    [change] = report.changed
    assert change.lessons_changed == ("your-own-clock",)
    assert change.order_changed
    assert not change.details_changed


def test_reload_keeps_the_running_version_of_a_course_that_became_invalid(root: Path) -> None:
    catalog, _ = Catalog.load(root)
    running = catalog.get("async-learning")
    lesson = root / "async-learning" / "lessons" / "02-time-and-cadence.md"
    edit(lesson, "\ntitle: Choosing", "\ntitel: Choosing")
    edit(root / "async-learning" / "course.toml", 'title = "Learning', 'title = "Unlearning')
    second_course(root, "extra", "Extra")
    report = catalog.reload(root)
    assert catalog.get("async-learning") is running
    assert report.kept_old == ("async-learning",)
    assert report.added == ("extra",)
    assert report.changed == ()
    [error] = report.errors
    assert (error.path, error.line) == (lesson, 2)
    assert "did you mean 'title'" in error.message
    assert "kept the running version (new one has errors): async-learning" in report.summary()
    # Fixed: the new version goes live.
    edit(lesson, "\ntitel: Choosing", "\ntitle: Choosing")
    report = catalog.reload(root)
    [change] = report.changed
    assert change.details_changed
    served = catalog.get("async-learning")
    assert served is not None
    assert served.title == "Unlearning on your own clock"


def test_reload_removes_a_deleted_course_and_rejects_a_new_broken_one(root: Path) -> None:
    second_course(root, "extra", "Extra")
    catalog, _ = Catalog.load(root)
    shutil.rmtree(root / "extra")
    broken = second_course(root, "broken", "Broken")
    (broken / "course.toml").write_text("title = \n", encoding="utf-8")
    report = catalog.reload(root)
    assert report.removed == ("extra",)
    assert report.rejected == ("broken",)
    assert catalog.get("extra") is None
    assert catalog.get("broken") is None
    assert [error.path for error in report.errors] == [broken / "course.toml"]


def test_reload_from_a_missing_root_keeps_everything(root: Path, tmp_path: Path) -> None:
    catalog, _ = Catalog.load(root)
    report = catalog.reload(tmp_path / "moved-away")
    assert report.removed == ()
    assert report.kept_old == ("async-learning",)
    assert catalog.get("async-learning") is not None
    assert report.errors
