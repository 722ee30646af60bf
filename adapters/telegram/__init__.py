"""Telegram through python-telegram-bot: the adapter, pure translation, and error classification."""

from adapters.telegram.adapter import HttpOptions, TelegramAdapter

__all__ = ["HttpOptions", "TelegramAdapter"]
