"""The fraud screens as Spark jobs: batch screens grouped by the keys they compare, per-claim screens in Arrow batches.

Why: the daily batch used to collect a day of silver claims to the driver and run libs.fraud.rules there; a day at
prod volume does not fit one process. Here every batch screen is a shuffle on the key it compares, so the work
spreads over the executors and nothing but the (few) alerts ever leaves them:

* exact duplicates: partitioned by the CMS duplicate key (member, billing NPI, from/through dates, services, place,
  billed amount), ordered by arrival; every claim after the first of its key is alerted;
* impossible day: timed minutes (code set `timed_minutes` x units) summed per (rendering NPI, service day);
* upcoding: E/M levels per rendering NPI, judged against the specialty's expected share of level 5 (binomial z);
* unbundling: NCCI column-1/column-2 codes billed for the same (member, service day).

The semantics are libs.fraud.rules' (the tested reference): voids are never screened, replacements and voids are
not compared as duplicates, and the other batch screens use the *effective* claims (a replaced or voided original
in the same batch does not count). tests/fraud/test_spark_screens.py runs both on the same claims and requires the
same (claim, rule) alerts. Alert details carry the same facts; amounts print with the lake's decimal scale.

Per-claim screens (excluded provider, service after death, outlier charge, excess units) call the very function the
stream calls, `screen_claim`, on each record parsed with `ProtectedClaim.from_json`, inside mapInArrow.

What the screens cannot see (docs/analytics.md says more): they compare claims of the screened batch only (a
duplicate of last month's claim is not found by today's run unless both are in the frame); they know billing
patterns, not medical records, so an alert is a lead for an investigator, never a finding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

import pyarrow as pa
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812
from pyspark.sql.types import BooleanType, DateType, IntegerType, StringType, StructField, StructType

from libs.fraud.catalog import FraudCode
from libs.fraud.rules import (
    EM_CATEGORIES,
    HIGHEST_EM_LEVEL,
    MINUTES_PER_DAY,
    NCCI_BYPASS_MODIFIERS,
    REPLACEMENT,
    UPCODING_MIN_EXCESS,
    UPCODING_MIN_VISITS,
    UPCODING_MIN_Z,
    VOID,
    screen_claim,
)
from libs.lake.readers import claim_struct
from libs.model import ClaimType

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from libs.codesets import CodeSets

ALERT_SCHEMA = StructType([
    StructField("claim_id", StringType(), nullable=False),
    StructField("rule", StringType(), nullable=False),
    StructField("detail", StringType()),
])
ARRIVAL = ("kafka_timestamp", "kafka_partition", "kafka_offset")


# ------------------------------------------------------------------------------------------------ inputs


def claims_frame(rows: DataFrame) -> DataFrame:
    """Rows with `claim_json` (and optional arrival columns) -> the claim's nested columns, the JSON and arrival.

    The silver reader (libs.lake.silver_claims) gives the same shape; this one serves claim files and tests.
    """
    arrival = [c for c in ARRIVAL if c in rows.columns]
    return rows.select(claim_struct(F.col("claim_json")).alias("c"), "claim_json", *arrival).select(
        "c.*", "claim_json", *arrival)


def _arrival_columns(frame: DataFrame) -> list[str]:
    return [c for c in (*ARRIVAL, "claim_id") if c in frame.columns]


def _arrival_order(frame: DataFrame) -> list[Column]:
    return [F.col(c).asc() for c in _arrival_columns(frame)]


def _member_key() -> Column:
    """claim.member_key(): the patient's member ID when non-empty, else the subscriber's."""
    patient = F.col("patient.member_id")
    subscriber = F.col("subscriber.member_id")
    return F.when(patient.isNotNull() & (patient != ""), patient).when(
        subscriber.isNotNull() & (subscriber != ""), subscriber)


def effective_claims(claims: DataFrame) -> DataFrame:
    """libs.fraud.rules.effective_claims: no voids, no original that a replacement or void of the batch supersedes."""
    superseded = claims.where(F.col("frequency_code").isin(REPLACEMENT, VOID) & F.col("original_claim_id").isNotNull()
                              & (F.col("original_claim_id") != "")).select(
        F.col("original_claim_id").alias("claim_id")).distinct()
    return claims.where(F.col("frequency_code") != VOID).join(superseded, "claim_id", "left_anti")


def _line_rows(claims: DataFrame) -> DataFrame:
    """One row per service line with the claim keys the screens need, the line's date and rendering NPI."""
    lines = claims.select("claim_id", "claim_type", _member_key().alias("member"),
                          F.col("rendering_provider.npi").alias("claim_rendering_npi"),
                          F.col("rendering_provider.taxonomy").alias("claim_rendering_taxonomy"),
                          "service_date_from", *[c for c in ARRIVAL if c in claims.columns],
                          F.explode("lines").alias("line"))
    return lines.select(
        "*",
        F.coalesce(F.col("line.service_date_from"), F.col("service_date_from")).alias("day"),
        F.coalesce(F.col("line.rendering_provider.npi"), F.col("claim_rendering_npi")).alias("rendering_npi"),
        F.col("line.procedure_code").alias("procedure_code"),
    )


