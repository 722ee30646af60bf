"""Discord through discord.py: the adapter, slash commands, pure translation and error classification."""

from adapters.discord.adapter import DiscordAdapter, discord_capabilities

__all__ = ["DiscordAdapter", "discord_capabilities"]
