"""SIGTERM: stop accepting, let in-flight requests finish (within --graceful-seconds), exit 0."""

from __future__ import annotations

import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager
from pathlib import Path

import httpx
import pytest

from tests.ops.promtext import value
from tests.server import LiveServer, live_server

# Long enough for the test's few requests to fit in, on a slow machine too.
DRAIN_SECONDS = 6
SIGN_UP = {"name": "Slow", "email": "slow@example.com", "password": "quiet-lantern-1"}


def _until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def _in_progress(server: LiveServer) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    return value(text, "bazaar_http_requests_in_progress") or 0


def _refused(server: LiveServer) -> bool:
    try:
        httpx.get(f"{server.url}/health", timeout=1)
    except httpx.ConnectError:
        return True
    return False


@contextmanager
def _slow_sign_up(
    server: LiveServer,
) -> Iterator[tuple[sqlite3.Connection, Future[httpx.Response]]]:
    """A sign-up in flight, waiting for the write lock that this test holds on the database."""
    assert server.database_path is not None
    with closing(sqlite3.connect(server.database_path, isolation_level=None)) as lock:
        lock.execute("BEGIN IMMEDIATE")
        with ThreadPoolExecutor(1) as pool:
            sign_up = pool.submit(httpx.post, f"{server.url}/users/", json=SIGN_UP, timeout=60)
            # The scrape counts itself: two means the sign-up is being served.
            _until(lambda: _in_progress(server) >= 2)
            yield lock, sign_up
            if lock.in_transaction:
                lock.execute("ROLLBACK")


def _users(database: Path) -> list[str]:
    with closing(sqlite3.connect(database)) as connection:
        return [row[0] for row in connection.execute("SELECT email FROM users")]


def test_sigterm_lets_the_request_in_flight_finish_and_exits_0(tmp_path: Path) -> None:
    with live_server(tmp_path) as server, _slow_sign_up(server) as (lock, sign_up):
        server.process.send_signal(signal.SIGTERM)
        _until(lambda: _refused(server))
        assert server.process.poll() is None
        assert not sign_up.done()
        lock.execute("ROLLBACK")
        response = sign_up.result(timeout=30)
        assert response.status_code == 201
        assert server.process.wait(timeout=20) == 0
    assert _users(tmp_path / "bazaar.db") == ["slow@example.com"]
    logs = server.logs()
    assert "POST /users/ 201" in logs
    assert "Application shutdown complete" in logs


def test_in_flight_requests_get_at_most_the_graceful_seconds(tmp_path: Path) -> None:
    with (
        live_server(tmp_path, args=["--graceful-seconds", "1"]) as server,
        _slow_sign_up(server) as (_lock, sign_up),
    ):
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        # Exits though the database is still locked: the request was given up on.
        assert server.process.wait(timeout=20) == 0
        assert time.monotonic() - started < 10
        try:
            status = sign_up.result(timeout=10).status_code
        except httpx.TransportError:
            status = None
        assert status != 201
    assert _users(tmp_path / "bazaar.db") == []
    assert "timeout graceful shutdown exceeded" in server.logs()


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_drain_seconds_answer_ready_503_while_serving_then_stop(
    tmp_path: Path, workers: int
) -> None:
    """With --drain-seconds, SIGTERM first makes /ready a 503 (a load balancer takes the host
    out) while every request is still served; then the usual graceful stop, exit 0."""
    with live_server(
        tmp_path, workers=workers, args=["--drain-seconds", str(DRAIN_SECONDS)]
    ) as server:
        assert httpx.get(f"{server.url}/ready").status_code == 200
        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        ready: list[int] = []

        # Every worker drains: a run of 503s on new connections, which any worker may take.
        def draining() -> bool:
            ready.append(httpx.get(f"{server.url}/ready", timeout=2).status_code)
            return ready[-6:] == [503] * 6

        _until(draining)
        detail = httpx.get(f"{server.url}/ready").json()["detail"]
        # Still serving everything else meanwhile, reads and writes.
        served = [
            httpx.get(f"{server.url}/health").status_code,
            httpx.get(f"{server.url}/items").status_code,
            httpx.post(f"{server.url}/users/", json=SIGN_UP).status_code,
        ]
        assert server.process.wait(30) == 0
        stopped_after = time.monotonic() - signalled
        logs = server.logs()
    assert detail.startswith("Shutting down")
    assert served == [200, 200, 201]
    # Stopped only once the drain was over (a lower bound: a slow machine only adds to it).
    assert stopped_after >= DRAIN_SECONDS
    assert f"SIGTERM: draining for {DRAIN_SECONDS} s" in logs
