"""Driving wrk, and watching the server's memory and CPU while it runs."""

from __future__ import annotations

import json
import os
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


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set size so far (VmHWM)."""
    return _status_kib(pid, "VmHWM") / 1024


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process (all its threads) has used."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        # Fields after the parenthesised command name; utime and stime are 14th and 15th.
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class ProcessWatch:
    """Samples a process's VmRSS in the background and measures the CPU it uses meanwhile."""

    pid: int
    interval: float = 0.1
    max_rss_mib: float = 0.0
    cpu_used: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _cpu_start: float = 0.0

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.max_rss_mib = max(self.max_rss_mib, _status_kib(self.pid, "VmRSS") / 1024)

    def __enter__(self) -> ProcessWatch:
        self._cpu_start = cpu_seconds(self.pid)
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
        self.max_rss_mib = max(self.max_rss_mib, _status_kib(self.pid, "VmRSS") / 1024)
        self.cpu_used = cpu_seconds(self.pid) - self._cpu_start


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
    with ProcessWatch(pid) as watch:
        result = run_wrk(base_url, env, seconds=seconds, shape=shape)
    elapsed = result.duration_us / 1e6 or time.monotonic() - started
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
        cpu_us_per_request=watch.cpu_used / max(result.requests, 1) * 1e6,
    )
