"""The `bazaar` command: serve, migrate, create-admin, demo-data, prune."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import logging
import os
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

from pydantic import ValidationError
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from bazaar import migrations
from bazaar.config import Settings, create_private_sqlite_file
from bazaar.fields import canonical_email
from bazaar.logs import configure_logging

if TYPE_CHECKING:
    from bazaar.app import Bazaar

logger = logging.getLogger("bazaar")

# Allocations between collections of the youngest generation (Python's default: 700).
GC_THRESHOLD = 10_000
# Between two attempts to reach a database that is not up yet.
RETRY_SECONDS = 0.5
# How `serve --drain-seconds` reaches the workers, fresh interpreters that inherit it.
DRAIN_VARIABLE = "BAZAAR_SERVE_DRAIN_SECONDS"


def app_factory() -> object:
    """The ASGI app for `uvicorn --factory`: settings from the environment."""
    from bazaar.app import create_app

    settings = _load_settings()
    # Each worker of `serve --workers N` is a fresh interpreter, with logging to set up.
    configure_logging(settings)
    app = create_app(settings)
    drain = float(os.environ.get(DRAIN_VARIABLE) or 0)
    if drain > 0:
        _drain_on_sigterm(app, drain)
    tune_garbage_collection()
    return app


def _drain_on_sigterm(app: Bazaar, seconds: float) -> None:
    """On SIGTERM, answer `/ready` with 503 for `seconds` while serving on, then shut down.

    A load balancer's health checks take the worker out of rotation meanwhile, so that
    by the time it stops accepting connections none is sent to it: without this, the
    requests that reached it between its last passed check and its exit failed (11 of
    2,789 in a rolling restart behind HAProxy). uvicorn's handler, in place when the
    application is made, still does the graceful shutdown itself, once drained; a
    second SIGTERM skips what is left of the wait.
    """
    shut_down = signal.getsignal(signal.SIGTERM)
    if not callable(shut_down):
        return
    loop = asyncio.get_running_loop()
    waiting: list[asyncio.TimerHandle] = []

    def drain(signum: int, frame: FrameType | None) -> None:
        if waiting:
            waiting[0].cancel()
            shut_down(signum, frame)
            return
        app.state.services.readiness.draining = True
        logger.info("SIGTERM: draining for %g s (/ready answers 503), then shutting down", seconds)
        waiting.append(loop.call_later(seconds, shut_down, signum, frame))

    signal.signal(signal.SIGTERM, drain)


def tune_garbage_collection() -> None:
    """Collect garbage less often, and never re-examine what start-up built.

    Every request allocates sessions, rows and models with reference cycles; with
    the default thresholds the collector ran so often that it took more CPU than
    the request's own work. Frozen start-up objects (modules, routes, schemas)
    are skipped by every collection from then on.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 50, 100)


def _load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = "_".join(str(part) for part in error["loc"])
            name = f"BAZAAR_{field.upper()}" if field else "configuration"
            lines.append(f"  {name}: {error['msg']}")
        raise SystemExit("bazaar: invalid configuration\n" + "\n".join(lines)) from None


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from bazaar.http import BoundedHttpToolsProtocol

    if not args.no_migrate:
        migrations.upgrade(settings)
    _default_public_url(settings, args.host, args.port)
    if args.drain_seconds:
        os.environ[DRAIN_VARIABLE] = str(args.drain_seconds)
    with _shared_metrics_directory(args.workers), _clean_exit_on_signal():
        uvicorn.run(
            "bazaar.cli:app_factory",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            http=BoundedHttpToolsProtocol,
            # uvicorn believes X-Forwarded-For and -Proto from loopback unless told otherwise;
            # Bazaar believes them from its trusted proxies only, and so must the server,
            # since the app sees no more than the client address uvicorn hands it.
            proxy_headers=bool(settings.trusted_proxies),
            forwarded_allow_ips=",".join(str(network) for network in settings.trusted_proxies),
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=args.graceful_seconds,
        )
    return 0


