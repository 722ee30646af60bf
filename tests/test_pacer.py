"""The pacer keeps every platform limit proactively, on a virtual clock (no test sleeps for real)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.settings import DiscordSettings, TelegramSettings
from scheduler.pacer import Pacer, discord_pacer, telegram_pacer


class VirtualTime:
    """A monotonic clock and a sleep for many concurrent tasks: time jumps to the earliest sleeper's wake-up
    once every task is waiting, so waits are exact and nothing sleeps for real."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._advancing = False

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._order), future))
        if not self._advancing:
            self._advancing = True
            asyncio.get_running_loop().call_soon(self._advance, 5)
        await future

    def _advance(self, idle_rounds: int) -> None:
        loop = asyncio.get_running_loop()
        if idle_rounds > 0:  # let every runnable task reach its next sleep first
            loop.call_soon(self._advance, idle_rounds - 1)
            return
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        if not self._sleepers:
            self._advancing = False
            return
        wake_at, _, future = heapq.heappop(self._sleepers)
        self.now = max(self.now, wake_at)
        future.set_result(None)
        loop.call_soon(self._advance, 5)


def telegram(virtual: VirtualTime, **overrides: object) -> Pacer:
    return telegram_pacer(
        TelegramSettings.model_validate(overrides), monotonic=virtual.monotonic, sleep=virtual.sleep
    )


def max_in_window(times: list[float], window: float) -> int:
    """The most events inside any half-open interval [t, t + window)."""
    ordered = sorted(times)
    best = 0
    start = 0
    for end, moment in enumerate(ordered):
        while ordered[start] <= moment - window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def acquire_all(pacer: Pacer, virtual: VirtualTime, chats: list[str]) -> dict[str, list[float]]:
    """Acquire once per entry of `chats`, one task per chat (as the sender does), recording slot times."""
    by_chat: dict[str, list[str]] = defaultdict(list)
    for chat in chats:
        by_chat[chat].append(chat)
    taken: dict[str, list[float]] = defaultdict(list)

    async def one_chat(chat: str, count: int) -> None:
        for _ in range(count):
            await pacer.acquire(chat)
            taken[chat].append(virtual.now)

    await asyncio.gather(*(one_chat(chat, len(items)) for chat, items in by_chat.items()))
    return taken


async def test_global_rate_spreads_sends_evenly_without_a_burst() -> None:
    virtual = VirtualTime()
    pacer = telegram(virtual)
    taken = await acquire_all(pacer, virtual, [str(1000 + i) for i in range(300)])
    times = sorted(t for chat_times in taken.values() for t in chat_times)
    assert max_in_window(times, 1.0) <= 30
    assert times[-1] >= 299 / 30 - 1e-9  # never faster than 30/s ...
    assert times[-1] <= 300 / 30 + 1e-6  # ... and no slower either
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1 / 30 - 1e-9


async def test_private_chat_gets_one_message_per_second_and_groups_twenty_per_minute() -> None:
    virtual = VirtualTime()
    pacer = telegram(virtual)
    taken = await acquire_all(pacer, virtual, ["42"] * 5 + ["-100123"] * 4)
    private = taken["42"]
    group = taken["-100123"]
    assert all(b - a >= 1.0 - 1e-9 for a, b in itertools.pairwise(private))
    assert all(b - a >= 3.0 - 1e-9 for a, b in itertools.pairwise(group))
    assert private[-1] < 4.0 + 1e-6  # and not slower than the limits allow
    assert group[-1] < 9.0 + 2 / 30


async def test_per_chat_wait_does_not_hold_other_chats_back() -> None:
    virtual = VirtualTime()
    pacer = telegram(virtual)
    await pacer.acquire("1")
    started = virtual.now
    await pacer.acquire("2")
    assert virtual.now - started <= 1 / 30 + 1e-9


async def test_pause_for_one_chat_leaves_the_others_alone() -> None:
    virtual = VirtualTime()
    pacer = telegram(virtual)
    pacer.pause(30, chat_id="7")
    assert pacer.paused_for("7") == 30
    assert pacer.paused_for("8") == 0
    await pacer.acquire("8")
    assert virtual.now < 1
    await pacer.acquire("7")
    assert virtual.now == 30


async def test_global_pause_holds_everyone_including_tasks_already_waiting() -> None:
    virtual = VirtualTime()
    pacer = Pacer("telegram", 1.0, monotonic=virtual.monotonic, sleep=virtual.sleep)
    times: list[float] = []

    async def send(chat: str) -> None:
        await pacer.acquire(chat)
        times.append(virtual.now)

    await send("a")  # t=0; the next global slot is t=1
    waiting = asyncio.ensure_future(send("b"))
    await asyncio.sleep(0)
    pacer.pause(10)
    await waiting
    await send("c")
    assert times == pytest.approx([0.0, 10.0, 11.0])


async def test_paid_broadcast_raises_the_rate_and_says_so() -> None:
    virtual = VirtualTime()
    pacer = telegram(virtual, allow_paid_broadcast=True)
    assert pacer.allow_paid_broadcast
    assert pacer.effective_rate == 1000
    taken = await acquire_all(pacer, virtual, [str(i) for i in range(2000)])
    times = sorted(t for chat_times in taken.values() for t in chat_times)
    assert max_in_window(times, 1.0) <= 1000
    assert times[-1] <= 2.0
    assert not telegram(virtual).allow_paid_broadcast


