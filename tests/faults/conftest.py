"""Fixtures for the fault tests: a private PostgreSQL cluster, and the figures they measure."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator

import pytest

from tests.faults.cluster import Cluster, find_bindir

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
    if bindir is None or not (bindir / "initdb").exists():
        _unavailable(
            "PostgreSQL's initdb was not found (install PostgreSQL, or set "
            "BAZAAR_TEST_PG_BINDIR): the PostgreSQL fault tests run a private cluster"
        )
        raise AssertionError("unreachable")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        _unavailable("running as root without `runuser`: PostgreSQL refuses to run as root")
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
