"""How Alembic's environment runs: on the connection it is handed, or on a new engine.

The code lives here rather than in env.py, which Alembic loads from its path under a name
of its own, so that it is an ordinary module: imported, type-checked and measured.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import PoolProxiedConnection

from bazaar.accounts import models as _accounts  # noqa: F401 - registers the table
from bazaar.audit import models as _audit  # noqa: F401 - registers the table
from bazaar.auth import models as _auth  # noqa: F401 - registers the tables
from bazaar.config import Settings
from bazaar.db.base import Base
from bazaar.db.engine import create_engine
from bazaar.items import models as _items  # noqa: F401 - registers the table
from bazaar.mail import models as _mail  # noqa: F401 - registers the table
from bazaar.users import models as _users  # noqa: F401 - registers the table

target_metadata = Base.metadata
# The key of the PostgreSQL advisory lock that migrations hold (any fixed number: this one
# spells "bazaar" in ASCII), so that hosts started together migrate one after the other.
MIGRATION_LOCK = 0x62617A616172


def _run(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        _run_on_sqlite(connection)
    else:
        _migrate(connection)


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Taken before Alembic reads the current revision, held until the upgrade
            # commits: a second `bazaar serve` started at the same moment waits here, then
            # finds the schema at the head and applies nothing (DDL is transactional).
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()


def _run_on_sqlite(connection: Connection) -> None:
    """Migrate with foreign keys off, in one transaction, as SQLite's table rebuilds need.

    Batch mode rebuilds a table by copying it and dropping the original; with foreign keys
    on, dropping `users` deletes its rows first and the cascade empties `items`. The switch
    is ignored inside a transaction, so it is flipped on the driver's connection before
    SQLAlchemy begins one, and the keys are checked by hand before the commit instead.
    """
    if connection.in_transaction():
        raise RuntimeError(
            "migrate SQLite on a connection that is not in a transaction "
            "(foreign keys cannot be switched off inside one)"
        )
    with _foreign_keys_off(connection.connection), connection.begin():
        _migrate(connection)
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
        if broken:
            rows = ", ".join(
                f"{table} row {rowid} -> {parent}" for table, rowid, parent, _ in broken
            )
            raise RuntimeError(f"rows name a parent that does not exist, nothing changed: {rows}")


@contextmanager
def _foreign_keys_off(driver: PoolProxiedConnection) -> Iterator[None]:
    cursor = driver.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys")
        row = cursor.fetchone()
        was_on = bool(row and row[0])
        cursor.execute("PRAGMA foreign_keys = OFF")
        try:
            yield
        finally:
            if was_on:
                cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


async def _run_on_new_engine(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def run() -> None:
    """Migrate as Alembic's configuration says: on its connection, or on a new engine."""
    if context.is_offline_mode():
        raise SystemExit("Bazaar's migrations run online only: `bazaar migrate`")
    attributes = context.config.attributes
    connection = attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_on_new_engine(attributes.get("settings") or Settings()))
