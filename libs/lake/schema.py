"""The Spark schema of a protected claim message (the raw topic, silver's `claim` column), derived from the model.

Why derived: the claim model is the one source of truth for field names and types (STYLE: one source per fact). A
hand-written StructType would drift the first time a field is added. The message on the wire is the *protected*
claim: a tokenized PHI leaf holds its token string, encrypted leaves are sealed into the record's `phi_sealed` block
(older records held one ciphertext string per leaf), so PHI leaves become StringType whatever their model type; the
producer's `phi_derived`, `phi_envelope` and `phi_sealed` blocks are appended.

Amounts are parsed into decimals wide enough to keep every cent (and sub-cent inputs, so that the parity with the
Python rules, which compare exact Decimals, holds); codes stay strings so leading zeros survive.
"""

from __future__ import annotations

import types
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pyspark.sql.types import (
    ArrayType,
    DataType,
    DateType,
    DecimalType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from libs.model.claim import PHI_MARKER, Claim

AMOUNT_TYPE = DecimalType(18, 4)
CORRUPT_RECORD_COLUMN = "_corrupt_record"

# The producer's non-identifying derivations and the record's wrapped data key (libs.phi.derived, libs.phi.protector).
PHI_DERIVED_SCHEMA = StructType(
    [
        StructField("patient_age_years", IntegerType()),
        StructField("member_days_after_death", IntegerType()),
        StructField("patient_zip3", StringType()),
    ]
)
PHI_ENVELOPE_SCHEMA = StructType(
    [StructField(name, StringType()) for name in ("dek_id", "provider", "kek_id", "kek_version", "wrapped_dek")]
)


def _unwrap_optional(annotation: Any) -> Any:
    """The type inside `X | None` and inside `Annotated[X, ...]` (constrained types such as libs.model Amount)."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            annotation = args[0]
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def spark_type(annotation: Any) -> DataType:
    """Map a pydantic field annotation to a Spark type."""
    annotation = _unwrap_optional(annotation)
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        return ArrayType(spark_type(item), containsNull=True)
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return model_schema(annotation)
        if issubclass(annotation, Enum | str):
            return StringType()
        if issubclass(annotation, bool):
            msg = "boolean fields are not used in the claim model"
            raise TypeError(msg)
        if issubclass(annotation, int):
            return LongType()
        if issubclass(annotation, Decimal):
            return AMOUNT_TYPE
        if issubclass(annotation, date):
            return DateType()
    msg = f"no Spark type for annotation {annotation!r}"
    raise TypeError(msg)


def model_schema(model: type[BaseModel]) -> StructType:
    """StructType of a model; PHI-marked leaves are strings (they carry tokens or ciphertext)."""
    fields = []
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        data_type = StringType() if PHI_MARKER in extra else spark_type(info.annotation)
        fields.append(StructField(name, data_type, nullable=True))
    return StructType(fields)


def claim_message_schema() -> StructType:
    """Schema `from_json` reads raw messages with: the protected claim, its `phi_*` blocks, a corrupt-record column."""
    base = model_schema(Claim)
    return StructType(
        [
            *base.fields,
            StructField("phi_derived", PHI_DERIVED_SCHEMA),
            StructField("phi_envelope", PHI_ENVELOPE_SCHEMA),
            StructField("phi_sealed", StringType()),
            StructField(CORRUPT_RECORD_COLUMN, StringType()),
        ]
    )
