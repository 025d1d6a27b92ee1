"""`claims convert`: read claim files in any supported format and write canonical NDJSON.

Why a separate command: conversion is the first thing an operator tries on a new feed, and the canonical NDJSON it
writes is what `validate`, `produce` and the tests consume. Claims go to stdout, one per line; rejections go to stderr
as JSON lines (source, location, reason, message), so `claims convert a.837 > claims.ndjson 2> rejections.ndjson`
separates the two streams without parsing.

Exit status: 0 when every input was read (rejections included: they are data), 2 when an input cannot be opened or
its format cannot be recognised (one line on stderr naming the file; nothing is converted).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, TextIO

import orjson
import typer

from libs.adapters import AdapterError, InputFormat, read_claims
from libs.model import Claim, Rejection

EXIT_INPUT_ERROR = 2


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
) -> None:
    """Convert claim files to canonical NDJSON on stdout; rejections as JSON lines on stderr."""
    try:
        records = read_claims(paths, input_format, beneficiary)
        write_records(records, sys.stdout, sys.stderr)
    except AdapterError as exc:
        typer.echo(f"claims convert: {exc}", err=True)
        raise typer.Exit(EXIT_INPUT_ERROR) from None
    except BrokenPipeError:
        # The reader of stdout went away (`claims convert x | head`): stop quietly, as Unix filters do.
        sys.stderr.close()
        raise typer.Exit(0) from None


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
