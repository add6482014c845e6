"""A private PostgreSQL cluster that a test may stop, crash and start again at will."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import asyncpg

from tests.server import free_port

ShutdownMode = Literal["smart", "fast", "immediate"]
# The OS user that runs the cluster when the tests run as root (PostgreSQL refuses root).
CLUSTER_USER = "postgres"


def find_bindir() -> Path | None:
    """Where `initdb`, `pg_ctl` and `postgres` live: $PATH, `pg_config`, or Debian's layout."""
    explicit = os.environ.get("BAZAAR_TEST_PG_BINDIR")
    if explicit:
        return Path(explicit)
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent  # the real bindir, not a folder of symlinks
    pg_config = shutil.which("pg_config")
    if pg_config:
        bindir = subprocess.run(  # noqa: S603 - a fixed command
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if bindir and (Path(bindir) / "initdb").exists():
            return Path(bindir)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


class Cluster:
    """`initdb` into a fresh directory, then `pg_ctl` it; trust authentication on 127.0.0.1."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.as_root = os.geteuid() == 0
        self.directory = Path(tempfile.mkdtemp(prefix="bazaar-faults-pg-"))
        self.data = self.directory / "data"
        self.log_path = self.directory / "postgres.log"
        self.port = free_port()
        if self.as_root:
            shutil.chown(self.directory, CLUSTER_USER, CLUSTER_USER)

    def _run(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        full = [str(self.bindir / command[0]), *command[1:]]
        if self.as_root:
            full = ["runuser", "-u", CLUSTER_USER, "--", *full]
        result = subprocess.run(  # noqa: S603 - our own command line
            full, capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{command[0]} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
                f"\n{self.server_log()}"
            )
        return result

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    def clone(self, primary: Cluster) -> None:
        """Make this cluster a streaming replica of `primary` (instead of `init`)."""
        self._run(
            "pg_basebackup",
            *("-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"),
            *("-D", str(self.data), "-R", "-X", "stream", "-c", "fast", "--no-sync"),
            timeout=120,
        )

    def start(self, *, wait: bool = True) -> None:
        options = " ".join(
            (
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.directory}",
                "-c max_connections=60",
                "-c shared_buffers=32MB",
            )
        )
        wait_flag = "-w" if wait else "-W"
        data, log = str(self.data), str(self.log_path)
        self._run("pg_ctl", "start", wait_flag, "-t", "60", "-D", data, "-l", log, "-o", options)

    def stop(self, mode: ShutdownMode = "fast") -> None:
        self._run("pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.data))

    def running(self) -> bool:
        pid_file = self.data / "postmaster.pid"
        return pid_file.exists()

    def destroy(self) -> None:
        """Stop the cluster however it is, and remove its files."""
        try:
            if self.running():
                self.stop("immediate")
        except Exception:  # cleaning up, whatever went wrong: kill it instead
            self._kill_postmaster()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _kill_postmaster(self) -> None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGKILL)

    def server_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL that Bazaar is given."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        name = f"bazaar_faults_{uuid.uuid4().hex[:10]}"
        self._run("createdb", *self._client_options(), name)
        return name

    def drop_database(self, name: str) -> None:
        self._run("dropdb", *self._client_options(), "--force", "--if-exists", name)

    def _client_options(self) -> list[str]:
        return ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]

    async def fetch(self, database: str, query: str, *args: Any) -> list[asyncpg.Record]:
        """Rows of one query, on a connection of its own."""
        connection = await asyncpg.connect(self.dsn(database), timeout=10)
        try:
            rows: list[asyncpg.Record] = await connection.fetch(query, *args)
            return rows
        finally:
            await connection.close()

    async def accepting(self, database: str = "postgres") -> bool:
        """Whether a new session can be opened and answer a query right now."""
        try:
            connection = await asyncpg.connect(self.dsn(database), timeout=1)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            return False
        try:
            await connection.fetchval("SELECT 1")
            return True
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False
        finally:
            with contextlib.suppress(Exception):
                await connection.close(timeout=1)

    async def wait_accepting(self, database: str = "postgres", *, within: float = 60) -> float:
        """Poll every 20 ms until a session opens; the monotonic time it first did."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if await self.accepting(database):
                return time.monotonic()
            await asyncio.sleep(0.02)
        log = self.server_log()
        raise AssertionError(f"PostgreSQL did not come back within {within} s:\n{log}")

    async def backends(self, database: str, states: Sequence[str] | None = None) -> list[int]:
        """Pids of the sessions on `database` other than this query's own (in these states)."""
        rows = await self.fetch(
            database,
            "SELECT pid, state FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
        return [row["pid"] for row in rows if states is None or row["state"] in states]

    async def wait_gone(self, database: str, pids: Sequence[int], *, within: float = 10) -> None:
        """Wait until none of these sessions is left (termination is only a signal)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if not set(pids) & set(await self.backends(database)):
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"sessions {pids} still there after {within} s")

    async def terminate_backends(self, database: str) -> list[int]:
        """`pg_terminate_backend` every session on `database` but ours; their pids."""
        rows = await self.fetch(
            database,
            "SELECT pid, pg_terminate_backend(pid) AS killed FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
        return [row["pid"] for row in rows if row["killed"]]
