"""The fast path: reads and one-statement writes, run in one go on a pooled connection.

On PostgreSQL the statements SQLAlchemy built and compiled run on the driver (asyncpg)
of a connection SQLAlchemy's own pool lends: one pool, no SQL written by hand, and no
per-statement cost of SQLAlchemy's execution (cache key, execution context, result),
which was 110-160 µs a query beside asyncpg's own. SQLite takes SQLAlchemy's path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Concatenate, NoReturn, ParamSpec, Protocol, TypeAlias, TypeVar

from sqlalchemy.engine import Connection, Dialect, Engine, Row
from sqlalchemy.engine.result import result_tuple
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import ClauseElement, TextClause
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import await_only, greenlet_spawn

from bazaar.db.engine import WRITE_OPTIONS
from bazaar.db.gate import Gate
from bazaar.db.replica import HasCookies, Replica, written_position

P = ParamSpec("P")
T = TypeVar("T")
AnyRow: TypeAlias = Row[*tuple[Any, ...]]


class Rows(Protocol):
    """What a query function reads of a statement's outcome."""

    @property
    def rowcount(self) -> int: ...

    def first(self) -> AnyRow | None: ...

    def one(self) -> AnyRow: ...

    def all(self) -> Sequence[AnyRow]: ...


class Runs(Protocol):
    """What a query function is handed: a SQLAlchemy `Connection`, or the executor's
    `DriverConnection` that runs the same statements on the driver."""

    def execute(self, statement: Any, parameters: Any = None, /) -> Rows: ...


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A statement as the driver runs it: SQL, the order of its parameters, its rows."""

    sql: str
    names: tuple[str, ...]
    bind: tuple[tuple[int, Any], ...]
    make_row: Callable[[Sequence[Any]], AnyRow] | None
    results: tuple[tuple[int, Callable[[Any], Any]], ...]


class _Result:
    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[AnyRow], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def first(self) -> AnyRow | None:
        return self._rows[0] if self._rows else None

    def one(self) -> AnyRow:
        if len(self._rows) != 1:
            raise NoResultFound("No row was found") if not self._rows else MultipleResultsFound()
        return self._rows[0]

    def all(self) -> list[AnyRow]:
        return self._rows


# Compiled forms by statement and the names of its parameters. Statements are built once,
# at import or in bounded caches, so this holds one entry per shape.
MAX_COMPILED = 2048
_COMPILED: dict[tuple[ClauseElement, frozenset[str]], _Compiled | None] = {}


def _compile(
    statement: ClauseElement, keys: frozenset[str], dialect: Dialect, driver: Any
) -> _Compiled | None:
    """How the driver runs `statement`, or None when only SQLAlchemy's own execution can
    (Python-side column defaults, expanding IN parameters, and the like). Server-side
    defaults need nothing: a statement that wants them back returns them.

    The result processors depend on the column types the server reports, as they do
    for SQLAlchemy: the statement is prepared once to learn them.
    """
    if isinstance(statement, TextClause):
        return None  # its rows are not described until it runs
    compiled = statement.compile(dialect=dialect, column_keys=sorted(keys))
    if not isinstance(compiled, SQLCompiler) or (
        compiled.insert_prefetch
        or compiled.update_prefetch
        or compiled.literal_execute_params
        or compiled.post_compile_params
        or compiled.positiontup is None
    ):
        return None
    names = tuple(compiled.positiontup)
    processors = compiled._bind_processors
    bind = tuple((n, processors[name]) for n, name in enumerate(names) if name in processors)
    columns = compiled._result_columns
    make_row = result_tuple([column[0] for column in columns]) if columns else None
    results: tuple[tuple[int, Any], ...] = ()
    if columns:
        described = await_only(driver.prepare(compiled.string)).get_attributes()
        results = tuple(
            (n, processor)
            for n, (column, attribute) in enumerate(zip(columns, described, strict=True))
            if (processor := column[3]._cached_result_processor(dialect, attribute.type.oid))
            is not None
        )
    return _Compiled(compiled.string, names, bind, make_row, results)


class DriverConnection:
    """Runs statements SQLAlchemy compiled on the driver of a connection SQLAlchemy's pool
    lent, for the executor's functions on PostgreSQL.

    Results are what SQLAlchemy's would be: `Row`s with the same keys and the same
    conversions (its bind and result processors), and errors translated and handled as
    SQLAlchemy handles them (a lost connection invalidates the pool: a 503, then
    recovery). Statements it cannot run alike go through SQLAlchemy's execution, on a
    `Connection` made around the same pooled connection only then: making one for
    every request cost a fifth of the rest.
    """

    __slots__ = ("_connection", "_dialect", "_driver", "_engine", "_pooled")

    def __init__(self, engine: Engine, pooled: PoolProxiedConnection) -> None:
        self._engine = engine
        self._dialect = engine.dialect
        self._pooled = pooled
        self._driver: Any = pooled.driver_connection
        self._connection: Connection | None = None

    @property
    def connection(self) -> Connection:
        """A SQLAlchemy `Connection` on the same pooled connection (closed with it)."""
        if self._connection is None:
            self._connection = Connection(self._engine, connection=self._pooled)
        return self._connection

    def execute(self, statement: Any, parameters: Mapping[str, Any] | None = None, /) -> Rows:
        values = parameters or {}
        key = (statement, frozenset(values))
        try:
            compiled = _COMPILED[key]
        except KeyError:
            if len(_COMPILED) >= MAX_COMPILED:
                _COMPILED.clear()  # statements built per request: keep memory bounded
            compiled = _COMPILED[key] = _compile(statement, key[1], self._dialect, self._driver)
        if compiled is None:
            return self.connection.execute(statement, values)
        args = [values[name] for name in compiled.names]
        for n, process in compiled.bind:
            args[n] = process(args[n])
        try:
            if compiled.make_row is None:
                status: str = await_only(self._driver.execute(compiled.sql, *args))
                return _Result([], _count(status))
            records = await_only(self._driver.fetch(compiled.sql, *args))
        except Exception as error:
            self._raise(error, compiled.sql, args)
        make_row = compiled.make_row
        if compiled.results:
            rows = []
            for record in records:
                row = list(record)
                for n, process in compiled.results:
                    row[n] = process(row[n])
                rows.append(make_row(row))
        else:
            rows = [make_row(record) for record in records]
        return _Result(rows, len(rows))

    def _raise(self, error: Exception, sql: str, args: list[Any]) -> NoReturn:
        """Raise `error` as SQLAlchemy would have: translated to the DB-API's exceptions by
        the dialect's adapter, then wrapped, with a lost connection invalidated (and the
        pool with it), by SQLAlchemy's own handler."""
        adapted: Any = self._pooled.dbapi_connection
        try:
            adapted._handle_exception(error)
        except self._dialect.loaded_dbapi.Error as translated:
            self.connection._handle_dbapi_exception(translated, sql, args, None, None)
        raise error

    def commit(self) -> None:
        """Commit what SQLAlchemy's execution began, if it ran (the driver's own statements
        run in autocommit)."""
        if self._connection is not None:
            self._connection.commit()


