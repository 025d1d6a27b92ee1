"""Batch fixtures: the session Spark fixtures of tests/streaming, and a small protected lake built without Kafka.

The lake is written with the streaming query's own pure frame functions (bronze, validation, quarantine, events,
supersessions, enrichment), so its tables have exactly the shapes the stream writes, in a second instead of a
broker round trip.
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
from libs.model import Claim
from libs.phi.protector import PhiProtector
from libs.settings import LakeSettings
from libs.streaming.enrich import enrich_claims
from libs.streaming.lake import LakeTables
from libs.streaming.parse import parse_messages
from libs.streaming.processor import bronze_frame, events_frame, latest_upserts, quarantine_frame, supersession_frame
from libs.streaming.refdata import SparkRefData
from libs.streaming.validation import validate_messages
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


def write_lake(session: SparkSession, ref: SparkRefData, root: Path, claims: list[Claim], protector: PhiProtector,
               received: datetime = RECEIVED) -> Lake:
    """Bronze, quarantine, events, supersessions and silver Delta tables for `claims`, all received at `received`."""
    values: list[bytes | None] = [claim_to_message(claim, protector.protect) for claim in claims]
    raw = kafka_rows(session, values).withColumn("timestamp", F.lit(received).cast("timestamp"))
    raw = raw.withColumn("key", F.lit(None).cast("binary"))
    lake = LakeSettings(root=str(root / "lake"), checkpoint_root=str(root / "checkpoints"))
    tables = LakeTables.from_settings(lake)
    checked = validate_messages(parse_messages(raw), ref, AS_OF).persist()
    valid = checked.filter(F.col("is_valid"))
    events = events_frame(valid, 0)
    superseded = supersession_frame(events)
    silver = latest_upserts(enrich_claims(valid, ref)).join(superseded.select("claim_id"), "claim_id", "left_anti")
    writes: list[tuple[DataFrame, str]] = [
        (bronze_frame(raw, 0), tables.bronze), (quarantine_frame(checked, 0), tables.quarantine),
        (events, tables.claim_events), (superseded, tables.supersessions), (silver, tables.silver),
    ]
    for frame, location in writes:
        frame.write.format("delta").mode("overwrite").save(location)
    checked.unpersist()
    return Lake(settings=lake, tables=tables, protector=protector, claims=claims)


@pytest.fixture(scope="session")
def lake(spark: SparkSession, refdata: SparkRefData, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """One protected lake for the read-only batch tests of the session."""
    root = tmp_path_factory.mktemp("batch-lake")
    protector = PhiProtector.from_settings(phi_settings(root))
    return write_lake(spark, refdata, root, sample_claims(), protector)


@pytest.fixture(scope="session")
def silver(spark: SparkSession, lake: Lake) -> DataFrame:
    """The lake's silver table."""
    return spark.read.format("delta").load(lake.tables.silver)

