"""Database layer: declarative base, engine options per dialect, the request's unit of work."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar

from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
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

from bazaar.config import Settings, create_private_sqlite_file
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
    """A timezone-aware timestamp that comes back aware (in UTC) on SQLite too.

    PostgreSQL's `timestamptz` needs no help: there the type adds no per-row work.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        return datetime

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return self.impl_instance.bind_processor(dialect)
        return super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return self.impl_instance.result_processor(dialect, coltype)
        return super().result_processor(dialect, coltype)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None:
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


def create_gate(settings: Settings) -> Gate:
    """The gate in front of the pool `create_engine` makes for `settings`."""
    places = None if settings.is_sqlite else settings.pool_size + settings.max_overflow
    return Gate(places, settings.pool_timeout_seconds)


def create_engine(settings: Settings, *, autocommit: bool = False) -> AsyncEngine:
    """The engine for `settings`, with the per-dialect options Bazaar relies on.

    With `autocommit` (the application's engine), a PostgreSQL connection runs
    each statement as a transaction of its own unless it is given one: reads and
    one-statement writes need neither BEGIN and COMMIT nor a switch of every
    connection to autocommit and back, and `sessionmakers` gives the ORM's units of
    work their transactions. SQLite keeps its transactions either way.
    """
    if settings.is_sqlite:
        # Before SQLite makes it with the process's umask: its -wal and -shm files follow.
        create_private_sqlite_file(settings.database_url)
        engine = create_async_engine(
            settings.database_url,
            echo=settings.sql_echo,
            hide_parameters=not settings.sql_echo,
            connect_args={"timeout": 30},
        )
        _configure_sqlite(engine)
        return engine
    engine = create_async_engine(
        settings.database_url,
        echo=settings.sql_echo,
        hide_parameters=not settings.sql_echo,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout_seconds,
        connect_args={"timeout": 5, "command_timeout": 30},
        **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}),
    )
    _ping_idle_connections(engine)
    return engine


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """Check a pooled connection before use when it has sat idle for a while.

    This is `pool_pre_ping` for the connections that need it: one in steady use
    proves itself alive on every request, while a ping costs a round trip, as
    much as the query it would guard (three outside autocommit: BEGIN, a
    statement, ROLLBACK).
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


_holding_a_place: ContextVar[bool] = ContextVar("holding_a_place", default=False)


class Gate:
    """Lets requests take pooled connections in the order they asked for them.

    SQLAlchemy's asyncio pool gives a returned connection to whichever caller
    asks next, and a waiting caller that loses that race queues again at the
    back: under load a few requests starve for seconds while the rest fly. Here
    requests queue first come, first served (asyncio's semaphore hands a freed
    place to the longest waiter), with one place per connection the pool can
    open, so no one waits in the pool itself. A request that holds a place
    already goes through without taking a second one. `places=None` lets
    everyone through (SQLite, where the write lock orders writers).
    """

    def __init__(self, places: int | None, timeout: float) -> None:
        self._places = None if places is None else asyncio.Semaphore(places)
        self._timeout = timeout

    def place(self) -> _Place:
        return _Place(self)

    async def _enter(self) -> asyncio.Semaphore | None:
        """Wait for a place; the semaphore to give it back to, or None when none was taken."""
        places = self._places
        if places is None or _holding_a_place.get():
            return None
        if not places.locked():
            await places.acquire()  # returns at once
        else:
            await self._wait(places)
        _holding_a_place.set(True)
        return places

    async def _wait(self, places: asyncio.Semaphore) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await places.acquire()
        except TimeoutError:
            raise PoolTimeoutError(
                f"no database connection came free within {self._timeout:g} s"
            ) from None


class _Place:
    """A place at the gate, held for an `async with` block."""

    __slots__ = ("_gate", "_taken")

    def __init__(self, gate: Gate) -> None:
        self._gate = gate
        self._taken: asyncio.Semaphore | None = None

    async def __aenter__(self) -> None:
        self._taken = await self._gate._enter()

    async def __aexit__(self, *_exc: object) -> None:
        if self._taken is not None:
            _holding_a_place.set(False)
            self._taken.release()


class Database:
    """Runs a function of a `Connection` on a pooled connection, in one go.

    The whole function runs in one greenlet: it checks a connection out,
    executes and gives the connection back in a single switch into
    SQLAlchemy's synchronous core. Each awaited call of the asyncio API
    (connect, execute, commit, close) is a switch of its own, and an
    AsyncSession adds its unit-of-work bookkeeping on top; together they cost
    several times the query. Routes whose work is a few known statements use
    this; those that change objects the ORM tracks use the request's session.

    On PostgreSQL it is meant for an engine in autocommit (`create_engine(settings,
    autocommit=True)`); on another it is as correct, only slower. A function
    should not run here while the request's session holds a connection: the two
    would take two connections from the pool at once.
    """

    def __init__(self, engine: AsyncEngine, gate: Gate) -> None:
        self._engine = engine.sync_engine
        # SQLite's writers must take its write lock when their transaction begins.
        self._locks_to_write = engine.dialect.name == "sqlite"
        self._gate = gate

    async def read(
        self, read: Callable[Concatenate[Connection, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`read(connection, ...)`: in autocommit on PostgreSQL, where each statement reads
        a consistent snapshot without BEGIN and COMMIT round trips; in one deferred
        transaction on SQLite."""
        async with self._gate.place():
            return await greenlet_spawn(partial(self._read, read, *args, **kwargs))

    async def write_one(
        self, write: Callable[Concatenate[Connection, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`write(connection, ...)` whose only write is one statement (reads may come
        before it), which is a transaction of its own: in autocommit on PostgreSQL, one
        round trip where BEGIN and COMMIT around it make three; on SQLite in a
        transaction that takes the write lock when it begins, committed when the
        function returns (rolled back if it raises)."""
        run = self._write if self._locks_to_write else self._write_alone
        async with self._gate.place():
            return await greenlet_spawn(partial(run, write, *args, **kwargs))

    def _read(
        self, read: Callable[Concatenate[Connection, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        with self._engine.connect() as connection:
            return read(connection, *args, **kwargs)

    def _write_alone(
        self, write: Callable[Concatenate[Connection, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        with self._engine.connect() as connection:
            result = write(connection, *args, **kwargs)
            # Nothing to send on an engine in autocommit; on any other, the write would
            # otherwise be rolled back when the connection goes back to the pool.
            connection.commit()
            return result

    def _write(
        self, write: Callable[Concatenate[Connection, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        with self._engine.connect() as connection:
            connection.execution_options(**_WRITE_OPTIONS)
            with connection.begin():
                return write(connection, *args, **kwargs)


_WRITE_OPTIONS = {WRITE: True}


def sessionmakers(engine: AsyncEngine) -> dict[bool, async_sessionmaker[AsyncSession]]:
    """Session factories by whether the request writes: a writer takes SQLite's write lock.

    On PostgreSQL, sessions run in transactions (read committed, PostgreSQL's
    default), also on an engine in autocommit; the isolation level is set on each
    connection they take and reset when it goes back to the pool.
    """
    if engine.dialect.name != "sqlite":  # the only dialect that reads the write option
        writes = reads = engine.execution_options(isolation_level="READ COMMITTED")
    else:
        writes, reads = engine.execution_options(**_WRITE_OPTIONS), engine
    return {
        write: async_sessionmaker(bind, expire_on_commit=False)
        for write, bind in ((True, writes), (False, reads))
    }


@asynccontextmanager
async def unit_of_work(request: Request, *, write: bool = True) -> AsyncIterator[AsyncSession]:
    """The request's session in one transaction: committed when the block ends, rolled back
    if it raises. For routes that must do slow work (hashing a password) before they hold
    a connection; the others get theirs from `SessionDep`."""
    # The session takes a connection when it first runs a statement, not before:
    # a request refused on the way in (a bad token) costs no database work.
    gate: Gate = request.app.state.gate
    async with gate.place():
        session: AsyncSession = request.app.state.sessionmakers[write]()
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
        finally:
            await session.close()


def _unit_of_work(*, write: bool) -> Callable[[Request], AsyncIterator[AsyncSession]]:
    async def session_dependency(request: Request) -> AsyncIterator[AsyncSession]:
        async with unit_of_work(request, write=write) as session:
            yield session

    return session_dependency


def database(request: Request) -> Database:
    """The application's `Database`.

    Routes reach it through their request rather than as a dependency: FastAPI
    solves a dependency anew on every request, which cost as much as a twentieth
    of a read, for an object that lives as long as the application.
    """
    db: Database = request.app.state.database
    return db


# The request's session: one transaction, committed before the response is sent
# (rolled back on any error); on SQLite it takes the write lock when it begins.
SessionDep = Annotated[AsyncSession, Depends(_unit_of_work(write=True), scope="function")]
# The same for a write request that mostly reads (login): no write lock up front.
ReadSessionDep = Annotated[AsyncSession, Depends(_unit_of_work(write=False), scope="function")]
