"""Test 1: three hosts started at the same moment on an empty database migrate it once."""

from __future__ import annotations

import re

import pytest
from alembic.script import ScriptDirectory

from bazaar.migrations import alembic_config
from tests.cluster.conftest import Stack
from tests.conftest import Figure

pytestmark = pytest.mark.slow

_RUNNING_UPGRADE = re.compile(r"Running upgrade (\w*) -> (\w+)")


async def test_three_hosts_started_together_migrate_once(
    cluster_stack: Stack, figure: Figure
) -> None:
    stack = cluster_stack
    scripts = ScriptDirectory.from_config(alembic_config())
    revisions = [script.revision for script in scripts.walk_revisions()]
    # Each host's log of its first start: the migrations it applied itself.
    applied = {
        host.name: _RUNNING_UPGRADE.findall(host.logs().split("=== start 2")[0])
        for host in stack.hosts
    }
    migrating = [name for name, steps in applied.items() if steps]
    version = await stack.fetch("SELECT version_num FROM alembic_version")
    states = stack.haproxy.states()

    figure("seconds from the simultaneous start to all three hosts serving", stack.start_seconds)
    figure("hosts that applied migrations", len(migrating))
    figure("migration steps applied, over all hosts", sum(len(s) for s in applied.values()))

    assert len(migrating) == 1, applied
    assert sorted(step[1] for step in applied[migrating[0]]) == sorted(revisions)
    assert [row[0] for row in version] == [revisions[0]]  # walk_revisions starts at the head
    assert states == dict.fromkeys(("h1", "h2", "h3"), "UP")
