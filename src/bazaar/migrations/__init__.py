"""Bazaar's Alembic migrations, shipped in the package, and the helpers that run them."""

from __future__ import annotations

import functools
import logging
from contextvars import ContextVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from bazaar.config import Settings


def alembic_config(
    settings: Settings | None = None, connection: Connection | None = None
) -> Config:
    config = Config()
    config.set_main_option("script_location", "bazaar:migrations")
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    config.attributes["settings"] = settings
    config.attributes["connection"] = connection
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Apply migrations up to `revision` on a new engine (call outside an event loop)."""
    command.upgrade(alembic_config(settings), revision)


def upgrade_on(connection: Connection, revision: str = "head") -> None:
    """Apply migrations on an open connection (for `AsyncConnection.run_sync`)."""
    command.upgrade(alembic_config(connection=connection), revision)


# Alembic names its dialect at INFO whenever a MigrationContext is made: once for each
# `bazaar migrate` it says something, once for each `/ready` probe it floods the log.
_checking: ContextVar[bool] = ContextVar("checking", default=False)


class _QuietWhileChecking(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _checking.get()


logging.getLogger("alembic.runtime.migration").addFilter(_QuietWhileChecking())


@functools.cache
def _newest() -> frozenset[str]:
    """The head revisions this package ships: read from its scripts once, not per probe."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def pending(connection: Connection) -> bool:
    """Whether the database's schema is behind the newest migration."""
    token = _checking.set(True)
    try:
        current = frozenset(MigrationContext.configure(connection).get_current_heads())
    finally:
        _checking.reset(token)
    return current != _newest()
