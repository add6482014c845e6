"""A real `bazaar serve` process on a free port, for end-to-end tests."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

SECRET_KEY = "live-server-secret-key-that-is-long-enough-0123456789"
# uvicorn closes a connection idle for 5 s; a client that reuses one at that very moment sees
# its request cut off (httpx.ReadError). Clients of a live server let idle ones go sooner.
CLIENT_KEEPALIVE_SECONDS = 1.0
# Every server started so far, in order: a failed test's report shows their logs (conftest).
STARTED: list[LiveServer] = []
# How coverage's start-up hook in a subprocess knows to measure it (`patch = ["subprocess"]`).
COVERAGE_VARIABLES = ("COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START")
# Variables of the developer's own shell that would change what the server does.
_INHERITED_OUT = ("BAZAAR_", "PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")


@dataclass
class LiveServer:
    """A running `bazaar serve`: where it answers, its process, and what it logged."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str]

    @property
    def database_path(self) -> Path | None:
        """The SQLite file it serves, when it serves one."""
        match = re.fullmatch(r"sqlite\+aiosqlite:///(.+)", self.env["BAZAAR_DATABASE_URL"])
        return Path(match.group(1)) if match else None

    def client(self, *, timeout: float = 20, connections: int = 100) -> httpx.AsyncClient:
        """An HTTP client of this server that never reuses a connection the server is closing."""
        limits = httpx.Limits(
            max_connections=connections,
            max_keepalive_connections=connections,
            keepalive_expiry=CLIENT_KEEPALIVE_SECONDS,
        )
        return httpx.AsyncClient(base_url=self.url, limits=limits, timeout=timeout)

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        """Send `sig` and wait for the exit code (the process is killed past `timeout`)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"bazaar serve ignored signal {sig} for {timeout} s") from None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(
    directory: Path, overrides: Mapping[str, str] | None = None, *, measured: bool = True
) -> dict[str, str]:
    """This process's environment without Bazaar's settings, then a SQLite file in `directory`.

    `measured=False`: without coverage's variables, so that a server put under load runs
    untraced under `make test COVERAGE=1` (tracing slows it about twice over; the code it
    runs is measured by the other tests).
    """
    left_out = _INHERITED_OUT if measured else (*_INHERITED_OUT, *COVERAGE_VARIABLES)
    env = {key: value for key, value in os.environ.items() if not key.startswith(left_out)}
    env["BAZAAR_DATABASE_URL"] = f"sqlite+aiosqlite:///{directory / 'bazaar.db'}"
    env["BAZAAR_SECRET_KEY"] = SECRET_KEY
    # The tests sign many users up from one address; tests of that throttle set their own.
    env["BAZAAR_LIMIT_SIGNUP"] = "1000000/hour"
    env.update(overrides or {})
    return env


@contextmanager
def live_server(
    directory: Path,
    *,
    env: Mapping[str, str] | None = None,
    workers: int = 1,
    args: Sequence[str] = (),
    startup_timeout: float = 60,
    measured: bool = True,
) -> Iterator[LiveServer]:
    """Run `bazaar serve` (migrating first) until the block ends; `env` overrides settings.

    Returns once `/health` answers and, with several workers, every one of them serves.
    `measured`: as for `server_env`.
    """
    port = free_port()
    full_env = server_env(directory, env, measured=measured)
    log_path = directory / f"bazaar-serve-{port}.log"
    command = [sys.executable, "-m", "bazaar", "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers), *args]
    with log_path.open("wb") as log:
        # In `directory`, so that a `.env` file of the developer's is not read.
        process = subprocess.Popen(  # noqa: S603 - our own command line
            command, cwd=directory, env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
    server = LiveServer(f"http://127.0.0.1:{port}", process, log_path, full_env)
    STARTED.append(server)
    try:
        _wait_until_serving(server, workers, startup_timeout)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_serving(server: LiveServer, workers: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    workers_line = re.compile(rf"^bazaar_workers {workers}(\.0)?$", re.MULTILINE)
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"bazaar serve exited with {server.process.returncode}:\n{server.logs()}"
            )
        try:
            if httpx.get(f"{server.url}/health", timeout=2).status_code == 200 and (
                workers == 1 or workers_line.search(httpx.get(f"{server.url}/metrics").text)
            ):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"bazaar serve did not come up within {timeout} s:\n{server.logs()}")
