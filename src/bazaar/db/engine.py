"""The engine, with the options per dialect and the pool events Bazaar relies on."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bazaar.config import Settings, create_private_sqlite_file

# A pooled connection idle for longer than this is pinged before use.
PING_AFTER_IDLE_SECONDS = 1.0
# Execution option read by the SQLite `begin` hook: this transaction will write.
WRITE = "bazaar_write"
WRITE_OPTIONS = {WRITE: True}


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


# Session factories by whether the request writes.
Sessionmakers = dict[bool, async_sessionmaker[AsyncSession]]


def sessionmakers(engine: AsyncEngine) -> Sessionmakers:
    """Session factories by whether the request writes: a writer takes SQLite's write lock.

    On PostgreSQL, sessions run in transactions (read committed, PostgreSQL's
    default), also on an engine in autocommit; the isolation level is set on each
    connection they take and reset when it goes back to the pool.
    """
    if engine.dialect.name != "sqlite":  # the only dialect that reads the write option
        writes = reads = engine.execution_options(isolation_level="READ COMMITTED")
    else:
        writes, reads = engine.execution_options(**WRITE_OPTIONS), engine
    return {
        write: async_sessionmaker(bind, expire_on_commit=False)
        for write, bind in ((True, writes), (False, reads))
    }
