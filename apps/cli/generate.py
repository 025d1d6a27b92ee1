"""`claims generate`: write a seeded synthetic claims file with its ground-truth labels.

A thin entry point over `libs.generator`: it streams records to DIR/claims.ndjson (one canonical claim JSON per line)
and DIR/labels.ndjson (one label per line), shows a progress bar on stderr and prints what it wrote.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from libs.generator import DEFAULT_ANCHOR_DATE, GeneratorConfig, LabelKind, claim_json, generate_records

CLAIMS_FILE = "claims.ndjson"
LABELS_FILE = "labels.ndjson"
PROGRESS_EVERY = 1000


@dataclass
class GenerateSummary:
    """What a run wrote, for the printed table and for tests."""

    claims: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    by_frequency: Counter[str] = field(default_factory=Counter)
    defects: Counter[str] = field(default_factory=Counter)
    frauds: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def claims_per_second(self) -> float:
        """Throughput of the run (generation and writing)."""
        return self.claims / self.seconds if self.seconds > 0 else float("inf")


def write_generated(config: GeneratorConfig, out_dir: Path, progress: Progress | None = None) -> GenerateSummary:
    """Generate `config.count` claims into out_dir/claims.ndjson and out_dir/labels.ndjson."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = GenerateSummary()
    task = progress.add_task("generating claims", total=config.count) if progress is not None else None
    started = time.perf_counter()
    with (out_dir / CLAIMS_FILE).open("wb") as claims_out, (out_dir / LABELS_FILE).open("wb") as labels_out:
        for record, labels in generate_records(config):
            claims_out.write(claim_json(record))
            claims_out.write(b"\n")
            summary.claims += 1
            summary.by_type[record["claim_type"]] += 1
            summary.by_frequency[record["frequency_code"]] += 1
            for label in labels:
                labels_out.write(orjson.dumps(label.to_dict()))
                labels_out.write(b"\n")
                (summary.defects if label.kind is LabelKind.DEFECT else summary.frauds)[label.rule] += 1
            if task is not None and progress is not None and summary.claims % PROGRESS_EVERY == 0:
                progress.update(task, completed=summary.claims)
    if task is not None and progress is not None:
        progress.update(task, completed=summary.claims)
    summary.seconds = time.perf_counter() - started
    return summary


def summary_table(summary: GenerateSummary, out_dir: Path) -> Table:
    """The counts a user checks after a run."""
    table = Table(title=f"Generated into {out_dir}", show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("claims", f"{summary.claims:,}")
    for claim_type, count in sorted(summary.by_type.items()):
        table.add_row(f"  {claim_type}", f"{count:,}")
    names = {"1": "original", "7": "replacement", "8": "void"}
    for frequency, count in sorted(summary.by_frequency.items()):
        table.add_row(f"  frequency {frequency} ({names.get(frequency, 'defective code')})", f"{count:,}")
    table.add_row("defect labels", f"{sum(summary.defects.values()):,}")
    table.add_row("  reason codes covered", f"{len(summary.defects)}")
    table.add_row("fraud labels", f"{sum(summary.frauds.values()):,}")
    for rule, count in sorted(summary.frauds.items()):
        table.add_row(f"  {rule}", f"{count:,}")
    table.add_row("seconds", f"{summary.seconds:.1f}")
    table.add_row("claims/s", f"{summary.claims_per_second:,.0f}")
    return table


def register(app: typer.Typer) -> None:
    """Add `claims generate`."""

    @app.command("generate")
    def generate(  # noqa: PLR0917  (Typer maps each CLI option to a parameter)
        count: Annotated[int, typer.Option("--count", min=0, help="Number of claims to write.")],
        seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same files.")],
        out: Annotated[Path, typer.Option("--out", help="Output directory (created if missing).")],
        defect_rate: Annotated[float, typer.Option("--defect-rate", min=0.0, max=1.0,
                                                   help="Share of claims with one injected defect.")] = 0.05,
        fraud_rate: Annotated[float, typer.Option("--fraud-rate", min=0.0, max=1.0,
                                                  help="Share of slots that run a fraud scenario.")] = 0.02,
        anchor_date: Annotated[str, typer.Option(
            "--anchor-date", help="The synthetic 'today' (YYYY-MM-DD): services fall in the ~300 days before it."
        )] = DEFAULT_ANCHOR_DATE.isoformat(),
        replacement_rate: Annotated[float, typer.Option(
            "--replacement-rate", min=0.0, max=1.0, help="Share of slots replacing an earlier claim (frequency 7)."
        )] = 0.01,
        void_rate: Annotated[float, typer.Option(
            "--void-rate", min=0.0, max=1.0, help="Share of slots voiding an earlier claim (frequency 8)."
        )] = 0.005,
    ) -> None:
        """Write DIR/claims.ndjson and DIR/labels.ndjson: seeded synthetic claims with labelled defects and fraud."""
        err = Console(stderr=True)
        try:
            anchor = date.fromisoformat(anchor_date)
        except ValueError:
            err.print(f"--anchor-date must be YYYY-MM-DD, found {anchor_date!r}")
            raise typer.Exit(2) from None
        try:
            config = GeneratorConfig(count=count, seed=seed, defect_rate=defect_rate, fraud_rate=fraud_rate,
                                     anchor_date=anchor, replacement_rate=replacement_rate, void_rate=void_rate)
        except ValueError as exc:
            err.print(f"invalid generator settings: {exc}")
            raise typer.Exit(2) from None
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TimeRemainingColumn())
        with Progress(*columns, console=err, transient=True) as progress:
            summary = write_generated(config, out, progress)
        Console().print(summary_table(summary, out))
