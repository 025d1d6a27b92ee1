"""Enrichment of valid claims into silver rows, and the stateless fraud screens of the streaming path.

Why here and not in the batch job: analysts query silver for provider specialty, diagnosis descriptions, age band
and E/M level; computing them once at ingest keeps every downstream query simple. All inputs are reference data or
the non-identifying `phi_derived` block, so no PHI is needed to enrich.

Fraud screens that need history (exact duplicates, impossible days, upcoding, unbundling) run in the daily batch
(`libs.fraud.rules`); the ones that a single claim can decide run here and feed `medical-claims-alerts`.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812

from libs.fraud.catalog import FraudCode
from libs.fraud.rules import OUTLIER_FACTOR
from libs.streaming.refdata import SparkRefData, in_table

OUTLIER_CHARGE_FACTOR = int(OUTLIER_FACTOR)


def _age_band(age: Column) -> Column:
    return (
        F.when(age.isNull(), F.lit("unknown"))
        .when(age < 18, F.lit("0-17"))
        .when(age < 35, F.lit("18-34"))
        .when(age < 50, F.lit("35-49"))
        .when(age < 65, F.lit("50-64"))
        .when(age < 80, F.lit("65-79"))
        .otherwise(F.lit("80+"))
    )


def first_service_date(claim: Column) -> Column:
    """Header from date, else the earliest line date."""
    line_min = F.array_min(F.transform(claim["lines"], lambda line: line["service_date_from"]))
    return F.coalesce(claim["service_date_from"], line_min)


def enrichment_columns(ref: SparkRefData) -> list[Column]:
    """The derived, non-identifying analytics columns of a valid claim (reads the `claim` struct column)."""
    claim = F.col("claim")
    lines = claim["lines"]
    em_levels = F.transform(lines, lambda line: ref.procedure_em_level[line["procedure_code"]].cast("int"))
    return [
        F.coalesce(ref.specialty_by_taxonomy[claim["billing_provider"]["taxonomy"]], F.lit("unknown")).alias(
            "billing_specialty"
        ),
        claim["diagnoses"][0]["code"].alias("principal_diagnosis"),
        F.size(F.coalesce(lines, F.array())).alias("line_count"),
        F.aggregate(
            lines,
            F.lit(0).cast("decimal(18,4)"),
            lambda acc, line: (acc + F.coalesce(line["units"], F.lit(0))).cast("decimal(18,4)"),
        ).alias("total_units"),
        F.array_max(em_levels).alias("em_level"),
        _age_band(claim["phi_derived"]["patient_age_years"]).alias("age_band"),
        first_service_date(claim).alias("first_service_date"),
        F.date_format(first_service_date(claim), "yyyy-MM").alias("service_month"),
        F.current_timestamp().alias("processed_at"),
    ]


def enrich_claims(valid: DataFrame, ref: SparkRefData) -> DataFrame:
    """Silver rows: the protected claim's columns plus the enrichment columns and Kafka coordinates."""
    enriched = valid.select(
        "claim.*",
        F.col("kafka_partition"),
        F.col("kafka_offset"),
        F.col("kafka_timestamp"),
        F.col("warning_codes"),
        *enrichment_columns(ref),
    )
    return enriched.drop("_corrupt_record")


def processed_messages(valid: DataFrame, ref: SparkRefData) -> DataFrame:
    """Values for `medical-claims-processed`: the claim as received plus its enrichment, keyed by claim id.

    The claim JSON is spliced in as received rather than re-serialised from the parsed struct: the bytes are already
    the protected claim, and re-encoding every nested field would double the JSON work of a batch.
    """
    enrichment = F.to_json(F.struct(*enrichment_columns(ref), F.col("warning_codes")))
    value = F.concat(F.lit('{"claim":'), F.col("value").cast("string"), F.lit(',"enrichment":'), enrichment,
                     F.lit("}"))
    return valid.select(F.col("claim.claim_id").alias("key"), value.cast("binary").alias("value"))


def _npis(claim: Column) -> Column:
    header = F.array(claim["billing_provider"]["npi"], claim["rendering_provider"]["npi"])
    line_npis = F.transform(claim["lines"], lambda line: line["rendering_provider"]["npi"])
    return F.filter(F.array_distinct(F.concat(header, F.coalesce(line_npis, F.array()))), lambda n: n.isNotNull())


def stateless_alerts(valid: DataFrame, ref: SparkRefData) -> DataFrame:
    """Alerts a single claim can decide: excluded provider, service after death, outlier charge, excess units.

    Returns one row per alert: claim_id, rule, detail (codes and amounts only, never PHI), kafka partition/offset.
    """
    claim = F.col("claim")
    service_date = first_service_date(claim)
    excluded = F.exists(_npis(claim), lambda npi: in_table(ref.excluded_providers, npi, service_date))
    after_death = F.coalesce(claim["phi_derived"]["member_days_after_death"] > 0, F.lit(False))
    def per_unit(line: Column) -> Column:
        units = F.when(line["units"] > 0, line["units"]).otherwise(F.lit(1))
        return line["charge"] / units

    # Same screen as libs.fraud.rules.screen_outlier_charge: charge per unit above OUTLIER_FACTOR x the median.
    outlier = F.exists(
        claim["lines"],
        lambda line: (line["charge"] > 0)
        & (per_unit(line) > ref.procedure_median_charge[line["procedure_code"]].cast("decimal(18,4)")
           * OUTLIER_CHARGE_FACTOR),
    )
    excess = F.exists(
        claim["lines"], lambda line: line["units"] > ref.procedure_mue[line["procedure_code"]].cast("decimal(18,4)")
    )
    candidates = F.array(
        F.when(excluded, F.struct(F.lit(FraudCode.EXCLUDED_PROVIDER.value).alias("rule"),
                                  F.lit("billing or rendering NPI on the excluded-provider list").alias("detail"))),
        F.when(after_death, F.struct(F.lit(FraudCode.SERVICE_AFTER_DEATH.value).alias("rule"),
                                     F.lit("service date after the member's date of death").alias("detail"))),
        F.when(outlier, F.struct(F.lit(FraudCode.OUTLIER_CHARGE.value).alias("rule"),
                                 F.lit(f"a charge per unit above {OUTLIER_CHARGE_FACTOR}x the procedure median")
                                 .alias("detail"))),
        F.when(excess, F.struct(F.lit(FraudCode.EXCESS_UNITS.value).alias("rule"),
                                F.lit("units above the MUE limit").alias("detail"))),
    )
    alerts = valid.filter(claim["frequency_code"] != "8").select(
        claim["claim_id"].alias("claim_id"),
        "kafka_partition",
        "kafka_offset",
        F.explode(F.filter(candidates, lambda a: a.isNotNull())).alias("alert"),
    )
    return alerts.select("claim_id", "kafka_partition", "kafka_offset", "alert.rule", "alert.detail")
