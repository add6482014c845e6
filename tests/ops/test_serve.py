"""`bazaar serve`: where several workers keep their metrics, and how it stops on a signal."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from bazaar.cli import _shared_metrics_directory
from tests.server import live_server

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


@pytest.fixture(autouse=True)
def no_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VARIABLE, raising=False)


def test_several_workers_get_a_fresh_directory_removed_afterwards() -> None:
    with _shared_metrics_directory(2):
        directory = Path(os.environ[VARIABLE])
        assert directory.is_dir()
        assert list(directory.iterdir()) == []
    assert VARIABLE not in os.environ
    assert not directory.exists()


def test_one_worker_keeps_its_metrics_in_memory() -> None:
    with _shared_metrics_directory(1):
        assert VARIABLE not in os.environ


def test_a_directory_given_by_the_operator_is_used_as_is(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(VARIABLE, str(tmp_path))
    with _shared_metrics_directory(4):
        assert os.environ[VARIABLE] == str(tmp_path)
    assert os.environ[VARIABLE] == str(tmp_path)
    assert tmp_path.is_dir()


@pytest.mark.slow
def test_ctrl_c_stops_the_server_with_the_usual_status(tmp_path: Path) -> None:
    with live_server(tmp_path) as server:
        assert server.stop(signal.SIGINT) == 128 + signal.SIGINT
    assert "Application shutdown complete" in server.logs()
    assert "Traceback" not in server.logs()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("trusted", "statuses"),
    [
        pytest.param("", [401, 401, 429], id="nobody trusted: every attempt is loopback's"),
        pytest.param("127.0.0.0/8", [401, 401, 401], id="loopback trusted: three addresses"),
    ],
)
def test_the_server_believes_x_forwarded_for_only_from_trusted_proxies(
    tmp_path: Path, trusted: str, statuses: list[int]
) -> None:
    """uvicorn hands the app the client address: it must not believe the header by itself."""
    env = {"BAZAAR_TRUSTED_PROXIES": trusted, "BAZAAR_LIMIT_LOGIN_ADDRESS": "2/15 minutes"}
    with live_server(tmp_path, env=env) as server:
        # Failed logins for three emails, each said to come from an address of its own.
        seen = [
            httpx.post(
                f"{server.url}/auth/token",
                data={"username": f"nobody{n}@example.com", "password": "not-the-password"},
                headers={"X-Forwarded-For": f"203.0.113.{n}"},
            ).status_code
            for n in range(3)
        ]
    assert seen == statuses
