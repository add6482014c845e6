"""Database layer: declarative base, engine options per dialect, the request's unit of work."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

from bazaar.config import Settings
from bazaar.fields import MAX_ID

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A pooled connection idle for longer than this is pinged before use.
PING_AFTER_IDLE_SECONDS = 1.0
# Execution option read by the SQLite `begin` hook: this transaction will write.
WRITE = "bazaar_write"

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def id_in_range(value: int) -> bool:
    return 1 <= value <= MAX_ID


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp that comes back aware (in UTC) on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        return datetime

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class utcnow(FunctionElement[datetime]):
    """The current time as a server default, in the format each dialect stores and compares."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(utcnow)
def _utcnow_default(element: utcnow, compiler: SQLCompiler, **kw: Any) -> str:
    return "now()"


@compiles(utcnow, "sqlite")
def _utcnow_sqlite(element: utcnow, compiler: SQLCompiler, **kw: Any) -> str:
    # Microseconds, exactly as SQLAlchemy writes datetimes on SQLite, so that stored
    # and bound timestamps compare correctly as text (keyset pagination relies on it).
    return "(strftime('%Y-%m-%d %H:%M:%f000', 'now'))"


def create_engine(settings: Settings) -> AsyncEngine:
    """The engine for `settings`, with the per-dialect options Bazaar relies on."""
    if settings.is_sqlite:
        engine = create_async_engine(
            settings.database_url,
            echo=settings.sql_echo,
            connect_args={"timeout": 30},
        )
        _configure_sqlite(engine)
        return engine
    engine = create_async_engine(
        settings.database_url,
        echo=settings.sql_echo,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout_seconds,
        connect_args={"timeout": 5, "command_timeout": 30},
    )
    _ping_idle_connections(engine)
    return engine


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """Check a pooled connection before use when it has sat idle for a while.

    This is `pool_pre_ping` for the connections that need it: one in steady use
    proves itself alive on every request, while a ping costs asyncpg three round
    trips (BEGIN, a statement, ROLLBACK), more than the query it would guard.
    A connection that fails in use anyway makes SQLAlchemy discard the whole
    pool, so after a database restart only the requests in flight see a 503.
    """
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:
            # The pool replaces the connection and tries again.
            raise DisconnectionError(str(exc)) from exc


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the driver, so that BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "foreign_keys = ON",
            "journal_mode = WAL",
            "synchronous = NORMAL",
            "busy_timeout = 30000",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A deferred transaction that reads and then writes fails at once with
        # "database is locked" when another writer got in between; taking the write
        # lock up front makes concurrent writers wait their turn instead.
        if connection.get_execution_options().get(WRITE):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


_WRITE_OPTIONS = {WRITE: True}
# A request that only reads needs no transaction of its own on PostgreSQL: each
# statement reads a consistent snapshot, and BEGIN and COMMIT cost two round trips.
_AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}


def _by_method(request: Request) -> dict[str, Any] | None:
    if request.method not in SAFE_METHODS:
        return _WRITE_OPTIONS
    engine: AsyncEngine = request.app.state.engine
    return _AUTOCOMMIT if engine.dialect.name == "postgresql" else None


def _in_a_transaction(_request: Request) -> dict[str, Any] | None:
    return None


def _unit_of_work(
    options_for: Callable[[Request], dict[str, Any] | None],
) -> Callable[[Request], AsyncIterator[AsyncSession]]:
    async def session_dependency(request: Request) -> AsyncIterator[AsyncSession]:
        session: AsyncSession = request.app.state.sessionmaker()
        try:
            options = options_for(request)
            if options is not None:
                await session.connection(execution_options=options)
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
        finally:
            await session.close()

    return session_dependency


# The request's session: one transaction, committed before the response is sent
# (rolled back on any error); on SQLite a write request takes the write lock first.
get_session = _unit_of_work(_by_method)
# The same for a write request that mostly reads (login): no write lock up front.
get_read_session = _unit_of_work(_in_a_transaction)


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
