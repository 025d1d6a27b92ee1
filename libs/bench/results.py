"""Bench figures: one `StageResult` per measured stage, ratios against the reference stages, and their rendering.

Why ratios are computed here and not by the stages: a stage knows its own claims and seconds; which stages are the
references (the hand-written baseline consumer, the raw orjson parse) is a property of the report. A ratio is
`stage claims/s / reference claims/s`: 2.0 means twice as fast as the reference, 0.5 half as fast.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

BASELINE_STAGE = "baseline consumer"
PARSE_STAGE = "orjson parse"
PRODUCE_PIPELINE_STAGE = "generate + protect + produce"  # the producing path of `make run`, end to end


@dataclass(frozen=True)
class StageResult:
    """`claims` processed by one stage in `seconds` of wall time; `note` says what the time includes."""

    name: str
    claims: int
    seconds: float
    note: str = ""

    def __post_init__(self) -> None:
        if self.claims < 0 or self.seconds < 0 or math.isnan(self.seconds):
            msg = f"stage {self.name}: expected claims >= 0 and seconds >= 0, found {self.claims} and {self.seconds}"
            raise ValueError(msg)

    @property
    def rate(self) -> float | None:
        """Claims per second, or None when nothing was timed (zero seconds)."""
        return self.claims / self.seconds if self.seconds > 0 else None


def ratio(stage: StageResult, reference: StageResult | None) -> float | None:
    """stage claims/s divided by reference claims/s; None when either rate is unknown or the reference is 0."""
    if reference is None or stage.rate is None or not reference.rate:
        return None
    return stage.rate / reference.rate


def percentile(values: Sequence[float], fraction: float) -> float:
    """The `fraction` quantile (0..1) of `values` with linear interpolation between ranks (numpy's default).

    Exact, not approximate: the bench collects every latency, and p95 of a few thousand values must not depend on a
    sketch's error bound.
    """
    if not values:
        msg = "percentile: expected at least one value, found none"
        raise ValueError(msg)
    if not 0.0 <= fraction <= 1.0:
        msg = f"percentile: expected a fraction between 0 and 1, found {fraction}"
        raise ValueError(msg)
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    weight = position - lower
    return ordered[lower] + (ordered[upper] - ordered[lower]) * weight


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float | int]:
    """count, p50, p95, p99 and max of per-claim latencies in milliseconds (rounded to 0.1 ms)."""
    if not latencies_ms:
        return {"count": 0}
    return {
        "count": len(latencies_ms),
        "p50_ms": round(percentile(latencies_ms, 0.50), 1),
        "p95_ms": round(percentile(latencies_ms, 0.95), 1),
        "p99_ms": round(percentile(latencies_ms, 0.99), 1),
        "max_ms": round(max(latencies_ms), 1),
    }


@dataclass
class BenchReport:
    """Everything the bench measured: stages in run order plus free-form details (streaming batches, latency)."""

    stages: list[StageResult] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    def add(self, stage: StageResult) -> StageResult:
        self.stages.append(stage)
        return stage

    def stage(self, name: str) -> StageResult | None:
        """The last stage called `name`, or None."""
        for candidate in reversed(self.stages):
            if candidate.name == name:
                return candidate
        return None

    def rows(self) -> list[dict[str, Any]]:
        """One JSON-ready row per stage, with both ratios."""
        baseline, parse = self.stage(BASELINE_STAGE), self.stage(PARSE_STAGE)
        return [stage_row(stage, baseline, parse) for stage in self.stages]

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.environment, "config": self.config, "stages": self.rows(),
                "details": self.details}


def stage_row(stage: StageResult, baseline: StageResult | None, parse: StageResult | None) -> dict[str, Any]:
    """A stage as a JSON object: name, claims, seconds, claims/s and the ratios vs the two references."""
    rate, vs_baseline, vs_parse = stage.rate, ratio(stage, baseline), ratio(stage, parse)
    return {
        "stage": stage.name,
        "claims": stage.claims,
        "seconds": round(stage.seconds, 3),
        "claims_per_second": round(rate, 1) if rate is not None else None,
        "vs_baseline": round(vs_baseline, 3) if vs_baseline is not None else None,
        "vs_orjson_parse": round(vs_parse, 4) if vs_parse is not None else None,
        "note": stage.note,
    }


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def render_table(rows: Iterable[dict[str, Any]], title: str = "claims bench") -> Table:
    """The rich table printed at the end of a run (the same figures as the JSON rows)."""
    table = Table(title=title)
    table.add_column("stage")
    table.add_column("claims", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("claims/s", justify="right")
    table.add_column("x baseline", justify="right")
    table.add_column("x orjson parse", justify="right")
    table.add_column("what the time includes", overflow="fold")
    for row in rows:
        table.add_row(
            row["stage"], f"{row['claims']:,}", _fmt(row["seconds"], 2), _fmt(row["claims_per_second"], 0),
            _fmt(row["vs_baseline"], 2), _fmt(row["vs_orjson_parse"], 3), row["note"],
        )
    return table
