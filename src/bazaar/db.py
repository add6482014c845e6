"""Database layer: declarative base, engine options per dialect, the request's unit of work."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar

from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import greenlet_spawn

from bazaar.config import Settings
from bazaar.fields import MAX_ID

# A pooled connection idle for longer than this is pinged before use.
PING_AFTER_IDLE_SECONDS = 1.0
# Execution option read by the SQLite `begin` hook: this transaction will write.
WRITE = "bazaar_write"

P = ParamSpec("P")
T = TypeVar("T")

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


class Reads:
    """Runs a read (a plain function of a `Connection`) on a pooled connection.

    The whole read runs in one greenlet: it checks a connection out, executes
    and returns the connection in a single switch into SQLAlchemy's synchronous
    core. Each awaited call of the asyncio API (connect, execute, close, and a
    session's begin and commit) is a switch of its own, and together they cost
    more than the query. On PostgreSQL a read runs in autocommit: each statement
    reads a consistent snapshot, without BEGIN and COMMIT round trips. On SQLite
    it is one deferred transaction, rolled back when the connection goes back.

    A read must not be run while the request's session holds a connection: the
    two would take two connections from the pool at once.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        if engine.dialect.name == "postgresql":
            engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._engine = engine.sync_engine

    async def __call__(
        self, read: Callable[Concatenate[Connection, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        return await greenlet_spawn(partial(self._run, read, *args, **kwargs))

    def _run(
        self, read: Callable[Concatenate[Connection, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        with self._engine.connect() as connection:
            return read(connection, *args, **kwargs)


def sessionmakers(engine: AsyncEngine) -> dict[bool, async_sessionmaker[AsyncSession]]:
    """Session factories by whether the request writes: a writer takes SQLite's write lock."""
    return {
        write: async_sessionmaker(
            engine.execution_options(**{WRITE: write}), expire_on_commit=False
        )
        for write in (True, False)
    }


def _unit_of_work(*, write: bool) -> Callable[[Request], AsyncIterator[AsyncSession]]:
    async def session_dependency(request: Request) -> AsyncIterator[AsyncSession]:
        # The session takes a connection when it first runs a statement, not before:
        # a request refused on the way in (a bad token) costs no database work.
        session: AsyncSession = request.app.state.sessionmakers[write]()
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
        finally:
            await session.close()

    return session_dependency


async def _reads(request: Request) -> Reads:
    reads: Reads = request.app.state.reads
    return reads


# The request's session: one transaction, committed before the response is sent
# (rolled back on any error); on SQLite it takes the write lock when it begins.
SessionDep = Annotated[AsyncSession, Depends(_unit_of_work(write=True), scope="function")]
# The same for a write request that mostly reads (login): no write lock up front.
ReadSessionDep = Annotated[AsyncSession, Depends(_unit_of_work(write=False), scope="function")]
# What a request that only reads uses instead of a session.
ReadsDep = Annotated[Reads, Depends(_reads)]
