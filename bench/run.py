"""`make bench`: Bazaar against the floor of its stack, on a throwaway PostgreSQL database.

It creates a database, fills it with `bazaar demo-data`, serves it with one
Bazaar worker and one floor worker (bench/floor.py), drives both with wrk
(alternating, several rounds), profiles Bazaar under its worst scenario with
py-spy, and writes bench/results/<date>-<commit>.md with a chart. Whatever it
starts (servers, the database) is stopped or dropped at the end, also on
failure or Ctrl-C. Load goes to 127.0.0.1 only, and every step is bounded in
time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from urllib.parse import urlencode, urlsplit, urlunsplit

import asyncpg
import httpx
import loadgen
import profiling
import report
from scenarios import Fixtures, Load, Scenario, build

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
REQUIREMENTS = BENCH / "requirements.txt"
CONSTRAINTS = ROOT / "constraints.txt"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
PAGE = 100
STARTUP_SECONDS = 60
STOP_SECONDS = 15
# The machine counts as quiet when other work keeps less than this share of its CPU busy.
QUIET_SHARE = 0.2

WRK_MISSING = """\
bench: wrk is not installed. It is the load generator (written in C); install it with
    apt-get install wrk
(Debian/Ubuntu; `brew install wrk` on macOS), then run `make bench` again."""


class BenchError(RuntimeError):
    """A step of the benchmark failed; the message says which and why."""


_started = time.monotonic()


def say(message: str) -> None:
    elapsed = int(time.monotonic() - _started)
    print(f"[bench {elapsed // 60:02d}:{elapsed % 60:02d}] {message}", flush=True)


# -- Setup: dependencies, options ---------------------------------------------------------


def ensure_requirements() -> None:
    """Install bench/requirements.txt into this venv unless every pin is already there."""
    pins = [
        line.split("#", 1)[0].strip()
        for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines()
    ]
    missing = []
    for pin in filter(None, pins):
        name, _, version = pin.partition("==")
        try:
            if importlib.metadata.version(name) != version:
                missing.append(pin)
        except importlib.metadata.PackageNotFoundError:
            missing.append(pin)
    if not missing:
        return
    say(f"installing the bench's own dependencies: {', '.join(missing)}")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    command += ["-c", str(CONSTRAINTS), "-r", str(REQUIREMENTS)]
    subprocess.run(command, check=True, timeout=600)  # noqa: S603 - our own pip


@dataclass(frozen=True)
class Revision:
    """What a report is named after: the day, and the commit measured (`dirty`: with
    uncommitted changes to the app)."""

    date: str
    commit: str
    dirty: bool

    @classmethod
    def now(cls) -> Revision:
        return cls(
            date=datetime.now(UTC).strftime("%Y-%m-%d"),
            commit=_git("rev-parse", "--short", "HEAD") or "unknown",
            dirty=bool(
                _git("status", "--porcelain", "--", "src", "pyproject.toml", "constraints.txt")
            ),
        )

    @property
    def stem(self) -> str:
        """`<date>-<commit>[-dirty]`, the start of each file name of a report."""
        return f"{self.date}-{self.commit}{'-dirty' if self.dirty else ''}"


@dataclass(frozen=True)
class Options:
    users: int
    items: int
    rounds: int
    seconds: float
    warmup: float
    connections: int
    threads: int
    timeout_seconds: int
    depth: int
    deep_pages: int
    scenarios: list[str]
    profile: str
    profile_seconds: int
    pg_dsn: str
    wait_quiet: int
    workers: int
    results: Path


def parse_options(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n", 1)[0])
    add = parser.add_argument
    add("--users", type=int, default=10_000, help="demo users (default 10000)")
    add("--items", type=int, default=100_000, help="demo items (default 100000)")
    add("--rounds", type=int, default=3, help="rounds of Bazaar-then-floor runs (default 3)")
    add("--duration", type=float, default=10, help="seconds per measured run (default 10)")
    add("--warmup", type=float, default=2, help="seconds of warm-up before each run (default 2)")
    add("--connections", type=int, default=64, help="wrk connections (default 64)")
    add("--workers", type=int, default=1, help="worker processes of each app (default 1)")
    add("--threads", type=int, default=2, help="wrk threads (default 2)")
    add("--timeout", type=int, default=5, help="wrk's per-request timeout, s (default 5)")
    add("--depth", type=int, default=500, help="how many next links deep to page (default 500)")
    add("--deep-pages", type=int, default=50, help="distinct deep pages requested (default 50)")
    add(
        "--scenarios",
        default="item,list,deep,me,create",
        help="which scenarios, comma-separated (default all: item,list,deep,me,create)",
    )
    add(
        "--profile",
        default="auto",
        help="scenario to profile with py-spy: auto (the one furthest below its target),"
        " a scenario name, or none",
    )
    add("--profile-seconds", type=int, default=10, help="py-spy recording length (default 10)")
    add(
        "--pg-dsn",
        default=os.environ.get("BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL maintenance database to create the bench database from"
        " (default $BENCH_PG_DSN or postgresql://postgres@127.0.0.1:5432/postgres)",
    )
    add(
        "--wait-quiet",
        type=int,
        default=0,
        help="wait up to this many seconds for the machine to be mostly idle before starting",
    )
    add("--results", type=Path, default=BENCH / "results", help="where the report goes")
    args = parser.parse_args(argv)
    known = {"item", "list", "deep", "me", "create"}
    scenarios = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    if not scenarios or not set(scenarios) <= known:
        parser.error(f"--scenarios: choose from {', '.join(sorted(known))}")
    if args.profile not in known | {"auto", "none"}:
        parser.error("--profile: auto, none, or a scenario name")
    if args.rounds < 1 or args.duration < 1 or args.depth < 1 or args.deep_pages < 1:
        parser.error("--rounds, --duration, --depth and --deep-pages must be at least 1")
    if args.deep_pages > args.depth:
        parser.error("--deep-pages cannot exceed --depth")
    if args.items < (args.depth + 1) * PAGE:
        parser.error(f"--items must be at least {(args.depth + 1) * PAGE} to page that deep")
    if urlsplit(args.pg_dsn).hostname not in LOOPBACK:
        parser.error("--pg-dsn: the benchmark only runs against a PostgreSQL on this machine")
    return Options(
        users=args.users,
        items=args.items,
        rounds=args.rounds,
        seconds=args.duration,
        warmup=args.warmup,
        connections=args.connections,
        threads=args.threads,
        timeout_seconds=args.timeout,
        depth=args.depth,
        deep_pages=args.deep_pages,
        scenarios=scenarios,
        profile=args.profile,
        profile_seconds=args.profile_seconds,
        pg_dsn=args.pg_dsn,
        wait_quiet=args.wait_quiet,
        workers=args.workers,
        results=args.results,
    )


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    # Unwind through every `finally`, so that servers stop and the database is dropped.
    raise SystemExit(128 + signum)


# -- The database -----------------------------------------------------------------------


def _with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _run_sql(dsn: str, *statements: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(dsn, timeout=10)
        try:
            for statement in statements:
                await connection.execute(statement, timeout=600)
        finally:
            await connection.close()

    asyncio.run(run())


@contextlib.contextmanager
def temporary_database(admin_dsn: str) -> Iterator[str]:
    """A new, empty database (its DSN), dropped on the way out whatever happened."""
    name = f"bazaar_bench_{secrets.token_hex(4)}"
    try:
        _run_sql(admin_dsn, f'CREATE DATABASE "{name}"')
    except OSError as exc:
        raise BenchError(f"cannot reach PostgreSQL at {admin_dsn}: {exc}") from exc
    say(f"created database {name}")
    try:
        yield _with_database(admin_dsn, name)
    finally:
        _run_sql(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        say(f"dropped database {name}")


def _query(dsn: str, sql: str) -> list[tuple[object, ...]]:
    async def run() -> list[tuple[object, ...]]:
        connection = await asyncpg.connect(dsn, timeout=10)
        try:
            return [tuple(row) for row in await connection.fetch(sql, timeout=60)]
        finally:
            await connection.close()

    return asyncio.run(run())


# -- Servers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    name: str
    pid: int
    url: str
    log: Path


def log_problems(log: Path, *, keep: int = 5) -> tuple[int, list[str]]:
    """How many lines of a server's log report an error or a traceback, and the first few."""
    count, first = 0, list[str]()
    with open(log, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback"):
                count += 1
                if len(first) < keep:
                    first.append(line.strip()[:300])
    return count, first


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _tail(path: Path, lines: int = 30) -> str:
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group (its own: start_new_session), then SIGKILL."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_SECONDS)


@contextlib.contextmanager
def serve(name: str, command: list[str], *, env: dict[str, str], workdir: Path) -> Iterator[Server]:
    """Start a server on 127.0.0.1 and wait until it answers; stop it on the way out."""
    port = free_port()
    log = workdir / f"{name}.log"
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as output:
        process = subprocess.Popen(  # noqa: S603 - our own server command
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            while True:
                if process.poll() is not None:
                    raise BenchError(f"{name} exited {process.returncode}:\n{_tail(log)}")
                try:
                    httpx.get(f"{url}/bench-ready", timeout=2)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise BenchError(f"{name} did not answer in {STARTUP_SECONDS} s") from None
                    time.sleep(0.2)
            say(f"{name} is serving on {url} (pid {process.pid})")
            yield Server(name, process.pid, url, log)
        finally:
            _stop(process)
            say(f"stopped {name}")


# -- What the scenarios need --------------------------------------------------------------


def _bazaar_command(command: str) -> str:
    return str(Path(sys.executable).with_name(command))


def bazaar_serve_command(workers: int = 1) -> list[str]:
    """Bazaar's workers (one by default) on the database the bench made (migrated already)."""
    return [_bazaar_command("bazaar"), "serve", "--no-migrate", "--workers", str(workers)]


def fill_database(options: Options, env: dict[str, str], workdir: Path) -> None:
    bazaar = _bazaar_command("bazaar")
    for step in (
        [bazaar, "migrate"],
        [bazaar, "demo-data", "--users", str(options.users), "--items", str(options.items)],
    ):
        say("running " + " ".join(["bazaar", *step[1:]]))
        completed = subprocess.run(  # noqa: S603 - our own command
            step, env=env, cwd=workdir, capture_output=True, text=True, timeout=900, check=False
        )
        if completed.returncode != 0:
            raise BenchError(f"{' '.join(step)} failed:\n{completed.stdout}{completed.stderr}")


@contextlib.contextmanager
def demo_database(
    options: Options, workdir: Path, settings: dict[str, str] | None = None
) -> Iterator[tuple[str, dict[str, str]]]:
    """A throwaway database of demo data, analysed, and the environment that serves it
    (Bazaar's settings from this shell left out, `settings` added)."""
    with temporary_database(options.pg_dsn) as dsn:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BAZAAR_")} | {
            "BAZAAR_DATABASE_URL": dsn.replace("postgresql://", "postgresql+asyncpg://", 1),
            "BAZAAR_SECRET_KEY": secrets.token_hex(32),
            **(settings or {}),
        }
        fill_database(options, env, workdir)
        _run_sql(dsn, "VACUUM ANALYZE")
        yield dsn, env


def log_in(bazaar: Server, dsn: str) -> str:
    """A bearer token for the first demo user, from Bazaar's own login."""
    (email,) = _query(dsn, "SELECT email FROM users ORDER BY id LIMIT 1")[0]
    response = httpx.post(
        f"{bazaar.url}/auth/token",
        data={"username": str(email), "password": "demo-password"},
        timeout=30,
    )
    if response.status_code != 200:
        raise BenchError(f"login failed: {response.status_code} {response.text[:500]}")
    token: str = response.json()["access_token"]
    return token


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def deep_pages(options: Options, bazaar: Server, floor: Server, dsn: str, workdir: Path) -> Path:
    """Walk Bazaar's `next` links by -price; the floor gets cursors at the same rows.

    Returns the directory holding bazaar-deep.txt and floor-deep.txt: the request
    paths of the pages after pages depth-deep_pages+1 .. depth, one a line.
    """
    first_kept = options.depth - options.deep_pages + 1
    bazaar_paths: list[str] = []
    say(f"walking {options.depth} pages of GET /items/?sort=-price by their next links")
    with httpx.Client(base_url=bazaar.url, timeout=30) as client:
        response = client.get("/items/", params={"limit": PAGE, "sort": "-price"})
        for page in range(1, options.depth + 1):
            response.raise_for_status()
            next_url = response.links.get("next", {}).get("url")
            if next_url is None:
                raise BenchError(f"page {page} of /items/?sort=-price has no next link")
            if page >= first_kept:
                bazaar_paths.append(_path_of(next_url))
            if page < options.depth:
                response = client.get(next_url)
    # The page after page k starts after row k*PAGE; the floor's cursor names that row.
    rows = _query(
        dsn,
        f"SELECT price, id FROM items ORDER BY price DESC, id DESC LIMIT {options.depth * PAGE:d}",  # noqa: S608
    )
    floor_paths = []
    for page in range(first_kept, options.depth + 1):
        price, last_id = rows[page * PAGE - 1]
        query = urlencode({"limit": PAGE, "sort": "-price", "cursor": f"{price!r},{last_id}"})
        floor_paths.append(f"/items?{query}")
    (workdir / "bazaar-deep.txt").write_text("\n".join(bazaar_paths) + "\n", "utf-8")
    (workdir / "floor-deep.txt").write_text("\n".join(floor_paths) + "\n", "utf-8")
    # Both must serve the very same page, or the comparison compares nothing.
    same = httpx.get(bazaar.url + bazaar_paths[-1], timeout=30).json()
    also = httpx.get(floor.url + floor_paths[-1], timeout=30).json()
    if [item["id"] for item in same] != [item["id"] for item in also]:
        raise BenchError("Bazaar's and the floor's deep pages differ: the floor's cursor is wrong")
    return workdir


def preflight(server: Server, load: Load, token: str) -> None:
    """One request, which must succeed: a redirect or an error here would skew every figure."""
    method = "POST" if load.mode == "post" else "GET"
    path = load.sample_path()
    headers = {"Authorization": f"Bearer {token}"} if load.authenticated else {}
    body = {"name": "bench preflight", "price": 1.0} if method == "POST" else None
    response = httpx.request(
        method, server.url + path, headers=headers, json=body, timeout=30, follow_redirects=False
    )
    if not response.is_success:
        raise BenchError(
            f"{server.name}: {method} {path} answered {response.status_code}"
            f" {response.text[:300]}; fix that before benchmarking"
        )


# -- Facts for the report ---------------------------------------------------------------


def _git(*args: str) -> str:
    completed = subprocess.run(  # noqa: S603 - git, read-only
        ["git", *args],  # noqa: S607 - git from PATH
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return completed.stdout.strip()


def _machine() -> str:
    model = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores ({model}), {platform.system()} {platform.release()}"


def _versions(dsn: str) -> dict[str, str]:
    wrk = subprocess.run(  # noqa: S603 - wrk prints its version with its usage
        [loadgen.wrk_path() or "wrk", "--version"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    (server_version,) = _query(dsn, "SHOW server_version")[0]
    versions = {"Python": platform.python_version(), "PostgreSQL": str(server_version)}
    for package in ("fastapi", "starlette", "SQLAlchemy", "pydantic", "asyncpg", "uvicorn"):
        versions[package] = importlib.metadata.version(package)
    versions["wrk"] = (wrk.stdout or wrk.stderr).split("[", 1)[0].removeprefix("wrk ").strip()
    return versions


# -- The run ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    if loadgen.wrk_path() is None:
        print(WRK_MISSING, file=sys.stderr)
        return 2
    ensure_requirements()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    try:
        report = run(options)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    say(f"report: {report.relative_to(ROOT) if report.is_relative_to(ROOT) else report}")
    return 0


def wait_for_quiet(seconds: int) -> None:
    """Wait up to `seconds` for other work to leave the cores mostly idle; warn if it does not."""
    deadline = time.monotonic() + seconds
    while True:
        busy = loadgen.machine_busy_share()
        if busy <= QUIET_SHARE:
            return
        if time.monotonic() >= deadline:
            say(
                f"the machine is busy ({busy:.0%} of its CPU in use before the bench starts):"
                " the figures will be lower and noisier than on a quiet machine"
            )
            return
        say(f"waiting for the machine to quieten down ({busy:.0%} of its CPU in use)")
        time.sleep(min(30, max(0, deadline - time.monotonic())))


def measure_rounds(
    chosen: list[Scenario],
    servers: dict[str, Server],
    token: str,
    options: Options,
    shape: loadgen.LoadShape,
) -> list[loadgen.Run]:
    """Every scenario on Bazaar then on the floor, round after round."""
    runs: list[loadgen.Run] = []
    for round_number in range(1, options.rounds + 1):
        for scenario in chosen:
            for app, load in (("bazaar", scenario.bazaar), ("floor", scenario.floor)):
                result = loadgen.measure(
                    app=app,
                    scenario=scenario.key,
                    round_number=round_number,
                    pid=servers[app].pid,
                    base_url=servers[app].url,
                    env=load.wrk_env(token),
                    warmup=options.warmup,
                    seconds=options.seconds,
                    shape=shape,
                )
                runs.append(result)
                errors = f", {result.errors} errors" if result.errors else ""
                say(
                    f"round {round_number}/{options.rounds} {scenario.title:<42} {app:<6}"
                    f" {result.rps:8,.0f} req/s  p50 {result.p50_ms:7.1f} ms"
                    f"  p99 {result.p99_ms:7.1f} ms{errors}"
                )
    return runs


def run(options: Options) -> Path:
    wait_for_quiet(options.wait_quiet)
    load_before = os.getloadavg()[0]
    revision = Revision.now()
    # One worker is the measure of record (latest.md); more are reported beside it.
    stem = revision.stem + (f"-{options.workers}-workers" if options.workers > 1 else "")
    shape = loadgen.LoadShape(options.connections, options.threads, options.timeout_seconds)

    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bazaar-bench-")))
        dsn, env = stack.enter_context(
            demo_database(options, workdir, {"BAZAAR_ACCESS_TOKEN_MINUTES": "240"})
        )
        bazaar = stack.enter_context(
            serve(
                "bazaar",
                [*bazaar_serve_command(options.workers), "--graceful-seconds", "5"],
                env=env,
                workdir=workdir,
            )
        )
        floor = stack.enter_context(
            serve(
                "floor",
                [sys.executable, str(BENCH / "floor.py"), "--workers", str(options.workers)],
                env=env,
                workdir=workdir,
            )
        )
        servers = {"bazaar": bazaar, "floor": floor}
        token = log_in(bazaar, dsn)
        (low, high) = _query(dsn, "SELECT min(id), max(id) FROM items")[0]
        paths = deep_pages(options, bazaar, floor, dsn, workdir)
        fixtures = Fixtures(
            id_range=(int(str(low)), int(str(high))),
            depth=options.depth,
            bazaar_deep_paths=paths / "bazaar-deep.txt",
            floor_deep_paths=paths / "floor-deep.txt",
        )
        # A target's baseline runs too: "deep" is judged against the floor's "list".
        wanted = set(options.scenarios)
        wanted |= {s.target.baseline for s in build(fixtures) if s.key in wanted}
        chosen = [s for s in build(fixtures) if s.key in wanted]
        for scenario in chosen:
            for app, load in (("bazaar", scenario.bazaar), ("floor", scenario.floor)):
                preflight(servers[app], load, token)

        results = report.Results(chosen, measure_rounds(chosen, servers, token, options, shape))
        profile_run = None
        if options.profile != "none":
            target = (
                results.hottest()
                if options.profile == "auto"
                else next((s for s in chosen if s.key == options.profile), None)
            )
            if target is not None:
                profile_run = profile_bazaar(
                    target,
                    bazaar,
                    token,
                    output=options.results / f"{stem}-profile.speedscope.json",
                    seconds=options.profile_seconds,
                    shape=shape,
                )
        peak_rss = {name: loadgen.peak_rss_mib(server.pid) for name, server in servers.items()}
        problems = {name: log_problems(server.log) for name, server in servers.items()}
        context = report.Context(
            date=revision.date,
            commit=revision.commit,
            dirty=revision.dirty,
            machine=_machine(),
            versions=_versions(dsn),
            data=f"{options.users:,} users and {options.items:,} items from `bazaar demo-data`,"
            " then VACUUM ANALYZE; the insert scenario adds rows as it goes",
            rounds=options.rounds,
            workers=options.workers,
            seconds=options.seconds,
            warmup=options.warmup,
            connections=options.connections,
            threads=options.threads,
            timeout_seconds=options.timeout_seconds,
            deep_note=(
                f"Deep pages: the bench follows Bazaar's `next` links {options.depth} pages"
                f" into `/items/?sort=-price` (limit {PAGE}) and keeps the last"
                f" {options.deep_pages} links; wrk asks for them at random. The floor gets"
                " a cursor (price, id) naming the same rows, so both serve identical pages"
                " (checked before measuring)."
            ),
            peak_rss_mib=peak_rss,
            load_average=(load_before, os.getloadavg()[0]),
            log_problems=problems,
            urls={s.key: (_describe(s.bazaar), _describe(s.floor)) for s in chosen},
        )
    # Servers are stopped and the database dropped by now; what is left is writing.
    return report.write(
        results,
        context,
        directory=options.results,
        stem=stem,
        profile=profile_run,
        latest=options.workers == 1,
    )


def _describe(load: Load) -> str:
    auth = " (Bearer)" if load.authenticated else ""
    match load.mode:
        case "ids":
            return f"GET {load.path}<random id>{auth}"
        case "paths":
            return f"GET {load.path}?limit={PAGE}&sort=-price&cursor=<one of the deep cursors>"
        case "post":
            return f'POST {load.path} {{"name", "price"}}{auth}'
        case _:
            return f"GET {load.path}{auth}"


def profile_bazaar(
    scenario: Scenario,
    bazaar: Server,
    token: str,
    *,
    output: Path,
    seconds: int,
    shape: loadgen.LoadShape,
) -> report.ProfileRun:
    """py-spy on Bazaar's server while wrk runs `scenario` (not one of the measured runs)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    say(f"profiling bazaar under {scenario.title} with py-spy for {seconds} s")
    error = None
    with ThreadPoolExecutor(max_workers=1) as pool:
        load = pool.submit(
            loadgen.run_wrk,
            bazaar.url,
            scenario.bazaar.wrk_env(token),
            seconds=seconds + 4,
            shape=shape,
        )
        time.sleep(2)
        try:
            profiling.record(bazaar.pid, seconds=seconds, output=output)
        except RuntimeError as exc:
            error = str(exc)
            say(f"no profile: {error}")
        result = load.result()
    profile = profiling.summarise(output) if error is None else None
    rps = result.requests / (result.duration_us / 1e6)
    return report.ProfileRun(scenario, seconds, rps, output, profile, error)


if __name__ == "__main__":
    sys.exit(main())
