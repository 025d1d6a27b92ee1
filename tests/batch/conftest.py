"""Batch fixtures: the session Spark fixtures of tests/streaming, and a small protected lake built without Kafka.

The lake is written with the streaming query's own check and frame functions (the Python rules in Arrow batches,
bronze, quarantine, events, silver), so its tables have exactly the shapes the stream writes, in seconds instead of
a broker round trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812

from libs.generator import GeneratorConfig, generate_claims
from libs.generator.config import DEFAULT_ANCHOR_DATE
from libs.kafka.serialize import claim_to_message
from libs.lake import LakeTables, current_claims, read_delta, silver_claims
from libs.model import Claim
from libs.phi.protector import PhiProtector
from libs.settings import LakeSettings
from libs.streaming.frames import bronze_frame, events_frame, quarantine_frame, silver_frame
from libs.streaming.parse import check_messages
from tests.phi.conftest import phi_settings
from tests.spark_helpers import kafka_rows

AS_OF = DEFAULT_ANCHOR_DATE
RECEIVED = datetime(2026, 10, 30, 14, 0, tzinfo=UTC)
DAY = RECEIVED.date()


def sample_claims(count: int = 80, seed: int = 11) -> list[Claim]:
    """Generated claims with defects and fraud scenarios, plus one exact duplicate of the first original."""
    config = GeneratorConfig(count=count, seed=seed, defect_rate=0.2, fraud_rate=0.1)
    generated = list(generate_claims(config))
    claims = [claim for claim, _labels in generated]
    # A clean original (no label: neither a defect nor a fraud scenario), so that its copy is the only alert cause.
    original = next(claim for claim, labels in generated if claim.frequency_code == "1" and not labels)
    claims.append(original.model_copy(update={"claim_id": f"{original.claim_id}-DUP"}))
    return claims


@dataclass
class Lake:
    """A lake written from protected claims, and the pieces tests compare against."""

    settings: LakeSettings
    tables: LakeTables
    protector: PhiProtector
    claims: list[Claim]


def write_lake(session: SparkSession, root: Path, claims: list[Claim], protector: PhiProtector,
               received: datetime = RECEIVED) -> Lake:
    """Bronze, quarantine, events and silver Delta tables for `claims`, all received at `received`."""
    values: list[bytes | None] = [claim_to_message(claim, protector.protect) for claim in claims]
    raw = kafka_rows(session, values).withColumn("timestamp", F.lit(received).cast("timestamp"))
    raw = raw.withColumn("key", F.lit(None).cast("binary"))
    lake = LakeSettings(root=str(root / "lake"), checkpoint_root=str(root / "checkpoints"))
    tables = LakeTables.from_settings(lake)
    checked = check_messages(raw, AS_OF, pipeline_id="batch-tests").persist()
    writes: list[tuple[DataFrame, str]] = [
        (bronze_frame(checked), tables.bronze), (quarantine_frame(checked), tables.quarantine),
        (events_frame(checked), tables.claim_events), (silver_frame(checked), tables.silver),
    ]
    for frame, location in writes:
        frame.write.format("delta").mode("overwrite").save(location)
    checked.unpersist()
    return Lake(settings=lake, tables=tables, protector=protector, claims=claims)


@pytest.fixture(scope="session")
def lake(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """One protected lake for the read-only batch tests of the session."""
    root = tmp_path_factory.mktemp("batch-lake")
    protector = PhiProtector.from_settings(phi_settings(root))
    return write_lake(spark, root, sample_claims(), protector)


@pytest.fixture(scope="session")
def silver(spark: SparkSession, lake: Lake) -> DataFrame:
    """The lake's current claims with their nested claim columns (what the daily batch reads)."""
    return silver_claims(current_claims(read_delta(spark, lake.tables.silver),
                                        read_delta(spark, lake.tables.claim_events)))
