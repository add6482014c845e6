"""The fast path: reads and one-statement writes, run in one go on a pooled connection."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from bazaar.db.engine import WRITE_OPTIONS
from bazaar.db.gate import Gate

P = ParamSpec("P")
T = TypeVar("T")


class Executor:
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
            connection.execution_options(**WRITE_OPTIONS)
            with connection.begin():
                return write(connection, *args, **kwargs)
