"""Status messages that follow a broadcast: posted to the instructor who confirmed it, then edited in place.

After an instructor confirms a broadcast in chat, one status message ("Broadcast #12 (habits, now): 340 of
1,000 sent, 3 failed, 1 unreachable" over a text progress bar) goes to their private chat and is edited as
deliveries settle: at most once per `edit_every` (a broadcast sent now) or `local_edit_every` (one sent at
each learner's own time, which can take a day), only when the numbers changed, and a last time with the
final counts. Edits take a slot of the platform's send budget like any send. Watches live in memory: after
a restart `/broadcast status` still answers, but no status message is edited any more. Time comes from the
injected clock; tests move a fake clock and call `step()`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass

from bot.broadcasts import BroadcastProgress, broadcast_progress
from bot.clock import Clock
from bot.db import Database
from bot.markup import escape_user_text
from bot.models import BroadcastStatus
from bot.ports import ChatAdapter, ChatMigrated, PermanentError, PlatformError, RetryAfter, Sender, TextPart
from scheduler.pacer import Pacer

log = logging.getLogger(__name__)

BAR_WIDTH = 10
MAX_WATCHES = 100
"""Status messages followed at once; instructors confirm a handful of broadcasts a day."""
STALE_AFTER = dt.timedelta(hours=1)
"""Give up on a broadcast whose deliveries are all due but none settled for this long (sender stuck)."""
LONGEST_WATCH = dt.timedelta(days=2)
"""Give up after this long whatever happens (a learner paused for weeks keeps a delivery scheduled)."""
MIN_WAIT_SECONDS = 0.25
MAX_WAIT_SECONDS = 60.0


def progress_bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    """`▓▓▓░░░░░░░ 34%`: `done` of `total`, rounded down (full only when all are done; nothing is all)."""
    if total <= 0:
        return f"{'▓' * width} 100%"
    done = min(max(done, 0), total)
    filled = done * width // total
    return f"{'▓' * filled}{'░' * (width - filled)} {done * 100 // total}%"


def status_text(progress: BroadcastProgress) -> str:
    """The status message: where the broadcast stands in one line, and the bar of settled deliveries."""
    audience = progress.course_slug + (f", cohort {progress.cohort_name}" if progress.cohort_name else "")
    timing = "at each learner's time" if progress.at_local_time else "now"
    state = ""
    if progress.status is BroadcastStatus.CANCELLED:
        state = " cancelled"
    elif progress.finished:
        state = " finished"
    counts = [
        f"{progress.sent:,} of {progress.total:,} sent",
        f"{progress.failed:,} failed",
        f"{progress.unreachable + progress.skipped:,} unreachable",
    ]
    if progress.scheduled:
        counts.append(f"{progress.scheduled:,} waiting for the learner's own time")
    if progress.cancelled:
        counts.append(f"{progress.cancelled:,} cancelled")
    line = f"Broadcast #{progress.broadcast_id} ({audience}, {timing}){state}: {', '.join(counts)}"
    return f"{line}\n{progress_bar(progress.settled, progress.total)}"


@dataclass
class Watch:
    """One status message being kept up to date."""

    broadcast_id: int
    platform: str
    chat_id: str
    started_at: dt.datetime
    check_at: dt.datetime
    changed_at: dt.datetime
    message_id: str | None = None
    """None until the status message is sent."""
    seen: str = ""
    """The status as last read from the database; `changed_at` is when it last changed."""
    shown: str = ""
    """The status the message shows."""
    failing: bool = False
    """The last attempt failed for a passing reason (already logged once)."""


class ProgressMessages:
    """Follows confirmed broadcasts with an edited status message; `start()` runs it in the background."""

    def __init__(
        self,
        database: Database,
        clock: Clock,
        adapters: Mapping[str, ChatAdapter],
        pacers: Mapping[str, Pacer] | None = None,
        *,
        edit_every: float = 4.0,
        local_edit_every: float = 60.0,
    ) -> None:
        self._database = database
        self._clock = clock
        self._adapters = dict(adapters)
        self._pacers = dict(pacers or {})
        self._every = dt.timedelta(seconds=edit_every)
        self._local_every = dt.timedelta(seconds=local_edit_every)
        self._watches: list[Watch] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def watches(self) -> tuple[Watch, ...]:
        return tuple(self._watches)

    def watch_broadcast(self, sender: Sender, broadcast_id: int) -> None:
        """Post a status message about `broadcast_id` to `sender`'s private chat and keep it up to date."""
        if sender.platform not in self._adapters:
            return
        if any(
            (watch.broadcast_id, watch.platform, watch.chat_id)
            == (broadcast_id, sender.platform, sender.chat_id)
            for watch in self._watches
        ):
            return
        if len(self._watches) >= MAX_WATCHES:
            log.warning(
                "broadcast %d gets no status message: %d are followed already", broadcast_id, MAX_WATCHES
            )
            return
        now = self._clock.now()
        self._watches.append(Watch(broadcast_id, sender.platform, sender.chat_id, now, now, now))
        self._changed.set()

    async def step(self) -> int:
        """Send or edit every status message that is due; returns how many went out. Never raises."""
        now = self._clock.now()
        shown = 0
        for watch in [watch for watch in self._watches if watch.check_at <= now]:
            try:
                done, changed = await self._follow(watch, now)
            except Exception:
                log.exception(
                    "status message of broadcast %d failed; it is no longer updated", watch.broadcast_id
                )
                done, changed = True, False
            shown += changed
            if done:
                self._watches.remove(watch)
        return shown

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="broadcast status messages")

    async def stop(self) -> None:
        """Stop following (an edit in flight is abandoned); the status messages keep their last text."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # --- internals ---------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._changed.clear()
            try:
                await self.step()
            except Exception:
                log.exception("following broadcasts failed; trying again")
            delay = self._next_delay()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), delay)

    def _next_delay(self) -> float | None:
        if not self._watches:
            return None
        earliest = min(watch.check_at for watch in self._watches)
        seconds = (earliest - self._clock.now()).total_seconds()
        return min(max(seconds, MIN_WAIT_SECONDS), MAX_WAIT_SECONDS)

    async def _follow(self, watch: Watch, now: dt.datetime) -> tuple[bool, bool]:
        """Bring one status message up to date: (the watch is over, a message was sent or edited)."""
        progress = await self._database.run(
            lambda session: broadcast_progress(session, watch.broadcast_id, now)
        )
        every = self._local_every if progress.at_local_time else self._every
        watch.check_at = now + every
        text = status_text(progress)
        if text != watch.seen:
            watch.seen, watch.changed_at = text, now
        gave_up = not progress.finished and (
            (progress.scheduled == 0 and now - watch.changed_at >= STALE_AFTER)
            or now - watch.started_at >= LONGEST_WATCH
        )
        if gave_up:
            text += f"\nNo longer updated: see /broadcast status {watch.broadcast_id}"
        if text == watch.shown:
            return False, False
        try:
            await self._show(watch, text)
        except RetryAfter as error:
            pacer = self._pacers.get(watch.platform)
            if pacer is not None:
                pacer.pause(error.seconds, error.chat_id)
            watch.check_at = max(watch.check_at, now + dt.timedelta(seconds=error.seconds))
            return gave_up, False
        except PermanentError as error:
            log.warning(
                "status message of broadcast %d in %s chat %s is no longer updated: %s",
                watch.broadcast_id,
                watch.platform,
                watch.chat_id,
                error.reason,
            )
            return True, False
        except PlatformError as error:
            if not watch.failing:
                log.info(
                    "status message of broadcast %d not updated, trying again: %s",
                    watch.broadcast_id,
                    error.reason,
                )
            watch.failing = True
            return gave_up, False
        watch.shown, watch.failing = text, False
        return progress.finished or gave_up, True

    async def _show(self, watch: Watch, text: str) -> None:
        adapter = self._adapters[watch.platform]
        part = TextPart(escape_user_text(text, adapter.capabilities.markup))
        await self._pace(watch)
        if watch.message_id is not None:
            await adapter.edit(watch.chat_id, watch.message_id, part)
            return
        try:
            sent = await adapter.send(watch.chat_id, part)
        except ChatMigrated as moved:
            # Discord opens the instructor's DM channel on the first send and names it this way.
            watch.chat_id = moved.new_chat_id
            await self._pace(watch)
            sent = await adapter.send(watch.chat_id, part)
        if not sent.message_ids:
            raise PermanentError("the platform returned no message id for the status message")
        watch.message_id = sent.message_ids[0]

    async def _pace(self, watch: Watch) -> None:
        pacer = self._pacers.get(watch.platform)
        if pacer is not None:
            await pacer.acquire(watch.chat_id)
