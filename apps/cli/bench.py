"""`claims bench`: throughput of every stage and streaming latency, with ratios against baselines of the same run.

Thin entry point: the stages live in libs.bench.runner. This module turns options into a BenchConfig, shows the
progress, prints the tables and says where the JSON went. It is a benchmark, not a test: it never fails on a slow
figure, only when a stage cannot run (no jars, broker or Spark failure, undelivered claims).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from libs.bench.results import BASELINE_STAGE, PRODUCE_PIPELINE_STAGE, BenchReport, render_table
from libs.bench.runner import (
    DEFAULT_OUT,
    DEFAULT_WORK_DIR,
    PRODUCING_TARGET,
    STREAMING_TARGET,
    BenchConfig,
    run_bench,
)
from libs.pipeline.console import print_problem

DEFAULTS = BenchConfig()


LATENCY_TARGET_MS = 15_000  # p99 produce -> silver and produce -> alert at the steady rate (docs/benchmarks.md)
STREAMING_FLOOR = 5_000  # below this the streaming target is missed by more than half


def _percentiles(summary: dict[str, Any]) -> str:
    if not summary.get("count"):
        return "no claims measured"
    return " / ".join(f"{summary[key] / 1000:,.1f} s" for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms"))


def latency_table(details: dict[str, Any]) -> Table:
    """The steady-rate stage: rate achieved, latencies to silver and to the alerts topic, batches and backlog."""
    latency = details.get("latency") or {}
    table = Table(title=(f"steady state: {latency.get('rate', 0):,.0f} claims/s for {latency.get('seconds', 0):g} s, "
                         f"trigger {latency.get('trigger_seconds', 0):g} s"), show_header=False)
    lag = latency.get("lag_after_batch") or []
    rows = [
        ("claims produced", f"{latency.get('produced', 0):,} at {latency.get('achieved_rate') or 0:,.0f} claims/s"),
        ("produce -> silver p50 / p95 / p99 / max", _percentiles(latency.get("produce_to_silver") or {})),
        ("produce -> alert p50 / p95 / p99 / max", _percentiles(latency.get("produce_to_alert") or {})),
        ("drained after the last claim was produced", f"{latency.get('drained_after_produce_seconds', 0):,.1f} s"),
        ("micro-batches, mean rows, mean seconds", f"{latency.get('batches', 0):,}, "
                                                   f"{latency.get('mean_batch_rows') or 0:,.0f}, "
                                                   f"{latency.get('mean_batch_seconds') or 0:,.2f} s"),
        ("offsets behind after each batch (last 5)", ", ".join(f"{value:,}" for value in lag[-5:]) or "-"),
    ]
    for label, value in rows:
        table.add_row(label, value)
    return table


def profile_table(details: dict[str, Any]) -> Table:
    """Where the drain's time and CPU went: seconds per processor step, CPU seconds per process."""
    drain = details.get("streaming_drain") or {}
    table = Table(title="streaming drain profile (steps overlap: outputs are written concurrently)")
    table.add_column("step or process")
    table.add_column("seconds", justify="right")
    table.add_column("share of CPU", justify="right")
    table.add_column("CPU µs per claim", justify="right")
    for step, seconds in (drain.get("step_seconds") or {}).items():
        table.add_row(f"step: {step}", f"{seconds:,.2f}", "", "")
    for process, figures in (drain.get("cpu") or {}).items():
        table.add_row(f"CPU: {process}", f"{figures['cpu_seconds']:,.2f}", f"{figures['share']:.0%}",
                      f"{figures['us_per_claim'] or 0:,.0f}")
    return table


