"""Bazaar under uvicorn (`bazaar serve`, what ships) and under granian, on one database.

Both serve `make bench`'s demo database with one worker and take the same wrk
load (64 connections, 2 threads, warm-up then a measured run) on the item, list,
me and create scenarios, taking turns: in each round every scenario runs on both,
uvicorn first in odd rounds, granian first in even ones. It prints, per scenario
and server, the medians over rounds with their range, the granian/uvicorn ratio,
and the CPU the serving process used per request (granian's worker, a child of
its supervisor). granian is not one of Bazaar's dependencies: install it first.

    .venv/bin/pip install granian
    .venv/bin/python bench/servers.py --rounds 3 [--output figures.json]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.metadata
import json
import signal
import statistics
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import httpx
import loadgen
from run import (
    BenchError,
    Options,
    Server,
    _bazaar_command,
    _on_signal,
    _query,
    bazaar_serve_command,
    demo_database,
    log_in,
    log_problems,
    parse_options,
    preflight,
    say,
    serve,
    wait_for_quiet,
)
from scenarios import Fixtures, Load, build

SCENARIOS = "item,list,me,create"
# Both servers write the same absolute links (`bazaar serve` would name its own port).
SETTINGS = {"BAZAAR_ACCESS_TOKEN_MINUTES": "240", "BAZAAR_PUBLIC_URL": "http://127.0.0.1:8000"}
GRANIAN = ["--interface", "asgi", "--factory", "--loop", "uvloop", "--workers", "1"]
COMMANDS = {
    "uvicorn": [*bazaar_serve_command(), "--graceful-seconds", "5"],
    "granian": [_bazaar_command("granian"), *GRANIAN, "bazaar.cli:app_factory"],
}


def serving_pid(server: Server) -> int:
    """The process that runs the app: granian's one worker, or `bazaar serve` itself."""
    if server.name != "granian":
        return server.pid
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text("ascii").split()
    if len(children) != 1:
        raise BenchError(f"granian has {len(children)} worker processes, not 1")
    return int(children[0])


@contextlib.contextmanager
def servers(env: dict[str, str], workdir: Path) -> Iterator[dict[str, Server]]:
    """Both servers, each answering `/ready` (which needs the app's lifespan to have run)."""
    with contextlib.ExitStack() as stack:
        started = {
            name: stack.enter_context(serve(name, command, env=env, workdir=workdir))
            for name, command in COMMANDS.items()
        }
        for name, server in started.items():
            ready = httpx.get(f"{server.url}/ready", timeout=10)
            if ready.status_code != 200:
                raise BenchError(f"{name}: /ready answered {ready.status_code} {ready.text}")
        yield started


def measure(options: Options) -> list[loadgen.Run]:
    shape = loadgen.LoadShape(options.connections, options.threads, options.timeout_seconds)
    runs: list[loadgen.Run] = []
    wait_for_quiet(options.wait_quiet)
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bazaar-servers-")))
        dsn, env = stack.enter_context(demo_database(options, workdir, SETTINGS))
        started = stack.enter_context(servers(env, workdir))
        token = log_in(started["uvicorn"], dsn)
        low, high = _query(dsn, "SELECT min(id), max(id) FROM items")[0]
        fixtures = Fixtures((int(str(low)), int(str(high))), 1, workdir, workdir)
        loads: dict[str, Load] = {s.key: s.bazaar for s in build(fixtures)}
        for name in options.scenarios:
            for server in started.values():
                preflight(server, loads[name], token)
        pids = {name: serving_pid(server) for name, server in started.items()}
        for round_number in range(1, options.rounds + 1):
            order = list(started) if round_number % 2 else list(reversed(started))
            for scenario in options.scenarios:
                for name in order:
                    run = loadgen.measure(
                        app=name,
                        scenario=scenario,
                        round_number=round_number,
                        pid=pids[name],
                        base_url=started[name].url,
                        env=loads[scenario].wrk_env(token),
                        warmup=options.warmup,
                        seconds=options.seconds,
                        shape=shape,
                    )
                    runs.append(run)
                    say(
                        f"round {round_number}/{options.rounds} {scenario:<6} {name:<7}"
                        f" {run.rps:7,.0f} req/s  p99 {run.p99_ms:6.1f} ms"
                        f"  {run.cpu_us_per_request:5.0f} µs CPU/request  {run.errors} errors"
                        f"  other load {run.other_cpu_share:.0%}"
                    )
        for name, server in started.items():
            count, first = log_problems(server.log)
            if count:
                say(f"{name}'s log has {count} error lines, the first: {first[0]}")
    return runs


