"""Fixtures for the fault tests: a private PostgreSQL cluster, and the figures they measure."""

from __future__ import annotations

import os
import pwd
import shutil
from collections.abc import Callable, Iterator

import pytest

from tests.faults.cluster import CLUSTER_USER, Cluster, find_bindir

# (test, figure, value): printed after the run, so that every run reports what it measured.
FIGURES: list[tuple[str, str, str]] = []

Figure = Callable[[str, object], None]


@pytest.fixture
def figure(request: pytest.FixtureRequest) -> Figure:
    """Record one measured figure of this test, for the summary at the end of the run."""

    def record(name: str, value: object) -> None:
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        FIGURES.append((request.node.name, name, shown))

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("fault figures")
    for test, name, value in FIGURES:
        terminalreporter.write_line(f"{test}: {name} = {value}")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """A PostgreSQL cluster of this run's own, removed at the end (even after a failure)."""
    bindir = find_bindir()
    missing = [
        tool
        for tool in ("initdb", "pg_ctl", "postgres")
        if not (bindir and (bindir / tool).exists())
    ]
    if bindir is None or missing:
        _unavailable(
            f"PostgreSQL's server programs ({', '.join(missing)}) were not found in "
            f"{bindir or '$PATH, pg_config --bindir or /usr/lib/postgresql/*/bin'} (install "
            "PostgreSQL's server package, or set BAZAAR_TEST_PG_BINDIR): the fault tests run "
            "a private cluster they can stop and crash"
        )
        raise AssertionError("unreachable")
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root: the cluster runs as CLUSTER_USER, by runuser.
        if shutil.which("runuser") is None:
            _unavailable("running as root without `runuser` (util-linux): it runs PostgreSQL")
        try:
            pwd.getpwnam(CLUSTER_USER)
        except KeyError:
            _unavailable(
                f"running as root, and there is no {CLUSTER_USER!r} user to run PostgreSQL"
            )
    instance = Cluster(bindir)
    try:
        instance.init()
        instance.start()
        yield instance
    finally:
        instance.destroy()


@pytest.fixture
def pg_database(cluster: Cluster) -> Iterator[str]:
    """A fresh, empty database in the private cluster; `bazaar serve` migrates it."""
    name = cluster.create_database()
    yield name
    if not cluster.running():  # a test that failed with the cluster down
        cluster.start()
    cluster.drop_database(name)
