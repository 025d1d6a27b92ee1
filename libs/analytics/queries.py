# ruff: noqa: S608  (table and column names come from this module; values are always bound parameters)
"""Query functions over the marts: what `claims analytics ...` prints and what the API serves.

Why here: the CLI and the REST API must answer the same question the same way, so each mart has one typed function:
filters as keyword arguments (bound as parameters, never formatted into SQL), pagination by `limit` / `offset`
(a page also says whether more rows follow), a stable order, and plain frozen rows. No row carries PHI: the marts
aggregate member tokens away (libs/analytics/sql/marts.sql).

Every function takes an open DuckDB connection (libs.warehouse.load.connect_duckdb), so a caller chooses the
warehouse file and its lifetime; a mart that was never built raises AnalyticsError saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from typing import Any, Generic, TypeVar

import duckdb

MAX_LIMIT = 1000
T = TypeVar("T")


class AnalyticsError(RuntimeError):
    """A query could not be answered: bad paging arguments or a mart that has not been built yet."""


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of rows; `has_more` is True when a next page (offset + limit) has rows."""

    rows: list[T]
    limit: int
    offset: int
    has_more: bool


@dataclass(frozen=True)
class DailyKpi:
    intake_date: date
    claims: int
    quarantined: int
    valid_ratio: float | None
    replacements: int
    voids: int
    billed_amount: float


@dataclass(frozen=True)
class PmpmRow:
    payer_id: str
    month: date
    member_months: int
    claims: int
    billed: float
    allowed: float
    paid: float
    billed_pmpm: float
    paid_pmpm: float
    em_visits: int
    admissions: int
    ed_visits: int
    em_visits_per_1000: float
    admissions_per_1000: float
    ed_visits_per_1000: float


@dataclass(frozen=True)
class DiagnosisRank:
    month: date
    diagnosis_code: str
    diagnosis_system: str | None
    claims: int
    billed: float | None
    rank: int


@dataclass(frozen=True)
class ProcedureRank:
    month: date
    procedure_code: str
    lines: int
    units: float
    billed: float | None
    rank: int


@dataclass(frozen=True)
class ProviderProfile:
    npi: str
    specialty: str | None
    claims: int
    members: int
    billed: float | None
    billed_per_member: float | None
    em_visits: int
    level5_share: float | None
    expected_level5_share: float | None
    alerted_claims: int


@dataclass(frozen=True)
class QuarantineCount:
    summary_date: date
    reason_code: str
    severity: str
    source_format: str
    claim_count: int


@dataclass(frozen=True)
class FieldQuality:
    source_format: str
    field_name: str
    valid_count: int
    invalid_count: int
    missing_count: int
    valid_share: float | None


def _number(value: Any) -> Any:
    """DECIMAL sums come back as Decimal: plain floats for JSON and tables (amounts keep their cents)."""
    from decimal import Decimal  # noqa: PLC0415

    return float(value) if isinstance(value, Decimal) else value


def _page(connection: duckdb.DuckDBPyConnection, row_type: type[T], table: str, where: dict[str, tuple[str, Any]],
          *, order: str, limit: int, offset: int) -> Page[T]:
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        msg = f"paging: expected 1 <= limit <= {MAX_LIMIT} and offset >= 0, found limit {limit}, offset {offset}"
        raise AnalyticsError(msg)
    columns = [f.name for f in fields(row_type)]  # type: ignore[arg-type]
    clauses = [condition for condition, value in where.values() if value is not None]
    params = [value for _condition, value in where.values() if value is not None]
    sql = (f"SELECT {', '.join(columns)} FROM {table}" + (f" WHERE {' AND '.join(clauses)}" if clauses else "")
           + f" ORDER BY {order} LIMIT ? OFFSET ?")
    try:
        rows = connection.execute(sql, [*params, limit + 1, offset]).fetchall()
    except duckdb.CatalogException as exc:
        msg = f"mart {table} does not exist yet: run the daily batch (claims batch) to build the marts"
        raise AnalyticsError(msg) from exc
    built = [row_type(*[_number(v) for v in row]) for row in rows[:limit]]
    return Page(rows=built, limit=limit, offset=offset, has_more=len(rows) > limit)


