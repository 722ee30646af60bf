"""Alembic environment: migrations run on the engine the application hands over."""

from alembic import context
from sqlmodel import SQLModel

import bot.models  # noqa: F401  (registers every table on SQLModel.metadata)

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # SQLite changes a constraint by rebuilding the table (batch mode), and dropping the old copy
        # would trip the keys of rows pointing at it: its documented procedure turns key enforcement
        # off around the transaction (the pragma is ignored inside one) and checks every key before commit
        # when anything was migrated.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    try:
        with connection.begin():
            context.configure(
                connection=connection,
                target_metadata=SQLModel.metadata,
                render_as_batch=sqlite,
                compare_type=True,
            )
            before = context.get_context().get_current_revision()
            context.run_migrations()
            if sqlite and context.get_context().get_current_revision() != before:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(
                        f"the migration left {len(broken)} broken foreign keys, e.g. {broken[0]}"
                    )
    finally:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()