# ------------------------------------------------------------------------------------- reference data frames


PROCEDURE_REF_SCHEMA = StructType([
    StructField("ref_code", StringType()), StructField("ref_order", IntegerType()),
    StructField("ref_from", DateType()), StructField("ref_to", DateType()),
    StructField("timed_minutes", IntegerType()), StructField("category", StringType()),
    StructField("em_level", IntegerType()),
])


def procedure_reference(spark: SparkSession, codesets: CodeSets) -> DataFrame:
    """The procedure code set as a small frame (broadcast in joins): one row per code and effective period."""
    rows = []
    for code, entries in codesets.procedures.entries.items():
        for order, entry in enumerate(entries):
            extra = entry.extra
            rows.append((code, order, entry.effective_from, entry.effective_to,
                         int(extra["timed_minutes"]) if extra.get("timed_minutes") else None,
                         extra.get("category") or None,
                         int(extra["em_level"]) if extra.get("em_level") else None))
    return spark.createDataFrame(rows, PROCEDURE_REF_SCHEMA)


def _with_procedure(lines: DataFrame, reference: DataFrame) -> DataFrame:
    """Each line with the procedure row in effect on its day, else the code's first row (rules._procedure_extra)."""
    joined = lines.join(F.broadcast(reference), lines["procedure_code"] == reference["ref_code"], "left")
    in_effect = (F.col("day").isNotNull() & (F.col("ref_from") <= F.col("day"))
                 & (F.col("ref_to").isNull() | (F.col("day") <= F.col("ref_to"))))
    pick = Window.partitionBy("claim_id", "line.line_number", "line").orderBy(
        F.when(in_effect, 0).otherwise(1), F.col("ref_order"))
    ranked = joined.withColumn("_pick", F.row_number().over(pick))
    return ranked.where(F.col("_pick") == 1).drop("_pick")


# ------------------------------------------------------------------------------------------------ batch screens


def screen_exact_duplicates(claims: DataFrame) -> DataFrame:
    """Originals repeating the CMS duplicate key of an earlier claim (arrival order); the first of a key stands."""
    services = F.array_sort(F.transform(
        F.coalesce(F.col("lines"), F.array()),
        lambda line: F.coalesce(line["procedure_code"], line["revenue_code"], F.lit(""))))
    keyed = claims.where(~F.col("frequency_code").isin(REPLACEMENT, VOID)).select(
        "claim_id", *[c for c in ARRIVAL if c in claims.columns],
        _member_key().alias("member"), F.col("billing_provider.npi").alias("billing_npi"),
        "service_date_from", "service_date_to", services.alias("services"),
        F.coalesce(F.col("place_of_service"), F.substring("type_of_bill", 1, 2)).alias("place"),
        F.col("total_charge").alias("billed"),
    ).where(F.col("member").isNotNull() & F.col("billing_npi").isNotNull())
    key = ["member", "billing_npi", "service_date_from", "service_date_to", "services", "place", "billed"]
    # Null-safe keys: Python compares None == None as equal, Spark partitions nulls together too.
    ordered = Window.partitionBy(*key).orderBy(*_arrival_order(keyed))
    ranked = keyed.withColumn("_first", F.first("claim_id").over(ordered)).withColumn(
        "_rank", F.row_number().over(ordered))
    detail = F.format_string(
        "same member, billing NPI %s, dates %s..%s, services %s and billed %s as claim %s",
        "billing_npi", F.coalesce(F.col("service_date_from").cast("string"), F.lit("None")),
        F.coalesce(F.col("service_date_to").cast("string"), F.lit("None")), F.array_join("services", "+"),
        F.coalesce(F.col("billed").cast("string"), F.lit("None")), "_first")
    return ranked.where(F.col("_rank") > 1).select(
        "claim_id", F.lit(FraudCode.EXACT_DUPLICATE.value).alias("rule"), detail.alias("detail"))


