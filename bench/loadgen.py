"""Driving wrk, and watching the server's memory and CPU while it runs."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk" / "scenario.lua"
RESULT_PREFIX = "BENCH_RESULT "
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class WrkError(RuntimeError):
    pass


def wrk_path() -> str | None:
    return shutil.which("wrk")


@dataclass(frozen=True)
class LoadShape:
    connections: int
    threads: int
    timeout_seconds: int


@dataclass(frozen=True)
class WrkResult:
    """What wrk/scenario.lua's `done` reports: counts, and latencies in microseconds."""

    requests: int
    duration_us: int
    connect_errors: int
    read_errors: int
    write_errors: int
    timeouts: int
    non_2xx: int
    statuses: dict[str, int]
    p50_us: int
    p90_us: int
    p99_us: int
    mean_us: float
    max_us: int

    @property
    def errors(self) -> int:
        socket_errors = self.connect_errors + self.read_errors + self.write_errors
        return self.non_2xx + socket_errors + self.timeouts

    def error_detail(self) -> dict[str, int]:
        detail = {f"HTTP {status}": n for status, n in sorted(self.statuses.items())}
        for name in ("connect_errors", "read_errors", "write_errors", "timeouts"):
            if count := getattr(self, name):
                detail[name.removesuffix("_errors")] = count
        return detail


def run_wrk(base_url: str, env: dict[str, str], *, seconds: float, shape: LoadShape) -> WrkResult:
    """One wrk run of `seconds` against `base_url`; raises WrkError when wrk fails."""
    wrk = wrk_path()
    if wrk is None:
        raise WrkError("wrk is not installed")
    command = [
        wrk,
        f"--threads={shape.threads}",
        f"--connections={shape.connections}",
        f"--duration={max(1, round(seconds))}s",
        f"--timeout={shape.timeout_seconds}s",
        f"--script={WRK_SCRIPT}",
        base_url,
    ]
    completed = subprocess.run(  # noqa: S603 - a fixed command line of ours
        command,
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=seconds + shape.timeout_seconds + 30,
        check=False,
    )
    for line in completed.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            fields = json.loads(line.removeprefix(RESULT_PREFIX))
            fields.pop("bytes", None)
            return WrkResult(**fields)
    raise WrkError(
        f"wrk exited {completed.returncode} without a result:\n"
        f"{completed.stdout[-2000:]}{completed.stderr[-2000:]}"
    )


def _status_kib(pid: int, key: str) -> int:
    """A `VmRSS`/`VmHWM`-style line of /proc/<pid>/status, in KiB (0 once the process is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def _tree_rss_mib(pid: int) -> float:
    """Resident memory of the process and its workers together."""
    return sum(_status_kib(member, "VmRSS") for member in process_tree(pid)) / 1024


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set size so far (VmHWM)."""
    return _status_kib(pid, "VmHWM") / 1024


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            # Fields after the parenthesised command name: ppid is the 4th, utime and stime
            # the 14th and 15th.
            return stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants: a server's workers (`--workers N`) are its children."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(parents.get(current, ()))
    return tree


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process and its workers (all their threads) have
    used; 0 once they are gone."""
    used = 0.0
    for member in process_tree(pid):
        if (fields := _stat(member)) is not None:
            used += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return used


def _postgres_cpu() -> dict[int, float]:
    """CPU seconds of every PostgreSQL process on the machine, by pid."""
    used = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                name = (entry / "comm").read_text(encoding="ascii").strip()
            except OSError:
                continue
            if name == "postgres" or name.startswith("postgres:"):
                used[int(entry.name)] = cpu_seconds(int(entry.name))
    return used


def _machine_busy() -> float:
    """CPU seconds all cores have spent busy (not idle, not waiting on I/O) since boot."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(n) for n in stat.readline().split()[1:]]
    idle, iowait = fields[3], fields[4]
    return (sum(fields[:8]) - idle - iowait) / CLOCK_TICKS


