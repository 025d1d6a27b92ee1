"""Where the lake's Delta tables live, and creating them empty so that readers never find a missing table.

Why one home: the stream writes these tables, the daily batch, the reconciliation, the API and the bench read them;
they all take the locations from here (under `settings.lake.root`, a local directory or an s3a:// URI).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql.types import StructType

from libs.settings import LakeSettings


@dataclass(frozen=True)
class LakeTables:
    """Locations of every table of the lake (a local directory or an s3a:// prefix per table)."""

    bronze: str  # every message as received, with its Kafka coordinates
    quarantine: str  # rejected messages: reason codes and the field each one points at
    claim_events: str  # accepted messages: the ledger of claim versions, replacements and voids
    silver: str  # every accepted claim version, enriched (append-only; see libs.lake.readers.current_claims)
    gold_alerts: str  # fraud alerts of the daily batch screens
    warehouse_stage: str  # Parquet staged per batch run for the warehouse load (DuckDB reads it, Redshift COPYs it)

    @classmethod
    def from_settings(cls, lake: LakeSettings) -> LakeTables:
        """Tables under the configured lake root."""
        return cls(
            bronze=lake.table("bronze/claims_raw"),
            quarantine=lake.table("quarantine/claims"),
            claim_events=lake.table("silver/claim_events"),
            silver=lake.table("silver/claims"),
            gold_alerts=lake.table("gold/fraud_alerts"),
            warehouse_stage=lake.table("warehouse_stage"),
        )


def pipeline_identity(checkpoint_dir: str) -> str:
    """A stable id for one checkpoint lineage, used as Delta `txnAppId` prefix.

    Stored next to the checkpoint: restarting from the same checkpoint reuses it (so replays are recognised), while a
    fresh checkpoint gets a new id (so its batch ids, which restart at 0, are not mistaken for already-written ones).
    """
    if "://" in checkpoint_dir and not checkpoint_dir.startswith("file:"):
        # Object stores: derive from the path; a wiped checkpoint on S3 must be paired with a new path.
        return str(uuid.uuid5(uuid.NAMESPACE_URL, checkpoint_dir))
    path = Path(checkpoint_dir.removeprefix("file:")) / "pipeline-id"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(str(uuid.uuid4()), encoding="utf-8")
    return path.read_text(encoding="utf-8").strip()


def ensure_table(
    spark: SparkSession,
    location: str,
    schema: StructType,
    partition_by: list[str],
    *,
    deletion_vectors: bool = False,
    stats_columns: tuple[str, ...] = (),
) -> None:
    """Create an empty Delta table at `location` when none exists, so readers never find a missing table.

    Deletion vectors let a delete (voids, replaced originals) mark rows instead of rewriting every data file that holds
    one. `stats_columns` limits Delta's per-file statistics to the columns lookups filter on (claim id, dates, batch
    ids): by default Delta collects them for the first 32 columns, nested claim fields included, on every append.
    """
    from delta.tables import DeltaTable  # noqa: PLC0415  (delta imports the JVM side lazily)

    builder = DeltaTable.createIfNotExists(spark).location(location).addColumns(schema)
    if deletion_vectors:
        builder = builder.property("delta.enableDeletionVectors", "true")
    if stats_columns:
        builder = builder.property("delta.dataSkippingStatsColumns", ",".join(stats_columns))
    if partition_by:
        builder = builder.partitionedBy(*partition_by)
    builder.execute()
