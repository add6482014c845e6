"""Settings: unsafe or malformed configuration stops Bazaar at start-up, naming the variable."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from pydantic import ValidationError

from bazaar import migrations
from bazaar.config import Settings, create_private_sqlite_file

GOOD_KEY = "k" * 32


def test_a_short_secret_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        Settings(database_url="sqlite+aiosqlite:///:memory:", secret_key="k" * 31)


def test_postgres_without_a_secret_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BAZAAR_SECRET_KEY", raising=False)
    with pytest.raises(ValidationError, match="BAZAAR_SECRET_KEY is required"):
        Settings(database_url="postgresql+asyncpg://u@localhost/db")


def test_a_replica_must_be_postgres_of_a_postgres_primary() -> None:
    with pytest.raises(ValidationError, match="a streaming replica"):
        Settings(
            database_url="postgresql+asyncpg://u@localhost/db",
            database_replica_url="sqlite+aiosqlite:///replica.db",
            secret_key=GOOD_KEY,
        )
    with pytest.raises(ValidationError, match="needs a PostgreSQL BAZAAR_DATABASE_URL"):
        Settings(
            database_url="sqlite+aiosqlite:///:memory:",
            database_replica_url="postgresql+asyncpg://u@localhost/db",
            secret_key=GOOD_KEY,
        )


def test_sqlite_gets_a_private_key_file_that_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BAZAAR_SECRET_KEY", raising=False)
    url = f"sqlite+aiosqlite:///{tmp_path}/bazaar.db"
    first = Settings(database_url=url)
    key_file = tmp_path / "bazaar.db.secret"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first.secret) >= 32
    assert Settings(database_url=url).secret == first.secret


def _migrate(folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`bazaar migrate` on a SQLite file in `folder` (unless `env` names another database)."""
    database = {"BAZAAR_DATABASE_URL": f"sqlite+aiosqlite:///{folder}/bazaar.db"}
    return subprocess.run(
        [sys.executable, "-m", "bazaar", "migrate"],
        env=database | env,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BAZAAR_DATABASE_URL", "mysql://localhost/db"),
        ("BAZAAR_DATABASE_URL", "not a url"),
        ("BAZAAR_ACCESS_TOKEN_MINUTES", "0"),
        ("BAZAAR_POOL_SIZE", "many"),
        ("BAZAAR_LOG_FORMAT", "xml"),
        ("BAZAAR_REDIS_URL", "localhost:6379"),
        ("BAZAAR_SQL_ECHO", "perhaps"),
    ],
)
def test_bad_values_fail_at_start_up_naming_the_variable(
    variable: str, value: str, tmp_path: Path
) -> None:
    result = _migrate(tmp_path, {"BAZAAR_SECRET_KEY": GOOD_KEY, variable: value})
    assert result.returncode != 0
    assert variable in result.stderr
    assert "Traceback" not in result.stderr


def test_cors_origins_are_comma_separated() -> None:
    settings = Settings(
        database_url="sqlite+aiosqlite:///:memory:",
        secret_key=GOOD_KEY,
        cors_origins="https://a.example, https://b.example",
    )
    assert settings.cors_origins == ["https://a.example", "https://b.example"]


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most machines run with, under which SQLite makes files anyone can read."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _key_file_open_to(mode: int) -> Callable[[Path], None]:
    def make(key_file: Path) -> None:
        key_file.write_text(GOOD_KEY, encoding="utf-8")
        key_file.chmod(mode)

    return make


def _key_file_that_is_a_directory(key_file: Path) -> None:
    key_file.mkdir()


def _key_file_that_links_to_nothing(key_file: Path) -> None:
    key_file.symlink_to(key_file.with_name("gone"))


def _key_file_that_is_not_text(key_file: Path) -> None:
    key_file.write_bytes(b"\xff\xfe" * 20)
    key_file.chmod(0o600)


@pytest.mark.parametrize(
    ("make_key_file", "reason"),
    [
        (_key_file_open_to(0o644), "open to other users"),
        (_key_file_open_to(0o640), "open to other users"),
        (_key_file_open_to(0o620), "open to other users"),
        (_key_file_open_to(0o602), "open to other users"),
        (_key_file_that_is_a_directory, "is a directory"),
        (_key_file_that_links_to_nothing, "cannot read"),
        (_key_file_that_is_not_text, "not UTF-8"),
    ],
    ids=["0644", "0640", "0620", "0602", "directory", "dangling-link", "not-text"],
)
def test_a_bad_key_file_is_refused_naming_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_key_file: Callable[[Path], None],
    reason: str,
) -> None:
    monkeypatch.delenv("BAZAAR_SECRET_KEY", raising=False)
    key_file = tmp_path / "bazaar.db.secret"
    make_key_file(key_file)
    with pytest.raises(ValidationError) as error:
        Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/bazaar.db")
    assert str(key_file) in str(error.value)
    assert reason in str(error.value)


def test_a_key_file_open_to_others_stops_start_up_naming_it(tmp_path: Path) -> None:
    key_file = tmp_path / "bazaar.db.secret"
    key_file.write_text(GOOD_KEY, encoding="utf-8")
    key_file.chmod(0o644)
    result = _migrate(tmp_path, {})
    assert result.returncode != 0
    assert "bazaar: invalid configuration" in result.stderr
    assert f"the key file {key_file} is open to other users (mode 0644)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "bazaar.db").exists()


@pytest.mark.usefixtures("usual_umask")
def test_a_new_sqlite_database_and_its_key_file_are_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BAZAAR_SECRET_KEY", raising=False)
    folder = tmp_path / "data"
    folder.mkdir(mode=0o755)
    path = folder / "bazaar.db"
    migrations.upgrade(Settings(database_url=f"sqlite+aiosqlite:///{path}"))

    assert _mode(path) == 0o600
    assert _mode(folder / "bazaar.db.secret") == 0o600
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        with db:
            db.execute("DELETE FROM items")
        assert _mode(folder / "bazaar.db-wal") == 0o600
        assert _mode(folder / "bazaar.db-shm") == 0o600
    assert {p.name for p in folder.iterdir() if _mode(p) != 0o600} == set()


@pytest.mark.usefixtures("usual_umask")
def test_a_database_file_is_made_private_when_the_key_is_given(tmp_path: Path) -> None:
    path = tmp_path / "bazaar.db"
    create_private_sqlite_file(f"sqlite+aiosqlite:///{path}")
    assert _mode(path) == 0o600
    assert path.stat().st_size == 0  # SQLite's empty database


@pytest.mark.usefixtures("usual_umask")
def test_an_existing_database_file_is_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "bazaar.db"
    path.write_bytes(b"rows")
    path.chmod(0o640)
    create_private_sqlite_file(f"sqlite+aiosqlite:///{path}")
    assert path.read_bytes() == b"rows"
    assert _mode(path) == 0o640


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite://",
        "sqlite+aiosqlite:///:memory:",
        "sqlite+aiosqlite:///file:shared?mode=memory&cache=shared&uri=true",
        "postgresql+asyncpg://u@localhost/bazaar",
    ],
)
def test_no_file_is_made_for_a_database_that_is_not_a_sqlite_file(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    create_private_sqlite_file(url)
    assert list(tmp_path.iterdir()) == []