def _spread(values: list[float], digits: int = 0) -> str:
    """The median, and the range across rounds."""
    return (
        f"{statistics.median(values):,.{digits}f}"
        f" ({min(values):,.{digits}f}..{max(values):,.{digits}f})"
    )


def summary(runs: list[loadgen.Run], scenarios: list[str]) -> list[dict[str, object]]:
    by: dict[tuple[str, str], list[loadgen.Run]] = defaultdict(list)
    for run in runs:
        by[run.scenario, run.app].append(run)
    rows: list[dict[str, object]] = []
    for scenario in scenarios:
        uvicorn, granian = by[scenario, "uvicorn"], by[scenario, "granian"]
        ratios = [g.rps / u.rps for u, g in zip(uvicorn, granian, strict=True)]
        rows.append(
            {
                "scenario": scenario,
                "ratio_rps": round(statistics.median(ratios), 2),
                "ratio_range": [round(min(ratios), 2), round(max(ratios), 2)],
            }
            | {
                name: {
                    "rps": _spread([run.rps for run in measured]),
                    "p99_ms": _spread([run.p99_ms for run in measured], 1),
                    "cpu_us_per_request": _spread([run.cpu_us_per_request for run in measured]),
                    "errors": sum(run.errors for run in measured),
                    "peak_rss_mib": round(max(run.rss_mib for run in measured)),
                }
                for name, measured in (("uvicorn", uvicorn), ("granian", granian))
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--output", type=Path, default=None, help="write every run here as JSON")
    known, rest = own.parse_known_args(sys.argv[1:] if argv is None else argv)
    # `make bench`'s options and database; no scenario here pages deep.
    options = parse_options(["--depth=1", "--deep-pages=1", f"--scenarios={SCENARIOS}", *rest])
    if "deep" in options.scenarios:
        say("the deep scenario is not measured here")
        return 2
    try:
        version = importlib.metadata.version("granian")
    except importlib.metadata.PackageNotFoundError:
        say("granian is not installed: .venv/bin/pip install granian")
        return 2
    if loadgen.wrk_path() is None:
        say("wrk is not installed: apt-get install wrk")
        return 2
    versions = {"granian": version, "uvicorn": importlib.metadata.version("uvicorn")}
    say(f"versions: {versions}")
    # Unwind through every `finally` on SIGTERM too: servers stopped, database dropped.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    try:
        runs = measure(options)
    except BenchError as exc:
        say(f"servers: {exc}")
        return 1
    rows = summary(runs, options.scenarios)
    say("scenario  server   req/s (range)            p99 ms (range)      CPU µs/req (range)")
    for row in rows:
        for name in ("uvicorn", "granian"):
            figures = row[name]
            assert isinstance(figures, dict)
            say(
                f"{row['scenario']:<9} {name:<8} {figures['rps']:<24} {figures['p99_ms']:<19}"
                f" {figures['cpu_us_per_request']:<18} errors {figures['errors']}"
            )
        say(f"{row['scenario']:<9} granian/uvicorn req/s {row['ratio_rps']} {row['ratio_range']}")
    if known.output is not None:
        figures = {"versions": versions, "summary": rows, "runs": [*map(dataclasses.asdict, runs)]}
        known.output.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        say(f"figures: {known.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
