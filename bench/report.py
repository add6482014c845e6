"""The benchmark's report: medians per scenario, targets, a chart, and the profile."""

from __future__ import annotations

import json
import shutil
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from loadgen import Run
from profiling import Profile, Share
from scenarios import MAX_RSS_MIB, Scenario

APPS = ("bazaar", "floor")
# When processes outside the benchmark take more than this share of the machine's
# CPU during the runs, the report says that its figures are skewed.
BUSY_SHARE = 0.1
COLOURS = {"bazaar": "#d9534f", "floor": "#5b7fa6"}


@dataclass(frozen=True)
class Figures:
    """One app's runs of one scenario, boiled down: medians, errors summed over rounds."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    error_detail: dict[str, int]
    rss_mib: float
    cpu_us_per_request: float
    postgres_cpu_us_per_request: float
    rounds: int

    @classmethod
    def of(cls, runs: list[Run]) -> Figures:
        detail: dict[str, int] = {}
        for run in runs:
            for kind, count in run.error_detail.items():
                detail[kind] = detail.get(kind, 0) + count
        return cls(
            rps=statistics.median(run.rps for run in runs),
            p50_ms=statistics.median(run.p50_ms for run in runs),
            p99_ms=statistics.median(run.p99_ms for run in runs),
            errors=sum(run.errors for run in runs),
            error_detail=detail,
            rss_mib=max(run.rss_mib for run in runs),
            cpu_us_per_request=statistics.median(run.cpu_us_per_request for run in runs),
            postgres_cpu_us_per_request=statistics.median(
                run.postgres_cpu_us_per_request for run in runs
            ),
            rounds=len(runs),
        )


@dataclass(frozen=True)
class Verdict:
    """Bazaar against its target in one scenario."""

    ratio: float
    ratio_met: bool
    p99_met: bool
    cpu_met: bool
    errors_met: bool

    @property
    def met(self) -> bool:
        return self.ratio_met and self.p99_met and self.cpu_met and self.errors_met


@dataclass(frozen=True)
class Results:
    scenarios: list[Scenario]
    runs: list[Run]

    def figures(self, app: str, scenario: str) -> Figures:
        return Figures.of([r for r in self.runs if r.app == app and r.scenario == scenario])

    def verdict(self, scenario: Scenario) -> Verdict:
        bazaar = self.figures("bazaar", scenario.key)
        baseline = self.figures("floor", scenario.target.baseline)
        floor = self.figures("floor", scenario.key)
        target = scenario.target
        ratio = bazaar.rps / baseline.rps if baseline.rps else 0.0
        return Verdict(
            ratio=ratio,
            ratio_met=ratio >= target.min_ratio,
            p99_met=bazaar.p99_ms <= target.max_p99_ratio * floor.p99_ms,
            cpu_met=bazaar.cpu_us_per_request <= target.max_cpu_ratio * floor.cpu_us_per_request,
            errors_met=bazaar.errors == 0,
        )

    def hottest(self) -> Scenario:
        """The scenario furthest below its target ratio: the one worth profiling first."""
        return min(self.scenarios, key=lambda s: self.verdict(s).ratio / s.target.min_ratio)


@dataclass(frozen=True)
class ProfileRun:
    scenario: Scenario
    seconds: int
    rps: float
    speedscope: Path
    profile: Profile | None
    error: str | None


@dataclass(frozen=True)
class Context:
    """Everything the report says about how the numbers were made."""

    date: str
    commit: str
    dirty: bool
    machine: str
    versions: dict[str, str]
    data: str
    rounds: int
    seconds: float
    warmup: float
    connections: int
    threads: int
    timeout_seconds: int
    workers: int
    deep_note: str
    peak_rss_mib: dict[str, float]
    urls: dict[str, tuple[str, str]]
    load_average: tuple[float, float]  # 1-minute load average before and after the runs
    log_problems: dict[str, tuple[int, list[str]]]  # per app: error lines in its log, a few


def _mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def _errors(figures: Figures) -> str:
    if not figures.errors:
        return "0"
    detail = ", ".join(f"{kind}: {count}" for kind, count in figures.error_detail.items())
    return f"**{figures.errors}** ({detail})"


def _results_table(results: Results) -> list[str]:
    titles = {s.key: s.title for s in results.scenarios}
    lines = [
        "| scenario | Bazaar req/s | p50 ms | p99 ms | errors | floor req/s | p50 ms | p99 ms"
        " | errors | Bazaar ÷ floor | target | vs target |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for scenario in results.scenarios:
        bazaar = results.figures("bazaar", scenario.key)
        floor = results.figures("floor", scenario.key)
        verdict = results.verdict(scenario)
        target = scenario.target
        same = bazaar.rps / floor.rps if floor.rps else 0.0
        checks = (
            f"{_mark(verdict.ratio_met)} {verdict.ratio:.2f}x"
            f" · {_mark(verdict.p99_met)} p99 {bazaar.p99_ms / floor.p99_ms:.2f}x"
            f" · {_mark(verdict.cpu_met)} CPU"
            f" {bazaar.cpu_us_per_request / floor.cpu_us_per_request:.2f}x"
            f" · {_mark(verdict.errors_met)} errors"
        )
        lines.append(
            f"| {scenario.title} | {bazaar.rps:,.0f} | {bazaar.p50_ms:.1f} | {bazaar.p99_ms:.1f}"
            f" | {_errors(bazaar)} | {floor.rps:,.0f} | {floor.p50_ms:.1f} | {floor.p99_ms:.1f}"
            f" | {_errors(floor)} | {same:.2f} | {target.describe(titles, scenario.key)}"
            f" | {checks} |"
        )
    return lines


def _cost_table(results: Results) -> list[str]:
    lines = [
        "| scenario | Bazaar CPU µs/request | floor CPU µs/request | Bazaar ÷ floor"
        " | PostgreSQL CPU µs/request, Bazaar | floor | Bazaar RSS MiB | floor RSS MiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for scenario in results.scenarios:
        bazaar = results.figures("bazaar", scenario.key)
        floor = results.figures("floor", scenario.key)
        ratio = bazaar.cpu_us_per_request / floor.cpu_us_per_request if floor.rps else 0.0
        lines.append(
            f"| {scenario.title} | {bazaar.cpu_us_per_request:,.0f}"
            f" | {floor.cpu_us_per_request:,.0f} | {ratio:.1f}"
            f" | {bazaar.postgres_cpu_us_per_request:,.0f}"
            f" | {floor.postgres_cpu_us_per_request:,.0f}"
            f" | {bazaar.rss_mib:.0f} | {floor.rss_mib:.0f} |"
        )
    return lines


def _log_section(context: Context) -> list[str]:
    lines = []
    for app, (count, first) in context.log_problems.items():
        if count:
            lines += [f"{app}'s log has {count} error lines; the first:", "", "```"]
            lines += [*first, "```", ""]
    return lines or ["Neither server logged an error.", ""]


def _shares_table(heading: str, shares: list[Share]) -> list[str]:
    lines = [f"| {heading} | share of samples |", "| --- | ---: |"]
    lines += [f"| `{share.name}` | {share.share:.1%} |" for share in shares]
    return lines


def _profile_section(results: Results, run: ProfileRun | None) -> list[str]:
    lines = ["## Where the time goes", ""]
    if run is None:
        return [*lines, "Not profiled this time (`--profile none`).", ""]
    verdict = results.verdict(run.scenario)
    why = (
        f"the scenario furthest below its target: {verdict.ratio:.2f}x against"
        f" ≥{run.scenario.target.min_ratio:g}x"
    )
    if run.profile is None or not run.profile.samples:
        return [*lines, f"py-spy could not profile {run.scenario.title}: {run.error}", ""]
    profile = run.profile
    packages = ", ".join(f"{p.name} {p.share:.0%}" for p in profile.packages[:6])
    hottest = profile.self_time[0]
    lines += [
        f"py-spy sampled Bazaar's server for {run.seconds} s under **{run.scenario.title}**"
        f" ({why}), while wrk drove it at {run.rps:,.0f} req/s (the profiler slows it);"
        f" {profile.samples} samples of the thread holding the GIL. By package, the"
        f" functions on top of the stack belong to: {packages}. The single hottest"
        f" function is `{hottest.name}` ({hottest.share:.0%} of samples). Inclusive"
        " shares below leave out the event loop and frames that only pass a call through"
        " (middleware, wrappers). SQLAlchemy runs its synchronous core in greenlets, which"
        " py-spy records as separate stacks: that time counts for the ORM's functions but"
        " not for the async code awaiting them. Open the speedscope file at"
        " https://www.speedscope.app/ for the whole picture:"
        f" [{run.speedscope.name}]({run.speedscope.name}).",
        "",
        *_shares_table("function (self time)", profile.self_time),
        "",
        *_shares_table("function (inclusive: it or what it calls)", profile.inclusive),
        "",
    ]
    return lines


def _setup_section(results: Results, context: Context) -> list[str]:
    versions = ", ".join(f"{name} {version}" for name, version in context.versions.items())
    dirty = " with uncommitted changes to the app" if context.dirty else ""
    before, after = context.load_average
    other = sorted(run.other_cpu_share for run in results.runs)
    other_median, other_max = statistics.median(other), other[-1]
    busy = (
        " **Other work was running on the machine: these figures understate both apps and"
        " vary more between rounds than they would on a quiet machine.**"
        if other_median > BUSY_SHARE
        else ""
    )
    lines = [
        "## How this was measured",
        "",
        f"- Commit `{context.commit}`{dirty}; {context.machine}; {versions}.",
        f"- Data: {context.data}.",
        f"- Each app: {context.workers} uvicorn worker(s) (`bazaar serve --no-migrate"
        f" --workers {context.workers}`; `python bench/floor.py --workers {context.workers}`)"
        " on 127.0.0.1, the same database, the same token; CPU and memory count every"
        " worker.",
        f"- Load: wrk, {context.connections} connections, {context.threads} threads,"
        f" {context.seconds:g} s per run after a {context.warmup:g} s warm-up, timeout"
        f" {context.timeout_seconds} s; {context.rounds} rounds, each running every scenario"
        " on Bazaar then on the floor. Figures are medians over the rounds; errors are summed"
        " over them and count every response outside 2xx, socket errors and timeouts."
        " wrk runs on the same two cores as the server, for both apps alike.",
        "- CPU µs/request: user + system CPU the server process used during the measured run,"
        " divided by the requests it served (less sensitive to wrk's share of the cores than"
        " req/s). RSS: the largest VmRSS sampled every 100 ms during the scenario's runs.",
        f"- {context.deep_note}",
        "- Processes other than the server, wrk and PostgreSQL used a median"
        f" {other_median:.0%} (at most {other_max:.0%}) of the machine's CPU during the"
        f" measured runs; the 1-minute load average was {before:.2f} when the bench started"
        f" and {after:.2f} at the end.{busy}",
        "- PostgreSQL CPU µs/request: CPU used by all PostgreSQL processes during the run,"
        " per request served.",
        "- Requests (Bazaar / floor):",
    ]
    for scenario in results.scenarios:
        bazaar, floor = context.urls[scenario.key]
        lines.append(f"  - {scenario.title}: `{bazaar}` / `{floor}`")
    lines += ["", "Raw runs: the JSON file beside this report. Rerun with `make bench`.", ""]
    return lines


def markdown(results: Results, context: Context, *, chart: Path, profile: ProfileRun | None) -> str:
    rss = context.peak_rss_mib
    bazaar_rss = rss.get("bazaar", 0.0)
    dirty = " (uncommitted changes)" if context.dirty else ""
    failed = [s.title for s in results.scenarios if not results.verdict(s).met]
    summary = (
        f"Bazaar meets its targets in {len(results.scenarios) - len(failed)} of"
        f" {len(results.scenarios)} scenarios"
        + (f"; not in: {', '.join(failed)}." if failed else ".")
    )
    lines = [
        f"# Bazaar benchmark, {context.date}, `{context.commit}`{dirty}",
        "",
        "Bazaar beside the floor of its stack: the same endpoints written directly on"
        " Starlette + asyncpg + orjson (`bench/floor.py`), each served by one uvicorn worker"
        f" on the same PostgreSQL. {summary}",
        "",
        *_results_table(results),
        "",
        f"Peak RSS over the whole run (VmHWM): Bazaar {bazaar_rss:.0f} MiB"
        f" ({_mark(bazaar_rss < MAX_RSS_MIB)} target < {MAX_RSS_MIB} MiB),"
        f" floor {rss.get('floor', 0.0):.0f} MiB.",
        "",
        *_log_section(context),
        f"![Requests per second and p99 latency, Bazaar beside the floor]({chart.name})",
        "",
        "## Cost per request",
        "",
        *_cost_table(results),
        "",
        *_profile_section(results, profile),
        *_setup_section(results, context),
    ]
    return "\n".join(lines)


def draw_chart(results: Results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [s.label for s in results.scenarios]
    positions = range(len(results.scenarios))
    width = 0.38
    figure, (rps_axes, p99_axes) = plt.subplots(1, 2, figsize=(14, 5.5))
    for offset, app in zip((-width / 2, width / 2), APPS, strict=True):
        figures = [results.figures(app, s.key) for s in results.scenarios]
        xs = [x + offset for x in positions]
        bars = rps_axes.bar(xs, [f.rps for f in figures], width, label=app, color=COLOURS[app])
        rps_axes.bar_label(bars, fmt="{:,.0f}", fontsize=7)
        bars = p99_axes.bar(xs, [f.p99_ms for f in figures], width, label=app, color=COLOURS[app])
        p99_axes.bar_label(bars, fmt="{:,.0f}", fontsize=7)
    for x, scenario in zip(positions, results.scenarios, strict=True):
        p99_axes.hlines(
            scenario.target.max_p99_ratio * results.figures("floor", scenario.key).p99_ms,
            x - width,
            x + width,
            colors="black",
            linestyles="dashed",
            label="Bazaar's p99 target" if x == 0 else None,
        )
    rps_axes.set_title("Requests per second (median; higher is better)")
    p99_axes.set_title("p99 latency, ms (median, log scale; lower is better)")
    p99_axes.set_yscale("log")
    # Head room above the bars for the legend.
    rps_axes.set_ylim(top=rps_axes.get_ylim()[1] * 1.2)
    p99_axes.set_ylim(top=p99_axes.get_ylim()[1] * 5)
    for axes in (rps_axes, p99_axes):
        axes.set_xticks(list(positions), labels, fontsize=8)
        axes.legend(loc="upper center", ncols=3, fontsize=8)
        axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return value.name
    raise TypeError(type(value).__name__)


def write(
    results: Results,
    context: Context,
    *,
    directory: Path,
    stem: str,
    profile: ProfileRun | None,
    latest: bool = True,
) -> Path:
    """Write <stem>.md, .png and .json in `directory`, and copy the report to latest.md
    unless told not to."""
    directory.mkdir(parents=True, exist_ok=True)
    chart = directory / f"{stem}.png"
    draw_chart(results, chart)
    report = directory / f"{stem}.md"
    report.write_text(markdown(results, context, chart=chart, profile=profile), "utf-8")
    if latest:
        shutil.copyfile(report, directory / "latest.md")
    raw = {
        "context": asdict(context),
        "summary": {
            s.key: {
                "title": s.title,
                "bazaar": asdict(results.figures("bazaar", s.key)),
                "floor": asdict(results.figures("floor", s.key)),
                "verdict": asdict(results.verdict(s)),
                "target": asdict(s.target),
            }
            for s in results.scenarios
        },
        "runs": [asdict(run) for run in results.runs],
        "profile": None if profile is None else asdict(profile),
    }
    (directory / f"{stem}.json").write_text(
        json.dumps(raw, indent=2, default=_jsonable) + "\n", "utf-8"
    )
    return report