def daily_kpis(connection: duckdb.DuckDBPyConnection, *, date_from: date | None = None, date_to: date | None = None,
               limit: int = 100, offset: int = 0) -> Page[DailyKpi]:
    """Claims, billed amount, valid ratio, replacements and voids per intake day, newest first."""
    where = {"from": ("intake_date >= ?", date_from), "to": ("intake_date <= ?", date_to)}
    return _page(connection, DailyKpi, "mart_daily_kpis", where,
                 order="intake_date DESC", limit=limit, offset=offset)


def pmpm(connection: duckdb.DuckDBPyConnection, *, payer_id: str | None = None, month_from: date | None = None,
         month_to: date | None = None, limit: int = 100, offset: int = 0) -> Page[PmpmRow]:
    """PMPM and utilization per 1,000 member months by payer and month (months with eligibility)."""
    where = {"payer": ("payer_id = ?", payer_id), "from": ("month >= ?", month_from), "to": ("month <= ?", month_to)}
    return _page(connection, PmpmRow, "mart_pmpm", where,
                 order="month DESC, payer_id", limit=limit, offset=offset)


def top_diagnoses(connection: duckdb.DuckDBPyConnection, *, month: date | None = None, top: int = 10,
                  limit: int = 100, offset: int = 0) -> Page[DiagnosisRank]:
    """The `top` principal diagnoses of each service month by claim count."""
    where = {"month": ("month = ?", month), "top": ("rank <= ?", top)}
    return _page(connection, DiagnosisRank, "mart_top_diagnoses", where,
                 order="month DESC, rank", limit=limit, offset=offset)


def top_procedures(connection: duckdb.DuckDBPyConnection, *, month: date | None = None, top: int = 10,
                   limit: int = 100, offset: int = 0) -> Page[ProcedureRank]:
    """The `top` procedure codes of each service month by line count."""
    where = {"month": ("month = ?", month), "top": ("rank <= ?", top)}
    return _page(connection, ProcedureRank, "mart_top_procedures", where,
                 order="month DESC, rank", limit=limit, offset=offset)


def provider_profiles(connection: duckdb.DuckDBPyConnection, *, npi: str | None = None,
                      specialty: str | None = None, min_claims: int = 0, limit: int = 100,
                      offset: int = 0) -> Page[ProviderProfile]:
    """Rendering providers: volume, billed per member, level-5 E/M share against the specialty's, alerted claims."""
    where = {"npi": ("npi = ?", npi), "specialty": ("specialty = ?", specialty),
             "min": ("claims >= ?", min_claims or None)}
    return _page(connection, ProviderProfile, "mart_provider_profiles", where,
                 order="claims DESC, npi", limit=limit, offset=offset)


def quarantine_trend(connection: duckdb.DuckDBPyConnection, *, date_from: date | None = None,
                     date_to: date | None = None, reason_code: str | None = None, limit: int = 100,
                     offset: int = 0) -> Page[QuarantineCount]:
    """Quarantined claims per day, reason code and source format, newest first."""
    where = {"from": ("summary_date >= ?", date_from), "to": ("summary_date <= ?", date_to),
             "reason": ("reason_code = ?", reason_code)}
    return _page(connection, QuarantineCount, "mart_quarantine_trend", where,
                 order="summary_date DESC, claim_count DESC, reason_code, source_format", limit=limit, offset=offset)


def data_quality(connection: duckdb.DuckDBPyConnection, *, source_format: str | None = None,
                 field_name: str | None = None, limit: int = 100, offset: int = 0) -> Page[FieldQuality]:
    """Valid / invalid / missing claims per source format and canonical field."""
    where = {"source": ("source_format = ?", source_format), "field": ("field_name = ?", field_name)}
    return _page(connection, FieldQuality, "mart_data_quality", where,
                 order="source_format, field_name", limit=limit, offset=offset)


QUERIES = {
    "daily": daily_kpis, "pmpm": pmpm, "diagnoses": top_diagnoses, "procedures": top_procedures,
    "providers": provider_profiles, "quarantine": quarantine_trend, "quality": data_quality,
}
