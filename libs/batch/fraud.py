"""Batch fraud screening over silver claims, and the gold `fraud_alerts` table.

The daily batch screens with libs.fraud.spark (`screen_day_alerts`): the batch screens are Spark jobs grouped by the
keys they compare and the per-claim screens run the stream's `screen_claim` in Arrow batches, so no claim is
collected to the driver and a day at prod volume fits. libs.fraud.rules stays the tested reference
(tests/fraud/test_spark_screens.py runs both on the same claims).

Silver rows are protected records, so the claims carry the member *token* as member ID (which is all the
member-keyed screens need: they compare members, they never read them) and no other PHI leaf. Service after death is
decided from each record's `phi_derived` block, exactly as the stream decides it (the same function, the same
input). Alert details name codes, NPIs, amounts and service dates only (libs.fraud.rules guarantees it).

Which alerts are published: the stream already sent the per-claim screens to the alerts topic, so the batch publishes
the cross-claim screens (`screen = 'batch'`) that are new in gold; gold keeps both kinds so that the warehouse's
fraud_codes column is complete.
"""

from __future__ import annotations

from datetime import date, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812
from pyspark.sql.types import StringType, StructField, StructType, TimestampType

from libs.codesets import CodeSets
from libs.fraud.rules import BATCH_SCREENS
from libs.fraud.spark import screen_batch_spark

SCREEN_CLAIM = "claim"
SCREEN_BATCH = "batch"
BATCH_RULES = frozenset(code.value for code in BATCH_SCREENS)

ALERTS_SCHEMA = StructType([
    StructField("claim_id", StringType(), nullable=False),
    StructField("rule", StringType(), nullable=False),
    StructField("detail", StringType()),
    StructField("screen", StringType()),
    StructField("batch_run_id", StringType()),
    StructField("created_at", TimestampType()),
])
ALERT_KEYS = ("claim_id", "rule")


def screen_day_alerts(silver: DataFrame, codesets: CodeSets, *, batch_run_id: str, created_at: datetime
                      ) -> DataFrame:
    """The gold `fraud_alerts` rows of the day's silver claims, screened on the executors (libs.fraud.spark)."""
    alerts = screen_batch_spark(silver, codesets)
    screen = F.when(F.col("rule").isin(*sorted(BATCH_RULES)), F.lit(SCREEN_BATCH)).otherwise(F.lit(SCREEN_CLAIM))
    return alerts.select(
        "claim_id", "rule", "detail", screen.alias("screen"), F.lit(batch_run_id).alias("batch_run_id"),
        F.lit(created_at).cast("timestamp").alias("created_at"))


def new_alerts(alerts: DataFrame, gold: DataFrame) -> DataFrame:
    """Alerts not yet in gold (a re-run of a day publishes nothing twice)."""
    return alerts.join(gold.select(*ALERT_KEYS), list(ALERT_KEYS), "left_anti")


def alert_messages(alerts: DataFrame, topic: str, run_date: date | None) -> DataFrame:
    """Kafka sink rows (topic, key, value) for the alerts topic; the value names codes and NPIs only, never PHI."""
    value = F.to_json(F.struct("claim_id", "rule", "detail", "screen", "batch_run_id",
                               F.lit(run_date.isoformat() if run_date else None).alias("run_date")))
    return alerts.select(F.lit(topic).alias("topic"), F.col("claim_id").alias("key"), value.alias("value"))


def merge_into_gold(spark: SparkSession, alerts: DataFrame, location: str) -> None:
    """Upsert the alerts into the Delta table at `location` keyed by (claim_id, rule); identical rows stay untouched."""
    from delta.tables import DeltaTable  # noqa: PLC0415  (delta imports the JVM side lazily)

    DeltaTable.createIfNotExists(spark).location(location).addColumns(ALERTS_SCHEMA).execute()
    gold = DeltaTable.forPath(spark, location)
    (
        gold.alias("t")
        .merge(alerts.alias("s"), " AND ".join(f"t.{key} = s.{key}" for key in ALERT_KEYS))
        .whenMatchedUpdate(condition="NOT (t.detail <=> s.detail)", set={"detail": "s.detail",
                                                                          "batch_run_id": "s.batch_run_id",
                                                                          "created_at": "s.created_at"})
        .whenNotMatchedInsertAll()
        .execute()
    )
