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

from libs.bench.results import BASELINE_STAGE, BenchReport, render_table
from libs.bench.runner import DEFAULT_OUT, DEFAULT_WORK_DIR, STREAMING_TARGET, BenchConfig, run_bench


def latency_table(details: dict[str, Any]) -> Table:
    """Latency at a steady rate: produce rate achieved, p50/p95/p99/max, batches."""
    latency = details.get("latency") or {}
    summary = latency.get("latency") or {}
    table = Table(title=(f"latency at {latency.get('rate', 0):,.0f} claims/s for {latency.get('seconds', 0):g} s "
                         f"(trigger {latency.get('trigger_seconds', 0):g} s): Kafka timestamp -> batch committed"),
                  show_header=False)
    rows = [
        ("claims produced", f"{latency.get('produced', 0):,}"),
        ("achieved produce rate", f"{latency.get('achieved_rate') or 0:,.0f} claims/s"),
        ("valid claims measured", f"{summary.get('count', 0):,}"),
        *((label, f"{summary[key]:,.0f} ms") for label, key in
          (("p50", "p50_ms"), ("p95", "p95_ms"), ("p99", "p99_ms"), ("max", "max_ms")) if key in summary),
        ("micro-batches", f"{latency.get('batches', 0):,}"),
        ("mean rows per batch", f"{latency.get('mean_batch_rows') or 0:,.0f}"),
    ]
    for label, value in rows:
        table.add_row(label, value)
    return table


def verdict(report: BenchReport) -> list[str]:
    """The project's targets, stated against what was measured (informational: the bench never fails on them)."""
    lines = []
    streaming, baseline = report.stage("streaming end to end"), report.stage(BASELINE_STAGE)
    if streaming is not None and streaming.rate is not None:
        met = "met" if streaming.rate >= STREAMING_TARGET else "NOT met"
        lines.append(f"target streaming >= {STREAMING_TARGET:,} claims/s end to end: {streaming.rate:,.0f} ({met})")
        if baseline is not None and baseline.rate:
            met = "met" if streaming.rate >= baseline.rate else "NOT met"
            lines.append(f"target streaming >= baseline consumer ({baseline.rate:,.0f} claims/s): "
                         f"{streaming.rate / baseline.rate:.2f}x ({met})")
    return lines


def bench_command(  # Typer passes every option by keyword
    *,
    count: Annotated[int, typer.Option(help="Claims to generate and push through every stage.", min=1)] = 100_000,
    seed: Annotated[int, typer.Option(help="Generator seed (same seed, same claims).")] = 7,
    rate: Annotated[float, typer.Option(help="Produce rate (claims/s) of the latency stage.", min=1)] = 2000.0,
    seconds: Annotated[float, typer.Option(help="How long the latency stage produces.", min=1)] = 30.0,
    trigger: Annotated[float, typer.Option(help="Processing-time trigger (s) of the latency stage.", min=0.1)] = 1.0,
    warmup: Annotated[int, typer.Option(help="Claims drained on a cold JVM before the measured drain (0: none).",
                                        min=0)] = 2000,
    max_offsets_per_trigger: Annotated[int | None, typer.Option(
        help="Cap rows per micro-batch of every Spark stage (default: the settings default, as `make run`).",
        min=1)] = None,
    spark_ui: Annotated[bool, typer.Option(help="Serve Spark's REST API for the per-stage time breakdown.")] = True,
    out: Annotated[Path, typer.Option(help="Write the figures as JSON here.")] = DEFAULT_OUT,
    work_dir: Annotated[Path, typer.Option(help="Scratch directory (broker, lakes); wiped at the start.")]
    = DEFAULT_WORK_DIR,
    progress: Annotated[bool, typer.Option(help="Show progress while it runs.")] = True,
) -> None:
    """Benchmark generate, validate, produce, a hand-written consumer, and Spark streaming (throughput, latency)."""
    console = Console(stderr=True)
    try:
        config = BenchConfig(count=count, seed=seed, rate=rate, seconds=seconds, trigger_seconds=trigger,
                             warmup=warmup, max_offsets_per_trigger=max_offsets_per_trigger, spark_ui=spark_ui,
                             out=out, work_dir=work_dir)
    except ValueError as exc:
        console.print(f"[red]error[/red]: {exc}")
        raise typer.Exit(2) from None
    report = run_bench(config, console=console, show_progress=progress)
    # Piped output (make bench | tee) would otherwise be 80 columns wide and fold every note.
    output = Console() if sys.stdout.isatty() else Console(width=180)
    output.print(render_table(report.rows(), title=f"claims bench: {count:,} claims, seed {seed}"))
    if "latency" in report.details:
        output.print(latency_table(report.details))
    for line in verdict(report):
        output.print(line)
    console.print(f"figures written to {out}")


def register(app: typer.Typer) -> None:
    """Add `claims bench`."""
    app.command("bench")(bench_command)
