"""pyproject.toml's bounds and constraints.txt's exact lock agree, and the lock stays sorted."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[1]


def _project() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        project: dict[str, object] = tomllib.load(handle)["project"]
    return project


def _direct() -> list[Requirement]:
    project = _project()
    dependencies = project["dependencies"]
    optional = project["optional-dependencies"]
    assert isinstance(dependencies, list)
    assert isinstance(optional, dict)
    return [Requirement(line) for line in [*dependencies, *optional["dev"]]]


def _pins() -> list[tuple[str, str]]:
    pins = []
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line)
        assert match, f"constraints.txt: not an exact pin: {line!r}"
        pins.append((match.group(1), match.group(2)))
    return pins


def test_the_lock_is_sorted_and_has_each_package_once() -> None:
    names = [canonicalize_name(name) for name, _ in _pins()]
    assert names == sorted(names)
    assert len(names) == len(set(names))


def test_every_direct_dependency_is_bounded_and_its_pin_fits_the_bounds() -> None:
    pins = {canonicalize_name(name): version for name, version in _pins()}
    for requirement in _direct():
        name = canonicalize_name(requirement.name)
        assert any(spec.operator == ">=" for spec in requirement.specifier), requirement
        assert name in pins, f"{name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name]), (str(requirement), pins[name])
