"""The `dripcourse` command line: one sub-command per module in `dripcourse/commands/`."""

from __future__ import annotations

import typer

from dripcourse.commands.admin import register as register_admin_commands
from dripcourse.commands.backup import backup_command
from dripcourse.commands.chat import chat_command
from dripcourse.commands.check import check_command
from dripcourse.commands.db import db_app
from dripcourse.commands.demo import demo_command
from dripcourse.commands.run import run_command
from dripcourse.commands.schedule import schedule_command
from dripcourse.commands.status import status_command
from dripcourse.commands.verify import verify_command

app = typer.Typer(
    name="dripcourse",
    help="Drip courses through chat bots, released at each learner's own local time.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("run")(run_command)
app.command("chat")(chat_command)
app.command("demo")(demo_command)
app.command("check")(check_command)
app.command("schedule")(schedule_command)
app.command("status")(status_command)
app.command("verify")(verify_command)
app.command("backup")(backup_command)
app.add_typer(db_app, name="db")
register_admin_commands(app)


def main() -> None:
    app()
