"""Per-user throttling: a flooding user gets one notice and is then ignored; everyone else is served."""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.catalog import Catalog
from bot.conversation import HELP, Conversation
from bot.db import Database
from bot.ports import Command, Sender
from bot.throttle import THROTTLE_NOTICE, Throttle, Verdict
from dripcourse.app import App
from tests.e2e.telegram_app import emulator_settings, running_app
from tests.emulators.telegram_bot_api import TelegramEmulator, TelegramLimits, TelegramUser
from tests.fakes import FAKE_CAPABILITIES, FakeClock, reply_text

FLOODER = Sender("fake", "666", "666", "Flood")
OTHERS = [Sender("fake", str(1000 + n), str(1000 + n), f"Learner {n}") for n in range(5)]


class Ticker:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_one_notice_then_silence_until_the_user_calms_down() -> None:
    ticker = Ticker()
    throttle = Throttle(rate_per_second=2, burst=5, monotonic=ticker)

    verdicts = [throttle.check("fake", "1") for _ in range(9)]

    assert verdicts == [Verdict.ALLOW] * 5 + [Verdict.NOTICE] + [Verdict.DROP] * 3
    ticker.now += 0.5  # one token trickles back: answered, but the flood goes on without a new notice
    assert [throttle.check("fake", "1") for _ in range(3)] == [Verdict.ALLOW, Verdict.DROP, Verdict.DROP]
    assert throttle.check("fake", "2") is Verdict.ALLOW, "another user has a bucket of their own"
    ticker.now += 2.5  # quiet long enough to fill the bucket: a later flood gets a notice again
    verdicts = [throttle.check("fake", "1") for _ in range(7)]
    assert verdicts == [Verdict.ALLOW] * 5 + [Verdict.NOTICE, Verdict.DROP]


def test_memory_stays_bounded_whatever_the_number_of_users() -> None:
    throttle = Throttle(max_users=1000, monotonic=Ticker())
    for user in range(20_000):
        throttle.check("telegram", str(user))
    assert len(throttle) == 1000


def test_the_same_user_id_on_another_platform_is_another_user() -> None:
    throttle = Throttle(burst=1, monotonic=Ticker())
    assert throttle.check("telegram", "7") is Verdict.ALLOW
    assert throttle.check("discord", "7") is Verdict.ALLOW
    assert throttle.check("telegram", "7") is Verdict.NOTICE


@settings(max_examples=200, deadline=None)
@given(
    gaps=st.lists(st.floats(min_value=0, max_value=2, allow_nan=False), min_size=1, max_size=300),
    rate=st.floats(min_value=0.5, max_value=20),
    burst=st.integers(min_value=1, max_value=40),
)
def test_never_more_than_the_burst_plus_the_refill_and_one_notice_per_run_of_refusals(
    gaps: list[float], rate: float, burst: int
) -> None:
    ticker = Ticker()
    throttle = Throttle(rate_per_second=rate, burst=burst, monotonic=ticker)
    verdicts = []
    for gap in gaps:
        ticker.now += gap
        verdicts.append(throttle.check("fake", "1"))

    allowed = verdicts.count(Verdict.ALLOW)
    assert allowed <= burst + rate * (ticker.now - gaps[0]) + 1e-6
    refusals = [verdict for verdict in verdicts if verdict is not Verdict.ALLOW]
    if refusals:
        assert refusals[0] is Verdict.NOTICE, "the first refusal comes with the notice"
    notice_times = [
        time for time, verdict in zip(_times(gaps), verdicts, strict=True) if verdict is Verdict.NOTICE
    ]
    for earlier, later in itertools.pairwise(notice_times):
        # A second notice needs a quiet spell long enough to fill the bucket again.
        assert later - earlier >= (burst - 1) / rate - 1e-6
    if len(gaps) <= burst:
        assert allowed == len(gaps), "nobody within the burst is ever refused"


def _times(gaps: list[float]) -> list[float]:
    return list(itertools.accumulate(gaps))


async def test_a_user_sending_100_commands_a_second_gets_one_notice_while_others_are_served(
    database: Database, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    ticker = Ticker()
    throttle = Throttle(rate_per_second=2, burst=20, monotonic=ticker)
    conversation = Conversation(database, Catalog([]), clock, {"fake": FAKE_CAPABILITIES}, throttle=throttle)

    flood_replies: list[str] = []
    other_replies: list[str] = []
    with caplog.at_level(logging.INFO, logger="bot.throttle"):
        for n in range(100):
            ticker.now = n / 100  # 100 commands within one second
            flood_replies.append(reply_text(await conversation.handle(Command(FLOODER, "help"))))
            if n % 10 == 0:
                for other in OTHERS:
                    other_replies.append(reply_text(await conversation.handle(Command(other, "help"))))

    answered = [text for text in flood_replies if text == HELP]
    assert 20 <= len(answered) <= 22  # the burst, plus what refilled within the second
    assert flood_replies.count(THROTTLE_NOTICE) == 1
    assert flood_replies[:21] == [HELP] * 20 + [THROTTLE_NOTICE], "the burst, then the notice at once"
    assert all(text in ("", HELP) for text in flood_replies if text != THROTTLE_NOTICE)
    assert other_replies == [HELP] * 50, "every other learner got every answer"
    throttling = [record for record in caplog.records if "throttling" in record.getMessage()]
    assert len(throttling) == 1, "one log line for the incident"
    assert "fake:666" in throttling[0].getMessage()


# --- the running bot ---------------------------------------------------------------------------------

FLOOD_USER = TelegramUser(4040, "Flo", username="flo", language_code="en")
CALM_USER = TelegramUser(4041, "Cal", username="cal", language_code="en")


@pytest.fixture
async def telegram_app(clock: FakeClock, tmp_path: Path) -> AsyncIterator[tuple[App, TelegramEmulator]]:
    async with (
        TelegramEmulator(limits=TelegramLimits(enabled=False)) as emu,
        running_app(emulator_settings(emu, tmp_path / "throttle.db"), clock) as app,
    ):
        yield app, emu


async def test_the_running_bot_throttles_a_flood_over_telegram_and_still_answers_others(
    telegram_app: tuple[App, TelegramEmulator],
) -> None:
    _app, emu = telegram_app
    for _ in range(100):
        emu.user_sends_command(FLOOD_USER, "help")
    emu.user_sends_command(CALM_USER, "help")

    await emu.wait_for(lambda: emu.texts_to(CALM_USER.id), timeout=20)
    await emu.wait_for(lambda: THROTTLE_NOTICE in emu.texts_to(FLOOD_USER.id), timeout=20)
    await emu.wait_for(lambda: emu.texts_to(FLOOD_USER.id).count(HELP) >= 30, timeout=20)

    assert emu.texts_to(CALM_USER.id) == [HELP]
    flood = emu.texts_to(FLOOD_USER.id)
    assert flood.count(THROTTLE_NOTICE) == 1
    assert set(flood) == {HELP, THROTTLE_NOTICE}
    # The default bucket: a burst of 30, refilled at 2 a second while the flood is handled.
    assert flood.count(HELP) <= 30 + 2 * 20, len(flood)
