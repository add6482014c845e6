"""Alembic's environment: runs migrations on the connection it is handed, or on a new engine."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from bazaar.config import Settings
from bazaar.db import Base, create_engine
from bazaar.items import models as _items  # noqa: F401 - registers the table
from bazaar.users import models as _users  # noqa: F401 - registers the table

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_on_new_engine(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Bazaar's migrations run online only: `bazaar migrate`")

connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_on_new_engine(config.attributes.get("settings") or Settings()))
