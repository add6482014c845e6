"""Settings, read once from the environment (and `.env`) and passed explicitly."""

from __future__ import annotations

import difflib
import logging
import os
import secrets
import stat
from collections.abc import Mapping
from email.utils import parseaddr
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import limits
from pydantic import (
    AfterValidator,
    AliasChoices,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.sources import read_env_file
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
    # Validated even when unset: then it is read from (or made into) the SQLite key file.
    secret_key: SecretStr | None = Field(default=None, validate_default=True)
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
        if url.drivername in {"postgresql", "postgres"}:
            # What most hosting platforms hand out: the same server, reached through asyncpg.
            url = url.set(drivername="postgresql+asyncpg")
            value = url.render_as_string(hide_password=False)
        if url.drivername not in {"sqlite+aiosqlite", "postgresql+asyncpg"}:
            raise ValueError(
                "use sqlite+aiosqlite://... or postgresql+asyncpg://... "
                f"(got driver {url.drivername!r})"
            )
        return value

    @field_validator("database_replica_url")
    @classmethod
    def _postgres_replica_url(cls, value: str, info: ValidationInfo) -> str:
        if not value:
            return value
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL: {exc}") from exc
        if url.drivername in {"postgresql", "postgres"}:
            url = url.set(drivername="postgresql+asyncpg")  # as for the primary
            value = url.render_as_string(hide_password=False)
        if url.drivername != "postgresql+asyncpg":
            raise ValueError(
                f"use postgresql+asyncpg://... (a streaming replica; got driver {url.drivername!r})"
            )
        primary = info.data.get("database_url")
        if primary is not None and make_url(primary).get_backend_name() == "sqlite":
            raise ValueError("needs a PostgreSQL BAZAAR_DATABASE_URL (its primary)")
        return value

    @field_validator("secret_key")
    @classmethod
    def _resolve_secret_key(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # A field's validator, not the model's, so that its errors name BAZAAR_SECRET_KEY.
        database_url = info.data.get("database_url")
        if database_url is None:
            return value  # the URL was refused: that is the error to read first
        if value is None:
            if make_url(database_url).get_backend_name() != "sqlite":
                raise ValueError(
                    "required when the database is not SQLite "
                    f"(at least {MIN_SECRET_BYTES} bytes, e.g. from `openssl rand -hex 32`)"
                )
            value = SecretStr(_local_secret(database_url))
        if len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"must be at least {MIN_SECRET_BYTES} bytes long")
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

    @property
    def is_sqlite(self) -> bool:
        return make_url(self.database_url).get_backend_name() == "sqlite"

    @property
    def secret(self) -> str:
        """The signing key (always set once validation has run)."""
        return self.secret_key.get_secret_value() if self.secret_key else ""


# BAZAAR_* variables that Bazaar reads but that are not settings: `create-admin`'s password,
# and those of the test suite and `make fuzz`.
OTHER_VARIABLES = frozenset({"BAZAAR_ADMIN_PASSWORD"})
OTHER_PREFIXES = ("BAZAAR_TEST_", "BAZAAR_FUZZ_")


def setting_variables() -> list[str]:
    """Every variable a setting is read from, taken from the Settings model itself."""
    prefix = Settings.model_config.get("env_prefix", "")
    names = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, str):
            names.append(alias.upper())
        elif isinstance(alias, AliasChoices):
            names.extend(choice.upper() for choice in alias.choices if isinstance(choice, str))
        else:
            names.append(f"{prefix}{name}".upper())
    return names


def unknown_variables(environ: Mapping[str, str | None] | None = None) -> list[str]:
    """A warning for each BAZAAR_* variable that no setting reads, naming the closest one that does.

    Looks in `environ` (the process's environment by default) and in the `.env` file that
    Settings reads: a misspelt name would otherwise be ignored in silence.
    """
    if environ is None:
        environ = dict(os.environ)
        env_file = Path(str(Settings.model_config.get("env_file") or ".env"))
        if env_file.is_file():
            environ = {**read_env_file(env_file, encoding="utf-8"), **environ}
    known = sorted(set(setting_variables()) | OTHER_VARIABLES)
    warnings = []
    for name in sorted(environ):
        upper = name.upper()  # settings are read whatever the case of their names
        if not upper.startswith("BAZAAR_") or upper in known or upper.startswith(OTHER_PREFIXES):
            continue
        close = difflib.get_close_matches(upper, known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        warnings.append(f"{name} is not a Bazaar setting and is ignored{hint}")
    return warnings


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
