"""A Redshift Data API stand-in for tests: a real boto3 `redshift-data` client whose calls are answered by DuckDB.

Why not moto: moto's Data API answers every statement with the same canned rows, so it cannot show that a query
means the same on Redshift. Here the real client still validates every request against the service model (botocore
serialises and checks the parameters before the `before-call` hook answers); the hook transpiles the statement back
from Redshift's dialect, binds the named parameters the way the Data API does (as text) and runs it on a DuckDB
warehouse file, then answers with typed fields and pages the way the service does (a NextToken every
`page_size` records). Statements run at once; `fail_next` makes the next one FAILED with a given error, and
`running = True` keeps every statement STARTED (a slow cluster).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import duckdb
import sqlglot

_DUCKDB_MISSING = re.compile(r"Table with name (\w+) does not exist")


@dataclass
class _Statement:
    status: str
    error: str | None = None
    columns: list[dict[str, str]] = field(default_factory=list)
    records: list[list[dict[str, Any]]] = field(default_factory=list)


def _field(value: Any) -> tuple[dict[str, Any], str]:
    """A value as the Data API returns it, with the column type it would report."""
    if value is None:
        return {"isNull": True}, "varchar"
    if isinstance(value, bool):
        return {"booleanValue": value}, "bool"
    if isinstance(value, int):
        return {"longValue": value}, "int8"
    if isinstance(value, float):
        return {"doubleValue": value}, "float8"
    if isinstance(value, Decimal):
        return {"stringValue": str(value)}, "numeric"
    if isinstance(value, dt.datetime):
        return {"stringValue": value.isoformat(sep=" ")}, "timestamp"
    if isinstance(value, dt.date):
        return {"stringValue": value.isoformat()}, "date"
    return {"stringValue": str(value)}, "varchar"


class RedshiftDataFake:
    """Answers execute_statement / describe_statement / get_statement_result from the DuckDB file at `path`."""

    def __init__(self, path: Path, *, page_size: int = 2) -> None:
        self.path = path
        self.page_size = page_size
        self.requests: list[dict[str, Any]] = []
        self.fail_next: str | None = None
        self.running = False
        self._statements: dict[str, _Statement] = {}
        self._ids = itertools.count(1)
        self.client = boto3.client("redshift-data", region_name="us-east-1", aws_access_key_id="testing",
                                   aws_secret_access_key="testing")
        self.client.meta.events.register("before-call.redshift-data.*", self._answer)

    def _answer(self, model: Any, params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        body = json.loads(params["body"] or b"{}")
        self.requests.append({"operation": model.name, **body})
        handler = {"ExecuteStatement": self._execute, "DescribeStatement": self._describe,
                   "GetStatementResult": self._result}[model.name]
        return _HttpOk(), handler(body)

    def _execute(self, body: dict[str, Any]) -> dict[str, Any]:
        statement_id = f"stmt-{next(self._ids)}"
        if self.fail_next is not None:
            self._statements[statement_id] = _Statement("FAILED", self.fail_next)
            self.fail_next = None
            return {"Id": statement_id}
        sql = sqlglot.transpile(body["Sql"], read="redshift", write="duckdb")[0]
        values = {parameter["name"]: parameter["value"] for parameter in body.get("Parameters", [])}
        connection = duckdb.connect(str(self.path), read_only=True)
        try:
            cursor = connection.execute(sql, values) if values else connection.execute(sql)
            rows, names = cursor.fetchall(), [description[0] for description in cursor.description or []]
        except duckdb.CatalogException as exc:
            missing = _DUCKDB_MISSING.search(str(exc))
            name = missing.group(1) if missing else "unknown"
            self._statements[statement_id] = _Statement("FAILED", f'ERROR: relation "{name}" does not exist')
            return {"Id": statement_id}
        finally:
            connection.close()
        records, types = [], ["varchar"] * len(names)
        for row in rows:
            fields = []
            for index, value in enumerate(row):
                encoded, type_name = _field(value)
                fields.append(encoded)
                if value is not None:
                    types[index] = type_name
            records.append(fields)
        columns = [{"name": name, "typeName": type_name} for name, type_name in zip(names, types, strict=True)]
        self._statements[statement_id] = _Statement("FINISHED", columns=columns, records=records)
        return {"Id": statement_id}

    def _describe(self, body: dict[str, Any]) -> dict[str, Any]:
        statement = self._statements[body["Id"]]
        answer: dict[str, Any] = {"Id": body["Id"], "Status": "STARTED" if self.running else statement.status}
        if statement.error:
            answer["Error"] = statement.error
        return answer

    def _result(self, body: dict[str, Any]) -> dict[str, Any]:
        statement = self._statements[body["Id"]]
        start = int(body.get("NextToken") or 0)
        end = start + self.page_size
        answer: dict[str, Any] = {"Records": statement.records[start:end], "ColumnMetadata": statement.columns,
                                  "TotalNumRows": len(statement.records)}
        if end < len(statement.records):
            answer["NextToken"] = str(end)
        return answer


class _HttpOk:
    status_code = 200
    headers: dict[str, str] = {}
