"""Pure DataFrame functions of the batch job: silver (and quarantine) rows -> frames shaped like the warehouse tables.

Why pure functions: every shape decision (which column feeds which warehouse column, how lists become comma-separated
codes, how a person's ciphertexts are packed) is tested on small static frames without a lake, a broker or a
warehouse. The job (libs.batch.job) only reads the tables, calls these and writes the results.

Column names and order come from libs/warehouse/schema.sql (`table_columns`), never from a second list here: each
frame is finished by `conform`, which fails loudly when a function forgot a column or invented one. Types are cast
to the warehouse's exact types (DECIMAL(14,2), INTEGER, DATE...) so that the Parquet files the loaders read need no
implicit conversion in DuckDB or in a Redshift COPY.

PHI: silver only holds protected values (tokens, ciphertexts, nulls). The claims frame carries member tokens and, per
person, one JSON document of that person's ciphertexts plus the record's wrapped data key, which is all an audited
reveal needs; names, dates of birth or ZIP codes never exist here in clear.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import cache

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812

from libs.codesets import CodeSets
from libs.warehouse.dialect import table_columns

PIPELINE = "batch"
AMOUNT = "decimal(14,2)"
UNITS = "decimal(12,3)"
PROVIDER_ROLES = ("billing_provider", "rendering_provider", "attending_provider", "referring_provider", "facility")
UNKNOWN_SOURCE = "unknown"


class FrameShapeError(ValueError):
    """A frame does not have the columns of the warehouse table it is meant to load."""


@cache
def warehouse_columns() -> dict[str, list[str]]:
    """Column names per warehouse table, in schema.sql order (parsed once)."""
    return table_columns()


def conform(frame: DataFrame, table: str) -> DataFrame:
    """`frame` with exactly the columns of `table`, in schema order; FrameShapeError names any difference."""
    expected = warehouse_columns()[table]
    found = frame.columns
    if sorted(found) != sorted(expected):
        missing = sorted(set(expected) - set(found))
        extra = sorted(set(found) - set(expected))
        msg = f"frame for warehouse table {table}: expected the schema.sql columns, missing {missing}, extra {extra}"
        raise FrameShapeError(msg)
    return frame.select(*expected)


def for_day(frame: DataFrame, day: date | None, timestamp_column: str = "kafka_timestamp") -> DataFrame:
    """Rows received on `day` (UTC date of the Kafka timestamp); all rows when `day` is None (`--all`).

    Tables partitioned by `ingest_date` (that same date) are filtered on it, so only that day's files are read.
    """
    if day is None:
        return frame
    if "ingest_date" in frame.columns:
        return frame.filter(F.col("ingest_date") == F.lit(day))
    return frame.filter(F.to_date(F.col(timestamp_column)) == F.lit(day))


def _codes(array: Column) -> Column:
    """A list of codes as the warehouse stores it: comma-separated, NULL when the list is missing or empty."""
    joined = F.concat_ws(",", array)
    return F.when(F.coalesce(F.size(array), F.lit(0)) > 0, joined)


def phi_ciphertext() -> Column:
    """The claim's sealed PHI block with its wrapped data key, as one JSON document; NULL when nothing was sealed.

    {"sealed": enc:..., "envelope": {...}}: the producer's AES-GCM ciphertext of every encrypted PHI value of the claim,
    bound by AAD to the claim ID, plus the envelope needed to unwrap its data key, so the document can be handed back
    to PhiProtector.reveal (with the claim ID) for an audited re-identification.
    """
    document = F.to_json(F.struct(F.col("phi_sealed").alias("sealed"), F.col("phi_envelope").alias("envelope")))
    return F.when(F.col("phi_sealed").isNotNull(), document)


def _either_person(field: str) -> Column:
    """A person attribute of the patient, else of the subscriber (the patient block is absent when they are one)."""
    return F.coalesce(F.col(f"patient.{field}"), F.col(f"subscriber.{field}"))


def _optional(frame: DataFrame, column: str, data_type: str) -> Column:
    """A silver extra column when the frame has it (frames built from claim files have none), else NULL."""
    value = F.col(column) if column in frame.columns else F.lit(None)
    return value.cast(data_type).alias(column)


def claims_frame(silver: DataFrame, *, alerts: DataFrame | None, batch_run_id: str, raw_topic: str,
                 loaded_at: datetime) -> DataFrame:
    """The `claims` table rows of silver rows; `alerts` (claim_id, rule) fills fraud_codes."""
    diagnoses = F.col("diagnoses")
    frame = silver.select(
        "claim_id", "claim_type", "frequency_code", "original_claim_id",
        F.lit(False).alias("is_voided"),
        *[F.col(f"{role}.npi").alias(f"{role.removesuffix('_provider')}_npi") for role in PROVIDER_ROLES],
        F.col("payer.payer_id").alias("payer_id"),
        "place_of_service", "type_of_bill", "service_date_from", "service_date_to", "admission_date",
        "discharge_date",
        diagnoses[0]["code"].alias("principal_diagnosis_code"),
        diagnoses[0]["system"].alias("diagnosis_system"),
        _codes(F.transform(diagnoses, lambda d: d["code"])).alias("diagnosis_codes"),
        "drg_code",
        F.coalesce(F.size("lines"), F.lit(0)).cast("int").alias("line_count"),
        F.col("total_charge").cast(AMOUNT).alias("total_charge"),
        F.col("allowed_amount").cast(AMOUNT).alias("allowed_amount"),
        F.col("paid_amount").cast(AMOUNT).alias("paid_amount"),
        _either_person("gender").alias("patient_gender"),
        _either_person("address.state").alias("patient_state"),
        _either_person("member_id").alias("member_token"),
        F.col("subscriber.member_id").alias("subscriber_member_token"),
        phi_ciphertext().alias("phi_ciphertext"),
        F.when(F.col("phi_envelope").isNotNull(),
               F.concat_ws("/", "phi_envelope.kek_id", "phi_envelope.kek_version", "phi_envelope.dek_id"))
        .alias("phi_key_id"),
        _codes(F.col("warning_codes")).alias("warning_codes"),
        F.col("source.format").alias("source_format"),
        F.col("source.file").alias("source_file"),
        F.col("source.locator").alias("source_locator"),
        F.col("source.received_date").alias("received_date"),
        F.lit(raw_topic).alias("kafka_topic"),
        F.col("kafka_partition").cast("int").alias("kafka_partition"),
        F.col("kafka_offset").cast("long").alias("kafka_offset"),
        F.lit(batch_run_id).alias("batch_run_id"),
        F.lit(loaded_at).cast("timestamp").alias("loaded_at"),
        # Silver's enrichment (computed at ingest from reference data and phi_derived, never from PHI).
        _optional(silver, "ingest_date", "date"), _optional(silver, "age_band", "string"),
        _optional(silver, "billing_specialty", "string"), _optional(silver, "em_level", "int"),
    )
    if alerts is None:
        frame = frame.withColumn("fraud_codes", F.lit(None).cast("string"))
    else:
        codes = alerts.groupBy("claim_id").agg(
            F.concat_ws(",", F.sort_array(F.collect_set("rule"))).alias("fraud_codes"))
        frame = frame.join(codes, "claim_id", "left")
    return conform(frame, "claims")


def claim_lines_frame(silver: DataFrame, *, loaded_at: datetime) -> DataFrame:
    """The `claim_lines` rows: one per service line; a repeated line number keeps its first line only.

    Validation does not reject repeated line numbers, but they cannot both be stored under the table's key; the
    count of dropped repeats is reported by `duplicate_line_count` so the loss is visible in quality_metrics.
    """
    lines = silver.select("claim_id", F.posexplode("lines").alias("position", "line"))
    first = Window.partitionBy("claim_id", "line.line_number").orderBy("position")
    frame = (
        lines.withColumn("_rank", F.row_number().over(first)).filter(F.col("_rank") == 1)
        .select(
            "claim_id",
            F.col("line.line_number").cast("int").alias("line_number"),
            F.col("line.procedure_code").alias("procedure_code"),
            F.col("line.procedure_system").alias("procedure_system"),
            _codes(F.col("line.modifiers")).alias("modifiers"),
            F.col("line.revenue_code").alias("revenue_code"),
            F.col("line.units").cast(UNITS).alias("units"),
            F.col("line.unit_type").alias("unit_type"),
            F.col("line.charge").cast(AMOUNT).alias("charge"),
            F.col("line.allowed_amount").cast(AMOUNT).alias("allowed_amount"),
            F.col("line.paid_amount").cast(AMOUNT).alias("paid_amount"),
            F.col("line.service_date_from").alias("service_date_from"),
            F.col("line.service_date_to").alias("service_date_to"),
            F.col("line.place_of_service").alias("place_of_service"),
            _codes(F.transform("line.diagnosis_pointers", lambda p: p.cast("string"))).alias("diagnosis_pointers"),
            F.col("line.rendering_provider.npi").alias("rendering_npi"),
            F.col("line.ndc").alias("ndc"),
            F.lit(loaded_at).cast("timestamp").alias("loaded_at"),
        )
    )
    return conform(frame, "claim_lines")


def duplicate_line_count(silver: DataFrame) -> int:
    """Service lines whose line number repeats an earlier line of the same claim (not stored in claim_lines)."""
    lines = silver.select("claim_id", F.explode("lines.line_number").alias("line_number"))
    row = lines.groupBy("claim_id", "line_number").count().agg(F.sum(F.col("count") - 1).alias("repeats")).first()
    return int(row["repeats"] or 0) if row is not None else 0


def providers_frame(silver: DataFrame, *, updated_at: datetime) -> DataFrame:
    """The `providers` rows of every provider on the claims (any role, claim or line level).

    Directory attributes come from the most recent claim naming the provider. claim_count and the service date range
    cover these claims only; the loader recomputes them over the whole warehouse after merging.
    """
    service_from = F.coalesce(F.col("service_date_from"), F.col("first_service_date"))
    service_to = F.coalesce(F.col("service_date_to"), service_from)
    mentions = [
        silver.select("claim_id", F.col(role).alias("p"), service_from.alias("d_from"), service_to.alias("d_to"),
                      "kafka_timestamp")
        for role in PROVIDER_ROLES
    ]
    mentions.append(
        silver.select("claim_id", F.explode("lines").alias("line"), service_from.alias("d_from"),
                      service_to.alias("d_to"), "kafka_timestamp")
        .select("claim_id", F.col("line.rendering_provider").alias("p"), "d_from", "d_to", "kafka_timestamp")
    )
    union = mentions[0]
    for more in mentions[1:]:
        union = union.unionByName(more)
    union = union.filter(F.col("p.npi").isNotNull())
    newest = F.struct("kafka_timestamp", "claim_id")
    frame = union.groupBy(F.col("p.npi").alias("npi")).agg(
        F.max_by("p", newest).alias("p"),
        F.min("d_from").alias("first_service_date"),
        F.max("d_to").alias("last_service_date"),
        F.countDistinct("claim_id").cast("long").alias("claim_count"),
    ).select(
        "npi",
        F.col("p.name").alias("name"),
        F.col("p.entity_type").alias("entity_type"),
        F.col("p.taxonomy").alias("taxonomy"),
        F.col("p.specialty").alias("specialty"),
        F.col("p.address.line1").alias("address_line1"),
        F.col("p.address.city").alias("address_city"),
        F.col("p.address.state").alias("address_state"),
        F.col("p.address.postal_code").alias("address_postal_code"),
        "first_service_date", "last_service_date", "claim_count",
        F.lit(updated_at).cast("timestamp").alias("updated_at"),
    )
    return conform(frame, "providers")


def source_formats(bronze: DataFrame) -> DataFrame:
    """(kafka_topic, kafka_partition, kafka_offset, source_format) of bronze messages; unparseable -> 'unknown'.

    The quarantine table keeps reason codes and Kafka coordinates only (the payload stays in bronze), so the source
    format of a rejected message is read back from its bronze copy.
    """
    value = F.col("value").cast("string")
    return bronze.select(
        "kafka_topic", "kafka_partition", "kafka_offset",
        F.coalesce(F.get_json_object(value, "$.source.format"), F.lit(UNKNOWN_SOURCE)).alias("source_format"),
    )


def quarantine_summary_frame(quarantine: DataFrame, formats: DataFrame, *, updated_at: datetime) -> DataFrame:
    """The `quarantine_summary` rows: quarantined messages per ingest day, reason code and source format.

    Error codes (why the claim was rejected) are counted with severity 'error', warnings carried by the same
    rejected claims with severity 'warning'.
    """
    keys = ["kafka_topic", "kafka_partition", "kafka_offset"]
    located = quarantine.join(formats, keys, "left").withColumn(
        "source_format", F.coalesce("source_format", F.lit(UNKNOWN_SOURCE)))
    codes = located.select(
        "ingest_date", "source_format", "kafka_timestamp",
        F.explode(F.concat(
            F.transform(F.coalesce("reason_codes", F.array()), lambda c: F.struct(c.alias("code"),
                                                                                 F.lit("error").alias("severity"))),
            F.transform(F.coalesce("warning_codes", F.array()), lambda c: F.struct(c.alias("code"),
                                                                                  F.lit("warning").alias("severity"))),
        )).alias("c"),
    )
    frame = codes.groupBy(
        F.col("ingest_date").alias("summary_date"), F.col("c.code").alias("reason_code"), "source_format",
    ).agg(
        F.min("c.severity").alias("severity"),  # 'error' sorts first: a code that was ever an error counts as one
        F.count(F.lit(1)).cast("long").alias("claim_count"),
        F.min("kafka_timestamp").alias("first_seen_at"),
        F.max("kafka_timestamp").alias("last_seen_at"),
    ).withColumn("updated_at", F.lit(updated_at).cast("timestamp"))
    return conform(frame, "quarantine_summary")


def quality_metrics_frame(metrics: list[tuple[str, str, float]], *, spark_frame: DataFrame, batch_run_id: str,
                          window: tuple[datetime | None, datetime | None], recorded_at: datetime) -> DataFrame:
    """The `quality_metrics` rows of one batch run from (metric_name, dimension, value) triples."""
    spark = spark_frame.sparkSession
    rows = [(PIPELINE, batch_run_id, name, dimension, float(value), window[0], window[1], recorded_at)
            for name, dimension, value in metrics]
    schema = ("pipeline string, batch_run_id string, metric_name string, dimension string, metric_value double, "
              "window_start timestamp, window_end timestamp, recorded_at timestamp")
    return conform(spark.createDataFrame(rows, schema), "quality_metrics")


def daily_metrics(silver: DataFrame, quarantine: DataFrame, alerts: DataFrame | None) -> list[tuple[str, str, float]]:
    """The day's aggregates: claims, lines, charges per claim type, quarantine per reason, alerts per rule."""
    metrics: list[tuple[str, str, float]] = []
    per_type = silver.groupBy("claim_type").agg(
        F.count(F.lit(1)).alias("claims"),
        F.sum(F.coalesce(F.size("lines"), F.lit(0))).alias("lines"),
        F.sum("total_charge").alias("charge"),
    ).collect()
    valid = sum(int(row["claims"]) for row in per_type)
    for row in per_type:
        kind = row["claim_type"] or UNKNOWN_SOURCE
        metrics += [("silver_claims", kind, row["claims"]), ("claim_lines", kind, row["lines"] or 0),
                    ("total_charge", kind, float(row["charge"] or 0))]
    reasons = quarantine.select(F.explode("reason_codes").alias("code")).groupBy("code").count().collect()
    quarantined = quarantine.count()
    metrics += [("silver_claims", "", valid), ("quarantined_rows", "", quarantined),
                ("valid_ratio", "", valid / (valid + quarantined) if valid + quarantined else 1.0)]
    metrics += [("quarantined_rows", row["code"], row["count"]) for row in reasons]
    if alerts is not None:
        per_rule = alerts.groupBy("rule").count().collect()
        metrics += [("fraud_alerts", row["rule"], row["count"]) for row in per_rule]
        metrics.append(("fraud_alerts", "", sum(int(row["count"]) for row in per_rule)))
    return metrics


