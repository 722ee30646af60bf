"""`OutgoingMessage`s as discord.py objects: embed, files and a view of buttons."""

from __future__ import annotations

import io
from pathlib import Path

import discord

from adapters.discord.translate import ButtonSpec, ButtonStyle, OutgoingMessage
from bot.ports import PermanentError

_STYLES = {
    ButtonStyle.PRIMARY: discord.ButtonStyle.primary,
    ButtonStyle.SECONDARY: discord.ButtonStyle.secondary,
    ButtonStyle.SUCCESS: discord.ButtonStyle.success,
    ButtonStyle.LINK: discord.ButtonStyle.link,
}


def size_of(path: Path) -> int:
    return path.stat().st_size


def embed_of(message: OutgoingMessage) -> discord.Embed | None:
    if not message.embed_title and not message.embed_description:
        return None
    return discord.Embed(title=message.embed_title or None, description=message.embed_description or None)


def view_of(buttons: tuple[ButtonSpec, ...]) -> discord.ui.View | None:
    """The buttons as a view that only serializes them: every press reaches the catch-all listener.

    Stopped, so discord.py neither keeps it in its view store nor starts a timeout for it.
    """
    if not buttons:
        return None
    view = discord.ui.View(timeout=None)
    for spec in buttons:
        if spec.style is ButtonStyle.LINK:
            view.add_item(discord.ui.Button(label=spec.label, style=discord.ButtonStyle.link, url=spec.url))
        else:
            view.add_item(
                discord.ui.Button(label=spec.label, style=_STYLES[spec.style], custom_id=spec.custom_id)
            )
    view.stop()
    return view


def open_files(message: OutgoingMessage) -> list[discord.File]:
    """The message's attachments, opened; PermanentError when a file cannot be read (nothing stays open)."""
    files: list[discord.File] = []
    try:
        for attachment in message.attachments:
            if attachment.path is not None:
                files.append(discord.File(attachment.path, filename=attachment.filename))
            else:
                files.append(
                    discord.File(io.BytesIO(attachment.content or b""), filename=attachment.filename)
                )
    except OSError as error:
        for opened in files:
            opened.close()
        raise PermanentError(f"cannot read {error.filename or 'a media file'}: {error.strerror}") from None
    return files
