"""Reconcile what was produced with what the lake holds: nothing lost, nothing duplicated, every row accounted for.

The identities checked after a run (all counts are rows unless said otherwise):

    produced = bronze                     (every message received, once: distinct partition/offset)
    bronze   = quarantine + valid events  (each message either rejected or accepted)
    silver   = valid events - voids       (each accepted version stored once: the same partition/offsets)
    current  = upserted ids - superseded  (claim ids: libs.lake.readers.current_claims)

where `upserted ids` are the distinct claim ids of the accepted non-void messages, `superseded` those of them that a
replacement naming another id or a void removed, and `current` the claims as they stand after the run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812

from libs.lake import LakeTables, current_claims, read_delta, removals
from libs.model import FrequencyCode

VOID = FrequencyCode.VOID.value
COORDINATES = ["kafka_partition", "kafka_offset"]


@dataclass
class Reconciliation:
    """Counts from the lake and whether they add up."""

    produced: int
    bronze: int
    bronze_distinct_offsets: int
    quarantine: int
    valid_events: int
    voids: int
    silver: int
    silver_missing: int  # accepted non-void messages without their silver row
    silver_unexpected: int  # silver rows without an accepted non-void message
    upserted_ids: int
    superseded: int
    current: int
    repeated_ids: int  # accepted versions beyond the first of their claim id
    dead_letter: int | None = None
    top_reasons: list[tuple[str, int]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def reconciled(self) -> bool:
        """True when every identity holds."""
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the keys `make run` promises in .local/run/summary.json)."""
        data = asdict(self)
        data["reconciled"] = self.reconciled
        data["top_reasons"] = [{"code": code, "count": count} for code, count in self.top_reasons]
        return data


def _count(frame: DataFrame) -> int:
    return int(frame.count())


def reconcile(
    spark: SparkSession, tables: LakeTables, produced: int, dead_letter: int | None = None
) -> Reconciliation:
    """Read the tables and check the identities in the module docstring."""
    bronze = read_delta(spark, tables.bronze)
    quarantine = read_delta(spark, tables.quarantine)
    events = read_delta(spark, tables.claim_events)
    silver = read_delta(spark, tables.silver)

    non_void = events.where(F.col("frequency_code") != VOID)
    upserted = non_void.select("claim_id").distinct()
    removed = removals(events).select("claim_id").distinct().join(upserted, "claim_id")
    silver_coordinates = silver.select(*COORDINATES)
    event_coordinates = non_void.select(*COORDINATES)

    result = Reconciliation(
        produced=produced,
        bronze=_count(bronze),
        bronze_distinct_offsets=_count(bronze.select(*COORDINATES).distinct()),
        quarantine=_count(quarantine),
        valid_events=_count(events),
        voids=_count(events.where(F.col("frequency_code") == VOID)),
        silver=_count(silver),
        silver_missing=_count(event_coordinates.join(silver_coordinates, COORDINATES, "left_anti")),
        silver_unexpected=_count(silver_coordinates.join(event_coordinates, COORDINATES, "left_anti")),
        upserted_ids=_count(upserted),
        superseded=_count(removed),
        current=_count(current_claims(silver.select("claim_id", *COORDINATES), events)),
        repeated_ids=_count(non_void) - _count(upserted),
        dead_letter=dead_letter,
    )
    reasons = quarantine.select(F.explode("reason_codes").alias("code")).groupBy("code").count()
    result.top_reasons = [(r["code"], int(r["count"])) for r in reasons.orderBy(F.desc("count")).limit(10).collect()]
    result.problems = _problems(result)
    return result


def _problems(r: Reconciliation) -> list[str]:
    checks = [
        (r.produced == r.bronze, f"produced {r.produced} != bronze {r.bronze}"),
        (r.bronze == r.bronze_distinct_offsets,
         f"bronze holds {r.bronze - r.bronze_distinct_offsets} duplicate Kafka offsets"),
        (r.bronze == r.quarantine + r.valid_events,
         f"bronze {r.bronze} != quarantine {r.quarantine} + valid {r.valid_events}"),
        (r.silver == r.valid_events - r.voids,
         f"silver {r.silver} != valid {r.valid_events} - voids {r.voids}"),
        (r.silver_missing == 0, f"{r.silver_missing} accepted claim versions missing from silver"),
        (r.silver_unexpected == 0, f"{r.silver_unexpected} silver rows without an accepted message"),
        (r.current == r.upserted_ids - r.superseded,
         f"current claims {r.current} != upserted ids {r.upserted_ids} - superseded {r.superseded}"),
        (r.dead_letter is None or r.dead_letter >= r.quarantine,
         f"dead-letter topic holds {r.dead_letter} messages, fewer than quarantine {r.quarantine}"),
    ]
    return [message for ok, message in checks if not ok]
