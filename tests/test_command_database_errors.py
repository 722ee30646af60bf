"""Commands that read the database say what is wrong with it in a line, never with a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dripcourse.cli import app
from tests.conftest import REPO_ROOT


@pytest.mark.parametrize(
    "command", [["status"], ["db", "current"], ["verify", "7K2M-9QXA-4TRB-F"], ["stats"]]
)
def test_an_unreachable_database_is_one_clear_message(tmp_path: Path, command: list[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text("")
    # Port 1 on loopback refuses at once: nothing listens there.
    environment = {"DRIPCOURSE_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}
    result = CliRunner().invoke(app, [*command, "--config", str(config)], env=environment)
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "dripcourse: database error: connection failed" in result.stderr
    assert "Traceback" not in result.output


def test_status_on_a_database_without_the_schema_points_at_db_upgrade(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("")
    environment = {"DRIPCOURSE_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"}
    result = CliRunner().invoke(app, ["status", "--config", str(config)], env=environment)
    assert result.exit_code == 1
    assert "no such table" in result.stderr
    assert "dripcourse db upgrade" in result.stderr


@pytest.mark.parametrize("command", [["run"], ["chat"]])
def test_the_bot_does_not_start_on_an_unreachable_database_and_says_why(
    tmp_path: Path, command: list[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("")
    environment = {
        **os.environ,
        "DRIPCOURSE_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
        "DRIPCOURSE_TELEGRAM_TOKEN": "123456:not-a-real-token",
    }
    # A process of its own: both commands set up logging for the whole process.
    result = subprocess.run(
        [sys.executable, "-c", "from dripcourse.cli import main; main()", *command, "--config", str(config)],
        env=environment,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert result.returncode == 1
    assert "dripcourse: database error: connection failed" in result.stderr
    assert "Traceback" not in result.stderr
