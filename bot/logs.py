"""Logging set-up: one line per record (optionally JSON), with every secret scrubbed from every record."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from typing import ClassVar

REDACTED = "<redacted>"


class SecretScrubber(logging.Filter):
    """Replaces any secret value (tokens, database passwords) in a record's final message."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted({secret for secret in secrets if len(secret) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        scrubbed = self.scrub(message)
        if record.exc_info and record.exc_info[1] is not None:
            exception_text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self.scrub(exception_text)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any `extra` fields given."""

    _standard: ClassVar[set[str]] = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)))

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._standard and not key.startswith("_"):
                entry[key] = value if isinstance(value, int | float | str | bool | None) else str(value)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, *, json_lines: bool, secrets: Iterable[str]) -> None:
    """Route all logging to stderr through the scrubber; quiet the HTTP libraries that log URLs."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(SecretScrubber(secrets))
    if json_lines:
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # These log request URLs, and Telegram's URLs contain the bot token.
    for noisy in ("httpx", "httpcore", "apscheduler.executors.default", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
