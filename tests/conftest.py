"""Fixtures: every API test runs on SQLite and on PostgreSQL, each test on an empty database."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bazaar import migrations
from bazaar.app import create_app
from bazaar.config import Settings
from bazaar.security import Passwords
from tests.factories import Api
from tests.server import STARTED

_SERVERS_BEFORE = pytest.StashKey[int]()

SECRET = "test-secret-key-that-is-long-enough-0123456789"
BACKENDS = ["sqlite", "postgres"]


# Fixtures that start `bazaar serve` processes or a browser, shared by a module's tests.
_SLOW_FIXTURES = {"server", "browser"}


# Folders whose tests share a session's worth of servers (a private PostgreSQL cluster; the
# cluster of hosts on fixed loopback addresses): each runs whole in one `pytest -n` worker.
_SHARED_FOLDERS = ("faults", "cluster")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark slow what `make check` leaves out, and arrange the tests for `pytest -n N`.

    Slow: fault and cluster tests, tests of a live server or a browser (marked before
    `-m "not slow"` deselects by the mark). Under `--dist loadgroup` (`make test`, `make
    check`), a slow test's module runs whole in one worker, where the server or browser its
    tests share starts once, and so does each shared folder, where its servers start once;
    those groups go first, so that no long one starts last. Every other test goes to
    whichever worker is free.
    """
    groups: dict[pytest.Item, str] = {}
    for item in items:
        uses = set(getattr(item, "fixturenames", ()))
        folder = _shared_folder(item)
        if uses & _SLOW_FIXTURES or folder:
            item.add_marker(pytest.mark.slow)
        groups[item] = folder or str(item.path.relative_to(item.config.rootpath))
    grouped = {groups[item] for item in items if item.get_closest_marker("slow")}
    for item in items:
        if groups[item] in grouped:
            item.add_marker(pytest.mark.xdist_group(groups[item]))
    items.sort(key=lambda item: groups[item] not in grouped)


def _shared_folder(item: pytest.Item) -> str | None:
    return next((part for part in item.path.parts if part in _SHARED_FOLDERS), None)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The figures tests measured, then one line for each reason tests were skipped."""
    _summarize_figures(terminalreporter)
    _summarize_skips(terminalreporter)


# A figure a test measured: printed after the run, so that every run reports them.
Figure = Callable[[str, object], None]
_FIGURE = "figure"


@pytest.fixture
def figure(request: pytest.FixtureRequest) -> Figure:
    """Record one measured figure of this test, for the summary at the end of the run.

    Kept in the test's report (its user properties), which `pytest -n` workers send back.
    """

    def record(name: str, value: object) -> None:
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        request.node.user_properties.append((_FIGURE, f"{name} = {shown}"))

    return record


def _summarize_figures(terminalreporter: pytest.TerminalReporter) -> None:
    """Under a heading for each folder ("cluster figures"), in the order they were taken."""
    sections: dict[str, list[str]] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            # Each phase's report carries the properties so far; teardown's has them all.
            if getattr(report, "when", None) != "teardown":
                continue
            test = report.nodeid.rpartition("::")[2]
            folder = Path(report.nodeid.partition("::")[0]).parent.name
            for key, value in report.user_properties:
                if key == _FIGURE:
                    sections.setdefault(f"{folder} figures", []).append(f"{test}: {value}")
    for heading, lines in sections.items():
        terminalreporter.section(heading)
        for line in lines:
            terminalreporter.write_line(line)


def _summarize_skips(terminalreporter: pytest.TerminalReporter) -> None:
    """One line for each reason tests were skipped, however many tests it skipped."""
    reasons: Counter[str] = Counter()
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reasons[reason.removeprefix("Skipped: ")] += 1
    if reasons:
        terminalreporter.section("skipped")
        for reason, count in reasons.most_common():
            terminalreporter.write_line(f"{count} skipped: {reason}")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_SERVERS_BEFORE] = len(STARTED)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test's report ends with the logs of the `bazaar serve` processes it talked to.

    Those it started, and those started before it (a module's shared server) still running.
    """
    report: pytest.TestReport = yield
    if report.failed:
        before = item.stash.get(_SERVERS_BEFORE, len(STARTED))
        for n, server in enumerate(STARTED):
            if n >= before or server.process.poll() is None:
                lines = server.logs().splitlines()[-200:]
                report.sections.append((f"bazaar serve at {server.url}", "\n".join(lines)))
    return report


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test gets a fresh copy of."""
    path = tmp_path_factory.mktemp("template") / "bazaar.db"
    migrations.upgrade(Settings(database_url=f"sqlite+aiosqlite:///{path}", secret_key=SECRET))
    return path


def _postgres_admin_url() -> str | None:
    url = os.environ.get("BAZAAR_TEST_POSTGRES_URL")
    if url:
        return url
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true but BAZAAR_TEST_POSTGRES_URL is not set: PostgreSQL tests must run")
    return None


async def run_sql(dsn: str, statement: str) -> None:
    """One statement on a connection of its own (CREATE and DROP DATABASE need one)."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A migrated PostgreSQL database of this test run's own, dropped at the end."""
    admin_url = _postgres_admin_url()
    if admin_url is None:
        pytest.skip("PostgreSQL tests need BAZAAR_TEST_POSTGRES_URL (see README)")
    admin = make_url(admin_url)
    name = f"bazaar_test_{uuid.uuid4().hex[:12]}"
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)

    asyncio.run(run_sql(dsn, f'CREATE DATABASE "{name}"'))
    url = admin.set(database=name).render_as_string(hide_password=False)
    try:
        migrations.upgrade(Settings(database_url=url, secret_key=SECRET))
        yield url
    finally:
        asyncio.run(run_sql(dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis server that throttle tests share counters in (keys of their own, cleared)."""
    url = os.environ.get("BAZAAR_TEST_REDIS_URL")
    if url:
        return url
    if os.environ.get("CI") == "true":
        return "redis://127.0.0.1:6379/0"
    pytest.skip(
        "Redis tests need BAZAAR_TEST_REDIS_URL, e.g. redis://127.0.0.1:6379/0 (see README)"
    )
    raise AssertionError("unreachable")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest.fixture
def database_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> str:
    if backend == "sqlite":
        path = tmp_path / "bazaar.db"
        shutil.copyfile(sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to change settings for its tests."""
    return {}


# What every in-process test app is given: links name the test client's base URL, and the
# suite's hundreds of sign-ups from one address are not throttled (tests of the throttle
# set their own limit).
TEST_SETTINGS: dict[str, Any] = {
    "secret_key": SECRET,
    "public_url": "http://test",
    "limit_signup": "1000000/hour",
}


@pytest.fixture
def settings(database_url: str, settings_overrides: dict[str, Any]) -> Settings:
    values: dict[str, Any] = {"database_url": database_url, **TEST_SETTINGS}
    return Settings(**(values | settings_overrides))


async def _empty_tables(app: FastAPI) -> None:
    async with app.state.services.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(
                text("TRUNCATE items, users, outbox, audit_events RESTART IDENTITY CASCADE")
            )


# Argon2id at a fraction of the production cost, so that the thousands of sign-ups and
# logins in the suite stay quick. Tests about hashing itself (its timing, its
# parameters, its effect on the event loop) put `Passwords()` back; servers started
# as processes always hash at full cost.
FAST_PASSWORDS = Passwords(memory_kib=1024, time_cost=1, parallelism=1)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings, passwords=FAST_PASSWORDS)
    async with application.router.lifespan_context(application):
        await _empty_tables(application)
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture
def api(client: httpx.AsyncClient, app: FastAPI) -> Api:
    return Api(client, app)
