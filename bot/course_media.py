"""A lesson's media file: inside the course folder, present, within every platform's limits, hashed."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path, PurePosixPath, PureWindowsPath

from bot.content import Media, MediaKind
from bot.course_check import (
    DISCORD_MAX_UPLOAD_BYTES,
    TELEGRAM_MAX_PHOTO_BYTES,
    TELEGRAM_MAX_UPLOAD_BYTES,
    ProblemLog,
    human_size,
    resolve_inside,
)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif"})
_CHUNK = 1 << 20


def check_media(
    course_root: Path,
    kind: MediaKind,
    written: str,
    caption: str,
    lesson_path: Path,
    line: int,
    log: ProblemLog,
) -> Media | None:
    """The media entry with its resolved path, size and sha256; None (logged) when it cannot be sent.

    `course_root` is already resolved; `written` is the path as written in the lesson.
    """
    where = f"{kind.value} {written!r}"
    if not written.strip() or "\x00" in written:
        log.error(lesson_path, line, f"{kind.value}: write the path of a file, e.g. media/chart.png")
        return None
    if PurePosixPath(written).is_absolute() or PureWindowsPath(written).is_absolute():
        log.error(
            lesson_path, line, f"{where}: write the path relative to the course folder, e.g. media/chart.png"
        )
        return None
    resolved = resolve_inside(course_root, course_root / written)
    if resolved is None:
        if Path(os.path.normpath(course_root / written)).is_relative_to(course_root):
            log.error(lesson_path, line, f"{where} is a symlink pointing outside the course folder")
        else:
            log.error(lesson_path, line, f"{where} leaves the course folder; keep media inside it")
        return None
    try:
        info = resolved.stat()
    except FileNotFoundError:
        log.error(lesson_path, line, f"{where}: no such file in the course folder")
        return None
    except OSError as error:
        log.error(lesson_path, line, f"{where}: cannot read it ({error.strerror or error})")
        return None
    if not stat.S_ISREG(info.st_mode):
        log.error(lesson_path, line, f"{where} is not a regular file")
        return None
    size = info.st_size
    if not _within_limits(kind, resolved, size, where, lesson_path, line, log):
        return None
    digest = _sha256(resolved)
    if digest is None:
        log.error(lesson_path, line, f"{where}: cannot read it")
        return None
    return Media(kind=kind, path=resolved, caption=caption, size_bytes=size, sha256=digest)


def _within_limits(
    kind: MediaKind, path: Path, size: int, where: str, lesson_path: Path, line: int, log: ProblemLog
) -> bool:
    if size == 0:
        log.error(lesson_path, line, f"{where} is empty; platforms refuse empty files")
        return False
    if kind is MediaKind.IMAGE:
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            log.error(
                lesson_path,
                line,
                f"{where}: images must be PNG, JPEG, WebP or GIF; send other files as 'document'",
            )
            return False
        if size > TELEGRAM_MAX_PHOTO_BYTES:
            log.error(
                lesson_path,
                line,
                f"{where} is {human_size(size)}; Telegram takes photos up to 10 MB: shrink it",
            )
            return False
        return True
    if size > TELEGRAM_MAX_UPLOAD_BYTES:
        log.error(lesson_path, line, f"{where} is {human_size(size)}; Telegram bots may upload up to 50 MB")
        return False
    if size > DISCORD_MAX_UPLOAD_BYTES:
        log.warning(
            lesson_path,
            line,
            f"{where} is {human_size(size)}, over Discord's 10 MiB attachment limit: Discord will send it "
            "as a link when discord.media_base_url is set (and leave it out with a note otherwise)",
        )
    return True


def _sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()
