"""docs/data-dictionary.md cannot drift from the code: every model field, enum value, reason code and lake column it
is meant to describe must be in it.

Why these checks and not a generated document: the source mappings (X12 loops, FHIR paths, SynPUF columns) are prose
that no code can produce, so the page is written by hand; what code *can* do is fail the build when the model, the PHI
policy, an enum or a table gains something the page does not mention. The field index at the end of the page is
checked row by row (path, defining model, type, PHI kind, protection action); the rest is checked for presence.
"""

from __future__ import annotations

import json
import re
import types
from datetime import date
from decimal import Decimal
from enum import Enum, StrEnum
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
from pydantic import BaseModel
from pyspark.sql import SparkSession

from libs.adapters.canonical import JsonRejectionReason
from libs.adapters.fhir_mapping import FhirRejectionReason
from libs.adapters.synpuf import SynpufRejectionReason
from libs.adapters.x12 import X12Reason
from libs.lake import LakeTables
from libs.lake.schema import PHI_DERIVED_SCHEMA, PHI_ENVELOPE_SCHEMA
from libs.model import phi_fields
from libs.model.claim import (
    PHI_MARKER,
    Claim,
    ClaimType,
    DiagnosisSystem,
    FrequencyCode,
    PhiKind,
    ProcedureSystem,
    SourceFormat,
)
from libs.phi.envelope import ENVELOPE_FIELDS
from libs.settings import LakeSettings
from libs.streaming.check import MessageReason
from libs.streaming.frames import bronze_frame, events_frame, quarantine_frame, silver_frame
from libs.streaming.parse import KAFKA_COLUMNS, check_messages
from libs.streaming.processor import RAW_KAFKA_SCHEMA

REPO_ROOT = Path(__file__).resolve().parents[2]
DICTIONARY = REPO_ROOT / "docs" / "data-dictionary.md"
POLICY = REPO_ROOT / "configs" / "security" / "phi-policy.json"
INDEX_HEADING = "## Appendix: field index"
NOT_PHI = "-"


@pytest.fixture(scope="module")
def text() -> str:
    return DICTIONARY.read_text(encoding="utf-8")


def _ticked(text: str) -> set[str]:
    """Every `code span` of a markdown text."""
    return set(re.findall(r"`([^`]+)`", text))


def _section(text: str, start: str, end: str) -> str:
    """The text from the first line starting with `start` up to the next line starting with `end` (or the end)."""
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.startswith(start)), None)
    assert first is not None, f"docs/data-dictionary.md: expected a line starting with {start!r}, found none"
    last = next((i for i in range(first + 1, len(lines)) if lines[i].startswith(end)), len(lines))
    return "\n".join(lines[first:last])


# ----------------------------------------------------------------------------------------------- model field index


def _unwrap_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            annotation = args[0]
    if get_origin(annotation) is Annotated:  # constrained types (Amount, Count): the base type
        annotation = get_args(annotation)[0]
    return annotation


def _type_name(annotation: Any) -> str:
    """The type as the index spells it: string, integer, decimal, date, enum X, a model name, 'list of ...'."""
    annotation = _unwrap_optional(annotation)
    if get_origin(annotation) is list:
        return f"list of {_type_name(get_args(annotation)[0])}"
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return annotation.__name__
        if issubclass(annotation, Enum):
            return f"enum {annotation.__name__}"
        for python_type, name in ((str, "string"), (int, "integer"), (Decimal, "decimal"), (date, "date")):
            if issubclass(annotation, python_type):
                return name
    raise TypeError(f"no index type name for {annotation!r}; extend _type_name and the dictionary")


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    annotation = _unwrap_optional(annotation)
    if get_origin(annotation) is list:
        annotation = get_args(annotation)[0]
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def model_rows(model: type[BaseModel] = Claim, prefix: str = "", policy_prefix: str = "") -> list[tuple[str, ...]]:
    """(path, defining model, type, PHI kind, action) for every field reachable from `model`, depth first.

    Paths mark lists with `[]` (`lines[].ndc`); the policy file names paths without them, hence `policy_prefix`.
    """
    actions = {path: rule["action"] for path, rule in json.loads(POLICY.read_text(encoding="utf-8"))["fields"].items()}
    rows: list[tuple[str, ...]] = []
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        kind = extra.get(PHI_MARKER)
        action = actions[policy_prefix + name] if kind else NOT_PHI
        rows.append((prefix + name, model.__name__, _type_name(info.annotation), str(kind or NOT_PHI), action))
        nested = _nested_model(info.annotation)
        if nested is not None:
            is_list = get_origin(_unwrap_optional(info.annotation)) is list
            rows.extend(model_rows(nested, f"{prefix}{name}{'[]' if is_list else ''}.", f"{policy_prefix}{name}."))
    return rows