# --------------------------------------------------------------------------------- analytics inputs (issue 11)

MISSING_PREFIX = "MISSING_"


def intake_daily_frame(silver: DataFrame, quarantine: DataFrame, formats: DataFrame, events: DataFrame, *,
                       updated_at: datetime) -> DataFrame:
    """The `intake_daily` rows: per ingest day and source format, valid and quarantined claims, replacements, voids.

    `silver` is the day's silver rows as read (every accepted version, before current_claims), `events` the day's
    claim events (a void is an event, never a silver row).
    """
    located = quarantine.join(formats, ["kafka_topic", "kafka_partition", "kafka_offset"], "left")
    valid = silver.groupBy(F.col("ingest_date").alias("intake_date"),
                           F.coalesce("source_format", F.lit(UNKNOWN_SOURCE)).alias("source_format")).agg(
        F.count(F.lit(1)).alias("valid_claims"),
        F.sum(F.when(F.col("frequency_code") == "7", 1).otherwise(0)).alias("replacements"))
    rejected = located.groupBy(F.col("ingest_date").alias("intake_date"),
                               F.coalesce("source_format", F.lit(UNKNOWN_SOURCE)).alias("source_format")).agg(
        F.count(F.lit(1)).alias("quarantined_claims"))
    voids = events.where(F.col("frequency_code") == "8").select(
        F.col("ingest_date").alias("intake_date"), "claim_id")
    # A void's source format is not on its event; it is counted with the day's first source format of its claim id.
    void_counts = voids.join(silver.select("claim_id", "source_format").distinct(), "claim_id", "left").groupBy(
        "intake_date", F.coalesce("source_format", F.lit(UNKNOWN_SOURCE)).alias("source_format")).agg(
        F.count(F.lit(1)).alias("voids"))
    frame = valid.join(rejected, ["intake_date", "source_format"], "full").join(
        void_counts, ["intake_date", "source_format"], "full").select(
        "intake_date", "source_format",
        *[F.coalesce(F.col(c), F.lit(0)).cast("long").alias(c)
          for c in ("valid_claims", "quarantined_claims", "replacements", "voids")],
        F.lit(updated_at).cast("timestamp").alias("updated_at"))
    return conform(frame, "intake_daily")


