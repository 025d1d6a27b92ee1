"""The Delta tables of the lake and the idempotent writes the streaming query makes to them.

Why idempotent appends: a micro-batch can be re-executed after a crash (Structured Streaming replays the last
uncommitted batch from its checkpoint). Delta's `txnAppId`/`txnVersion` writer options make a replayed append a no-op,
so killing and restarting the query neither loses nor duplicates a bronze, quarantine or event row. Silver is written
with MERGE keyed by claim_id, which is idempotent by construction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from libs.settings import LakeSettings


@dataclass(frozen=True)
class LakeTables:
    """Locations of every table the streaming query writes."""

    bronze: str
    silver: str
    quarantine: str
    claim_events: str
    supersessions: str
    batches: str

    @classmethod
    def from_settings(cls, lake: LakeSettings) -> LakeTables:
        """Tables under the configured lake root."""
        return cls(
            bronze=lake.table("bronze/claims_raw"),
            silver=lake.table("silver/claims"),
            quarantine=lake.table("quarantine/claims"),
            claim_events=lake.table("silver/claim_events"),
            supersessions=lake.table("silver/claim_supersessions"),
            batches=lake.table("ops/stream_batches"),
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
    spark: SparkSession, location: str, schema: StructType, partition_by: list[str], *, deletion_vectors: bool = False
) -> None:
    """Create an empty Delta table at `location` when none exists, so readers never find a missing table.

    Deletion vectors let a MERGE delete rows (voids, replaced originals) by marking them instead of rewriting every
    data file that holds one: without them each void rewrites a whole partition of silver.
    """
    from delta.tables import DeltaTable  # noqa: PLC0415  (delta imports the JVM side lazily)

    builder = DeltaTable.createIfNotExists(spark).location(location).addColumns(schema)
    if deletion_vectors:
        builder = builder.property("delta.enableDeletionVectors", "true")
    if partition_by:
        builder = builder.partitionedBy(*partition_by)
    builder.execute()


def idempotent_append(frame: DataFrame, location: str, app_id: str, batch_id: int) -> None:
    """Append `frame`, skipping it when this (app_id, batch_id) was already committed."""
    (
        frame.write.format("delta")
        .mode("append")
        .option("txnAppId", app_id)
        .option("txnVersion", batch_id)
        .save(location)
    )
