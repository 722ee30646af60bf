"""The release planner against a real database: on time, exactly once, catch-up, gates, DST, bursts."""

from __future__ import annotations

import datetime as dt
import logging
import threading

import pytest
from sqlalchemy import Engine, func, select, update
from sqlmodel import Session

from benchmarks.seed import generated_course, seed_learners
from bot.catalog import Catalog
from bot.content import Unlock
from bot.models import Delivery, DeliveryKind, DeliveryStatus, Enrollment, EnrollmentStatus
from scheduler import planner
from scheduler.planner import release_due
from tests.release_helpers import (
    BERLIN,
    UTC,
    add_enrollment,
    berlin,
    deliveries,
    enrollment,
    make_course,
    released_counts,
    still_due,
)

# --- on time, exactly once ---------------------------------------------------------------------------


def test_a_lesson_is_released_at_its_slot_and_not_before(engine: Engine) -> None:
    course = make_course()
    catalog = Catalog([course])
    slot = berlin(2026, 3, 2, 8, 0)
    _, enrollment_id = add_enrollment(engine, course, due=slot)

    early = release_due(engine, catalog, slot - dt.timedelta(seconds=1))
    assert early.released == 0
    assert deliveries(engine) == []

    now = slot + dt.timedelta(seconds=3)
    report = release_due(engine, catalog, now)

    assert report.released == 1
    assert report.max_lateness_s == pytest.approx(3.0)
    [delivery] = deliveries(engine)
    assert delivery.kind is DeliveryKind.LESSON
    assert delivery.status is DeliveryStatus.PENDING
    assert delivery.lesson_slug == "lesson-1"
    assert delivery.due_at == slot
    assert delivery.next_attempt_at == now
    after = enrollment(engine, enrollment_id)
    assert after.last_lesson_slug == "lesson-1"
    assert after.next_lesson_slug == "lesson-2"
    assert after.lessons_released == 1
    assert after.last_release_at == slot
    assert after.next_release_at == berlin(2026, 3, 3, 8, 0)
    assert after.status is EnrollmentStatus.ACTIVE


def test_calling_the_planner_twice_releases_once(engine: Engine) -> None:
    course = make_course()
    catalog = Catalog([course])
    slot = berlin(2026, 3, 2, 8, 0)
    _, enrollment_id = add_enrollment(engine, course, due=slot)

    first = release_due(engine, catalog, slot)
    second = release_due(engine, catalog, slot)

    assert (first.released, second.released) == (1, 0)
    assert len(deliveries(engine, enrollment_id)) == 1
    assert enrollment(engine, enrollment_id).lessons_released == 1


