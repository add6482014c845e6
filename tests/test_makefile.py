"""`make run` serves from a runtime-only install, where it is told; `make help` lists targets."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def _make(*args: str, venv: Path) -> str:
    """What `make` would run (`-n`: nothing is run), for a venv that does not exist yet."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    result = subprocess.run(  # noqa: S603 - a fixed command
        ["make", "-n", "--no-print-directory", "-C", str(ROOT), *args, f"VENV={venv}"],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return result.stdout


def test_make_run_installs_the_runtime_only_and_serves_where_told(tmp_path: Path) -> None:
    lines = _make("run", "PORT=8123", "HOST=0.0.0.0", venv=tmp_path / "venv").splitlines()
    installs = [line for line in lines if " pip install " in line and "--upgrade pip" not in line]
    assert len(installs) == 1
    assert installs[0].endswith("-c constraints.txt -e .")
    assert lines[-1] == f"{tmp_path / 'venv'}/bin/bazaar serve --host 0.0.0.0 --port 8123"
    # It says what it does while it installs.
    assert any("installing Bazaar" in line for line in lines)


def test_make_test_adds_the_dev_tools(tmp_path: Path) -> None:
    installs = [
        line for line in _make("test", venv=tmp_path / "venv").splitlines() if " -e " in line
    ]
    assert [line.rsplit(" ", 1)[-1] for line in installs] == [".", "'.[dev]'"]


def test_make_help_lists_the_targets(tmp_path: Path) -> None:
    result = subprocess.run(  # noqa: S603 - a fixed command
        ["make", "-C", str(ROOT), "help", f"VENV={tmp_path / 'venv'}"],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")}
    assert {"run", "test", "check", "lint", "migration", "bench", "fuzz", "help"} <= listed
    assert not (tmp_path / "venv").exists()  # help installs nothing
