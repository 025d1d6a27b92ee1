"""Read queries on Redshift through the Data API, behind the same `execute(sql, params).fetchall()` the analytics
query functions use on DuckDB.

Why: the CLI and the REST API answer analytics questions with one set of query functions (libs.analytics.queries),
written once in DuckDB's dialect with `?` parameters. In AWS the warehouse is Redshift, reachable only through the Data
API (private subnets, IAM). This connection transpiles each statement with sqlglot (as the daily batch's load does
for the marts), binds the values as Data API named parameters, polls the statement and decodes the typed result
fields back into the Python values DuckDB would have returned (dates, decimals, timestamps), so every query function
serves both warehouses unchanged.

Binding: strings are named parameters (`:p1`, never formatted into the SQL); dates and floats are parameters with an
explicit CAST (the Data API sends every value as text); ints are written as literals, because they are exact and
Redshift does not take a parameter in LIMIT/OFFSET.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp, tokens

from libs.settings import AwsSettings, WarehouseSettings
from libs.warehouse.redshift import RedshiftTarget, wait_for_statement

if TYPE_CHECKING:
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient
    from mypy_boto3_redshift_data.type_defs import FieldTypeDef, SqlParameterTypeDef

QUERY_TIMEOUT_SECONDS = 30.0
"""An analytics read that takes longer is a problem to report, not to wait for (the API answers 503)."""

_MISSING_RELATION = re.compile(r'relation "?([\w.]+)"? does not exist', re.IGNORECASE)


class RedshiftQueryError(RuntimeError):
    """A read on Redshift failed, was aborted or timed out; the message names the statement and cluster."""


class RedshiftMissingTableError(RedshiftQueryError):
    """The statement names a table the warehouse does not have yet (Redshift: relation "x" does not exist)."""


@functools.lru_cache(maxsize=256)
def _named(sql: str) -> exp.Expr:
    """`sql` (DuckDB dialect, `?` parameters) parsed, its parameters named p1..pN in the order they appear."""
    placeholders = [token for token in sqlglot.Dialect.get_or_raise("duckdb").tokenize(sql)
                    if token.token_type == tokens.TokenType.PLACEHOLDER]
    pieces, start = [], 0
    for number, token in enumerate(placeholders, 1):
        pieces += [sql[start:token.start], f"$p{number}"]
        start = token.end + 1
    pieces.append(sql[start:])
    return sqlglot.parse_one("".join(pieces), read="duckdb")


def redshift_statement(sql: str, params: Sequence[Any]) -> tuple[str, list[SqlParameterTypeDef]]:
    """The Redshift text of a DuckDB-dialect statement and its Data API parameters (see the module docstring)."""
    tree = _named(sql).copy()
    placeholders = list(tree.find_all(exp.Placeholder))
    if len(placeholders) != len(params):
        msg = f"expected {len(placeholders)} parameters for the statement, found {len(params)}"
        raise ValueError(msg)
    bound: list[SqlParameterTypeDef] = []
    for placeholder in placeholders:
        name = str(placeholder.name)
        value = params[int(name[1:]) - 1]
        placeholder.replace(_bind(name, value, bound))
    return tree.sql(dialect="redshift"), sorted(bound, key=lambda parameter: int(parameter["name"][1:]))


def _bind(name: str, value: Any, bound: list[SqlParameterTypeDef]) -> exp.Expression:
    if isinstance(value, bool) or value is None:
        return exp.Boolean(this=value) if value is not None else exp.Null()
    if isinstance(value, int):
        return exp.Literal.number(value)
    parameter = exp.Var(this=f":{name}")
    if isinstance(value, str):
        bound.append({"name": name, "value": value})
        return parameter
    if isinstance(value, dt.datetime):
        bound.append({"name": name, "value": value.isoformat(sep=" ")})
        return exp.Cast(this=parameter, to=exp.DataType.build("TIMESTAMP"))
    if isinstance(value, dt.date):
        bound.append({"name": name, "value": value.isoformat()})
        return exp.Cast(this=parameter, to=exp.DataType.build("DATE"))
    if isinstance(value, float | Decimal):
        bound.append({"name": name, "value": str(value)})
        return exp.Cast(this=parameter, to=exp.DataType.build("DOUBLE PRECISION"))
    msg = f"parameter {name}: expected str, int, float, date or datetime, found {type(value).__name__}"
    raise TypeError(msg)


_TEXT_DECODERS: dict[str, Callable[[str], Any]] = {
    "date": dt.date.fromisoformat, "timestamp": dt.datetime.fromisoformat, "timestamptz": dt.datetime.fromisoformat,
    "numeric": Decimal, "decimal": Decimal,
}
"""Column types the Data API sends as text, and how DuckDB would have returned them."""


def _decode(field: FieldTypeDef, type_name: str) -> Any:
    """One Data API result field as the Python value DuckDB returns for the same column type."""
    if field.get("isNull"):
        return None
    for key in ("longValue", "doubleValue", "booleanValue"):
        if key in field:
            return field[key]  # type: ignore[literal-required]
    text = field.get("stringValue")
    decoder = _TEXT_DECODERS.get(type_name.lower())
    return decoder(text) if text is not None and decoder is not None else text


class RedshiftRows:
    """The rows of one finished statement (what `execute` returns)."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._rows = rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows


class RedshiftQueryConnection:
    """`execute(sql, params).fetchall()` on Redshift through the Data API, for DuckDB-dialect read statements."""

    def __init__(self, client: RedshiftDataAPIServiceClient, target: RedshiftTarget, *,
                 timeout_seconds: float = QUERY_TIMEOUT_SECONDS, poll_seconds: float = 0.05,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self._target = target
        self._timeout = timeout_seconds
        self._poll = poll_seconds
        self._sleep = sleep
        self._clock = clock

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> RedshiftRows:
        text, bound = redshift_statement(sql, parameters)
        target = self._target
        request: dict[str, Any] = {"ClusterIdentifier": target.cluster_identifier, "Database": target.database,
                                   "SecretArn": target.secret_arn, "Sql": text, "StatementName": "claims-api-read"}
        if bound:
            request["Parameters"] = bound
        statement_id = self.client.execute_statement(**request)["Id"]
        what = f"Redshift read (id {statement_id}) on cluster {target.cluster_identifier}"
        try:
            wait_for_statement(self.client, statement_id, what=what, error=RedshiftQueryError,
                               poll_seconds=self._poll, timeout_seconds=self._timeout, max_delay=0.5,
                               sleep=self._sleep, clock=self._clock)
        except RedshiftQueryError as exc:
            missing = _MISSING_RELATION.search(str(exc))
            if missing:
                msg = f"Redshift has no table {missing.group(1)} yet (cluster {target.cluster_identifier})"
                raise RedshiftMissingTableError(msg) from None
            raise
        return RedshiftRows(self._result(statement_id))

    def _result(self, statement_id: str) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        token: str | None = None
        while True:
            page = (self.client.get_statement_result(Id=statement_id, NextToken=token) if token
                    else self.client.get_statement_result(Id=statement_id))
            types = [column.get("typeName", "") for column in page.get("ColumnMetadata", [])]
            rows.extend(tuple(_decode(field, type_name) for field, type_name in zip(record, types, strict=True))
                        for record in page["Records"])
            token = page.get("NextToken")
            if not token:
                return rows


class RedshiftNotConfiguredError(RedshiftQueryError):
    """The settings name no cluster or admin secret (stack outputs missing from the app config)."""


def redshift_read_connection(warehouse: WarehouseSettings, aws: AwsSettings,
                             client: RedshiftDataAPIServiceClient | None = None) -> RedshiftQueryConnection:
    """A read connection to the settings' Redshift cluster (a Data API client for `aws` unless one is given)."""
    if not warehouse.redshift_cluster_id or not warehouse.redshift_secret_arn:
        msg = ("expected warehouse.redshift_cluster_id and warehouse.redshift_secret_arn (stack outputs), "
               "found them unset")
        raise RedshiftNotConfiguredError(msg)
    if client is None:
        import boto3  # noqa: PLC0415  (only in AWS)

        client = boto3.client("redshift-data", region_name=aws.region, endpoint_url=aws.endpoint_url)
    target = RedshiftTarget(warehouse.redshift_cluster_id, warehouse.redshift_database, warehouse.redshift_secret_arn)
    return RedshiftQueryConnection(client, target)