def index_rows(text: str) -> list[tuple[str, ...]]:
    """The rows of the field index table, cells stripped of their backticks."""
    rows = []
    for line in _section(text, INDEX_HEADING, "## ").splitlines():
        if line.startswith("| `"):
            cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
            rows.append(tuple(cells))
    return rows


def test_every_model_field_path_is_in_the_index_with_its_type_and_protection(text: str) -> None:
    documented = index_rows(text)
    expected = model_rows()
    missing = sorted(set(expected) - set(documented))
    stale = sorted(set(documented) - set(expected))
    assert not missing, f"field index rows missing or wrong (path, model, type, PHI kind, action): {missing}"
    assert not stale, f"field index rows that no longer match the model: {stale}"
    assert len(documented) == len(expected), "the field index lists a path twice"


def test_walker_agrees_with_the_models_phi_markers() -> None:
    """The index walk finds exactly the PHI fields libs.model.phi_fields() finds (same paths, same kinds)."""
    walked = {(path.replace("[]", ""), kind) for path, _model, _type, kind, _action in model_rows() if kind != NOT_PHI}
    assert walked == {(field.path, field.kind.value) for field in phi_fields()}


@pytest.mark.parametrize("model", sorted({row[1] for row in model_rows()}))
def test_every_model_has_its_own_section(text: str, model: str) -> None:
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert any(model in heading for heading in headings), f"no '## ...{model}...' section in the data dictionary"


# ------------------------------------------------------------------------------------------- enums and reason codes


@pytest.mark.parametrize(
    "enum",
    [SourceFormat, MessageReason, ClaimType, FrequencyCode, DiagnosisSystem, ProcedureSystem, PhiKind, X12Reason,
     FhirRejectionReason, SynpufRejectionReason, JsonRejectionReason],
    ids=lambda enum: enum.__name__,
)
def test_every_enum_value_is_documented(text: str, enum: type[StrEnum]) -> None:
    missing = [member.value for member in enum if member.value not in _ticked(text)]
    assert not missing, f"{enum.__name__} values missing from docs/data-dictionary.md: {missing}"


def test_message_reasons_are_in_their_own_table(text: str) -> None:
    table = _section(text, "**Message-level codes**", "**Adapter rejection reasons**")
    assert {member.value for member in MessageReason} <= _ticked(table)


# ---------------------------------------------------------------------------------- protected extras and the lake


def test_phi_derived_and_envelope_members_are_documented(text: str) -> None:
    ticked = _ticked(_section(text, "## 11.", "## 12."))
    assert {f"phi_derived.{field.name}" for field in PHI_DERIVED_SCHEMA.fields} <= ticked
    assert {f"phi_envelope.{name}" for name in ENVELOPE_FIELDS} <= ticked
    assert tuple(field.name for field in PHI_ENVELOPE_SCHEMA.fields) == ENVELOPE_FIELDS


def test_lake_tables_and_paths_are_documented(text: str) -> None:
    root = "ROOT"
    tables = LakeTables.from_settings(LakeSettings(root=root))
    section = _ticked(_section(text, "## 13.", "## 14."))
    for name, location in vars(tables).items():
        assert name in section, f"LakeTables.{name} is not in section 13"
        assert location.removeprefix(f"{root}/") in section, f"the path of LakeTables.{name} is not in section 13"


def test_bronze_kafka_columns_are_documented(text: str) -> None:
    assert set(KAFKA_COLUMNS) <= _ticked(_section(text, "**bronze**", "**quarantine**"))


def test_the_sealed_block_is_documented(text: str) -> None:
    assert "phi_sealed" in _ticked(_section(text, "## 11.", "## 12."))


@pytest.mark.spark
def test_every_lake_table_column_is_documented(text: str, spark: SparkSession) -> None:
    """The columns the processor writes (schemas of its frames on an empty batch) against the dictionary."""
    checked = check_messages(spark.createDataFrame([], RAW_KAFKA_SCHEMA), date(2026, 11, 30))
    frames = {
        ("**bronze**", "**quarantine**"): bronze_frame(checked),
        ("**quarantine**", "**claim_events**"): quarantine_frame(checked),
        ("**claim_events**", "**silver**"): events_frame(checked),
        ("**silver**", "## 14."): silver_frame(checked),
    }
    derived = _ticked(_section(text, "## 12.", "## 13."))
    for (start, end), frame in frames.items():
        missing = set(frame.columns) - _ticked(_section(text, start, end)) - derived
        assert not missing, f"{start} columns missing from the data dictionary: {sorted(missing)}"