def field_quality_frame(silver: DataFrame, quarantine: DataFrame, formats: DataFrame, *,
                        updated_at: datetime) -> DataFrame:
    """The `field_quality` rows: per ingest day, source format and catalogued field, claims whose field was valid,
    invalid or missing (Tuva's data-quality buckets).

    A claim's field is *missing* when a MISSING_* code (error or warning) names it, *invalid* when another error code
    names it, else *valid*; the field of a code is its catalogue field (libs.validation.catalog). Valid claims count
    through their warning codes, quarantined ones through their reason and warning codes. Messages rejected before
    validation (unreadable JSON, wrong types) have no fields and are left out of this table (quarantine_summary has
    them).
    """
    from libs.validation.catalog import RULES, Severity  # noqa: PLC0415  (the catalogue only, no code sets)

    spark = silver.sparkSession
    catalog = spark.createDataFrame(
        [(spec.code.value, spec.field, spec.severity is Severity.ERROR) for spec in RULES],
        "code string, field_name string, is_error boolean")
    fields = catalog.select("field_name").distinct()
    located = quarantine.join(formats, ["kafka_topic", "kafka_partition", "kafka_offset"], "left")
    judged = located.select(
        "ingest_date", F.coalesce("source_format", F.lit(UNKNOWN_SOURCE)).alias("source_format"),
        F.concat_ws("/", "kafka_topic", F.col("kafka_partition").cast("string"),
                    F.col("kafka_offset").cast("string")).alias("record"),
        F.concat(F.coalesce("reason_codes", F.array()), F.coalesce("warning_codes", F.array())).alias("codes"),
        F.coalesce("reason_codes", F.array()).alias("errors"),
    ).unionByName(silver.select(
        "ingest_date", F.coalesce("source_format", F.lit(UNKNOWN_SOURCE)).alias("source_format"),
        F.concat_ws("/", F.lit("silver"), F.col("kafka_partition").cast("string"),
                    F.col("kafka_offset").cast("string")).alias("record"),
        F.coalesce("warning_codes", F.array()).alias("codes"), F.array().cast("array<string>").alias("errors")))
    judged = judged.join(catalog.select(F.col("code").alias("any_code")),
                         F.array_contains("codes", F.col("any_code")), "left_semi").unionByName(
        judged.where(F.size("errors") == 0)).distinct()
    totals = judged.groupBy("ingest_date", "source_format").agg(F.countDistinct("record").alias("claims"))
    findings = judged.select("ingest_date", "source_format", "record", F.explode("codes").alias("code"),
                             "errors").join(F.broadcast(catalog), "code")
    kind = (F.when(F.col("code").startswith(MISSING_PREFIX), F.lit("missing"))
            .when(F.array_contains("errors", F.col("code")) & F.col("is_error"), F.lit("invalid")))
    per_field = findings.select("ingest_date", "source_format", "record", "field_name", kind.alias("kind")).where(
        F.col("kind").isNotNull()).groupBy("ingest_date", "source_format", "field_name").agg(
        F.countDistinct(F.when(F.col("kind") == "missing", F.col("record"))).alias("missing"),
        F.countDistinct(F.when(F.col("kind") == "invalid", F.col("record"))).alias("invalid"))
    frame = totals.crossJoin(F.broadcast(fields)).join(
        per_field, ["ingest_date", "source_format", "field_name"], "left").select(
        F.col("ingest_date").alias("intake_date"), "source_format", "field_name",
        (F.col("claims") - F.coalesce("missing", F.lit(0)) - F.coalesce("invalid", F.lit(0))).cast("long")
        .alias("valid_count"),
        F.coalesce("invalid", F.lit(0)).cast("long").alias("invalid_count"),
        F.coalesce("missing", F.lit(0)).cast("long").alias("missing_count"),
        F.lit(updated_at).cast("timestamp").alias("updated_at"))
    return conform(frame, "field_quality")


def reference_frames(spark_frame: DataFrame, codesets: CodeSets) -> dict[str, DataFrame]:
    """`ref_procedures` and `ref_specialties` from the code sets (small; refreshed by every run)."""
    spark = spark_frame.sparkSession
    procedures = []
    for code, entries in codesets.procedures.entries.items():
        entry = entries[-1]  # the latest row of the code describes it today
        level = entry.extra.get("em_level")
        procedures.append((code, entry.description[:256] or None, entry.extra.get("category") or None,
                           int(level) if level else None))
    specialties = []
    for profile in codesets.specialties:
        weights = profile.em_level_weights
        specialties.append((profile.taxonomy, profile.specialty,
                            float(weights.get(5, 0.0) / (sum(weights.values()) or 1.0))))
    return {
        "ref_procedures": conform(spark.createDataFrame(
            procedures, "procedure_code string, description string, category string, em_level int"),
            "ref_procedures"),
        "ref_specialties": conform(spark.createDataFrame(
            specialties, "taxonomy string, specialty string, expected_level5_share double"), "ref_specialties"),
    }
