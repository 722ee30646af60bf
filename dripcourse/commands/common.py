"""What every command shares: loading settings, or stopping with one clear line."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.settings import Settings, SettingsError, load_settings


def settings_or_exit(config: Path | None) -> Settings:
    """The validated settings; a bad setting stops the command with one line naming it (exit 2)."""
    try:
        return load_settings(config)
    except SettingsError as error:
        typer.echo(f"dripcourse: bad setting: {error}", err=True)
        raise typer.Exit(2) from None


CONFIG_OPTION = typer.Option(
    None,
    "--config",
    "-c",
    help="TOML settings file (default: $DRIPCOURSE_CONFIG or ./config.toml; none at all is fine).",
    dir_okay=False,
)
