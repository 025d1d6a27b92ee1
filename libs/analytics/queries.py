# ruff: noqa: S608  (table and column names come from this module; values are always bound parameters)
"""Query functions over the marts: what `claims analytics ...` prints and what the API serves.

Why here: the CLI and the REST API must answer the same question the same way, so each mart has one typed function:
filters as keyword arguments (bound as parameters, never formatted into SQL), pagination by `limit` / `offset`
(a page also says whether more rows follow), a stable order, and plain frozen rows. No row carries PHI: the marts
aggregate member tokens away (libs/analytics/sql/marts.sql).

Every function takes an open read connection, so a caller chooses the warehouse and its lifetime: DuckDB
(libs.warehouse.load.connect_duckdb) locally, Redshift through the Data API in AWS
(libs.warehouse.redshift_query.RedshiftQueryConnection, which transpiles these DuckDB-dialect statements). The SQL keeps
to what both engines run the same way (no UNNEST of lists, no DuckDB-only functions); a test runs every function on
both and compares the pages. A mart or table that was never built raises AnalyticsError saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from typing import Any, Generic, Protocol, TypeVar

import duckdb

from libs.fraud.catalog import FRAUD_RULES
from libs.warehouse.redshift_query import RedshiftMissingTableError

MAX_LIMIT = 1000
MISSING_TABLE_ERRORS = (duckdb.CatalogException, RedshiftMissingTableError)


class Rows(Protocol):
    def fetchall(self) -> list[Any]: ...


class ReadConnection(Protocol):
    """What the query functions need of a warehouse: DuckDB's connection, or RedshiftQueryConnection."""

    def execute(self, query: str, parameters: Any = ..., /) -> Rows: ...
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