def _default_public_url(settings: Settings, host: str, port: int) -> None:
    """Unless BAZAAR_PUBLIC_URL was given, links name the address `serve` listens on."""
    if "public_url" in settings.model_fields_set:
        return
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    if host in {"0.0.0.0", "::"}:  # noqa: S104 - comparing, not binding
        logger.warning(
            "listening on every address: links will start with %s; "
            "set BAZAAR_PUBLIC_URL to the URL clients use",
            url,
        )
    # Read by `app_factory`, in this process or in each worker, which inherit the environment.
    os.environ["BAZAAR_PUBLIC_URL"] = url


@contextmanager
def _shared_metrics_directory(workers: int) -> Iterator[None]:
    """A fresh directory where the workers keep the metrics that `/metrics` adds up."""
    variable = "PROMETHEUS_MULTIPROC_DIR"
    if workers <= 1 or os.environ.get(variable):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="bazaar-metrics-") as directory:
        # Read by prometheus-client in each worker, which inherits the environment.
        os.environ[variable] = directory
        try:
            yield
        finally:
            del os.environ[variable]


@contextmanager
def _clean_exit_on_signal() -> Iterator[None]:
    """Exit 0 on SIGTERM (130 on SIGINT) once uvicorn has shut down gracefully."""

    # uvicorn, done with the in-flight requests (or with waiting for them) and with the
    # lifespan, raises the signal again for the handler in place before it. All that is
    # left is to exit: at once, since a request cancelled at the deadline may still be
    # stuck in a database call that asyncio's clean-up would wait for.
    def stop(signum: int, _frame: FrameType | None) -> None:
        logging.shutdown()
        os._exit(0 if signum == signal.SIGTERM else 128 + signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    migrations.upgrade(settings, args.revision)
    logger.info("database at migration %s", args.revision)
    return 0


def _create_admin(settings: Settings, args: argparse.Namespace) -> int:
    from bazaar.users.admin import create_admin

    def ask_password() -> str:
        password = os.environ.get("BAZAAR_ADMIN_PASSWORD")
        if password:
            return password
        if not sys.stdin.isatty():
            raise SystemExit("bazaar: set BAZAAR_ADMIN_PASSWORD or run in a terminal")
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Again: "):
            raise SystemExit("bazaar: the passwords differ")
        return password

    created = asyncio.run(
        create_admin(settings, email=args.email, name=args.name, ask_password=ask_password)
    )
    print(f"{'created' if created else 'promoted'} admin {canonical_email(args.email)}")
    return 0


def _demo_data(settings: Settings, args: argparse.Namespace) -> int:
    from bazaar.demo import fill

    seconds = asyncio.run(fill(settings, users=args.users, items=args.items, seed=args.seed))
    print(f"inserted {args.users} users and {args.items} items in {seconds:.1f} s")
    return 0


def _prune(settings: Settings, args: argparse.Namespace) -> int:
    from bazaar.db.engine import create_engine
    from bazaar.db.executor import Executor
    from bazaar.db.gate import create_gate
    from bazaar.pruning import Pruned, prune

    async def run() -> Pruned:
        engine = create_engine(settings, autocommit=True)
        try:
            return await prune(Executor(engine, create_gate(settings)))
        finally:
            await engine.dispose()

    pruned = asyncio.run(run())
    print(f"deleted {pruned}")
    return 0


def _wait_for_database(settings: Settings, seconds: float) -> None:
    """Return once the database takes a connection; exit with one line if `seconds` pass first."""
    reason = asyncio.run(_first_connection(settings, seconds))
    if reason is None:
        return
    url = make_url(settings.database_url)
    if url.password:
        # No driver is known to quote it, but nothing would be leakier than this line.
        reason = reason.replace(str(url.password), "***")
    waited = f" after {seconds:g} s" if seconds else ""
    raise SystemExit(
        f"bazaar: cannot connect to the database at {_location(url)}{waited} "
        f"(BAZAAR_DATABASE_URL={url.render_as_string(hide_password=True)}): "
        + " ".join(reason.splitlines())
    )


async def _first_connection(settings: Settings, seconds: float) -> str | None:
    """None once a connection opened, else why the last attempt failed."""
    deadline = time.monotonic() + seconds
    while True:
        reason = await _connect_once(settings)
        if reason is None or time.monotonic() + RETRY_SECONDS > deadline:
            return reason
        await asyncio.sleep(RETRY_SECONDS)


async def _connect_once(settings: Settings) -> str | None:
    """None if the database took a connection, else why not."""
    from bazaar.db.engine import create_engine

    if settings.is_sqlite:
        # Made private first, as the engine makes it: SQLite would create it world-readable.
        create_private_sqlite_file(settings.database_url)
        # Opened by the standard library: aiosqlite's thread could outlive a failed connect
        # and report it on stderr after the event loop closed (a second line, now and then).
        return await asyncio.to_thread(_sqlite_problem, make_url(settings.database_url))
    engine = create_engine(settings)
    try:
        async with engine.connect():
            return None
    except DBAPIError as exc:
        return str(exc.orig)
    except TimeoutError:
        return "no answer within the connect timeout"
    except OSError as exc:
        # Refused, or a host name that does not resolve, as asyncpg lets them through:
        # the system's words for the error say more than asyncio's "Connect call failed".
        errno = exc.errno or 0
        return os.strerror(errno) if errno > 0 else exc.strerror or type(exc).__name__
    finally:
        await engine.dispose()


def _sqlite_problem(url: URL) -> str | None:
    """None if SQLite opens the database `url` names, else why not."""
    try:
        database = url.database or ":memory:"
        sqlite3.connect(database, uri=database.startswith("file:")).close()
    except sqlite3.Error as exc:
        return str(exc)
    return None


def _location(url: URL) -> str:
    """Where `url` points: a file for SQLite, host:port otherwise."""
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    host = url.host or "localhost"
    return f"[{host}]:{url.port or 5432}" if ":" in host else f"{host}:{url.port or 5432}"


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1
    if not seconds >= 0:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value}")
    return seconds


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bazaar", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    # What every command that opens the database accepts.
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument(
        "--wait-for-db",
        type=_seconds,
        default=0,
        metavar="SECONDS",
        help="how long to wait for the database to accept connections (default: 0)",
    )

    serve = commands.add_parser("serve", parents=[database], help="migrate, then serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--no-migrate", action="store_true", help="do not migrate first")
    serve.add_argument(
        "--graceful-seconds",
        type=int,
        default=30,
        help="on SIGTERM, how long in-flight requests may take to finish",
    )
    serve.add_argument(
        "--drain-seconds",
        type=_seconds,
        default=0,
        metavar="SECONDS",
        help="on SIGTERM, answer /ready with 503 this long before shutting down, so that a "
        "load balancer stops sending requests first (default: 0)",
    )
    serve.set_defaults(run=_serve)

    migrate = commands.add_parser("migrate", parents=[database], help="apply database migrations")
    migrate.add_argument("revision", nargs="?", default="head")
    migrate.set_defaults(run=_migrate)

    admin = commands.add_parser(
        "create-admin", parents=[database], help="create or promote an admin"
    )
    admin.add_argument("--email", required=True)
    admin.add_argument("--name", required=True)
    admin.set_defaults(run=_create_admin)

    demo = commands.add_parser(
        "demo-data", parents=[database], help="fill the database with fake users and items"
    )
    demo.add_argument("--users", type=int, default=100)
    demo.add_argument("--items", type=int, default=1000)
    demo.add_argument("--seed", type=int, default=None)
    demo.set_defaults(run=_demo_data)

    prune = commands.add_parser(
        "prune",
        parents=[database],
        help="delete ended sessions, expired tokens and links, and old mail now "
        "(each worker also does it every BAZAAR_PRUNE_INTERVAL_SECONDS)",
    )
    prune.set_defaults(run=_prune)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = _load_settings()
    configure_logging(settings)
    _wait_for_database(settings, args.wait_for_db)
    result: int = args.run(settings, args)
    return result