def screen_impossible_day(claims: DataFrame, reference: DataFrame) -> DataFrame:
    """Rendering NPIs billing more timed minutes on one day than a day holds; every contributing claim is alerted."""
    lines = _with_procedure(_line_rows(effective_claims(claims)), reference)
    units = F.when(F.col("line.units") > 0, F.col("line.units")).otherwise(F.lit(1))
    timed = lines.where(F.col("rendering_npi").isNotNull() & F.col("day").isNotNull()
                        & F.col("timed_minutes").isNotNull() & (F.col("timed_minutes") != 0)).select(
        "claim_id", "rendering_npi", "day", (F.col("timed_minutes") * units.cast("long")).alias("minutes"))
    per_day = timed.groupBy("rendering_npi", "day").agg(
        F.sum("minutes").alias("total"), F.collect_set("claim_id").alias("claim_ids")).where(
        F.col("total") > MINUTES_PER_DAY)
    detail = F.format_string("rendering NPI %s billed %d timed minutes on %s across %d claims (a day has %d)",
                             "rendering_npi", "total", F.col("day").cast("string"), F.size("claim_ids"),
                             F.lit(MINUTES_PER_DAY))
    return per_day.select(F.explode("claim_ids").alias("claim_id"),
                          F.lit(FraudCode.IMPOSSIBLE_DAY.value).alias("rule"), detail.alias("detail"))


def _specialty_expectations(spark: SparkSession, codesets: CodeSets) -> DataFrame:
    rows = []
    for profile in codesets.specialties:
        weights = profile.em_level_weights
        rows.append((profile.taxonomy, profile.specialty,
                     weights.get(HIGHEST_EM_LEVEL, 0.0) / (sum(weights.values()) or 1.0)))
    return spark.createDataFrame(rows, "taxonomy string, specialty string, expected double")


def screen_upcoding(claims: DataFrame, reference: DataFrame, expectations: DataFrame) -> DataFrame:
    """Rendering providers whose share of level-5 E/M visits far exceeds their specialty's expected share."""
    professional = effective_claims(claims).where(
        (F.col("claim_type") == ClaimType.PROFESSIONAL.value) & F.col("rendering_provider.npi").isNotNull()
        & (F.col("rendering_provider.npi") != ""))
    professional = professional.join(
        F.broadcast(expectations.select(F.col("taxonomy").alias("_taxonomy"))),
        F.col("rendering_provider.taxonomy") == F.col("_taxonomy"), "left_semi")
    lines = _with_procedure(_line_rows(professional), reference)
    visits = lines.where(F.col("category").isin(*EM_CATEGORIES) & F.col("em_level").isNotNull()).select(
        "claim_id", F.col("claim_rendering_npi").alias("npi"), "em_level")
    # rules.screen_upcoding keeps the taxonomy of the provider's last claim in the batch.
    taxonomy = professional.groupBy(F.col("rendering_provider.npi").alias("npi")).agg(
        F.max_by("rendering_provider.taxonomy", F.struct(*_arrival_columns(professional))).alias("taxonomy"))
    per_provider = visits.groupBy("npi").agg(
        F.count(F.lit(1)).alias("n"), F.sum(F.when(F.col("em_level") >= HIGHEST_EM_LEVEL, 1).otherwise(0))
        .alias("highest"), F.collect_set("claim_id").alias("claim_ids"),
    ).where(F.col("n") >= UPCODING_MIN_VISITS).join(taxonomy, "npi").join(F.broadcast(expectations), "taxonomy")
    variance = F.col("n") * F.col("expected") * (F.lit(1.0) - F.col("expected"))
    excess_count = F.col("highest") - F.col("n") * F.col("expected")
    z = F.when(variance > 0, excess_count / F.sqrt(variance)).when(excess_count > 0, F.lit(math.inf)).otherwise(0.0)
    scored = per_provider.select("*", (F.col("highest") / F.col("n") - F.col("expected")).alias("excess"),
                                 z.alias("z"))
    flagged = scored.where((F.col("excess") >= UPCODING_MIN_EXCESS) & (F.col("z") >= UPCODING_MIN_Z))
    detail = F.format_string(
        "rendering NPI %s (%s) billed %.0f%% of %d E/M visits at level %d; the specialty expects %.0f%% (z=%.1f)",
        "npi", "specialty", F.col("highest") / F.col("n") * 100, "n", F.lit(HIGHEST_EM_LEVEL),
        F.col("expected") * 100, "z")
    return flagged.select(F.explode("claim_ids").alias("claim_id"), F.lit(FraudCode.UPCODING.value).alias("rule"),
                          detail.alias("detail"))


