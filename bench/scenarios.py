"""What the benchmark asks of both apps, and the targets Bazaar is held to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

# Bazaar's server must stay under this peak resident set size.
MAX_RSS_MIB = 150

Mode = Literal["static", "ids", "paths", "post"]


@dataclass(frozen=True)
class Load:
    """One app's side of a scenario: what wrk sends (see wrk/scenario.lua)."""

    mode: Mode
    path: str
    authenticated: bool = False
    id_range: tuple[int, int] | None = None
    paths_file: Path | None = None

    def wrk_env(self, token: str) -> dict[str, str]:
        """The environment wrk/scenario.lua reads."""
        env = {"BENCH_MODE": self.mode, "BENCH_PATH": self.path}
        if self.authenticated:
            env["BENCH_TOKEN"] = token
        if self.id_range is not None:
            env["BENCH_ID_MIN"], env["BENCH_ID_MAX"] = (str(n) for n in self.id_range)
        if self.paths_file is not None:
            env["BENCH_PATHS"] = str(self.paths_file)
        return env

    def sample_path(self) -> str:
        """One path this load requests: what the preflight check sends."""
        if self.id_range is not None:
            return f"{self.path}{self.id_range[0]}"
        if self.paths_file is not None:
            return self.paths_file.read_text(encoding="utf-8").split("\n", 1)[0]
        return self.path


@dataclass(frozen=True)
class Target:
    """Bazaar's rps at least `min_ratio` of the floor's in `baseline`; its p99 and its CPU
    a request at most `max_p99_ratio` and `max_cpu_ratio` times the floor's in the same
    scenario of the same run."""

    min_ratio: float
    baseline: str
    max_p99_ratio: float = 1.5
    max_cpu_ratio: float = 2.0

    def describe(self, titles: dict[str, str], scenario: str) -> str:
        floor = "floor" if self.baseline == scenario else f"floor {titles[self.baseline]}"
        return (
            f"≥{self.min_ratio:g}x {floor}; p99 ≤{self.max_p99_ratio:g}x, CPU/request"
            f" ≤{self.max_cpu_ratio:g}x the floor's; 0 errors"
        )


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    label: str  # for the chart: short, with line breaks
    bazaar: Load
    floor: Load
    target: Target


@dataclass(frozen=True)
class Fixtures:
    """What the scenarios need from the database and from walking Bazaar's pages."""

    id_range: tuple[int, int]
    depth: int
    bazaar_deep_paths: Path
    floor_deep_paths: Path


def build(fixtures: Fixtures) -> list[Scenario]:
    """The five scenarios, in the order each round runs them (the insert last)."""
    ids = fixtures.id_range
    return [
        Scenario(
            "item",
            "GET /items/{id}",
            "GET /items/{id}",
            Load("ids", "/items/", id_range=ids),
            Load("ids", "/items/", id_range=ids),
            Target(0.55, "item"),
        ),
        Scenario(
            "list",
            "GET /items/?limit=100",
            "GET /items/\n?limit=100",
            Load("static", "/items/?limit=100"),
            Load("static", "/items?limit=100"),
            Target(0.65, "list"),
        ),
        Scenario(
            "deep",
            f"GET /items/?sort=-price, page ~{fixtures.depth} via next",
            f"next page ~{fixtures.depth}\nof ?sort=-price",
            Load("paths", "/items/", paths_file=fixtures.bazaar_deep_paths),
            Load("paths", "/items", paths_file=fixtures.floor_deep_paths),
            Target(0.55, "list"),
        ),
        Scenario(
            "me",
            "GET /users/me",
            "GET /users/me",
            Load("static", "/users/me", authenticated=True),
            Load("static", "/users/me", authenticated=True),
            # "Of the floor's read by id": the floor's GET /items/{id}.
            Target(0.45, "item"),
        ),
        Scenario(
            "create",
            "POST /items/",
            "POST /items/",
            Load("post", "/items/", authenticated=True),
            Load("post", "/items", authenticated=True),
            Target(0.45, "create"),
        ),
    ]
