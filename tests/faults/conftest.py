"""Fixtures for the fault tests: a private PostgreSQL cluster."""

from __future__ import annotations

import os
import pwd
import shutil
from collections.abc import Iterator

import pytest

from tests.faults.cluster import CLUSTER_USER, Cluster, find_bindir


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
