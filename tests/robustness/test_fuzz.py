"""Schemathesis on every operation and link, in-process over ASGI, on SQLite and PostgreSQL.

Every check runs (server errors, status codes, content types, response schemas and headers,
acceptance of valid and rejection of invalid data, ignored auth, undeclared methods, and in the
stateful phase use-after-free and resource availability). Cases carry an admin's bearer token,
so that authorised paths are reached; the ignored-auth check sends each authorised case again
without it and with a made-up one. `make test` runs a small sample with a fixed seed;
`make fuzz` a larger one (BAZAAR_FUZZ_EXAMPLES, BAZAAR_FUZZ_SEED), with Schemathesis' coverage
phase (BAZAAR_FUZZ_COVERAGE_PHASE=1).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.openapi.checks import (
    EnsureResourceAvailability,
    RejectedPositiveData,
    UseAfterFree,
)
from schemathesis.python import asgi
from sqlalchemy import text

from bazaar.app import create_app
from bazaar.config import Settings
from bazaar.db.engine import create_engine
from bazaar.users.admin import create_admin
from tests.conftest import BACKENDS, FAST_PASSWORDS, SECRET

Case = schemathesis.Case[Any]

MAX_EXAMPLES = int(os.environ.get("BAZAAR_FUZZ_EXAMPLES", "8"))
# The coverage phase (every boundary and type each schema admits or refuses, made while pytest
# collects) runs in `make fuzz`: made at collection, it cost each `pytest -n` worker of
# `make test` about 25 s. The odd-input suite (test_edge_inputs.py) covers that ground there.
COVERAGE_PHASE = os.environ.get("BAZAAR_FUZZ_COVERAGE_PHASE") == "1"
SEED = int(os.environ.get("BAZAAR_FUZZ_SEED", "20261126"))
STATEFUL_STEPS = 12
ADMIN_PASSWORD = "fuzzing-admin-password"

# Schemathesis' defaults, plus 412: an If-Match that names another version is refused
# whatever the body, and preconditions are evaluated before the content is processed
# (RFC 9110, 13.2.1); a fuzzer cannot know an item's current version.
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "412", "429", "5xx"]
REJECTED = ["400", "401", "403", "404", "405", "406", "409", "412", "415", "422", "428", "429"]
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "database": "none"},
        "checks": {
            "positive_data_acceptance": {"expected-statuses": ACCEPTED},
            "negative_data_rejection": {"expected-statuses": [*REJECTED, "5xx"]},
        },
        "phases": {
            "stateful": {"max-steps": STATEFUL_STEPS},
            "coverage": {"enabled": COVERAGE_PHASE},
        },
    }
)
# The document the app serves (it needs no database); each test sends its cases to the
# app of its own backend.
schema = schemathesis.openapi.from_dict(
    create_app(Settings(database_url="sqlite+aiosqlite://", secret_key=SECRET)).openapi(),
    config=CONFIG,
)


@dataclass
class Identities:
    """Which row each resource path named when last seen, and when it was deleted."""

    seen: dict[str, str] = field(default_factory=dict)
    deleted: dict[str, str | None] = field(default_factory=dict)
    reused: set[str] = field(default_factory=set)
    owners: dict[str, str] = field(default_factory=dict)
    cascaded: set[str] = field(default_factory=set)

    def reset(self) -> None:
        for record in (self.seen, self.deleted, self.reused, self.owners, self.cascaded):
            record.clear()

    def observe(self, case: Case, response: schemathesis.Response) -> None:
        path = case.formatted_path.rstrip("/")
        if case.method == "DELETE" and response.status_code == 204:
            self.deleted[path] = self.seen.pop(path, None)
        elif 200 <= response.status_code < 300 and path.startswith(("/users", "/items")):
            body = response.json()
            for row in body if isinstance(body, list) else [body]:
                if isinstance(row, dict) and {"id", "created_at"} <= row.keys():
                    self.seen[f"/{path.split('/')[1]}/{row['id']}"] = row["created_at"]
                if isinstance(row, dict) and "owner_id" in row:
                    self.owners[f"/items/{row['id']}"] = f"/users/{row['owner_id']}"

    def is_another_row(self, case: Case, response: schemathesis.Response) -> bool:
        """Whether what answers at (or under) a deleted path is a newer row given its id."""
        path = case.formatted_path.rstrip("/")
        row = "/".join(path.split("/")[:3])
        body = response.json()
        now = body.get("created_at") if path == row and isinstance(body, dict) else None
        now = now or self.seen.get(row)
        if now is not None and self.deleted.get(row) not in (None, now):
            self.reused.add(row)
            return True
        return False

    def went_with_its_owner(self, case: Case) -> bool:
        """Whether an item is gone because its owner was deleted (ON DELETE CASCADE)."""
        path = case.formatted_path.rstrip("/")
        if self.owners.get(path) in self.deleted:
            self.cascaded.add(path)
            return True
        return False


# SQLite hands the id of the newest row, once deleted, to the next row inserted (no
# AUTOINCREMENT); PostgreSQL's sequences never do. Told apart by `created_at`, a new row at
# a deleted row's id is reported apart from use-after-free, which stays checked. And an
# item goes with its owner, which the resource-availability check does not know.
identities = Identities()


@schema.hook
def filter_failure(
    context: schemathesis.HookContext,
    failure: Failure,
    case: Case,
    response: schemathesis.Response,
) -> bool:
    """Keep every failure but those explained by what is stored, each checked precisely.

    A cursor is an HMAC-signed token, and no schema can say which strings are signed: a
    schema-valid cursor made up by the fuzzer is a 422 (the spec's "tampered cursor"). An
    email already taken is a conflict with stored data, which the spec answers with 400;
    so is a mailed link's token the database does not hold (a made-up one). And the two
    of `identities` above: a reused id, an item deleted with its owner.
    """
    if isinstance(failure, UseAfterFree) and response.status_code == 200:
        return not identities.is_another_row(case, response)
    if isinstance(failure, EnsureResourceAvailability) and response.status_code == 404:
        return not identities.went_with_its_owner(case)
    if isinstance(failure, RejectedPositiveData):
        detail: Any = response.json()["detail"]
        if response.status_code == 400:
            return detail not in {"Email already in use", "Invalid or expired token"}
        if response.status_code == 422:
            return not all(error["loc"] == ["query", "cursor"] for error in detail)
    return True


@dataclass
class Target:
    """The app under test on one backend, an admin to call it as, and what it answered."""

    backend: str
    app: FastAPI
    settings: Settings
    token: str = ""
    verified: bool = False
    admins: int = 0
    statuses: Counter[int] = field(default_factory=Counter)

    def headers(self) -> dict[str, str]:
        """An active admin's bearer token; a new admin when fuzzing deleted or demoted the last."""
        with asgi.get_client(self.app) as client:  # type: ignore[arg-type]
            if self.token and not self.verified:
                me = client.get("/users/me", headers={"Authorization": f"Bearer {self.token}"})
                self.verified = me.status_code == 200 and me.json()["is_admin"]
            if not self.verified:
                self.token = self._new_admin(client)
                self.verified = True
        return {"Authorization": f"Bearer {self.token}"}

    def _new_admin(self, client: asgi.ASGIClient) -> str:
        self.admins += 1
        email = f"fuzz-admin-{self.admins}@example.com"
        asyncio.run(
            create_admin(
                self.settings, email=email, name="Admin", ask_password=lambda: ADMIN_PASSWORD
            )
        )
        response = client.post("/auth/token", data={"username": email, "password": ADMIN_PASSWORD})
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        me = client.get("/users/me", headers={"Authorization": f"Bearer {token}"}).json()
        identities.seen[f"/users/{me['id']}"] = me["created_at"]
        return token

    def observe(self, case: Case, response: schemathesis.Response) -> None:
        self.statuses[response.status_code] += 1
        identities.observe(case, response)
        # A write to a user, or a refusal, may have been the admin's own: check before the next.
        if response.status_code in (401, 403) or (
            case.method != "GET" and case.formatted_path.startswith("/users/")
        ):
            self.verified = False


async def _empty_tables(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                await connection.execute(text("TRUNCATE items, users RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def target(
    request: pytest.FixtureRequest, sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    """One app per backend for the whole module: the fuzzer's rows pile up, as in real use."""
    backend: str = request.param
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("fuzz") / "bazaar.db"
        shutil.copyfile(sqlite_template, path)
        url = f"sqlite+aiosqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_url")
    # Fuzzing sends thousands of failed logins from one address; throttling is tested elsewhere.
    settings = Settings(
        database_url=url,
        secret_key=SECRET,
        login_attempts_per_email=10**9,
        login_attempts_per_address=10**9,
    )
    asyncio.run(_empty_tables(settings))
    # Hashing at the suite's low cost: what is fuzzed is the contract, not Argon2's price.
    target = Target(backend, create_app(settings, passwords=FAST_PASSWORDS), settings)
    identities.reset()
    try:
        yield target
    finally:
        asgi.shutdown_lifespans()
        total = sum(target.statuses.values())
        print(f"\nfuzz {backend}: {total} requests, by status {sorted(target.statuses.items())}")
        print(f"fuzz {backend}: deleted ids given to new rows: {sorted(identities.reused)}")
        print(f"fuzz {backend}: items gone with their owner: {len(identities.cascaded)}")


@schema.parametrize()
def test_every_operation(case: Case, target: Target) -> None:
    headers = target.headers()
    response = case.call(app=target.app, headers=headers)
    target.observe(case, response)
    case.validate_response(
        response, headers=headers, transport_kwargs={"app": target.app, "headers": headers}
    )


def test_links_between_operations(target: Target) -> None:
    """The stateful phase: create, then read, change and delete what was created.

    Rows outlive each scenario, so Hypothesis cannot replay one (it finds that the same
    choices meet other data, and says so with FlakyStrategyDefinition): failures are
    collected as they happen rather than shrunk, and a run cut short that way is followed by
    another, with another seed, until the steps are spent, as Schemathesis' own runner does.
    """
    failures: list[str] = []
    steps = 0

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            self.scenario: list[str] = []

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"app": target.app, "headers": target.headers()}

        def validate_response(
            self,
            response: schemathesis.Response,
            case: Case,
            additional_checks: Any = None,
            **kwargs: Any,
        ) -> None:
            nonlocal steps
            steps += 1
            target.observe(case, response)
            self.scenario.append(f"{case.method} {case.formatted_path} -> {response.status_code}")
            try:
                case.validate_response(
                    response,
                    additional_checks=additional_checks,
                    headers=kwargs["headers"],
                    transport_kwargs=kwargs,
                    recorder=self.recorder,
                )
            except FailureGroup as group:
                failures.append(f"{group}\nin the scenario:\n  " + "\n  ".join(self.scenario))

    settings = schema.config.get_hypothesis_settings(phase="stateful")
    for run in range(20):
        if steps >= MAX_EXAMPLES * STATEFUL_STEPS:
            break
        with contextlib.suppress(hypothesis.errors.FlakyStrategyDefinition):
            hypothesis.seed(SEED + run)(Machine).run(settings=settings)
    print(f"\nfuzz {target.backend}: {steps} stateful steps")
    assert failures == [], "\n\n".join(failures)
