"""Bot API request parameters decoded the way Telegram reads them.

A call may arrive as a JSON body, a form-urlencoded body, a multipart body with file parts, or a query
string. JSON bodies keep their types; in the other three every value is a string, and structured fields
(reply_markup, entities, media, options, ...) are JSON documents inside that string.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from tests.emulators.telegram_api_errors import bad_request, entity_too_large

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
"""Telegram's cap on a file uploaded through the Bot API (multipart)."""

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


@dataclass(frozen=True)
class Upload:
    """One file part of a multipart body."""

    field: str
    filename: str
    content_type: str
    content: bytes


class Params:
    """Typed access to one call's parameters; malformed values raise the 400 Telegram would answer."""

    def __init__(self, values: Mapping[str, Any], uploads: Mapping[str, Upload] | None = None) -> None:
        self._values = dict(values)
        self._uploads = dict(uploads or {})

    @property
    def raw(self) -> dict[str, Any]:
        """Every parameter as received, structured fields decoded, uploads summarised."""
        decoded: dict[str, Any] = {}
        for name, value in self._values.items():
            decoded[name] = _maybe_json(value) if name in _STRUCTURED_FIELDS else value
        for name, upload in self._uploads.items():
            decoded[name] = f"<upload {upload.filename} {len(upload.content)} bytes>"
        return decoded

    def has(self, name: str) -> bool:
        return name in self._values or name in self._uploads

    def text(self, name: str) -> str | None:
        value = self._values.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        raise bad_request(f'field "{name}" must be of type String')

    def integer(self, name: str) -> int | None:
        value = self._values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise bad_request(f'field "{name}" must be a valid Number')

    def seconds(self, name: str) -> float | None:
        value = self._values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise bad_request(f'field "{name}" must be a valid Number')
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f'field "{name}" must be a valid Number') from None

    def flag(self, name: str, default: bool = False) -> bool:
        value = self._values.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        lowered = str(value).strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise bad_request(f'field "{name}" must be of type Boolean')

    def structured(self, name: str) -> Any:
        """A JSON field: decoded from its string form in form and multipart bodies."""
        value = self._values.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            if value == "":
                return None
            try:
                return json.loads(value)
            except ValueError:
                raise bad_request(f"can't parse {name.replace('_', ' ')} JSON object") from None
        return value

    def chat_id(self, name: str = "chat_id") -> int | str:
        """A numeric chat id or a public `@username`."""
        value = self._values.get(name)
        if value is None or value == "":
            raise bad_request(f"{name} is empty")
        if isinstance(value, bool):
            raise bad_request("chat not found")
        if isinstance(value, int):
            return value
        text = str(value).strip()
        if text.startswith("@") and len(text) > 1:
            return text
        try:
            return int(text)
        except ValueError:
            raise bad_request("chat not found") from None

    def optional_chat_id(self, name: str = "chat_id") -> int | str | None:
        return self.chat_id(name) if self._values.get(name) not in (None, "") else None

    def upload(self, name: str) -> Upload | None:
        return self._uploads.get(name)


_STRUCTURED_FIELDS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "explanation_entities",
        "question_entities",
        "media",
        "options",
        "commands",
        "scope",
        "allowed_updates",
        "reply_parameters",
        "link_preview_options",
        "correct_option_ids",
    }
)


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


async def read_params(request: web.Request) -> Params:
    """Decode a call from its query string and its JSON, form or multipart body."""
    values: dict[str, Any] = dict(request.query)
    uploads: dict[str, Upload] = {}
    if request.method != "POST" or not request.body_exists:
        return Params(values)
    content_type = request.content_type
    if content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise bad_request("can't parse JSON request body") from None
        if not isinstance(body, dict):
            raise bad_request("JSON request body must be an object")
        values.update(body)
    elif content_type == "multipart/form-data":
        await _read_multipart(request, values, uploads)
    else:
        form = await request.post()
        for name, value in form.items():
            values[name] = value if isinstance(value, str) else str(value)
    return Params(values, uploads)


async def _read_multipart(request: web.Request, values: dict[str, Any], uploads: dict[str, Upload]) -> None:
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        content = await _read_part(part)
        if part.filename is None:
            values[part.name] = content.decode(part.get_charset("utf-8"))
        else:
            uploads[part.name] = Upload(
                field=part.name,
                filename=part.filename,
                content_type=part.headers.get("Content-Type", "application/octet-stream"),
                content=content,
            )


async def _read_part(part: BodyPartReader) -> bytes:
    chunks = bytearray()
    while chunk := await part.read_chunk(256 * 1024):
        chunks.extend(chunk)
        if len(chunks) > MAX_UPLOAD_BYTES:
            raise entity_too_large()
    return bytes(chunks)