def _page(connection: ReadConnection, row_type: type[T], table: str, where: dict[str, tuple[str, Any]],
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
    except MISSING_TABLE_ERRORS as exc:
        msg = f"mart {table} does not exist yet: run the daily batch (claims batch) to build the marts"
        raise AnalyticsError(msg) from exc
    built = [row_type(*[_number(v) for v in row]) for row in rows[:limit]]
    return Page(rows=built, limit=limit, offset=offset, has_more=len(rows) > limit)


def daily_kpis(connection: ReadConnection, *, date_from: date | None = None, date_to: date | None = None,
               limit: int = 100, offset: int = 0) -> Page[DailyKpi]:
    """Claims, billed amount, valid ratio, replacements and voids per intake day, newest first."""
    where = {"from": ("intake_date >= ?", date_from), "to": ("intake_date <= ?", date_to)}
    return _page(connection, DailyKpi, "mart_daily_kpis", where,
                 order="intake_date DESC", limit=limit, offset=offset)


def pmpm(connection: ReadConnection, *, payer_id: str | None = None, month_from: date | None = None,
         month_to: date | None = None, limit: int = 100, offset: int = 0) -> Page[PmpmRow]:
    """PMPM and utilization per 1,000 member months by payer and month (months with eligibility)."""
    where = {"payer": ("payer_id = ?", payer_id), "from": ("month >= ?", month_from), "to": ("month <= ?", month_to)}
    return _page(connection, PmpmRow, "mart_pmpm", where,
                 order="month DESC, payer_id", limit=limit, offset=offset)


def top_diagnoses(connection: ReadConnection, *, month: date | None = None, top: int = 10,
                  limit: int = 100, offset: int = 0) -> Page[DiagnosisRank]:
    """The `top` principal diagnoses of each service month by claim count."""
    where = {"month": ("month = ?", month), "top": ("rank <= ?", top)}
    return _page(connection, DiagnosisRank, "mart_top_diagnoses", where,
                 order="month DESC, rank", limit=limit, offset=offset)


def top_procedures(connection: ReadConnection, *, month: date | None = None, top: int = 10,
                   limit: int = 100, offset: int = 0) -> Page[ProcedureRank]:
    """The `top` procedure codes of each service month by line count."""
    where = {"month": ("month = ?", month), "top": ("rank <= ?", top)}
    return _page(connection, ProcedureRank, "mart_top_procedures", where,
                 order="month DESC, rank", limit=limit, offset=offset)


def provider_profiles(connection: ReadConnection, *, npi: str | None = None,
                      specialty: str | None = None, min_claims: int = 0, limit: int = 100,
                      offset: int = 0) -> Page[ProviderProfile]:
    """Rendering providers: volume, billed per member, level-5 E/M share against the specialty's, alerted claims."""
    where = {"npi": ("npi = ?", npi), "specialty": ("specialty = ?", specialty),
             "min": ("claims >= ?", min_claims or None)}
    return _page(connection, ProviderProfile, "mart_provider_profiles", where,
                 order="claims DESC, npi", limit=limit, offset=offset)


def quarantine_trend(connection: ReadConnection, *, date_from: date | None = None,
                     date_to: date | None = None, reason_code: str | None = None, limit: int = 100,
                     offset: int = 0) -> Page[QuarantineCount]:
    """Quarantined claims per day, reason code and source format, newest first."""
    where = {"from": ("summary_date >= ?", date_from), "to": ("summary_date <= ?", date_to),
             "reason": ("reason_code = ?", reason_code)}
    return _page(connection, QuarantineCount, "mart_quarantine_trend", where,
                 order="summary_date DESC, claim_count DESC, reason_code, source_format", limit=limit, offset=offset)


def data_quality(connection: ReadConnection, *, source_format: str | None = None,
                 field_name: str | None = None, limit: int = 100, offset: int = 0) -> Page[FieldQuality]:
    """Valid / invalid / missing claims per source format and canonical field."""
    where = {"source": ("source_format = ?", source_format), "field": ("field_name = ?", field_name)}
    return _page(connection, FieldQuality, "mart_data_quality", where,
                 order="source_format, field_name", limit=limit, offset=offset)


QUERIES = {
    "daily": daily_kpis, "pmpm": pmpm, "diagnoses": top_diagnoses, "procedures": top_procedures,
    "providers": provider_profiles, "quarantine": quarantine_trend, "quality": data_quality,
}


# ------------------------------------------------------------------------------------------------ API queries (issue 9)
# The REST API's /v1/analytics routes and the dashboard read these. They group the warehouse tables the batch loads
# (claims, intake_daily, quarantine_summary) at the grains the routes answer, which no mart has: claims by day, claim
# type and payer; billing (not rendering) providers; fraud alerts by rule and day. Each aggregates member tokens away,
# counts standing claims only (voided claims count nowhere, as in the marts), binds every filter as a parameter and
# pages with a stable order. DuckDB dialect; the claims' `fraud_codes` list is split with string_split / UNNEST.

BUILD_HINT = "run the daily batch (claims batch --date YYYY-MM-DD) to build it"


@dataclass(frozen=True)
class ClaimsSummaryRow:
    """Standing claims and billed amount of one intake day, claim type and payer; `valid_ratio` is the whole day's
    (valid / (valid + quarantined) claims), since a quarantined claim's type and payer cannot be trusted."""

    intake_date: date
    claim_type: str
    payer_id: str | None
    claims: int
    billed_amount: float
    valid_ratio: float | None


@dataclass(frozen=True)
class BillingProviderRow:
    """One billing provider over the chosen days: standing claims, billed amount, claims with a fraud alert and
    alerts (one per claim and rule)."""

    npi: str
    specialty: str | None
    claims: int
    billed_amount: float
    alerted_claims: int
    alerts: int


@dataclass(frozen=True)
class ReasonCount:
    """Quarantined claims under one reason code (a claim with two codes counts under both)."""

    reason_code: str
    severity: str
    claim_count: int


@dataclass(frozen=True)
class QualityRow:
    """Valid and quarantined claims of one intake day and source format, and its `top` reason codes."""

    intake_date: date
    source_format: str
    valid_claims: int
    quarantined_claims: int
    valid_ratio: float | None
    top_reasons: tuple[ReasonCount, ...]


@dataclass(frozen=True)
class FraudAlertCount:
    """Standing claims alerted under one fraud rule on one intake day, and what they billed."""

    intake_date: date
    rule: str
    alerts: int
    billed_amount: float


MAX_TOP_REASONS = 20
PROVIDER_ORDERS = {"billed": "billed_amount DESC, npi", "claims": "claims DESC, npi", "alerts": "alerts DESC, npi"}


def _check_paging(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        msg = f"paging: expected 1 <= limit <= {MAX_LIMIT} and offset >= 0, found limit {limit}, offset {offset}"
        raise AnalyticsError(msg)


def _filters(conditions: list[tuple[str, Any]]) -> tuple[str, list[Any]]:
    """`AND`-joined conditions whose value is not None, and their parameters."""
    used = [(condition, value) for condition, value in conditions if value is not None]
    return "".join(f" AND {condition}" for condition, _ in used), [value for _, value in used]


def _fetch_page(connection: ReadConnection, row_type: type[T], what: str, sql: str, params: list[Any],
                *, limit: int, offset: int) -> Page[T]:
    """Run `sql` (ending in ORDER BY, without LIMIT) for one page; a missing table says how to build it."""
    _check_paging(limit, offset)
    try:
        rows = connection.execute(f"{sql} LIMIT ? OFFSET ?", [*params, limit + 1, offset]).fetchall()
    except MISSING_TABLE_ERRORS as exc:
        msg = f"{what}: a warehouse table is missing ({str(exc).splitlines()[0]}); {BUILD_HINT}"
        raise AnalyticsError(msg) from exc
    built = [row_type(*[_number(v) for v in row]) for row in rows[:limit]]
    return Page(rows=built, limit=limit, offset=offset, has_more=len(rows) > limit)


def claims_summary(connection: ReadConnection, *, date_from: date | None = None,
                   date_to: date | None = None, claim_type: str | None = None, payer_id: str | None = None,
                   limit: int = 100, offset: int = 0) -> Page[ClaimsSummaryRow]:
    """Standing claims and billed amount by intake day, claim type and payer, with the day's valid ratio; newest
    day first."""
    where, params = _filters([("ingest_date >= ?", date_from), ("ingest_date <= ?", date_to),
                              ("claim_type = ?", claim_type), ("payer_id = ?", payer_id)])
    day_where, day_params = _filters([("intake_date >= ?", date_from), ("intake_date <= ?", date_to)])
    sql = f"""
        WITH standing AS (
            SELECT ingest_date AS intake_date, claim_type, payer_id, COUNT(*) AS claims,
                   COALESCE(SUM(total_charge), 0) AS billed_amount
            FROM claims WHERE is_voided = FALSE AND ingest_date IS NOT NULL{where}
            GROUP BY ingest_date, claim_type, payer_id
        ), days AS (
            SELECT intake_date, CAST(SUM(valid_claims) AS DOUBLE)
                       / NULLIF(SUM(valid_claims) + SUM(quarantined_claims), 0) AS valid_ratio
            FROM intake_daily WHERE TRUE{day_where} GROUP BY intake_date
        )
        SELECT s.intake_date, s.claim_type, s.payer_id, s.claims, s.billed_amount, d.valid_ratio
        FROM standing AS s LEFT JOIN days AS d ON d.intake_date = s.intake_date
        ORDER BY s.intake_date DESC, s.claim_type, s.payer_id NULLS LAST"""
    return _fetch_page(connection, ClaimsSummaryRow, "claims summary", sql, [*params, *day_params],
                       limit=limit, offset=offset)


def billing_providers(connection: ReadConnection, *, date_from: date | None = None,
                      date_to: date | None = None, min_claims: int = 0, order_by: str = "billed", limit: int = 20,
                      offset: int = 0) -> Page[BillingProviderRow]:
    """The top billing providers of the intake days chosen, by billed amount (or claims, or alerts)."""
    if order_by not in PROVIDER_ORDERS:
        msg = f"order_by: expected one of {', '.join(PROVIDER_ORDERS)}, found {order_by!r}"
        raise AnalyticsError(msg)
    where, params = _filters([("c.ingest_date >= ?", date_from), ("c.ingest_date <= ?", date_to)])
    sql = f"""
        SELECT b.npi, p.specialty, b.claims, b.billed_amount, b.alerted_claims, b.alerts
        FROM (
            SELECT c.billing_npi AS npi, COUNT(*) AS claims, COALESCE(SUM(c.total_charge), 0) AS billed_amount,
                   SUM(CASE WHEN COALESCE(c.fraud_codes, '') <> '' THEN 1 ELSE 0 END) AS alerted_claims,
                   SUM(CASE WHEN COALESCE(c.fraud_codes, '') <> ''
                            THEN LENGTH(c.fraud_codes) - LENGTH(REPLACE(c.fraud_codes, ',', '')) + 1
                            ELSE 0 END) AS alerts
            FROM claims AS c
            WHERE c.is_voided = FALSE AND c.billing_npi IS NOT NULL{where}
            GROUP BY c.billing_npi
        ) AS b
        LEFT JOIN providers AS p ON p.npi = b.npi
        WHERE b.claims >= ?
        ORDER BY {PROVIDER_ORDERS[order_by]}"""
    return _fetch_page(connection, BillingProviderRow, "billing providers", sql, [*params, min_claims],
                       limit=limit, offset=offset)


def _top_reasons(connection: ReadConnection, keys: list[tuple[date, str]],
                 top: int) -> dict[tuple[date, str], tuple[ReasonCount, ...]]:
    """The `top` reason codes of each (day, source format) of `keys`, most claims first (one query for the page:
    the page's day range and formats select the rows, the keys keep the pairs the page has)."""
    if not keys:
        return {}
    formats = sorted({source for _, source in keys})
    sql = f"""
        SELECT summary_date, source_format, reason_code, severity, claim_count FROM (
            SELECT summary_date, source_format, reason_code, severity, claim_count,
                   ROW_NUMBER() OVER (PARTITION BY summary_date, source_format
                                      ORDER BY claim_count DESC, reason_code) AS rank
            FROM quarantine_summary
            WHERE summary_date >= ? AND summary_date <= ? AND source_format IN ({", ".join("?" for _ in formats)})
        ) AS ranked WHERE rank <= ? ORDER BY summary_date, source_format, rank"""
    params = [min(day for day, _ in keys), max(day for day, _ in keys), *formats, top]
    wanted = set(keys)
    found: dict[tuple[date, str], list[ReasonCount]] = {}
    for day, source, code, severity, count in connection.execute(sql, params).fetchall():
        if (day, source) in wanted:
            found.setdefault((day, source), []).append(ReasonCount(code, severity, int(count)))
    return {key: tuple(reasons) for key, reasons in found.items()}


def quality_by_day(connection: ReadConnection, *, date_from: date | None = None,
                   date_to: date | None = None, source_format: str | None = None, top: int = 3, limit: int = 100,
                   offset: int = 0) -> Page[QualityRow]:
    """Valid ratio and the `top` quarantine reason codes by intake day and source format; newest day first."""
    if not 0 <= top <= MAX_TOP_REASONS:
        msg = f"top: expected 0 to {MAX_TOP_REASONS} reason codes per row, found {top}"
        raise AnalyticsError(msg)
    where, params = _filters([("intake_date >= ?", date_from), ("intake_date <= ?", date_to),
                              ("source_format = ?", source_format)])
    sql = f"""
        SELECT intake_date, source_format, SUM(valid_claims) AS valid_claims,
               SUM(quarantined_claims) AS quarantined_claims,
               CAST(SUM(valid_claims) AS DOUBLE) / NULLIF(SUM(valid_claims) + SUM(quarantined_claims), 0),
               NULL AS top_reasons
        FROM intake_daily WHERE TRUE{where}
        GROUP BY intake_date, source_format
        ORDER BY intake_date DESC, source_format"""
    page = _fetch_page(connection, QualityRow, "data quality", sql, params, limit=limit, offset=offset)
    reasons = _top_reasons(connection, [(row.intake_date, row.source_format) for row in page.rows], top) if top else {}
    rows = [QualityRow(row.intake_date, row.source_format, row.valid_claims, row.quarantined_claims, row.valid_ratio,
                       reasons.get((row.intake_date, row.source_format), ())) for row in page.rows]
    return Page(rows=rows, limit=page.limit, offset=page.offset, has_more=page.has_more)


def _code_positions() -> str:
    """A one-column table n = 1..len(FRAUD_RULES): the positions of fraud_codes' comma-separated codes.

    Why not UNNEST(STRING_SPLIT(...)): Redshift has no list type to unnest; SPLIT_PART by position runs the same on
    both warehouses. fraud_codes holds each rule at most once (the batch collects a set), so a claim has at most
    len(FRAUD_RULES) codes and every one is reached.
    """
    return " UNION ALL ".join(f"SELECT {n} AS n" for n in range(1, len(FRAUD_RULES) + 1))


def fraud_alerts_by_rule(connection: ReadConnection, *, date_from: date | None = None,
                         date_to: date | None = None, rule: str | None = None, limit: int = 100,
                         offset: int = 0) -> Page[FraudAlertCount]:
    """Standing claims alerted per fraud rule and intake day (from the claims' fraud_codes); newest day first."""
    where, params = _filters([("ingest_date >= ?", date_from), ("ingest_date <= ?", date_to)])
    rule_where, rule_params = _filters([("rule = ?", rule)])
    sql = f"""
        SELECT intake_date, rule, COUNT(*) AS alerts, COALESCE(SUM(total_charge), 0) AS billed_amount
        FROM (
            SELECT c.ingest_date AS intake_date, c.total_charge, TRIM(SPLIT_PART(c.fraud_codes, ',', p.n)) AS rule
            FROM claims AS c CROSS JOIN ({_code_positions()}) AS p
            WHERE c.is_voided = FALSE AND c.ingest_date IS NOT NULL AND COALESCE(c.fraud_codes, '') <> ''{where}
        ) AS alerted
        WHERE rule <> ''{rule_where}
        GROUP BY intake_date, rule
        ORDER BY intake_date DESC, alerts DESC, rule"""
    return _fetch_page(connection, FraudAlertCount, "fraud alerts", sql, [*params, *rule_params],
                       limit=limit, offset=offset)


API_QUERIES = {"summary": claims_summary, "providers": billing_providers, "quality": quality_by_day,
               "fraud": fraud_alerts_by_rule}
"""The REST API's analytics routes (/v1/analytics/<name>) -> their query functions."""
