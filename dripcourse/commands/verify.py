"""`dripcourse verify CODE`: is this completion certificate real, and what does it certify?"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from sqlmodel import Session

from bot.certificates import verify
from bot.db import upgrade
from dripcourse.commands.common import CONFIG_OPTION, database_or_exit, settings_or_exit


def verify_command(
    code: str = typer.Argument(..., help="The code printed on the certificate, e.g. 7K2M-9QXA-4TRB-F."),
    config: Path | None = CONFIG_OPTION,
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Check a certificate's code: exit 0 and print what it certifies, or exit 1 when it is not valid."""
    settings = settings_or_exit(config)
    with database_or_exit(settings) as engine:
        upgrade(engine)
        with Session(engine) as session:
            result = verify(session, code)
            certificate = result.certificate
            facts = (
                {
                    "valid": True,
                    "code": certificate.code,
                    "learner": certificate.learner_name,
                    "course": certificate.course_title,
                    "course_slug": certificate.course_slug,
                    "finished_on": certificate.finished_on.isoformat(),
                    "instructor": certificate.instructor,
                }
                if certificate is not None
                else {"valid": False, "code": code.strip()[:40], "reason": result.reason}
            )
    if json_output:
        typer.echo(json.dumps(facts, ensure_ascii=False))
    elif facts["valid"]:
        instructor = f", instructor {facts['instructor']}" if facts["instructor"] else ""
        typer.echo(
            f"valid: {facts['learner']} completed “{facts['course']}” on {facts['finished_on']}{instructor}"
        )
    else:
        typer.echo(f"not valid: {facts['code']}: {facts['reason']}")
    raise typer.Exit(0 if facts["valid"] else 1)
