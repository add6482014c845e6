"""Where a server's time goes: a py-spy recording, summarised as its hottest functions."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

SITE_PACKAGES = "site-packages/"
# A frame that spends more of its time than this in a single callee only passes through.
PASS_THROUGH = 0.95


@dataclass(frozen=True)
class Share:
    name: str
    share: float


@dataclass(frozen=True)
class Profile:
    samples: int
    self_time: list[Share]
    inclusive: list[Share]
    packages: list[Share]


def py_spy() -> str | None:
    """py-spy from the venv this runs in (bench/requirements.txt installs it), else PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record(pid: int, *, seconds: int, output: Path, rate: int = 100) -> None:
    """Sample `pid` for `seconds` into a speedscope file; RuntimeError when py-spy cannot."""
    executable = py_spy()
    if executable is None:
        raise RuntimeError("py-spy is not installed (pip install -r bench/requirements.txt)")
    # --gil: only the thread holding the GIL, so that idle worker threads
    # waiting on a queue do not pass for work.
    command = [
        executable,
        "record",
        f"--pid={pid}",
        f"--duration={seconds}",
        f"--rate={rate}",
        "--gil",
        "--format=speedscope",
        f"--output={output}",
    ]
    completed = subprocess.run(  # noqa: S603 - a fixed command line of ours
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    if completed.returncode != 0 or not output.exists():
        raise RuntimeError(
            f"py-spy exited {completed.returncode}: {completed.stderr.strip()[-1000:]}"
            " (it needs ptrace: run as root, or with CAP_SYS_PTRACE)"
        )


def _package(file: str) -> str:
    if SITE_PACKAGES in file:
        return file.split(SITE_PACKAGES, 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/bazaar/" in file:
        return "bazaar"
    if file.startswith("<frozen"):
        return "python (stdlib)"
    if "/lib/python3" in file:
        module = file.split("/lib/python3", 1)[1].split("/", 2)[1]
        return f"python (stdlib: {module.removesuffix('.py')})"
    return file


def _short_file(file: str) -> str:
    if SITE_PACKAGES in file:
        return file.split(SITE_PACKAGES, 1)[1]
    if "/src/bazaar/" in file:
        return "bazaar/" + file.split("/src/bazaar/", 1)[1]
    if "/lib/python3" in file:
        return file.split("/lib/python3", 1)[1].split("/", 1)[1]
    return file


def _label(frame: dict[str, object]) -> str:
    """The function and its file: samples on different lines of one function add up."""
    return f"{frame['name']} ({_short_file(str(frame.get('file', '')))})"


def summarise(speedscope: Path, *, top: int = 15) -> Profile:
    """Top functions by self time and by inclusive time, and self time by package.

    The inclusive list leaves out the event loop at the root of most stacks and
    pass-through frames, those that spend nearly all their time in one callee
    (middleware, wrappers): the callee stands for them. What remains are the
    places where time divides.
    """
    document = json.loads(speedscope.read_text(encoding="utf-8"))
    frames: list[dict[str, object]] = document["shared"]["frames"]
    labels = [_label(frame) for frame in frames]
    packages = [_package(str(frame.get("file", ""))) for frame in frames]
    self_counts: Counter[str] = Counter()
    inclusive_counts: Counter[str] = Counter()
    call_counts: Counter[tuple[str, str]] = Counter()
    root_counts: Counter[str] = Counter()
    package_counts: Counter[str] = Counter()
    total = 0
    for profile in document["profiles"]:
        for stack in profile["samples"]:
            if not stack:
                continue
            total += 1
            names = [labels[index] for index in stack]
            self_counts[names[-1]] += 1
            root_counts[names[0]] += 1
            package_counts[packages[stack[-1]]] += 1
            inclusive_counts.update(set(names))
            call_counts.update(set(itertools.pairwise(names)))
    if not total:
        return Profile(samples=0, self_time=[], inclusive=[], packages=[])

    # The main thread's root (the server's `<module>`): every frame on nearly all of
    # its samples is the event loop that runs everything else.
    loop = root_counts.most_common(1)[0][1]
    busiest_callee: Counter[str] = Counter()
    for (caller, _callee), count in call_counts.items():
        busiest_callee[caller] = max(busiest_callee[caller], count)
    branching = [
        Share(name, count / total)
        for name, count in inclusive_counts.most_common()
        if busiest_callee[name] < PASS_THROUGH * count and count < PASS_THROUGH * loop
    ]
    return Profile(
        samples=total,
        self_time=[Share(name, n / total) for name, n in self_counts.most_common(top)],
        inclusive=branching[:top],
        packages=[Share(name, n / total) for name, n in package_counts.most_common(10)],
    )