async def test_live_workers_split_the_budget() -> None:
    virtual = VirtualTime()
    pacer = telegram(virtual)
    pacer.set_live_workers(3)
    assert pacer.effective_rate == 10
    taken = await acquire_all(pacer, virtual, [str(i) for i in range(50)])
    times = sorted(t for chat_times in taken.values() for t in chat_times)
    assert max_in_window(times, 1.0) <= 10
    pacer.set_live_workers(0)
    assert pacer.live_workers == 1


async def test_discord_global_limit_stays_below_fifty_per_second() -> None:
    virtual = VirtualTime()
    pacer = discord_pacer(DiscordSettings(), monotonic=virtual.monotonic, sleep=virtual.sleep)
    taken = await acquire_all(pacer, virtual, ["same-channel"] * 200)
    assert max_in_window(taken["same-channel"], 1.0) <= 40


async def test_idle_chats_are_forgotten_so_memory_stays_bounded() -> None:
    virtual = VirtualTime()
    pacer = Pacer(
        "telegram",
        1000.0,
        lambda _chat: 1.0,
        monotonic=virtual.monotonic,
        sleep=virtual.sleep,
        max_tracked_chats=100,
    )
    for chat in range(5000):
        await pacer.acquire(str(chat))
        virtual.now += 0.01
    assert pacer.tracked_chats <= 201


class StallingTime(VirtualTime):
    """Virtual time in which the process stops for `stall_for` seconds at `stall_at` (a busy CPU, a long
    garbage collection): every sender whose slot passed meanwhile wakes at the same moment."""

    def __init__(self, stall_at: float, stall_for: float) -> None:
        super().__init__()
        self.stall_at = stall_at
        self.stall_for = stall_for

    def _advance(self, idle_rounds: int) -> None:
        if self.stall_for and self._sleepers and self._sleepers[0][0] >= self.stall_at:
            self.now = self.stall_at + self.stall_for
            self.stall_for = 0.0
        super()._advance(idle_rounds)


@pytest.mark.parametrize("stall_for", [0.3, 0.6, 2.5])
async def test_senders_woken_late_by_a_stall_do_not_burst_past_the_rate(stall_for: float) -> None:
    virtual = StallingTime(stall_at=0.5, stall_for=stall_for)
    pacer = telegram(virtual)
    taken = await acquire_all(pacer, virtual, [str(1000 + i) for i in range(150)])
    times = sorted(t for chat_times in taken.values() for t in chat_times)
    assert len(times) == 150
    assert max_in_window(times, 1.0) <= 30
    assert times[-1] <= 150 / 30 + stall_for + 1.0  # the stall costs its own length, and not much more


@settings(max_examples=60, deadline=None)
@given(
    chats=st.lists(
        st.sampled_from(["1", "2", "3", "-10", "-11", *[str(n) for n in range(100, 140)]]), max_size=120
    ),
    rate=st.sampled_from([5.0, 30.0, 100.0]),
    per_chat=st.sampled_from([0.5, 1.0, 2.0]),
    per_group_minute=st.sampled_from([10.0, 20.0]),
)
def test_no_window_ever_exceeds_any_limit(
    chats: list[str], rate: float, per_chat: float, per_group_minute: float
) -> None:
    virtual = VirtualTime()
    pacer = telegram(
        virtual, messages_per_second=rate, per_chat_per_second=per_chat, per_group_per_minute=per_group_minute
    )
    taken = asyncio.run(acquire_all(pacer, virtual, chats))
    everything = [t for times in taken.values() for t in times]
    assert max_in_window(everything, 1.0) <= max(1, int(rate))
    for chat, times in taken.items():
        spacing = 60 / per_group_minute if chat.startswith("-") else 1 / per_chat
        assert all(b - a >= spacing - 1e-9 for a, b in itertools.pairwise(times))
    # Proactive, not timid: no chat waits longer than its own spacing plus everyone's global slots.
    for chat, times in taken.items():
        spacing = 60 / per_group_minute if chat.startswith("-") else 1 / per_chat
        assert times[-1] <= (len(times) - 1) * spacing + len(everything) / rate + 1e-6


async def test_free_now_says_whether_acquire_would_take_its_slot_without_waiting() -> None:
    virtual = VirtualTime()
    pacer = Pacer("fake", 10.0, lambda _chat: 1.0, monotonic=virtual.monotonic, sleep=virtual.sleep)
    assert pacer.free_now("a")
    await pacer.acquire("a")
    assert not pacer.free_now("b")  # the global rate: the next slot is 0.1 s away
    virtual.now += 0.11
    assert pacer.free_now("b")
    assert not pacer.free_now("a")  # a's own rate: one a second
    virtual.now += 1.0
    assert pacer.free_now("a")
    pacer.pause(5.0)
    assert not pacer.free_now("b")
    virtual.now += 5.0
    assert pacer.free_now("b")
