"""The run's one table: figures per engine, their ratios, and the issue's targets marked met or missed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from _profile import format_summary
from _run_results import EngineResult, RunResult

# (what, engine or None for both, the ratio's function, the comparison, the goal); from issue 8.
TARGETS: list[tuple[str, str | None, str, str, float]] = [
    ("HTTP claims/s / pgbench SKIP LOCKED claims/s", "postgresql", "vs_baseline", ">=", 2.5),
    ("HTTP claims/s / trivial JSON req/s", "sqlite", "vs_trivial", ">=", 0.6),
    ("HTTP claims/s / trivial JSON req/s", "postgresql", "vs_trivial", ">=", 0.4),
    ("drained-pool / fresh-pool claims/s", None, "drained_vs_fresh", ">=", 0.9),
    ("HTTP bulk import / raw COPY or executemany", None, "import_vs_raw", ">=", 0.8),
    ("claim p99 at the run's connections, ms", None, "p99_ms", "<", 20.0),
]


def baseline_rate(e: EngineResult) -> float:
    if e.pgbench is not None:
        return e.pgbench.tps
    assert e.sqlite_loop is not None
    return e.sqlite_loop.claims_per_s


def ratios(e: EngineResult, redis_rate: float) -> dict[str, float]:
    fresh = e.main.fresh.wrk.ok_per_s
    figures = {
        "vs_baseline": fresh / baseline_rate(e),
        "vs_trivial": fresh / e.main.health.requests_per_s,
        "drained_vs_fresh": e.main.drained.wrk.ok_per_s / fresh,
        "import_vs_raw": e.main.http_import.codes_per_s / e.raw_import.codes_per_s,
        "vs_redis": fresh / redis_rate if redis_rate else 0.0,
        "p99_ms": max(e.main.fresh.wrk.latency_p99_ms, e.main.drained.wrk.latency_p99_ms),
    }
    # Rounded once, so the figures table and the targets table print the same digits.
    return {key: round(value, 3) for key, value in figures.items()}


def targets(result: RunResult) -> list[dict[str, Any]]:
    rows = []
    for what, only, key, op, goal in TARGETS:
        for e in result.engines:
            if only is not None and e.engine != only:
                continue
            value = ratios(e, result.redis.lpop_per_s)[key]
            met = value >= goal if op == ">=" else value < goal
            rows.append(
                {"target": what, "engine": e.engine, "measured": value, "goal": f"{op} {goal:g}"}
                | {"met": met}
            )
    return rows


def _row(label: str, engines: list[EngineResult], cell: Callable[[EngineResult], str]) -> str:
    return f"{label:<58}" + "".join(f"{cell(e):>24}" for e in engines)


def print_report(result: RunResult) -> None:
    engines = result.engines
    redis = result.redis.lpop_per_s
    r = {e.engine: ratios(e, redis) for e in engines}

    def others(e: EngineResult) -> str:
        rest = [t for t in e.trials if t.workers != e.workers]
        return ", ".join(f"{t.workers}w {t.claims.wrk.ok_per_s:,.0f}" for t in rest)

    lines = [
        "",
        f"promopool bench: {result.codes:,} codes, {result.connections} connections, {result.duration_s:g} s"
        f" per load{' (quick)' if result.quick else ''}; load average {result.load_average_start}"
        f" -> {result.load_average_end}" + (f"; {result.note}" if result.note else ""),
        "",
        _row("figure", engines, lambda e: e.engine),
        _row("server workers used (other counts: claims/s)", engines, lambda e: f"{e.workers} ({others(e)})"),
        _row(
            "trivial JSON, GET /health req/s",
            engines,
            lambda e: f"{e.main.health.requests_per_s:,.0f}",
        ),
        _row("HTTP claims/s, fresh pool", engines, lambda e: f"{e.main.fresh.wrk.ok_per_s:,.0f}"),
        _row("HTTP claims/s, 99%-drained pool", engines, lambda e: f"{e.main.drained.wrk.ok_per_s:,.0f}"),
        _row(
            "claim latency p50 / p99 ms, fresh",
            engines,
            lambda e: f"{e.main.fresh.wrk.latency_p50_ms:.1f} / {e.main.fresh.wrk.latency_p99_ms:.1f}",
        ),
        _row(
            "claim latency p50 / p99 ms, drained",
            engines,
            lambda e: f"{e.main.drained.wrk.latency_p50_ms:.1f} / {e.main.drained.wrk.latency_p99_ms:.1f}",
        ),
        _row(
            "naive claim: pgbench SKIP LOCKED / sqlite3 loop, /s",
            engines,
            lambda e: f"{baseline_rate(e):,.0f}",
        ),
        _row("bulk import over HTTP, codes/s", engines, lambda e: f"{e.main.http_import.codes_per_s:,.0f}"),
        _row("raw COPY / executemany, codes/s", engines, lambda e: f"{e.raw_import.codes_per_s:,.0f}"),
        _row(
            "Redis LPOP/s (non-durable reference)",
            engines,
            lambda e: f"{redis:,.0f}" if result.redis.reachable else "skipped",
        ),
        _row("ratio: HTTP claims / naive claim", engines, lambda e: f"{r[e.engine]['vs_baseline']:.2f}"),
        _row("ratio: HTTP claims / trivial JSON", engines, lambda e: f"{r[e.engine]['vs_trivial']:.2f}"),
        _row("ratio: drained / fresh", engines, lambda e: f"{r[e.engine]['drained_vs_fresh']:.2f}"),
        _row("ratio: HTTP import / raw", engines, lambda e: f"{r[e.engine]['import_vs_raw']:.2f}"),
        _row(
            "ratio: HTTP claims / Redis LPOP",
            engines,
            lambda e: f"{r[e.engine]['vs_redis']:.2f}" if result.redis.reachable else "-",
        ),
        "",
        f"{'target':<48}{'engine':<12}{'measured':>10}  {'goal':<8}",
    ]
    for t in result.targets:
        lines.append(
            f"{t['target']:<48}{t['engine']:<12}{t['measured']:>10.2f}  {t['goal']:<8}"
            f"{'met' if t['met'] else 'MISSED'}"
        )
    if not result.redis.reachable:
        lines.append(f"redis: {result.redis.note}")
    lines.append(
        "every code handed out was distinct; pool counters matched the rows (see the JSON for the details)"
    )
    for e in engines:
        lines += ["", *(format_summary(p) for p in e.main.profiles)]
    print("\n".join(lines), flush=True)
