"""Settings, read once from the environment (and `.env`) and passed explicitly."""

from __future__ import annotations

import logging
import os
import secrets
import stat
from email.utils import parseaddr
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import limits
from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

logger = logging.getLogger(__name__)

MIN_SECRET_BYTES = 32


def _parsed_limit(value: str) -> str:
    try:
        limits.parse(value)
    except ValueError as exc:
        raise ValueError(f'not a limit like "5/15 minutes" or "10/hour": {exc}') from None
    return value


# A rate in the `limits` library's notation: "5/15 minutes", "10/hour", "100 per day".
Limit = Annotated[str, AfterValidator(_parsed_limit)]


class Settings(BaseSettings):
    """Everything Bazaar can be told; a bad value fails here, naming the variable."""

    model_config = SettingsConfigDict(
        env_prefix="BAZAAR_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    database_url: str = "sqlite+aiosqlite:///./bazaar.db"
    # A PostgreSQL streaming replica of `database_url` for the reads that may lag (SPEC §8).
    database_replica_url: str = ""
    # Past this replay lag the replica is skipped, until it catches up again.
    replica_max_lag_ms: int = Field(default=500, ge=0, le=3_600_000)
    secret_key: SecretStr | None = None
    access_token_minutes: int = Field(default=30, ge=1, le=60 * 24 * 30)
    # A refresh token's life, renewed by each use; a session's absolute life, whatever its
    # use. Fractions are allowed (tests shorten them to seconds).
    refresh_token_days: float = Field(default=14, gt=0, le=3650)
    session_days: float = Field(default=30, gt=0, le=3650)
    # How often each worker deletes ended sessions and expired refresh tokens.
    prune_interval_seconds: float = Field(default=3600, gt=0)
    # Enough connections to keep PostgreSQL busy from one worker; under heavier load
    # requests wait for a pooled connection rather than open and close extra ones.
    pool_size: int = Field(default=20, ge=1, le=1000)
    max_overflow: int = Field(default=0, ge=0, le=1000)
    pool_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    sql_echo: bool = False
    cors_origins: Annotated[list[str], NoDecode] = []
    redis_url: str = ""
    log_format: Literal["text", "json"] = "text"
    # The URL clients reach Bazaar at: every absolute link it writes starts with it, whatever
    # `Host` a request names. `bazaar serve` sets it to where it listens unless told.
    public_url: str = "http://127.0.0.1:8000"
    # Load balancers whose `X-Forwarded-For` is believed; nobody's by default.
    trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = []
    # Throttles, in the `limits` library's notation ("5/15 minutes").
    limit_login_pair: Limit = "5/15 minutes"
    limit_login_address: Limit = "20/15 minutes"
    limit_login_email: Limit = "100/15 minutes"
    limit_signup: Limit = "10/hour"
    limit_mail_email: Limit = "3/hour"
    limit_mail_address: Limit = "20/hour"
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Mail: `smtp://user:pass@host:587` (STARTTLS when offered) or `smtps://...:465`; empty
    # writes each mail to the log instead (development).
    smtp_url: SecretStr = SecretStr("")
    mail_from: str = "Bazaar <no-reply@localhost>"
    require_verified_email: bool = False
    # Not in the docs: how often each worker looks for due mail when nothing woke it, and
    # the delay before a failed mail's first retry (each retry waits twice the last). Tests
    # shorten them.
    mail_poll_seconds: float = Field(default=10.0, gt=0, le=3600)
    mail_retry_seconds: float = Field(default=5.0, gt=0, le=3600)

    @field_validator("database_url")
    @classmethod
    def _known_async_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL: {exc}") from exc
        if url.drivername not in {"sqlite+aiosqlite", "postgresql+asyncpg"}:
            raise ValueError(
                "use sqlite+aiosqlite://... or postgresql+asyncpg://... "
                f"(got driver {url.drivername!r})"
            )
        return value

    @field_validator("database_replica_url")
    @classmethod
    def _postgres_replica_url(cls, value: str) -> str:
        if not value:
            return value
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL: {exc}") from exc
        if url.drivername != "postgresql+asyncpg":
            raise ValueError(
                f"use postgresql+asyncpg://... (a streaming replica; got driver {url.drivername!r})"
            )
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        if isinstance(value, str):
            return [
                ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip()
            ]
        return value

    @field_validator("public_url")
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if (
            parts.scheme not in {"http", "https"}
            or not parts.netloc
            or parts.query
            or parts.fragment
        ):
            raise ValueError("use an absolute http:// or https:// URL, without query or fragment")
        return value.rstrip("/")

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("use redis://host:port/db or rediss://...")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_scheme(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        if not url:
            return value
        parts = urlsplit(url)
        try:
            parts.port  # noqa: B018 - raises on a port out of range
        except ValueError:
            raise ValueError("the port is not a number from 1 to 65535") from None
        if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
            # Without the URL itself: it may hold a password.
            raise ValueError("use smtp://user:password@host:587 or smtps://user:password@host:465")
        return value

    @field_validator("mail_from")
    @classmethod
    def _one_address(cls, value: str) -> str:
        _, address = parseaddr(value)
        if "@" not in address or any(c in value for c in "\r\n"):
            raise ValueError('use an address such as "Bazaar <no-reply@example.com>"')
        return value

    @model_validator(mode="after")
    def _resolve_secret_key(self) -> Settings:
        if self.secret_key is None:
            if not self.is_sqlite:
                raise ValueError(
                    "BAZAAR_SECRET_KEY is required when the database is not SQLite "
                    f"(at least {MIN_SECRET_BYTES} bytes, e.g. from `openssl rand -hex 32`)"
                )
            object.__setattr__(self, "secret_key", SecretStr(_local_secret(self.database_url)))
        if len(self.secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"BAZAAR_SECRET_KEY must be at least {MIN_SECRET_BYTES} bytes long")
        if self.database_replica_url and self.is_sqlite:
            raise ValueError(
                "BAZAAR_DATABASE_REPLICA_URL needs a PostgreSQL BAZAAR_DATABASE_URL (its primary)"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return make_url(self.database_url).get_backend_name() == "sqlite"

    @property
    def secret(self) -> str:
        """The signing key (always set once validation has run)."""
        return self.secret_key.get_secret_value() if self.secret_key else ""


def _local_secret(database_url: str) -> str:
    """A key kept in a 0600 file beside the SQLite database, made on first use."""
    path = _sqlite_file(database_url)
    if path is None:
        logger.warning("BAZAAR_SECRET_KEY is not set: using a key that lasts for this process only")
        return secrets.token_urlsafe(48)
    key_file = path.with_name(path.name + ".secret")
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ValueError(f"cannot create the key file {key_file}: {exc.strerror}") from None
    else:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_urlsafe(48))
        logger.warning(
            "BAZAAR_SECRET_KEY is not set: generated one in %s; set it explicitly in production",
            key_file,
        )
    return _read_key_file(key_file)


def _read_key_file(key_file: Path) -> str:
    """The key in `key_file`, refused unless only its owner can read or change it."""
    try:
        mode = key_file.stat().st_mode
        if stat.S_ISDIR(mode):
            raise ValueError(f"the key file {key_file} is a directory")
        if not stat.S_ISREG(mode):
            # Reading a FIFO or a device could hold start-up for ever.
            raise ValueError(f"the key file {key_file} is not a regular file")
        if mode & 0o077:
            raise ValueError(
                f"the key file {key_file} is open to other users "
                f"(mode {stat.S_IMODE(mode):04o}): `chmod 600 {key_file}`"
            )
        return key_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"cannot read the key file {key_file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"the key file {key_file} is not UTF-8 text") from None


def _sqlite_file(database_url: str) -> Path | None:
    """The file a SQLite URL names; None for another database, one in memory or a `file:` URI."""
    url = make_url(database_url)
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    return Path(database).expanduser().resolve()


def create_private_sqlite_file(database_url: str) -> None:
    """Create the SQLite database file, readable by its owner only, unless it exists.

    SQLite would create it with the umask's mode (0644 as a rule: anyone on the machine
    could read every password hash); its -wal and -shm files take the database's mode.
    """
    path = _sqlite_file(database_url)
    if path is None:
        return
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError:
        # It exists, or its folder is missing or closed to us: then SQLite says so when it
        # connects, where start-up and `/ready` report an unreachable database.
        return
    os.close(fd)
