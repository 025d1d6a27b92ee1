"""`claims convert`: read claim files in any supported format and write canonical NDJSON.

Why a separate command: conversion is the first thing an operator tries on a new feed, and the canonical NDJSON it
writes is what `validate`, `produce` and the tests consume. Claims go to stdout, one per line; rejections go to stderr
as JSON lines (source, location, reason, message), so `claims convert a.837 > claims.ndjson 2> rejections.ndjson`
separates the two streams without parsing.

FHIR read leniently (libs.adapters.fhir_lenient: R4 cardinality violated, content intact) converts with a warning per
violation. By default a warning is a log line; `--fhir-warnings json` writes each as a JSON line on stderr instead,
`{"warning": {"file", "location", "path", "message"}}`, next to the rejections (the "warning" key tells them apart),
so a feed's conformance can be counted without parsing logs. Warnings name element paths, never values.

Exit status: 0 when every input was read (rejections included: they are data), 2 when an input cannot be opened or
its format cannot be recognised (one line on stderr naming the file; nothing is converted).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TextIO

import orjson
import typer

from libs.adapters import AdapterError, InputFormat, read_claims
from libs.adapters.fhir import read_fhir
from libs.adapters.fhir_lenient import FhirWarning
from libs.adapters.registry import plan_inputs
from libs.model import Claim, Rejection

EXIT_INPUT_ERROR = 2


class WarningOutput(StrEnum):
    """Where FHIR lenient-read warnings go."""

    LOG = "log"  # one log line each (libs.adapters.fhir.log_warning)
    JSON = "json"  # one JSON line each on stderr, next to the rejections


def register(app: typer.Typer) -> None:
    """Add `claims convert` to the CLI."""
    app.command("convert")(convert)


def convert(
    paths: Annotated[
        list[Path], typer.Argument(help="Input files: X12 837, FHIR JSON/NDJSON, DE-SynPUF CSV or canonical JSON.")
    ],
    input_format: Annotated[
        InputFormat, typer.Option("--format", "-f", help="Input format; 'auto' decides per file from its content.")
    ] = InputFormat.AUTO,
    beneficiary: Annotated[
        Path | None,
        typer.Option("--beneficiary", help="DE-SynPUF beneficiary summary CSV joined into SynPUF claims."),
    ] = None,
    fhir_warnings: Annotated[
        WarningOutput,
        typer.Option("--fhir-warnings", help="FHIR read leniently: warnings as log lines, or as JSON lines on stderr."),
    ] = WarningOutput.LOG,
) -> None:
    """Convert claim files to canonical NDJSON on stdout; rejections as JSON lines on stderr."""
    try:
        if fhir_warnings is WarningOutput.JSON:
            records = read_with_warnings(paths, input_format, beneficiary, json_warning_sink(sys.stderr))
        else:
            records = read_claims(paths, input_format, beneficiary)
        write_records(records, sys.stdout, sys.stderr)
    except AdapterError as exc:
        typer.echo(f"claims convert: {exc}", err=True)
        raise typer.Exit(EXIT_INPUT_ERROR) from None
    except BrokenPipeError:
        # The reader of stdout went away (`claims convert x | head`): stop quietly, as Unix filters do.
        sys.stderr.close()
        raise typer.Exit(0) from None


def json_warning_sink(err: TextIO) -> Callable[[FhirWarning], None]:
    """A read_fhir warning sink writing `{"warning": {...}}` JSON lines to `err`."""

    def sink(warning: FhirWarning) -> None:
        err.write(orjson.dumps({"warning": warning.to_dict()}).decode())
        err.write("\n")

    return sink


def read_with_warnings(paths: Iterable[Path], input_format: InputFormat, beneficiary: Path | None,
                       sink: Callable[[FhirWarning], None]) -> Iterator[Claim | Rejection]:
    """read_claims, except that FHIR inputs report their lenient-read warnings to `sink`; input order is kept.

    Every input is checked before a record is read (plan_inputs, as read_claims does); runs of non-FHIR inputs go
    through read_claims together, so a SynPUF beneficiary file is loaded once per run.
    """
    plan = plan_inputs([Path(path) for path in paths], input_format)
    pending: list[Path] = []
    for path, resolved in plan:
        if resolved is InputFormat.FHIR:
            if pending:
                yield from read_claims(pending, input_format, beneficiary)
                pending = []
            yield from read_fhir(path, on_warning=sink)
        else:
            pending.append(path)
    if pending:
        yield from read_claims(pending, input_format, beneficiary)


def write_records(records: Iterable[Claim | Rejection], out: TextIO, err: TextIO) -> tuple[int, int]:
    """Write claims as canonical NDJSON to `out` and rejections as JSON lines to `err`; returns the two counts."""
    claims = rejections = 0
    for record in records:
        if isinstance(record, Claim):
            out.write(record.model_dump_json())
            out.write("\n")
            claims += 1
        else:
            err.write(orjson.dumps(record.model_dump(mode="json")).decode())
            err.write("\n")
            rejections += 1
    return claims, rejections
