"""The `bazaar` command: migrate, create-admin, demo-data, and serving for real."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.server import live_server, server_env


def bazaar(
    directory: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own command line
        [sys.executable, "-m", "bazaar", *args],
        env=server_env(directory, env),
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def rows(directory: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(directory / "bazaar.db") as connection:
        return connection.execute(query).fetchall()


def test_migrate_creates_the_schema(tmp_path: Path) -> None:
    result = bazaar(tmp_path, "migrate")
    assert result.returncode == 0, result.stderr
    tables = {name for (name,) in rows(tmp_path, "SELECT name FROM sqlite_master")}
    assert {"users", "items", "alembic_version"} <= tables


def test_create_admin_creates_then_promotes(tmp_path: Path) -> None:
    assert bazaar(tmp_path, "migrate").returncode == 0
    env = {"BAZAAR_ADMIN_PASSWORD": "admin-password"}
    created = bazaar(
        tmp_path, "create-admin", "--email", "Boss@Example.com", "--name", "Boss", env=env
    )
    assert created.returncode == 0, created.stderr
    assert "created admin boss@example.com" in created.stdout
    assert rows(tmp_path, "SELECT email, is_admin FROM users") == [("boss@example.com", 1)]

    with sqlite3.connect(tmp_path / "bazaar.db") as connection:
        connection.execute("UPDATE users SET is_admin = 0, is_active = 0")
    promoted = bazaar(tmp_path, "create-admin", "--email", "boss@example.com", "--name", "Boss")
    assert promoted.returncode == 0, promoted.stderr
    assert "promoted admin boss@example.com" in promoted.stdout
    assert rows(tmp_path, "SELECT is_admin, is_active FROM users") == [(1, 1)]


def test_create_admin_without_a_password_source_fails_clearly(tmp_path: Path) -> None:
    assert bazaar(tmp_path, "migrate").returncode == 0
    result = bazaar(tmp_path, "create-admin", "--email", "a@example.com", "--name", "A")
    assert result.returncode != 0
    assert "BAZAAR_ADMIN_PASSWORD" in result.stderr
    assert rows(tmp_path, "SELECT count(*) FROM users") == [(0,)]


def test_create_admin_refuses_a_weak_password(tmp_path: Path) -> None:
    assert bazaar(tmp_path, "migrate").returncode == 0
    env = {"BAZAAR_ADMIN_PASSWORD": "short"}
    result = bazaar(tmp_path, "create-admin", "--email", "a@example.com", "--name", "A", env=env)
    assert result.returncode != 0
    assert "password" in result.stderr
    assert rows(tmp_path, "SELECT count(*) FROM users") == [(0,)]


def test_demo_data_fills_the_database(tmp_path: Path) -> None:
    assert bazaar(tmp_path, "migrate").returncode == 0
    result = bazaar(tmp_path, "demo-data", "--users", "20", "--items", "300", "--seed", "7")
    assert result.returncode == 0, result.stderr
    assert rows(tmp_path, "SELECT count(*) FROM users") == [(20,)]
    assert rows(tmp_path, "SELECT count(*), count(DISTINCT owner_id) > 10 FROM items") == [(300, 1)]


def test_served_for_real_the_tutorial_flow_works(tmp_path: Path) -> None:
    with live_server(tmp_path) as server, httpx.Client(base_url=server.url) as client:
        signed_up = client.post(
            "/users/",
            json={"name": "Ada", "email": "ada@example.com", "password": "quiet-lantern-1"},
        )
        assert signed_up.status_code == 201
        token = client.post(
            "/auth/token", data={"username": "ada@example.com", "password": "quiet-lantern-1"}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        item = client.post("/items", json={"name": "Lamp", "price": 3.5}, headers=headers)
        assert item.status_code == 201
        assert client.get(item.headers["location"]).json() == item.json()
        renamed = client.put(
            f"/users/{signed_up.json()['id']}", params={"name": "Countess"}, headers=headers
        )
        assert renamed.json()["name"] == "Countess"
        assert client.delete(f"/users/{signed_up.json()['id']}", headers=headers).status_code == 204
        assert client.get(item.headers["location"]).status_code == 404
    assert server.process.returncode == 0


def test_served_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    env = {"BAZAAR_DATABASE_URL": postgres_url}
    email = f"pg-{os.getpid()}@example.com"
    with live_server(tmp_path, env=env) as server, httpx.Client(base_url=server.url) as client:
        assert client.get("/ready").status_code == 200
        body = {"name": "P", "email": email, "password": "quiet-lantern-1"}
        assert client.post("/users", json=body).status_code == 201
        login = client.post("/auth/token", data={"username": email, "password": "quiet-lantern-1"})
        assert login.status_code == 200
    assert server.process.returncode == 0


@pytest.mark.parametrize("args", [["--help"], ["serve", "--help"]])
def test_help_works(tmp_path: Path, args: list[str]) -> None:
    result = bazaar(tmp_path, *args)
    assert result.returncode == 0
    assert "usage: bazaar" in result.stdout