def test_two_planners_racing_release_every_lesson_exactly_once(engine: Engine) -> None:
    course = make_course()
    catalog = Catalog([course])
    slot = berlin(2026, 3, 2, 8, 0)
    seed_learners(engine, course, 600, slot - dt.timedelta(days=1))
    with engine.begin() as connection:
        connection.execute(update(Enrollment).values(next_release_at=slot))  # type: ignore[arg-type]
    before = released_counts(engine)
    reports = []
    barrier = threading.Barrier(2)

    def planner() -> None:
        barrier.wait()
        reports.append(release_due(engine, catalog, slot, batch_size=25))

    threads = [threading.Thread(target=planner) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(report.released for report in reports) == 600
    rows = deliveries(engine)
    assert len(rows) == 600
    assert len({(row.enrollment_id, row.lesson_slug) for row in rows}) == 600
    assert released_counts(engine) == {key: value + 1 for key, value in before.items()}
    assert still_due(engine, slot) == 0


def test_an_existing_delivery_blocks_a_second_release_of_that_lesson(engine: Engine) -> None:
    course = make_course()
    catalog = Catalog([course])
    slot = berlin(2026, 3, 2, 8, 0)
    learner_id, enrollment_id = add_enrollment(engine, course, due=slot)
    with Session(engine) as session:
        session.add(
            Delivery(
                enrollment_id=enrollment_id,
                learner_id=learner_id,
                course_slug=course.slug,
                lesson_slug="lesson-1",
                due_at=slot,
                next_attempt_at=slot,
            )
        )
        session.commit()

    report = release_due(engine, catalog, slot)

    assert report.released == 0
    assert len(deliveries(engine, enrollment_id)) == 1
    assert enrollment(engine, enrollment_id).next_lesson_slug == "lesson-2"


# --- catch-up, gates, the end of the course -----------------------------------------------------------


def test_after_five_days_down_one_overdue_lesson_then_the_cadence_resumes(
    sqlite_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    course = make_course()
    catalog = Catalog([course])
    monday = berlin(2026, 3, 2, 8, 0)
    learner_id, enrollment_id = add_enrollment(sqlite_engine, course, due=monday)
    back = berlin(2026, 3, 7, 9, 15)

    with caplog.at_level(logging.INFO, logger="scheduler.planner"):
        report = release_due(sqlite_engine, catalog, back)

    assert report.released == 1
    assert report.missed_slots == 1
    assert report.max_lateness_s == pytest.approx((back - monday).total_seconds())
    [delivery] = deliveries(sqlite_engine)
    assert (delivery.lesson_slug, delivery.due_at) == ("lesson-1", monday)
    after = enrollment(sqlite_engine, enrollment_id)
    assert after.next_release_at == berlin(2026, 3, 8, 8, 0)
    assert after.next_lesson_slug == "lesson-2"
    missed = [record.getMessage() for record in caplog.records if "missed release" in record.getMessage()]
    assert len(missed) == 1
    assert f"learner {learner_id}" in missed[0]
    assert "lesson-1" in missed[0]
    assert "delivering one overdue lesson" in missed[0]

    assert release_due(sqlite_engine, catalog, back + dt.timedelta(hours=12)).released == 0
    next_day = release_due(sqlite_engine, catalog, berlin(2026, 3, 8, 8, 0))
    assert next_day.released == 1
    assert next_day.missed_slots == 0
    assert [row.lesson_slug for row in deliveries(sqlite_engine)] == ["lesson-1", "lesson-2"]


def test_a_release_on_time_is_not_reported_as_missed(
    sqlite_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    course = make_course()
    slot = berlin(2026, 3, 2, 8, 0)
    add_enrollment(sqlite_engine, course, due=slot)

    with caplog.at_level(logging.INFO, logger="scheduler.planner"):
        report = release_due(sqlite_engine, Catalog([course]), slot + dt.timedelta(hours=23))

    assert (report.released, report.missed_slots) == (1, 0)
    assert "missed release" not in caplog.text


@pytest.mark.parametrize(
    ("unlock", "quiz_on", "gate"),
    [(Unlock.AFTER_DONE, (), "done"), (Unlock.AFTER_QUIZ, (1,), "quiz")],
)
def test_a_gated_next_lesson_leaves_no_scheduled_release(
    sqlite_engine: Engine, unlock: Unlock, quiz_on: tuple[int, ...], gate: str
) -> None:
    course = make_course(unlock={2: unlock}, quiz_on=quiz_on)
    slot = berlin(2026, 3, 2, 8, 0)
    _, enrollment_id = add_enrollment(sqlite_engine, course, due=slot)

    report = release_due(sqlite_engine, Catalog([course]), slot)

    assert report.released == 1
    after = enrollment(sqlite_engine, enrollment_id)
    assert after.next_release_at is None
    assert after.waiting_for == gate
    assert after.next_lesson_slug == "lesson-2"
    assert after.status is EnrollmentStatus.ACTIVE


def test_releasing_the_last_lesson_finishes_the_course(engine: Engine) -> None:
    course = make_course(lessons=3)
    slot = berlin(2026, 3, 2, 8, 0)
    _, enrollment_id = add_enrollment(
        engine, course, due=slot, next_lesson="lesson-3", last_lesson="lesson-2", released=2
    )
    now = slot + dt.timedelta(minutes=1)

    report = release_due(engine, Catalog([course]), now)

    assert (report.released, report.finished) == (1, 1)
    after = enrollment(engine, enrollment_id)
    assert after.status is EnrollmentStatus.FINISHED
    assert after.finished_at == now
    assert after.next_release_at is None
    assert after.next_lesson_slug is None
    assert after.last_lesson_slug == "lesson-3"
    assert after.lessons_released == 3


def test_a_removed_lesson_is_skipped_to_the_next_one_with_a_log_line(
    sqlite_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    course = make_course(lessons=4)
    slot = berlin(2026, 3, 2, 8, 0)
    learner_id, enrollment_id = add_enrollment(
        sqlite_engine, course, due=slot, next_lesson="old-lesson", last_lesson="lesson-2", released=2
    )

    with caplog.at_level(logging.WARNING, logger="scheduler.planner"):
        report = release_due(sqlite_engine, Catalog([course]), slot)

    assert (report.released, report.skipped_missing_lesson) == (1, 1)
    assert [row.lesson_slug for row in deliveries(sqlite_engine)] == ["lesson-3"]
    after = enrollment(sqlite_engine, enrollment_id)
    assert (after.last_lesson_slug, after.next_lesson_slug) == ("lesson-3", "lesson-4")
    [line] = [record.getMessage() for record in caplog.records if "old-lesson" in record.getMessage()]
    assert f"learner {learner_id}" in line
    assert "lesson-3" in line


def test_a_removed_lesson_with_nothing_left_to_release_finishes_the_course(sqlite_engine: Engine) -> None:
    course = make_course(lessons=2)
    slot = berlin(2026, 3, 2, 8, 0)
    learner_id, enrollment_id = add_enrollment(
        sqlite_engine, course, due=slot, next_lesson="old-lesson", last_lesson="lesson-2", released=2
    )

    report = release_due(sqlite_engine, Catalog([course]), slot)

    assert (report.released, report.finished, report.skipped_missing_lesson) == (0, 1, 1)
    after = enrollment(sqlite_engine, enrollment_id)
    assert after.status is EnrollmentStatus.FINISHED
    assert after.next_release_at is None
    assert after.lessons_released == 2
    del learner_id


def test_a_course_that_is_not_loaded_postpones_its_releases(sqlite_engine: Engine) -> None:
    course = make_course()
    slot = berlin(2026, 3, 2, 8, 0)
    _, enrollment_id = add_enrollment(sqlite_engine, course, due=slot)

    report = release_due(sqlite_engine, Catalog([]), slot)

    assert (report.released, report.postponed) == (0, 1)
    assert enrollment(sqlite_engine, enrollment_id).next_release_at == slot + dt.timedelta(hours=1)
    assert deliveries(sqlite_engine) == []


# --- pauses, anchors and clocks -------------------------------------------------------------------------


def test_a_pause_that_has_ended_resumes_on_release(engine: Engine) -> None:
    course = make_course()
    slot = berlin(2026, 3, 10, 8, 0)
    _, enrollment_id = add_enrollment(
        engine, course, due=slot, status=EnrollmentStatus.PAUSED, paused_until=berlin(2026, 3, 9, 12, 0)
    )

    report = release_due(engine, Catalog([course]), slot)

    assert report.released == 1
    after = enrollment(engine, enrollment_id)
    assert after.status is EnrollmentStatus.ACTIVE
    assert after.paused_until is None
    assert after.next_release_at == berlin(2026, 3, 11, 8, 0)


def test_a_pause_still_running_holds_the_release_until_it_ends(sqlite_engine: Engine) -> None:
    course = make_course()
    slot = berlin(2026, 3, 10, 8, 0)
    _, enrollment_id = add_enrollment(
        sqlite_engine,
        course,
        due=slot,
        status=EnrollmentStatus.PAUSED,
        paused_until=berlin(2026, 3, 12, 12, 0),
    )

    report = release_due(sqlite_engine, Catalog([course]), slot)

    assert (report.released, report.held) == (0, 1)
    assert deliveries(sqlite_engine) == []
    assert enrollment(sqlite_engine, enrollment_id).next_release_at == berlin(2026, 3, 13, 8, 0)


def test_every_n_days_keeps_its_anchor_through_a_catch_up(sqlite_engine: Engine) -> None:
    course = make_course()
    anchor = dt.date(2026, 3, 2)
    due = berlin(2026, 3, 5, 8, 0)
    _, enrollment_id = add_enrollment(sqlite_engine, course, due=due, cadence="every-3-days", anchor=anchor)

    report = release_due(sqlite_engine, Catalog([course]), berlin(2026, 3, 9, 10, 0))

    assert (report.released, report.missed_slots) == (1, 1)
    after = enrollment(sqlite_engine, enrollment_id)
    assert after.anchor_date == anchor
    assert after.next_release_at == berlin(2026, 3, 11, 8, 0)


def test_a_wall_time_in_the_spring_forward_gap_is_released_an_hour_later(sqlite_engine: Engine) -> None:
    course = make_course()
    saturday = berlin(2026, 3, 28, 2, 30)
    _, enrollment_id = add_enrollment(sqlite_engine, course, due=saturday, local_time="02:30")

    release_due(sqlite_engine, Catalog([course]), saturday)
    dst_night = enrollment(sqlite_engine, enrollment_id).next_release_at
    assert dst_night is not None
    assert dst_night.astimezone(BERLIN).replace(tzinfo=None) == dt.datetime(2026, 3, 29, 3, 30)
    assert dst_night == dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC)

    assert release_due(sqlite_engine, Catalog([course]), dst_night - dt.timedelta(seconds=1)).released == 0
    assert release_due(sqlite_engine, Catalog([course]), dst_night).released == 1
    assert [row.due_at for row in deliveries(sqlite_engine)] == [saturday, dst_night]
    assert enrollment(sqlite_engine, enrollment_id).next_release_at == berlin(2026, 3, 30, 2, 30)


# --- bursts ------------------------------------------------------------------------------------------------


def test_a_five_thousand_learner_burst_in_one_minute_misses_none(sqlite_engine: Engine) -> None:
    course = generated_course()
    minute = dt.datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    seed_learners(sqlite_engine, course, 5000, minute - dt.timedelta(days=1))
    with sqlite_engine.begin() as connection:
        connection.execute(update(Enrollment).values(next_release_at=minute))  # type: ignore[arg-type]

    report = release_due(sqlite_engine, Catalog([course]), minute + dt.timedelta(seconds=30), batch_size=1000)

    assert report.released == 5000
    assert report.batches == 5
    assert still_due(sqlite_engine, minute + dt.timedelta(seconds=30)) == 0
    with Session(sqlite_engine) as session:
        count = session.execute(select(func.count()).select_from(Delivery)).scalar_one()
    assert count == 5000


def test_max_batches_stops_early_and_says_more_is_due(sqlite_engine: Engine) -> None:
    course = make_course()
    slot = berlin(2026, 3, 2, 8, 0)
    for _ in range(5):
        add_enrollment(sqlite_engine, course, due=slot)

    first = release_due(sqlite_engine, Catalog([course]), slot, batch_size=2, max_batches=1)
    rest = release_due(sqlite_engine, Catalog([course]), slot, batch_size=2)

    assert (first.released, first.drained) == (2, False)
    assert (rest.released, rest.drained, rest.batches) == (3, True, 2)


def test_a_due_set_wider_than_the_window_goes_earliest_due_first_and_every_lesson_once(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(planner, "RELEASE_WINDOW", 3)
    course = make_course()
    slot = berlin(2026, 3, 2, 8, 0)
    # Enrolled latest-due first: due order is the reverse of id order.
    ids = [add_enrollment(sqlite_engine, course, due=slot - dt.timedelta(minutes=m))[1] for m in range(7)]
    earliest_three = set(ids[-3:])

    first = release_due(sqlite_engine, Catalog([course]), slot, batch_size=2, max_batches=2)

    assert (first.released, first.batches, first.drained) == (3, 2, False)
    assert {row.enrollment_id for row in deliveries(sqlite_engine)} == earliest_three

    rest = release_due(sqlite_engine, Catalog([course]), slot, batch_size=2)

    assert (rest.released, rest.drained) == (4, True)
    rows = deliveries(sqlite_engine)
    assert sorted(row.enrollment_id for row in rows) == sorted(ids)
    assert still_due(sqlite_engine, slot) == 0


def test_a_window_batch_another_planner_released_meanwhile_is_skipped_not_the_end(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    course = make_course()
    catalog = Catalog([course])
    slot = berlin(2026, 3, 2, 8, 0)
    ids = [add_enrollment(sqlite_engine, course, due=slot)[1] for _ in range(2)]
    hand_out = planner._DueWindow.next_batch
    rival_took: list[list[int]] = []

    def rival_releases_the_first_batch_first(window: planner._DueWindow, batch_size: int) -> list[int]:
        batch = hand_out(window, batch_size)
        if not rival_took:
            rival_took.append(batch)
            with planner.write_transaction(sqlite_engine) as connection:
                planner._Planner(sqlite_engine.dialect, catalog, slot).release_batch(connection, 1, batch)
        return batch

    monkeypatch.setattr(planner._DueWindow, "next_batch", rival_releases_the_first_batch_first)

    report = release_due(sqlite_engine, catalog, slot, batch_size=1)

    assert rival_took == [[ids[0]]]
    assert (report.released, report.drained) == (1, True)
    assert sorted(row.enrollment_id for row in deliveries(sqlite_engine)) == ids
    assert still_due(sqlite_engine, slot) == 0


def test_a_batch_paused_while_it_was_planned_beside_the_writer_is_not_released(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    course = make_course()
    catalog = Catalog([course])
    slot = berlin(2026, 3, 2, 8, 0)
    ids = [add_enrollment(sqlite_engine, course, due=slot)[1] for _ in range(3)]
    plan_batch = planner._Planner.plan_batch
    planned: list[list[int]] = []

    def learner_pauses_once_the_second_batch_is_read(
        self: planner._Planner, cursor: object, batch_size: int, batch_ids: list[int] | None = None
    ) -> planner._Batch | None:
        batch = plan_batch(self, cursor, batch_size, batch_ids)
        planned.append(list(batch_ids or []))
        if len(planned) == 2:
            # Committed while the writer thread still holds the first batch's transaction: waits for it.
            with sqlite_engine.begin() as connection:
                connection.execute(
                    update(Enrollment)
                    .where(Enrollment.id == ids[1])  # type: ignore[arg-type]
                    .values(status=EnrollmentStatus.PAUSED, paused_until=None)
                )
        return batch

    monkeypatch.setattr(planner._Planner, "plan_batch", learner_pauses_once_the_second_batch_is_read)

    report = release_due(sqlite_engine, catalog, slot, batch_size=1)

    assert planned[:2] == [[ids[0]], [ids[1]]]
    assert sorted(row.enrollment_id for row in deliveries(sqlite_engine)) == [ids[0], ids[2]]
    assert (report.released, report.held, report.drained) == (2, 1, True)
    paused = enrollment(sqlite_engine, ids[1])
    assert (paused.status, paused.next_release_at, paused.lessons_released) == (
        EnrollmentStatus.PAUSED,
        None,
        0,
    )
