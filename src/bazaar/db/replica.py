"""A PostgreSQL streaming replica for the reads that may lag, and read-your-writes across hosts.

Which reads may go to the replica is the route's choice (`Executor.read_may_lag`): browsing
items and a user's item list. A token's check and every read inside a write stay on the
primary, so that a logout or a revoked session holds at once on every host.

The replica serves a read when three things hold, all known without a round trip:

- it answered the last check (a watcher per worker asks both servers every tenth of a
  second or so, on connections of its own, never the pool's);
- its replay lag is under `BAZAAR_REPLICA_MAX_LAG_MS`. The lag is measured by WAL
  position, not by `now() - pg_last_xact_replay_timestamp()`, which grows on an idle
  primary with nothing to replay: each check records the primary's `pg_current_wal_lsn()`
  with the time it was read, and the replica is as fresh as the newest record its
  `pg_last_wal_replay_lsn()` has reached;
- it has replayed the client's own last write. A response to a write carries the
  primary's WAL position after its commit in the `bazaar_written` cookie, which the
  client sends back (HAProxy and browsers pass cookies on): a read whose cookie names a
  position the replica has not replayed yet goes to the primary. The cookie is set by
  whichever host took the write and read by whichever host serves the read, so
  read-your-writes holds across hosts with nothing shared between them but PostgreSQL.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol

import asyncpg
from prometheus_client import Counter
from sqlalchemy import Text, cast, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from bazaar.db.executor import Executor, Runs
    from bazaar.services import Services

logger = logging.getLogger(__name__)

Role = Literal["primary", "replica"]
ROLES: tuple[Role, ...] = ("primary", "replica")
# The cookie that carries the WAL position of a client's last write, in hexadecimal.
COOKIE = "bazaar_written"
# Long enough for any replica worth reading from to replay the write (past the lag limit
# the replica is skipped anyway); after that the cookie only costs bytes.
COOKIE_SECONDS = 300
# A cookie for a write whose position could not be read: the primary until it expires.
EVERYTHING = (1 << 64) - 1
COOKIE_ENDS = "; Path=/; HttpOnly; SameSite=Lax"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The primary's WAL positions kept to date the replica's (a minute at the fastest checks).
HISTORY = 600
CHECK_TIMEOUT_SECONDS = 2.0
# The replica's position, or the primary's when pointed at a primary (reads stay correct).
_REPLAYED = (
    "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
    "ELSE pg_current_wal_lsn() END)::text"
)
_CURRENT = "SELECT pg_current_wal_lsn()::text"


def parse_lsn(text: str | None) -> int:
    """A WAL position `hi/lo` (hexadecimal halves) as one number; 0 for none."""
    if not text:
        return 0
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


class HasCookies(Protocol):
    """What `written_position` reads of a request."""

    @property
    def cookies(self) -> Mapping[str, str]: ...


def written_position(request: HasCookies) -> int:
    """The WAL position of the client's last write, from its cookie; 0 when none or garbled."""
    value = request.cookies.get(COOKIE)
    if not value or len(value) > 16:
        return 0
    try:
        return int(value, 16)
    except ValueError:
        return 0


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Replica:
    """The replica's state, as the watcher last saw it, and what it takes to serve a read."""

    def __init__(
        self,
        *,
        primary_url: str,
        replica_url: str,
        max_lag_ms: int,
        executor: Executor,
        served: Mapping[Role, Counter],
    ) -> None:
        # Runs the reads the replica serves, on a pool of its own.
        self.executor = executor
        self._primary_dsn = _asyncpg_dsn(primary_url)
        self._replica_dsn = _asyncpg_dsn(replica_url)
        self.max_lag = max_lag_ms / 1000
        # A check every fifth of the allowed lag, within reason: an idle replica shows a
        # lag of up to one interval, which must stay well under the limit.
        self.interval = min(max(self.max_lag / 5, 0.02), 1.0)
        # The reads each role served, for `/metrics`.
        self.served = served
        self.reachable = False
        self.replayed = 0
        # The monotonic time up to which the replica has replayed everything.
        self._fresh_as_of = -math.inf
        self._history: collections.deque[tuple[float, int]] = collections.deque(maxlen=HISTORY)
        self._connections: dict[Role, asyncpg.Connection[Any] | None] = dict.fromkeys(ROLES)
        self._watcher: asyncio.Task[None] | None = None

    @property
    def lag(self) -> float:
        """Seconds of writes the replica has yet to replay (as of the last check)."""
        return max(time.monotonic() - self._fresh_as_of, 0.0)

    def state(self) -> str:
        """For `/ready`: ok, lagging or unreachable."""
        if not self.reachable:
            return "unreachable"
        return "ok" if self.lag <= self.max_lag else "lagging"

    def usable(self, written: int) -> bool:
        """Whether a read that must see the write at `written` may go to the replica."""
        return (
            self.reachable
            and written <= self.replayed
            and time.monotonic() - self._fresh_as_of <= self.max_lag
        )

    def failed(self, error: BaseException) -> None:
        """A read on the replica failed: the primary serves until the next check finds it."""
        if self.reachable:
            logger.warning("replica unavailable: %s: %s", type(error).__name__, error)
        self.reachable = False

    async def start(self) -> None:
        """Check once (so that the first requests know), then keep checking in the background."""
        await self.check()
        self._watcher = asyncio.create_task(self._watch())

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        for role in ROLES:
            await self._drop(role)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.check()

    async def check(self) -> None:
        """Read the primary's WAL position, then the replica's, and date the replica's."""
        checked = time.monotonic()
        current = await self._position("primary", _CURRENT)
        if current is not None:
            self._history.append((checked, current))
        replayed = await self._position("replica", _REPLAYED)
        if replayed is None:
            if self.reachable:
                logger.warning("replica unreachable: reads go to the primary")
            self.reachable = False
            return
        if not self.reachable:
            logger.info("replica reachable: reads that may lag go to it")
        self.replayed, self.reachable = replayed, True
        history = self._history
        # The newest record the replica has reached dates it; older ones are no longer needed.
        while len(history) > 1 and history[1][1] <= replayed:
            history.popleft()
        if history and history[0][1] <= replayed:
            self._fresh_as_of = max(self._fresh_as_of, history[0][0])

    async def _position(self, role: Role, query: str) -> int | None:
        """A WAL position read on the watcher's own connection to `role`, or None if it failed."""
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                connection = self._connections[role]
                if connection is None or connection.is_closed():
                    dsn = self._primary_dsn if role == "primary" else self._replica_dsn
                    connection = await asyncpg.connect(dsn, timeout=CHECK_TIMEOUT_SECONDS)
                    self._connections[role] = connection
                return parse_lsn(await connection.fetchval(query))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            await self._drop(role)
            return None

    async def _drop(self, role: Role) -> None:
        connection, self._connections[role] = self._connections[role], None
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 1)
            if not connection.is_closed():
                connection.terminate()


# The primary's WAL position, on the fast path (a function of a connection, for the executor).
_CURRENT_POSITION = select(cast(func.pg_current_wal_lsn(), Text))


def current_position(connection: Runs) -> int:
    """The primary's WAL position now: past every write committed before this call."""
    return parse_lsn(connection.execute(_CURRENT_POSITION).one()[0])


class ReadYourWrites:
    """Gives each successful write's response the cookie that keeps its client's reads off a
    replica that has not replayed it yet. Installed only when a replica is configured."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return

        async def send_with_position(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                services: Services = scope["app"].state.services
                if services.replica is not None:
                    # The response starts after the request's commit: its write is in the
                    # WAL up to here. One round trip per write, and only with a replica.
                    try:
                        position = await services.executor.read(current_position)
                    except (DBAPIError, OSError, PoolTimeoutError):
                        position = EVERYTHING  # reads go to the primary for a while
                    max_age = COOKIE_SECONDS if position != EVERYTHING else 10
                    MutableHeaders(scope=message).append(
                        "set-cookie", f"{COOKIE}={position:x}; Max-Age={max_age}{COOKIE_ENDS}"
                    )
            await send(message)

        await self.app(scope, receive, send_with_position)
