"""Files bots upload: file ids per bot, photo sizes, reuse by file_id, and downloads by file_path.

A photo is decoded (Pillow) as Telegram does: bytes that are not an image are refused, and the
answer lists the scaled sizes Telegram makes (each a JPEG with its own file_id), largest last.
"""

from __future__ import annotations

import base64
import io
import itertools
import mimetypes
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tests.emulators.telegram_api_errors import bad_request

MEDIA_KINDS = ("photo", "document", "audio", "voice", "video")
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
_PHOTO_SIDES = (90, 320, 800, 1280)
_FILE_ID_PREFIX = {"photo": "AgAC", "document": "BQAC", "audio": "CQAC", "voice": "AwAC", "video": "BAAC"}
_KIND_CODE = {kind: code for code, kind in enumerate(MEDIA_KINDS, start=1)}
_FOLDER = {"photo": "photos", "document": "documents", "audio": "music", "voice": "voice", "video": "videos"}
_DEFAULT_EXTENSION = {"photo": ".jpg", "document": "", "audio": ".mp3", "voice": ".oga", "video": ".mp4"}

UrlFetcher = Callable[[str], Awaitable[bytes | None]]


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    content: bytes
    path: str
    width: int | None = None
    height: int | None = None

    @property
    def size(self) -> int:
        return len(self.content)

    def file_json(self) -> dict[str, Any]:
        """The File object getFile answers (file_path relative to the bot's file URL)."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.size,
            "file_path": self.path,
        }


@dataclass
class StoredMedia:
    kind: str
    files: list[StoredFile]
    """One file, or for a photo every size, smallest first."""
    file_name: str | None = None
    mime_type: str | None = None
    duration: int = 0
    width: int | None = None
    height: int | None = None
    source_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def file_ids(self) -> tuple[str, ...]:
        return tuple(stored.file_id for stored in self.files)

    @property
    def largest(self) -> StoredFile:
        return self.files[-1]

    def to_json(self) -> Any:
        """The value of the message field named after the kind (a PhotoSize array for photos)."""
        if self.kind == "photo":
            return [
                {
                    "file_id": size.file_id,
                    "file_unique_id": size.file_unique_id,
                    "file_size": size.size,
                    "width": size.width,
                    "height": size.height,
                }
                for size in self.files
            ]
        stored = self.largest
        media: dict[str, Any] = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
        }
        if self.kind in ("audio", "voice", "video"):
            media["duration"] = self.duration
        if self.kind == "video":
            media["width"], media["height"] = self.width or 0, self.height or 0
        if self.file_name and self.kind != "voice":
            media["file_name"] = self.file_name
        if self.mime_type:
            media["mime_type"] = self.mime_type
        media.update(self.extra)
        return media


class FileStore:
    """Uploaded media per bot: a file_id is valid only for the bot that received it."""

    def __init__(self) -> None:
        self._media: dict[tuple[int, str], StoredMedia] = {}
        self._paths: dict[tuple[int, str], StoredFile] = {}
        self._sequence = itertools.count(1)

    def media(self, bot_id: int, file_id: str) -> StoredMedia | None:
        return self._media.get((bot_id, file_id))

    def file(self, bot_id: int, file_id: str) -> StoredFile | None:
        media = self.media(bot_id, file_id)
        if media is None:
            return None
        return next(stored for stored in media.files if stored.file_id == file_id)

    def by_path(self, bot_id: int, path: str) -> StoredFile | None:
        return self._paths.get((bot_id, path))

    def store(
        self,
        bot_id: int,
        kind: str,
        content: bytes,
        *,
        file_name: str | None,
        mime_type: str | None,
        duration: int = 0,
        width: int | None = None,
        height: int | None = None,
        source_url: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> StoredMedia:
        if not content:
            raise bad_request("file must be non-empty")
        if kind == "photo":
            files = self._photo_sizes(bot_id, content)
            file_name, mime_type = None, None
        else:
            files = [self._new_file(bot_id, kind, content, file_name)]
            mime_type = mime_type or (mimetypes.guess_type(file_name or "")[0] if file_name else None)
        media = StoredMedia(
            kind=kind,
            files=files,
            file_name=file_name,
            mime_type=mime_type,
            duration=duration,
            width=width,
            height=height,
            source_url=source_url,
            extra=extra or {},
        )
        for stored in files:
            self._media[(bot_id, stored.file_id)] = media
            self._paths[(bot_id, stored.path)] = stored
        return media

    def _new_file(
        self,
        bot_id: int,
        kind: str,
        content: bytes,
        file_name: str | None,
        width: int | None = None,
        height: int | None = None,
    ) -> StoredFile:
        sequence = next(self._sequence)
        packed = struct.pack(">BQQ", _KIND_CODE[kind], bot_id, sequence)
        file_id = _FILE_ID_PREFIX[kind] + base64.urlsafe_b64encode(packed).decode().rstrip("=")
        unique = "AQAD" + base64.urlsafe_b64encode(struct.pack(">Q", sequence)).decode().rstrip("=")
        extension = _extension(kind, file_name)
        return StoredFile(
            file_id, unique, content, f"{_FOLDER[kind]}/file_{sequence}{extension}", width, height
        )

    def _photo_sizes(self, bot_id: int, content: bytes) -> list[StoredFile]:
        if len(content) > MAX_PHOTO_BYTES:
            raise bad_request("PHOTO_SAVE_FILE_INVALID")
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(content)) as image:
                image.load()
                width, height = image.size
                if width + height > 10_000 or max(width, height) > 20 * min(width, height):
                    raise bad_request("PHOTO_INVALID_DIMENSIONS")
                sizes = []
                for side in _PHOTO_SIDES:
                    if max(width, height) > side:
                        sizes.append(self._scaled(bot_id, image, side))
                if max(width, height) <= _PHOTO_SIDES[-1]:
                    sizes.append(self._new_file(bot_id, "photo", content, None, width, height))
                return sizes
        except (UnidentifiedImageError, OSError, ValueError):
            raise bad_request("IMAGE_PROCESS_FAILED") from None

    def _scaled(self, bot_id: int, image: Any, side: int) -> StoredFile:
        scaled = image.convert("RGB")
        scaled.thumbnail((side, side))
        buffer = io.BytesIO()
        scaled.save(buffer, format="JPEG", quality=87)
        return self._new_file(bot_id, "photo", buffer.getvalue(), None, scaled.width, scaled.height)


def _extension(kind: str, file_name: str | None) -> str:
    if kind == "photo":
        return ".jpg"
    if file_name and "." in file_name:
        return "." + file_name.rsplit(".", 1)[1].lower()
    return _DEFAULT_EXTENSION[kind]


async def resolve_media(
    store: FileStore,
    bot_id: int,
    kind: str,
    reference: str | None,
    upload_content: bytes | None,
    *,
    file_name: str | None,
    mime_type: str | None,
    fetch_url: UrlFetcher,
    details: dict[str, Any],
) -> StoredMedia:
    """The media a send names: a fresh upload, an earlier file_id of this bot, or an HTTP URL."""
    if upload_content is not None:
        return store.store(bot_id, kind, upload_content, file_name=file_name, mime_type=mime_type, **details)
    if not reference:
        raise bad_request(f"there is no {kind} in the request")
    known = store.media(bot_id, reference)
    if known is not None:
        if known.kind != kind:
            raise bad_request(f"can't use file of type {known.kind.capitalize()} as {kind.capitalize()}")
        return known
    if reference.startswith(("http://", "https://")):
        content = await fetch_url(reference)
        if content is None:
            raise bad_request("failed to get HTTP URL content")
        name = reference.rsplit("/", 1)[-1].split("?", 1)[0] or None
        return store.store(
            bot_id, kind, content, file_name=name, mime_type=mime_type, source_url=reference, **details
        )
    raise bad_request("wrong file identifier/HTTP URL specified")