def machine_busy_share(seconds: float = 3.0) -> float:
    """How much of the machine's CPU was busy over the next `seconds`."""
    before = _machine_busy()
    time.sleep(seconds)
    return (_machine_busy() - before) / (seconds * (os.cpu_count() or 1))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class CpuSplit:
    """Who used the machine's cores during a run, in CPU seconds."""

    server: float
    postgres: float
    load_generator: float
    other: float
    capacity: float

    @property
    def other_share(self) -> float:
        """Share of the machine taken by processes outside the benchmark."""
        return self.other / self.capacity if self.capacity else 0.0


@dataclass
class Watch:
    """Samples the server's VmRSS in the background; splits the CPU used meanwhile.

    The load generator's CPU is that of the child processes reaped during the
    watch (wrk, run in the foreground); the rest of the machine's busy time not
    spent by the server, PostgreSQL or wrk belongs to something else.
    """

    pid: int
    interval: float = 0.1
    max_rss_mib: float = 0.0
    cpu: CpuSplit | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _start: tuple[float, float, dict[int, float], float, float] | None = None

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.max_rss_mib = max(self.max_rss_mib, _tree_rss_mib(self.pid))

    def __enter__(self) -> Watch:
        self._start = (
            cpu_seconds(self.pid),
            _machine_busy(),
            _postgres_cpu(),
            _children_cpu(),
            time.monotonic(),
        )
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.max_rss_mib = max(self.max_rss_mib, _tree_rss_mib(self.pid))
        assert self._start is not None
        server, busy, postgres, children, started = self._start
        postgres_now = _postgres_cpu()
        server_used = cpu_seconds(self.pid) - server
        postgres_used = sum(used - postgres.get(pid, 0.0) for pid, used in postgres_now.items())
        wrk_used = _children_cpu() - children
        busy_used = _machine_busy() - busy
        self.cpu = CpuSplit(
            server=server_used,
            postgres=postgres_used,
            load_generator=wrk_used,
            other=max(0.0, busy_used - server_used - postgres_used - wrk_used),
            capacity=(time.monotonic() - started) * (os.cpu_count() or 1),
        )


@dataclass(frozen=True)
class Run:
    """One measured run of one scenario against one app."""

    app: str
    scenario: str
    round: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    requests: int
    errors: int
    error_detail: dict[str, int]
    rss_mib: float
    cpu_us_per_request: float
    postgres_cpu_us_per_request: float
    other_cpu_share: float


def measure(
    *,
    app: str,
    scenario: str,
    round_number: int,
    pid: int,
    base_url: str,
    env: dict[str, str],
    warmup: float,
    seconds: float,
    shape: LoadShape,
) -> Run:
    """A warm-up run (discarded), then a measured one watched for memory and CPU."""
    if warmup > 0:
        run_wrk(base_url, env, seconds=warmup, shape=shape)
    started = time.monotonic()
    with Watch(pid) as watch:
        result = run_wrk(base_url, env, seconds=seconds, shape=shape)
    elapsed = result.duration_us / 1e6 or time.monotonic() - started
    assert watch.cpu is not None
    served = max(result.requests, 1)
    return Run(
        app=app,
        scenario=scenario,
        round=round_number,
        rps=result.requests / elapsed,
        p50_ms=result.p50_us / 1000,
        p90_ms=result.p90_us / 1000,
        p99_ms=result.p99_us / 1000,
        mean_ms=result.mean_us / 1000,
        max_ms=result.max_us / 1000,
        requests=result.requests,
        errors=result.errors,
        error_detail=result.error_detail(),
        rss_mib=watch.max_rss_mib,
        cpu_us_per_request=watch.cpu.server / served * 1e6,
        postgres_cpu_us_per_request=watch.cpu.postgres / served * 1e6,
        other_cpu_share=watch.cpu.other_share,
    )