def verdict(report: BenchReport) -> list[str]:
    """The targets of docs/benchmarks.md, stated against what was measured (the bench never fails on them)."""
    lines = []
    streaming, baseline = report.stage("streaming end to end"), report.stage(BASELINE_STAGE)
    if streaming is not None and streaming.rate is not None:
        met = "met" if streaming.rate >= STREAMING_TARGET else (
            "NOT met" if streaming.rate >= STREAMING_FLOOR else f"NOT met, below the {STREAMING_FLOOR:,} floor")
        lines.append(f"target streaming drain >= {STREAMING_TARGET:,} claims/s on a warm JVM: "
                     f"{streaming.rate:,.0f} ({met})")
        if baseline is not None and baseline.rate:
            met = "met" if streaming.rate >= baseline.rate else "NOT met"
            lines.append(f"target streaming >= 1.0x the baseline consumer ({baseline.rate:,.0f} claims/s): "
                         f"{streaming.rate / baseline.rate:.2f}x ({met})")
    latency = report.details.get("latency") or {}
    for name, key in (("silver", "produce_to_silver"), ("alert", "produce_to_alert")):
        p99 = (latency.get(key) or {}).get("p99_ms")
        if p99 is not None:
            met = "met" if p99 <= LATENCY_TARGET_MS else "NOT met"
            lines.append(f"target p99 produce -> {name} <= {LATENCY_TARGET_MS / 1000:g} s at "
                         f"{latency.get('rate', 0):,.0f} claims/s: {p99 / 1000:,.1f} s ({met})")
    producing = report.stage(PRODUCE_PIPELINE_STAGE)
    if producing is not None and producing.rate is not None:
        met = "met" if producing.rate >= PRODUCING_TARGET else "NOT met"
        lines.append(f"target generated claims into Kafka with PHI protection >= {PRODUCING_TARGET:,}/s: "
                     f"{producing.rate:,.0f} ({met})")
    api = report.details.get("api_load") or {}
    ingest, analytics = api.get("ingest") or {}, api.get("analytics") or {}
    if ingest.get("claims_per_second") is not None:
        lines.append(f"target API ingestion (NDJSON x{ingest.get('batch_size')}) >= "
                     f"{ingest['target_claims_per_second']:,.0f} claims/s acknowledged: "
                     f"{ingest['claims_per_second']:,.0f} ({'met' if ingest.get('met') else 'NOT met'})")
    if analytics.get("p99_ms") is not None:
        lines.append(f"target analytics p99 <= {analytics['target_p99_ms']:,.0f} ms on "
                     f"{analytics.get('warehouse_claims', 0):,} claims: {analytics['p99_ms']:,.0f} ms "
                     f"({'met' if analytics.get('met') else 'NOT met'})")
    marts = report.details.get("batch_marts") or {}
    if marts.get("ratio") is not None:
        lines.append(f"target daily-batch marts in Spark <= {marts['target_ratio']:g}x DuckDB on "
                     f"{marts['count']:,} claims: {marts['spark_seconds']:,.1f} s vs {marts['duckdb_seconds']:,.2f} s "
                     f"= {marts['ratio']:,.1f}x, CPU {marts.get('cpu_ratio', 0):,.1f}x "
                     f"({'met' if marts.get('met') else 'NOT met'})")
    return lines


def bench_command(  # Typer passes every option by keyword
    *,
    count: Annotated[int, typer.Option(help="Claims to generate and push through every stage.", min=1)]
    = DEFAULTS.count,
    seed: Annotated[int, typer.Option(help="Generator seed (same seed, same claims).")] = DEFAULTS.seed,
    rate: Annotated[float, typer.Option(help="Produce rate (claims/s) of the steady-state stage.", min=1)]
    = DEFAULTS.rate,
    seconds: Annotated[float, typer.Option(help="How long the steady-state stage produces.", min=1)]
    = DEFAULTS.seconds,
    trigger: Annotated[float, typer.Option(help="Processing-time trigger (s) of the steady-state stage.", min=0.1)]
    = DEFAULTS.trigger_seconds,
    warmup: Annotated[int, typer.Option(help="Claims drained on a cold JVM before the measured drain (0: none).",
                                        min=0)] = DEFAULTS.warmup,
    max_offsets_per_trigger: Annotated[int | None, typer.Option(
        help="Cap rows per micro-batch of every Spark stage (default: the settings default, as `make run`).",
        min=1)] = None,
    out: Annotated[Path, typer.Option(help="Write the figures as JSON here.")] = DEFAULT_OUT,
    work_dir: Annotated[Path, typer.Option(help="Scratch directory (broker, lakes, engine logs); wiped at the "
                                                "start.")] = DEFAULT_WORK_DIR,
    progress: Annotated[bool, typer.Option(help="Show progress while it runs.")] = True,
    produce_pipeline: Annotated[bool, typer.Option(help="Generate + protect + produce as `make run` does (one process "
                                                        "vs worker processes).")] = DEFAULTS.produce_pipeline,
    api_load: Annotated[bool, typer.Option(help="Locust against `claims api`: NDJSON ingestion into Kafka and "
                                                "analytics latency.")] = DEFAULTS.api_load,
    batch_marts: Annotated[bool, typer.Option(help="Final stage: daily-batch marts in Spark vs DuckDB "
                                                   "(1,000,000 claims).")] = DEFAULTS.batch_marts,
) -> None:
    """Benchmark generate, validate, protect, produce, a hand-written consumer and the stream (drain, steady rate)."""
    console = Console(stderr=True)
    try:
        config = BenchConfig(count=count, seed=seed, rate=rate, seconds=seconds, trigger_seconds=trigger,
                             warmup=warmup, max_offsets_per_trigger=max_offsets_per_trigger, out=out,
                             work_dir=work_dir, batch_marts=batch_marts,
                             produce_pipeline=produce_pipeline, api_load=api_load)
    except ValueError as exc:
        print_problem(console, exc)
        raise typer.Exit(2) from None
    report = run_bench(config, console=console, show_progress=progress)
    # Piped output (make bench | tee) would otherwise be 80 columns wide and fold every note.
    output = Console() if sys.stdout.isatty() else Console(width=180)
    output.print(render_table(report.rows(), title=f"claims bench: {count:,} claims, seed {seed}"))
    if "streaming_drain" in report.details:
        output.print(profile_table(report.details))
    if "latency" in report.details:
        output.print(latency_table(report.details))
    for line in verdict(report):
        output.print(line)
    console.print(f"figures written to {out}; engine logs in {work_dir / 'logs'}")


def register(app: typer.Typer) -> None:
    """Add `claims bench`."""
    app.command("bench")(bench_command)