NCCI_SCHEMA = StructType([
    StructField("column1", StringType()), StructField("column2", StringType()),
    StructField("pair_from", DateType()), StructField("pair_to", DateType()),
    StructField("modifier_allowed", BooleanType()),
])


def screen_unbundling(claims: DataFrame, spark: SparkSession, codesets: CodeSets) -> DataFrame:
    """A column-2 code billed for the same member and day as its column-1 code (in one claim or several)."""
    pairs = spark.createDataFrame(
        [(p.column1, p.column2, p.effective_from, p.effective_to, p.modifier_allowed) for p in codesets.ncci_pairs],
        NCCI_SCHEMA)
    codes = sorted({p.column1 for p in codesets.ncci_pairs} | {p.column2 for p in codesets.ncci_pairs})
    billed = _line_rows(effective_claims(claims)).where(
        F.col("member").isNotNull() & F.col("day").isNotNull() & F.col("procedure_code").isin(*codes)).select(
        "claim_id", "member", "day", "procedure_code", F.coalesce("line.modifiers", F.array()).alias("modifiers"))
    column1 = billed.select("member", "day", F.col("procedure_code").alias("column1")).distinct()
    bypass = F.arrays_overlap("modifiers", F.array(*[F.lit(m) for m in sorted(NCCI_BYPASS_MODIFIERS)]))
    matched = (
        billed.join(F.broadcast(pairs), billed["procedure_code"] == pairs["column2"])
        .where((F.col("pair_from") <= F.col("day")) & (F.col("pair_to").isNull() | (F.col("day") <= F.col("pair_to"))))
        .join(column1, ["member", "day", "column1"])
        .where(~(F.col("modifier_allowed") & bypass))
    )
    detail = F.format_string("%s is bundled into %s, billed for the same member on %s", "column2", "column1",
                             F.col("day").cast("string"))
    return matched.select("claim_id", F.lit(FraudCode.UNBUNDLING.value).alias("rule"), detail.alias("detail"))


# --------------------------------------------------------------------------------------------- per-claim screens


def _per_claim(codesets: CodeSets) -> Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def screen(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from libs.phi.view import ProtectedClaim  # noqa: PLC0415  (imported on the executor)

        for batch in batches:
            ids: list[str] = []
            rules: list[str] = []
            details: list[str] = []
            for value in batch.column("claim_json").to_pylist():
                claim = ProtectedClaim.from_json(value)
                for alert in screen_claim(claim, codesets, derived=claim.derived()):
                    ids.append(alert.claim_id)
                    rules.append(alert.rule.value)
                    details.append(alert.detail)
            yield pa.RecordBatch.from_arrays([pa.array(ids, pa.string()), pa.array(rules, pa.string()),
                                              pa.array(details, pa.string())], names=["claim_id", "rule", "detail"])

    return screen


def screen_claims_per_claim(claims: DataFrame, codesets: CodeSets) -> DataFrame:
    """The stream's per-claim screens (`screen_claim`, same function, same input), run where the rows are."""
    return claims.select("claim_json").mapInArrow(_per_claim(codesets), ALERT_SCHEMA)


# ------------------------------------------------------------------------------------------------------ all


def screen_batch_spark(claims: DataFrame, codesets: CodeSets, *, per_claim: bool = True) -> DataFrame:
    """Every screen of libs.fraud.rules.screen_batch over `claims` (claims_frame / silver_claims shape), as one frame
    of (claim_id, rule, detail); one row per claim and rule (the first detail of a claim's rule is kept)."""
    spark = claims.sparkSession
    reference = procedure_reference(spark, codesets)
    frames = [
        screen_exact_duplicates(claims),
        screen_impossible_day(claims, reference),
        screen_upcoding(claims, reference, _specialty_expectations(spark, codesets)),
        screen_unbundling(claims, spark, codesets),
    ]
    if per_claim:
        frames.append(screen_claims_per_claim(claims, codesets))
    alerts = frames[0]
    for frame in frames[1:]:
        alerts = alerts.unionByName(frame)
    return alerts.groupBy("claim_id", "rule").agg(F.min("detail").alias("detail"))