def _count(status: str) -> int:
    """The rows an `UPDATE 3` or `DELETE 0` status names."""
    last = status.rpartition(" ")[2]
    return int(last) if last.isdigit() else 0


class Executor:
    """Runs a query function (of a `Runs`) on a pooled connection, in one go.

    The whole function runs in one greenlet: it checks a connection out,
    executes and gives the connection back in a single switch into
    SQLAlchemy's synchronous core. Each awaited call of the asyncio API
    (connect, execute, commit, close) is a switch of its own, and an
    AsyncSession adds its unit-of-work bookkeeping on top; together they cost
    several times the query. On PostgreSQL the function is handed a
    `DriverConnection`, on SQLite a SQLAlchemy `Connection`. Routes whose work is a
    few known statements use this; those that change objects the ORM tracks use the
    request's session.

    On PostgreSQL it is meant for an engine in autocommit (`create_engine(settings,
    autocommit=True)`); on another it is as correct, only slower. A function
    should not run here while the request's session holds a connection: the two
    would take two connections from the pool at once.
    """

    def __init__(self, engine: AsyncEngine, gate: Gate, replica: Replica | None = None) -> None:
        self._async_engine = engine
        self._engine = engine.sync_engine
        self._replica = replica
        # SQLite's writers must take its write lock when their transaction begins.
        self._locks_to_write = engine.dialect.name == "sqlite"
        # aiosqlite runs each call in a thread of its own, which dwarfs what SQLAlchemy's
        # execution adds: SQLite keeps it. So does BAZAAR_SQL_ECHO, whose log is
        # SQLAlchemy's.
        self._on_driver = engine.dialect.name == "postgresql" and not self._engine.echo
        self._gate = gate

    async def dispose(self) -> None:
        """Close the pool of the engine it runs on."""
        await self._async_engine.dispose()

    async def read(
        self, read: Callable[Concatenate[Runs, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`read(connection, ...)`: in autocommit on PostgreSQL, where each statement reads
        a consistent snapshot without BEGIN and COMMIT round trips; in one deferred
        transaction on SQLite."""
        async with self._gate.place():
            return await greenlet_spawn(partial(self._read, read, *args, **kwargs))

    async def read_may_lag(
        self,
        request: HasCookies,
        read: Callable[Concatenate[Runs, P], T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """`read(connection, ...)` on the replica when there is one that may serve `request`
        (`Replica.usable`: reachable, under the lag limit, past the client's last write);
        on the primary otherwise, and whenever the replica fails it (no 5xx for that).
        Without a replica this is `read`, at its cost."""
        replica = self._replica
        if replica is None:  # `self.read`'s body: not even a coroutine more than a read
            async with self._gate.place():
                return await greenlet_spawn(partial(self._read, read, *args, **kwargs))
        if replica.usable(written_position(request)):
            try:
                result = await replica.executor.read(read, *args, **kwargs)
            except (DBAPIError, OSError, PoolTimeoutError) as error:
                # Stopped, restarting, or a query cancelled by a conflict with recovery.
                replica.failed(error)
            else:
                replica.served["replica"].inc()
                return result
        result = await self.read(read, *args, **kwargs)
        replica.served["primary"].inc()
        return result

    async def write_one(
        self, write: Callable[Concatenate[Runs, P], T], /, *args: P.args, **kwargs: P.kwargs
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
        self, read: Callable[Concatenate[Runs, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        if self._on_driver:
            with self._checkout() as pooled:
                return read(DriverConnection(self._engine, pooled), *args, **kwargs)
        with self._engine.connect() as connection:
            return read(connection, *args, **kwargs)

    def _checkout(self) -> PoolProxiedConnection:
        """A connection from the pool, or the error SQLAlchemy's `connect()` would raise
        (wrapped, so that a database that is away is a 503)."""
        try:
            return self._engine.raw_connection()
        except self._engine.dialect.loaded_dbapi.Error as error:
            Connection._handle_dbapi_exception_noconnection(
                error, self._engine.dialect, self._engine
            )
            raise

    def _write_alone(
        self, write: Callable[Concatenate[Runs, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        if self._on_driver:
            with self._checkout() as pooled:
                driver = DriverConnection(self._engine, pooled)
                result = write(driver, *args, **kwargs)
                driver.commit()
                return result
        with self._engine.connect() as connection:
            result = write(connection, *args, **kwargs)
            # Nothing to send on an engine in autocommit; on any other, the write would
            # otherwise be rolled back when the connection goes back to the pool.
            connection.commit()
            return result

    def _write(
        self, write: Callable[Concatenate[Runs, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        with self._engine.connect() as connection:
            connection.execution_options(**WRITE_OPTIONS)
            with connection.begin():
                return write(connection, *args, **kwargs)
