"""Settings: unsafe or malformed configuration stops Bazaar at start-up, naming the variable."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from bazaar.config import Settings

GOOD_KEY = "k" * 32


def test_a_short_secret_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        Settings(database_url="sqlite+aiosqlite:///:memory:", secret_key="k" * 31)


def test_postgres_without_a_secret_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BAZAAR_SECRET_KEY", raising=False)
    with pytest.raises(ValidationError, match="BAZAAR_SECRET_KEY is required"):
        Settings(database_url="postgresql+asyncpg://u@localhost/db")


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
    env = os.environ | {
        "BAZAAR_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/bazaar.db",
        "BAZAAR_SECRET_KEY": GOOD_KEY,
        variable: value,
    }
    result = subprocess.run(
        [sys.executable, "-m", "bazaar", "migrate"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
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
