"""Settings: TOML, environment overrides, one-line errors, and secrets that never show."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.settings import SettingsError, load_settings
from dripcourse.cli import app

TOKEN = "123456:ABC-very-secret-token-value"


def test_defaults_apply_without_a_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.scheduler.heartbeat_seconds == 5.0
    assert settings.telegram.mode == "polling"
    assert settings.database.url.get_secret_value() == "sqlite:///dripcourse.db"


def test_file_then_environment(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[scheduler]\nheartbeat_seconds = 2\n[telegram]\nadmins = ["1", "2"]\n')
    settings = load_settings(
        config,
        environ={
            "DRIPCOURSE_SCHEDULER_HEARTBEAT_SECONDS": "3.5",
            "DRIPCOURSE_DISCORD_GUILD_IDS": "10, 20",
            "DRIPCOURSE_TELEGRAM_TOKEN": TOKEN,
            "DRIPCOURSE_TEST_POSTGRES_URL": "ignored",
        },
    )
    assert settings.scheduler.heartbeat_seconds == 3.5
    assert settings.telegram.admins == ["1", "2"]
    assert settings.discord.guild_ids == [10, 20]
    assert settings.telegram.token is not None
    assert settings.telegram.token.get_secret_value() == TOKEN
    assert TOKEN not in repr(settings)
    assert TOKEN in settings.secret_values()


@pytest.mark.parametrize(
    ("toml", "environ", "expected"),
    [
        ('[telegram]\nmode = "pull"\n', {}, "telegram.mode = 'pull'"),
        ("[scheduler]\nheartbeat_seconds = -1\n", {}, "scheduler.heartbeat_seconds = -1"),
        ("[sender]\nin_flght = 3\n", {}, "unknown setting sender.in_flght"),
        ("[nonsense]\n", {}, "unknown setting nonsense"),
        (
            "",
            {"DRIPCOURSE_SENDER_IN_FLIGHT": "many"},
            "DRIPCOURSE_SENDER_IN_FLIGHT: sender.in_flight = 'many'",
        ),
        ("", {"DRIPCOURSE_TELEGRAM_TOKN": "x"}, "DRIPCOURSE_TELEGRAM_TOKN: no such setting"),
        (f'[telegram]\ntoken = "{TOKEN}"\n', {}, "DRIPCOURSE_TELEGRAM_TOKEN"),
        ("[scheduler\n", {}, "config.toml"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(
    tmp_path: Path, toml: str, environ: dict[str, str], expected: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(toml)
    with pytest.raises(SettingsError) as raised:
        load_settings(config, environ=environ)
    message = str(raised.value)
    assert expected in message
    assert "\n" not in message
    assert TOKEN not in message


def test_a_secret_value_is_never_echoed_in_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(
            tmp_path / "none.toml", environ={"DRIPCOURSE_CONFIG": "x", "DRIPCOURSE_DATABASE_URL": ""}
        )
    assert "does not exist" in str(raised.value)


def test_cli_stops_on_a_bad_setting_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[logging]\nlevel = "LOUD"\n')
    result = CliRunner().invoke(app, ["db", "upgrade", "--config", str(config)])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0
    assert "logging.level = 'LOUD'" in result.output


def test_run_without_a_platform_token_points_to_chat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("DRIPCOURSE_TELEGRAM_TOKEN", "DRIPCOURSE_DISCORD_TOKEN", "DRIPCOURSE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 2
    assert "DRIPCOURSE_TELEGRAM_TOKEN" in result.output
    assert "dripcourse chat" in result.output
