"""`claims validate`: read claim files through the adapters, run the rule engine, print one JSON line per claim.

Output contract: stdout carries exactly one JSON object per claim ({"claim_id", "status", "issues"}), so it can be
piped into jq or a file; adapter rejections go to stderr as JSON lines, followed by a summary table. Exit status 0 means
every input was read (invalid claims are a result, not a failure); 2 means an input could not be read or recognised.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from libs.model import Claim, Rejection
from libs.validation.catalog import severity_of

if TYPE_CHECKING:
    from libs.validation.issues import ValidationResult
    from libs.validation.report import ValidationSummary

EXIT_INPUT_ERROR = 2
EXIT_OUTPUT_CLOSED = 1

Reader = Callable[[list[Path], str, Path | None], Iterable[Claim | Rejection]]


class InputFormatChoice(StrEnum):
    """The --format values; `auto` lets the adapters recognise each file by its content."""

    AUTO = "auto"
    X12 = "x12"
    FHIR = "fhir"
    SYNPUF = "synpuf"
    JSON = "json"


class InputError(Exception):
    """An input could not be read or recognised; the message names it and never quotes its content."""


def parse_as_of(value: str | None) -> date:
    """The --as-of option: an ISO date, today when omitted."""
    if value is None:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"expected a date as YYYY-MM-DD; found {value!r}") from None


def adapter_reader(paths: list[Path], input_format: str, beneficiary: Path | None) -> Iterator[Claim | Rejection]:
    """Read claims through the adapter registry, turning its input errors into `InputError`."""
    # Imported here: the adapters pull in FHIR models and parsers that other commands never need.
    from libs.adapters.errors import InputUnreadableError, UnrecognizedInputError  # noqa: PLC0415
    from libs.adapters.registry import InputFormat, read_claims  # noqa: PLC0415

    try:
        yield from read_claims(paths, InputFormat(input_format), beneficiary)
    except (InputUnreadableError, UnrecognizedInputError) as error:
        raise InputError(str(error)) from error


def _missing_inputs(paths: list[Path]) -> list[Path]:
    return [path for path in paths if not path.exists()]


def run_validate(
    paths: list[Path],
    input_format: str,
    as_of: date,
    *,
    beneficiary: Path | None = None,
    out: IO[bytes],
    err: IO[str],
    reader: Reader | None = None,
) -> int:
    """The command body with its I/O injected (`reader` defaults to the adapter registry): returns the exit status."""
    # Imported here so that `claims --help` and other commands do not load the code sets.
    from libs.validation.report import validate_records  # noqa: PLC0415

    for path in _missing_inputs([*paths, *([beneficiary] if beneficiary else [])]):
        err.write(f"claims validate: cannot read {path}: no such file or directory\n")
        return EXIT_INPUT_ERROR

    def write_result(result: ValidationResult) -> None:
        out.write(orjson.dumps(result.to_dict()) + b"\n")

    def write_rejection(rejection: Rejection) -> None:
        err.write(orjson.dumps(rejection.model_dump(mode="json")).decode() + "\n")

    try:
        records = (reader or adapter_reader)(paths, input_format, beneficiary)
        summary = validate_records(records, as_of, write_result, write_rejection)
    except InputError as error:
        out.flush()
        err.write(f"claims validate: {error}\n")
        return EXIT_INPUT_ERROR
    out.flush()
    console = Console(file=err, width=100)
    for table in summary_tables(summary, as_of):
        console.print(table)
    return 0


def summary_tables(summary: ValidationSummary, as_of: date) -> list[Table]:
    """The counts, the most frequent reason codes and the rejection reasons, as rich tables."""
    counts = Table(title=f"Validation as of {as_of.isoformat()}", header_style="bold")
    counts.add_column("Measure")
    counts.add_column("Count", justify="right")
    for label, value in (
        ("claims", summary.claims),
        ("valid", summary.valid),
        ("invalid", summary.invalid),
        ("claims with warnings", summary.claims_with_warnings),
        ("rejections", summary.rejections),
    ):
        counts.add_row(label, str(value))
    tables = [counts]
    top = summary.top_codes()
    if top:
        codes = Table(title="Top reason codes", header_style="bold")
        codes.add_column("Code")
        codes.add_column("Severity")
        codes.add_column("Claims", justify="right")
        codes.add_column("Issues", justify="right")
        for code, claims, issues in top:
            codes.add_row(code.value, severity_of(code).value, str(claims), str(issues))
        tables.append(codes)
    if summary.rejections_by_reason:
        rejected = Table(title="Rejections by reason", header_style="bold")
        rejected.add_column("Reason")
        rejected.add_column("Records", justify="right")
        for reason, count in summary.rejections_by_reason.most_common():
            rejected.add_row(reason, str(count))
        tables.append(rejected)
    return tables


def register(app: typer.Typer) -> None:
    """Add `claims validate`."""

    @app.command("validate")
    def validate(
        paths: Annotated[list[Path], typer.Argument(help="Claim files: X12 837, FHIR JSON, SynPUF CSV, NDJSON.")],
        as_of: Annotated[
            str | None, typer.Option("--as-of", help="Judge dates as of this day (YYYY-MM-DD); default today.")
        ] = None,
        input_format: Annotated[
            InputFormatChoice, typer.Option("--format", help="Input format; auto recognises each file.")
        ] = InputFormatChoice.AUTO,
        beneficiary: Annotated[
            Path | None,
            typer.Option("--beneficiary", help="DE-SynPUF beneficiary summary CSV joined into SynPUF claims."),
        ] = None,
    ) -> None:
        """Validate claims: one JSON line per claim on stdout, rejections and a summary on stderr."""
        try:
            status = run_validate(
                paths,
                input_format.value,
                parse_as_of(as_of),
                beneficiary=beneficiary,
                out=sys.stdout.buffer,
                err=sys.stderr,
            )
        except BrokenPipeError:
            # The reader of stdout went away (`claims validate ... | head`): stop quietly, not every input was read.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            status = EXIT_OUTPUT_CLOSED
        raise typer.Exit(status)
