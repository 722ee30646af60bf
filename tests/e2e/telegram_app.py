"""The whole bot, in-process, on the Telegram emulator: settings pointing at it and a started App."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot.clock import Clock
from bot.settings import CoursesSettings, DatabaseSettings, Settings, TelegramSettings
from dripcourse.app import App, platform_adapters
from tests.conftest import SAMPLE_COURSES
from tests.emulators.telegram_bot_api import TelegramEmulator


def emulator_settings(emu: TelegramEmulator, database: Path, **telegram: Any) -> Settings:
    """Settings for the sample courses, a SQLite file at `database`, and Telegram on `emu`."""
    return Settings(
        database=DatabaseSettings(url=SecretStr(f"sqlite:///{database}")),
        courses=CoursesSettings(path=SAMPLE_COURSES),
        telegram=TelegramSettings(
            token=SecretStr(emu.token), api_base_url=emu.base_url, file_base_url=emu.file_base_url, **telegram
        ),
    )


@asynccontextmanager
async def running_app(settings: Settings, clock: Clock) -> AsyncIterator[App]:
    """A started App with no background loops: the test ticks the heartbeat and drains the sender."""
    app = await App.open(settings, clock=clock, adapters=platform_adapters(settings), background=False)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()
