"""A Telegram learner's private chat with the bot, played through the Bot API emulator.

Every action waits for the exact number of messages the bot is expected to answer with and returns
them, so a test reads like the transcript: a missing reply times out with what did arrive, and an
extra or duplicated one shows up as the first message of the next step (or in `assert_quiet`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tests.emulators.telegram_bot_api import SentRecord, TelegramEmulator, TelegramUser

REPLY_TIMEOUT = 10.0
"""Seconds a reply may take; generous for a loaded machine, never waited out when things work."""


@dataclass
class TelegramChat:
    """What one user does in their private chat with the bot, and what the bot sends back."""

    emu: TelegramEmulator
    user: TelegramUser
    timeout: float = REPLY_TIMEOUT
    seen: int = 0
    """How many of the bot's messages to this chat the test has already looked at."""

    @property
    def chat_id(self) -> int:
        return self.user.id

    def messages(self) -> list[SentRecord]:
        """Every message the bot sent to this chat, in the order Telegram accepted them."""
        return self.emu.sent_to(self.chat_id)

    async def expect(self, count: int) -> list[SentRecord]:
        """The bot's next `count` messages to this chat, once all of them have arrived."""
        target = self.seen + count
        try:
            await self.emu.wait_for(lambda: len(self.messages()) >= target, self.timeout)
        except TimeoutError:
            arrived = [record.body for record in self.messages()[self.seen :]]
            raise AssertionError(
                f"expected {count} more message(s) to chat {self.chat_id} within {self.timeout}s, "
                f"got {len(arrived)}: {arrived!r}"
            ) from None
        new = self.messages()[self.seen : target]
        self.seen = target
        return new

    async def expect_texts(self, count: int = 1) -> list[str]:
        return [record.body or "" for record in await self.expect(count)]

    def assert_quiet(self) -> None:
        """Nothing arrived beyond what the test has already checked."""
        extra = [record.body for record in self.messages()[self.seen :]]
        assert not extra, f"unexpected message(s) to chat {self.chat_id}: {extra!r}"

    # --- what the user does ----------------------------------------------------------------------

    async def send(self, text: str, *, replies: int = 1) -> list[SentRecord]:
        self.emu.user_sends_text(self.user, text)
        return await self.expect(replies)

    async def command(self, name: str, payload: str | None = None, *, replies: int = 1) -> list[SentRecord]:
        """`/name payload`, as typed or as a deep link (`t.me/bot?start=payload`) sends it."""
        self.emu.user_sends_command(self.user, name, payload)
        return await self.expect(replies)

    async def press(self, callback_data: str, *, replies: int = 1) -> list[SentRecord]:
        """Press the button with this callback data on the newest message that has one."""
        message = self.message_with_button(callback_data)
        self.emu.user_presses_button(self.user, message.message_id, callback_data)
        return await self.expect(replies)

    async def share_location(
        self, latitude: float, longitude: float, *, replies: int = 1
    ) -> list[SentRecord]:
        self.emu.user_shares_location(self.user, latitude, longitude)
        return await self.expect(replies)

    async def answer_poll(self, poll_id: str, option: int, *, replies: int = 1) -> list[SentRecord]:
        self.emu.user_answers_poll(self.user, poll_id, [option])
        return await self.expect(replies)

    def message_with_button(self, callback_data: str) -> SentRecord:
        for record in reversed(self.messages()):
            if callback_data in record.callback_data:
                return record
        offered = sorted({data for record in self.messages() for data in record.callback_data})
        raise AssertionError(
            f"no message to chat {self.chat_id} offers {callback_data!r}; offered: {offered}"
        )


def buttons_of(records: Iterable[SentRecord]) -> list[str]:
    """The callback data of every inline button on these messages, in order."""
    return [data for record in records for data in record.callback_data]


def location_keyboard(record: SentRecord) -> list[str]:
    """The labels of a reply keyboard's request-location buttons (empty when it has none)."""
    rows = (record.reply_markup or {}).get("keyboard", [])
    return [button["text"] for row in rows for button in row if button.get("request_location")]
