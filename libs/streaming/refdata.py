"""Reference data for the Spark path, built from the same versioned code sets the Python rules load.

Why two shapes: small tables (places of service, modifiers, revenue codes, procedures, specialties) become literal
arrays and maps inside expressions, so no join is needed per rule; ICD-10-CM (~98k codes) becomes a broadcast frame
joined once per batch.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812
from pyspark.sql.types import BooleanType, StringType, StructField, StructType

from libs.codesets import CodeSets, CodeTable

FAR_PAST = date(1900, 1, 1)
FAR_FUTURE = date(9999, 12, 31)


def table_literal(table: CodeTable) -> Column:
    """A code table as an array<struct<code, effective_from, effective_to>> literal."""
    return F.array(
        *[
            F.struct(
                F.lit(row.code).alias("code"),
                F.lit(row.effective_from).alias("effective_from"),
                F.lit(row.effective_to or FAR_FUTURE).alias("effective_to"),
            )
            for row in table.rows()
        ]
    )


def in_table(table_lit: Column, code: Column, on: Column | None = None) -> Column:
    """Whether `code` is in the table (in effect on `on` when given; a null date means 'ever valid')."""
    if on is None:
        return F.exists(table_lit, lambda row: row["code"] == code)
    return F.exists(
        table_lit,
        lambda row: (row["code"] == code)
        & (on.isNull() | ((row["effective_from"] <= on) & (on <= row["effective_to"]))),
    )


def string_map(pairs: dict[str, str | None]) -> Column:
    """A map<string,string> literal."""
    items: list[Column] = []
    for key, value in pairs.items():
        items.extend([F.lit(key), F.lit(value)])
    return F.create_map(*items) if items else F.create_map().cast("map<string,string>")


@dataclass(frozen=True)
class SparkRefData:
    """Literal columns and broadcast frames derived from CodeSets."""

    place_of_service: Column
    modifiers: Column
    revenue_codes: Column
    frequency_codes: Column
    tob_facility: Column
    tob_classification: Column
    procedure_em_level: Column
    procedure_median_charge: Column
    procedure_label: Column
    procedure_mue: Column
    specialty_by_taxonomy: Column
    excluded_providers: Column
    icd10: DataFrame


ICD10_SCHEMA = StructType(
    [
        StructField("icd10_code", StringType(), nullable=False),
        StructField("icd10_billable", BooleanType(), nullable=False),
    ]
)


def icd10_parquet(codesets: CodeSets) -> Path:
    """The ICD-10-CM table as a Parquet file (written once per code-set version with pyarrow, which is fast).

    Handing 98k Python tuples to `createDataFrame` costs seconds of Py4J traffic at every query start; a Parquet
    file is read by the JVM directly.
    """
    slug = re.sub(r"[^A-Za-z0-9]+", "-", codesets.icd10cm.version).strip("-")
    path = Path(tempfile.gettempdir()) / "claims-refdata" / f"icd10cm-{slug}.parquet"
    if not path.exists():
        import pyarrow as pa  # noqa: PLC0415
        import pyarrow.parquet as pq  # noqa: PLC0415

        billable = codesets.icd10cm.billable_codes()
        codes = sorted(codesets.icd10cm.all_codes() | billable)
        table = pa.table({"icd10_code": codes, "icd10_billable": [code in billable for code in codes]})
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        pq.write_table(table, partial)
        partial.replace(path)
    return path


def icd10_frame(spark: SparkSession, codesets: CodeSets) -> DataFrame:
    """Every ICD-10-CM code with its billable flag, as a small cached frame for broadcast joins."""
    frame = spark.read.schema(ICD10_SCHEMA).parquet(str(icd10_parquet(codesets)))
    return F.broadcast(frame).cache()


def build_refdata(spark: SparkSession, codesets: CodeSets) -> SparkRefData:
    """All reference data the validation and enrichment expressions need."""
    procedures = list(codesets.procedures.rows())
    return SparkRefData(
        place_of_service=table_literal(codesets.place_of_service),
        modifiers=table_literal(codesets.modifiers),
        revenue_codes=table_literal(codesets.revenue_codes),
        frequency_codes=table_literal(codesets.frequency_codes),
        tob_facility=table_literal(codesets.type_of_bill_facility),
        tob_classification=table_literal(codesets.type_of_bill_classification),
        procedure_em_level=string_map({p.code: p.extra.get("em_level") or None for p in procedures}),
        procedure_median_charge=string_map({p.code: p.extra.get("median_charge") or None for p in procedures}),
        procedure_label=string_map({p.code: p.description for p in procedures}),
        procedure_mue=string_map({r.code: r.extra["max_units"] for r in codesets.mue.rows()}),
        specialty_by_taxonomy=string_map({s.taxonomy: s.specialty for s in codesets.specialties}),
        excluded_providers=table_literal(codesets.excluded_providers),
        icd10=icd10_frame(spark, codesets),
    )
