"""Reconcile what was produced with what the lake holds: nothing lost, nothing duplicated, every row accounted for.

The identity checked after a run (all counts are rows):

    produced = bronze                                   (every message received, once: distinct partition/offset)
    bronze   = quarantine + valid events                (each message either rejected or accepted)
    valid    = silver + superseded + repeated ids + voids

where `superseded` are originals removed by a replacement (7) or a void (8), `repeated ids` are valid messages whose
claim id was already upserted (a later version of the same claim), and `voids` are the void messages themselves
(which remove, never add). Silver must also equal, claim id for claim id, the state replayed from the event ledger.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812

from libs.streaming.lake import LakeTables

VOID = "8"


@dataclass
class Reconciliation:
    """Counts from the lake and whether they add up."""

    produced: int
    bronze: int
    bronze_distinct_offsets: int
    quarantine: int
    valid_events: int
    silver: int
    superseded: int
    repeated_ids: int
    voids: int
    silver_missing: int
    silver_unexpected: int
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


def expected_silver_ids(events: DataFrame, supersessions: DataFrame) -> DataFrame:
    """Claim ids silver must hold: every non-void claim id, minus every claim id a replacement or void removed."""
    upserted = events.filter(F.col("frequency_code") != VOID).select("claim_id").distinct()
    removed = supersessions.select("claim_id").distinct()
    return upserted.join(removed, "claim_id", "left_anti")


def reconcile(
    spark: SparkSession, tables: LakeTables, produced: int, dead_letter: int | None = None
) -> Reconciliation:
    """Read the tables and check the identities in the module docstring."""
    read = spark.read.format("delta").load
    bronze = read(tables.bronze)
    quarantine = read(tables.quarantine)
    events = read(tables.claim_events)
    supersessions = read(tables.supersessions)
    silver = read(tables.silver)

    non_void = events.filter(F.col("frequency_code") != VOID)
    distinct_upserted = non_void.select("claim_id").distinct()
    removed = supersessions.select("claim_id").distinct().join(distinct_upserted, "claim_id")
    expected = expected_silver_ids(events, supersessions)
    silver_ids = silver.select("claim_id")

    result = Reconciliation(
        produced=produced,
        bronze=_count(bronze),
        bronze_distinct_offsets=_count(bronze.select("kafka_partition", "kafka_offset").distinct()),
        quarantine=_count(quarantine),
        valid_events=_count(events),
        silver=_count(silver),
        superseded=_count(removed),
        repeated_ids=_count(non_void) - _count(distinct_upserted),
        voids=_count(events.filter(F.col("frequency_code") == VOID)),
        silver_missing=_count(expected.join(silver_ids, "claim_id", "left_anti")),
        silver_unexpected=_count(silver_ids.join(expected, "claim_id", "left_anti")),
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
        (r.valid_events == r.silver + r.superseded + r.repeated_ids + r.voids,
         f"valid {r.valid_events} != silver {r.silver} + superseded {r.superseded} + repeated ids "
         f"{r.repeated_ids} + voids {r.voids}"),
        (r.silver_missing == 0, f"{r.silver_missing} claim ids missing from silver"),
        (r.silver_unexpected == 0, f"{r.silver_unexpected} unexpected claim ids in silver"),
        (r.dead_letter is None or r.dead_letter >= r.quarantine,
         f"dead-letter topic holds {r.dead_letter} messages, fewer than quarantine {r.quarantine}"),
    ]
    return [message for ok, message in checks if not ok]
