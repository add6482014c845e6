"""The `bazaar` command: migrate, create-admin, demo-data, and serving for real."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from bazaar import migrations
from bazaar.cli import _default_public_url
from bazaar.config import Settings
from tests.conftest import run_sql
from tests.server import SECRET_KEY, live_server, server_env


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
    assert rows(tmp_path, "SELECT email, is_admin, is_verified FROM users") == [
        ("boss@example.com", 1, 1)
    ]

    with sqlite3.connect(tmp_path / "bazaar.db") as connection:
        connection.execute("UPDATE users SET is_admin = 0, is_active = 0, is_verified = 0")
    promoted = bazaar(tmp_path, "create-admin", "--email", "boss@example.com", "--name", "Boss")
    assert promoted.returncode == 0, promoted.stderr
    assert "promoted admin boss@example.com" in promoted.stdout
    assert rows(tmp_path, "SELECT is_admin, is_active, is_verified FROM users") == [(1, 1, 1)]


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
    assert rows(tmp_path, "SELECT count(*), sum(is_verified) FROM users") == [(20, 20)]
    assert rows(tmp_path, "SELECT count(*), count(DISTINCT owner_id) > 10 FROM items") == [(300, 1)]


def test_prune_deletes_ended_sessions_and_expired_tokens(tmp_path: Path) -> None:
    assert bazaar(tmp_path, "migrate").returncode == 0
    with sqlite3.connect(tmp_path / "bazaar.db") as connection:
        connection.execute(
            "INSERT INTO users (name, email, hashed_password) VALUES ('A', 'a@example.com', 'h')"
        )
        past, future = "2000-01-01 00:00:00.000000", "2999-01-01 00:00:00.000000"
        sessions = [
            ("open", None, future),
            ("revoked", past, future),
            ("expired", None, past),
        ]
        for session_id, revoked, expires in sessions:
            connection.execute(
                "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at,"
                " revoked_at) VALUES (?, 1, ?, ?, ?, ?)",
                (session_id, past, past, expires, revoked),
            )
        for token, session_id, expires in (("t1", "open", future), ("t2", "open", past)):
            connection.execute(
                "INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at)"
                " VALUES (?, ?, ?, ?)",
                (token, session_id, past, expires),
            )
    result = bazaar(tmp_path, "prune")
    assert result.returncode == 0, result.stderr
    assert "deleted 2 ended sessions, 1 expired refresh tokens, 0 expired links" in result.stdout
    assert rows(tmp_path, "SELECT id FROM sessions") == [("open",)]
    assert rows(tmp_path, "SELECT token_hash FROM refresh_tokens") == [("t1",)]


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


def _postgres(url: str, *, database: str) -> str:
    """`url` with another database, and a password (ignored by a trust-auth server) to look for."""
    return make_url(url).set(database=database, password=PASSWORD).render_as_string(False)


PASSWORD = "sekrit"


@pytest.mark.parametrize("case", ["refused", "unknown host", "missing database", "missing folder"])
def test_an_unreachable_database_is_one_line_naming_it(
    tmp_path: Path, request: pytest.FixtureRequest, case: str
) -> None:
    if case == "refused":
        url, where = f"postgresql+asyncpg://postgres:{PASSWORD}@127.0.0.1:1/db", "127.0.0.1:1"
    elif case == "unknown host":
        url, where = f"postgresql+asyncpg://postgres:{PASSWORD}@db.invalid/db", "db.invalid:5432"
    elif case == "missing database":
        server = make_url(request.getfixturevalue("postgres_url"))
        url = _postgres(server.render_as_string(False), database=f"missing_{uuid.uuid4().hex}")
        where = f"{server.host}:{server.port or 5432}"
    else:
        where = str(tmp_path / "no" / "such" / "folder" / "bazaar.db")
        url = f"sqlite+aiosqlite:///{where}"
    result = bazaar(tmp_path, "migrate", env={"BAZAAR_DATABASE_URL": url})
    assert result.returncode != 0
    [line] = result.stderr.splitlines()
    assert "BAZAAR_DATABASE_URL" in line
    assert where in line
    assert PASSWORD not in result.stderr + result.stdout


@pytest.mark.parametrize(
    "command",
    [
        ["serve"],
        ["create-admin", "--email", "a@example.com", "--name", "A"],
        ["demo-data", "--users", "1", "--items", "1"],
        ["prune"],
    ],
)
def test_every_command_that_needs_the_database_says_so_in_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    env = {
        "BAZAAR_DATABASE_URL": f"postgresql+asyncpg://postgres:{PASSWORD}@127.0.0.1:1/db",
        "BAZAAR_ADMIN_PASSWORD": "quiet-lantern-1",
    }
    result = bazaar(tmp_path, *command, env=env)
    assert result.returncode != 0
    [line] = result.stderr.splitlines()
    assert "BAZAAR_DATABASE_URL" in line
    assert "127.0.0.1:1" in line
    assert "refused" in line
    assert PASSWORD not in result.stderr + result.stdout


def test_migrate_waits_for_a_database_that_appears(tmp_path: Path, postgres_url: str) -> None:
    name = f"bazaar_late_{uuid.uuid4().hex[:12]}"
    dsn = make_url(postgres_url).set(drivername="postgresql").render_as_string(False)

    async def version() -> str:
        late = make_url(dsn).set(database=name).render_as_string(False)
        connection = await asyncpg.connect(late)
        try:
            value: str = await connection.fetchval("SELECT version_num FROM alembic_version")
            return value
        finally:
            await connection.close()

    env = server_env(tmp_path, {"BAZAAR_DATABASE_URL": _postgres(postgres_url, database=name)})
    command = [sys.executable, "-m", "bazaar", "migrate", "--wait-for-db", "10"]
    process = subprocess.Popen(  # noqa: S603 - our own command line
        command, env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    try:
        time.sleep(1)
        assert process.poll() is None, process.communicate()
        asyncio.run(run_sql(dsn, f'CREATE DATABASE "{name}"'))
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
        head = ScriptDirectory.from_config(migrations.alembic_config()).get_current_head()
        assert asyncio.run(version()) == head
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        asyncio.run(run_sql(dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_links_name_where_serve_listens_whatever_the_host(tmp_path: Path) -> None:
    body = {"name": "A", "email": "a@example.com", "password": "quiet-lantern-1"}
    with live_server(tmp_path) as server:
        response = httpx.post(f"{server.url}/users/", json=body, headers={"Host": "evil.example"})
    assert response.status_code == 201
    assert response.headers["location"] == f"{server.url}/users/{response.json()['id']}"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "http://127.0.0.1:8001"),
        ("::1", "http://[::1]:8001"),
        ("bazaar.example", "http://bazaar.example:8001"),
    ],
)
def test_serve_links_to_where_it_listens_unless_told(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, host: str, expected: str
) -> None:
    # Set first, so that the variable is put back as it was afterwards.
    monkeypatch.setenv("BAZAAR_PUBLIC_URL", "unset")
    monkeypatch.delenv("BAZAAR_PUBLIC_URL")
    _default_public_url(_settings(tmp_path), host, 8001)
    assert os.environ["BAZAAR_PUBLIC_URL"] == expected


def test_serve_keeps_the_public_url_it_was_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BAZAAR_PUBLIC_URL", "https://shop.example")
    _default_public_url(_settings(tmp_path), "0.0.0.0", 8001)  # noqa: S104
    assert os.environ["BAZAAR_PUBLIC_URL"] == "https://shop.example"


def test_serve_on_every_address_warns_that_links_name_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("BAZAAR_PUBLIC_URL", "unset")
    monkeypatch.delenv("BAZAAR_PUBLIC_URL")
    with caplog.at_level(logging.WARNING, logger="bazaar"):
        _default_public_url(_settings(tmp_path), "0.0.0.0", 8001)  # noqa: S104
    assert os.environ["BAZAAR_PUBLIC_URL"] == "http://0.0.0.0:8001"
    assert "BAZAAR_PUBLIC_URL" in caplog.text


def _settings(directory: Path) -> Settings:
    return Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{directory / 'bazaar.db'}",
        secret_key=SECRET_KEY,
    )
