"""`claims reveal`, `claims export --deidentified`, `claims keys ...`, `claims audit verify`: PHI operations.

Thin entry points over libs.phi: option parsing, file lookup and exit codes live here; every decision (who may reveal
what, what Safe Harbor keeps, how keys rotate) is made in the library and audited there.
Exit codes: 0 success, 1 verification failed, 2 bad input / not found, 3 reveal refused, 4 decryption failed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from libs.phi.audit import verify
from libs.phi.errors import DecryptionError, KeyMaterialError, PhiError, RevealDeniedError
from libs.phi.export import export_deidentified, input_files
from libs.phi.keys import KeyPurpose, Keyring, rotate
from libs.phi.logging import safe_exception_message
from libs.phi.masking import mask_revealed
from libs.phi.protector import PhiProtector
from libs.settings import KeyProviderKind, load_settings

EXIT_VERIFY_FAILED, EXIT_BAD_INPUT, EXIT_DENIED, EXIT_DECRYPT = 1, 2, 3, 4

keys_app = typer.Typer(help="Tokenization and encryption keys: rotate, status.", no_args_is_help=True)
audit_app = typer.Typer(help="The re-identification audit log.", no_args_is_help=True)


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _records(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(location, record) for a JSON object file, an NDJSON file, or a directory of NDJSON files."""
    found: list[tuple[str, dict[str, Any]]] = []
    for file in input_files(path):
        raw = file.read_bytes()
        try:
            whole = orjson.loads(raw)
        except orjson.JSONDecodeError:
            whole = None
        if isinstance(whole, dict):  # a single (possibly pretty-printed) JSON object
            found.append((str(file), whole))
            continue
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise _fail(f"{file}:{number}: expected a JSON object, {safe_exception_message(exc)}",
                            EXIT_BAD_INPUT) from None
            if isinstance(record, dict):
                found.append((f"{file}:{number}", record))
    return found


def _select(records: list[tuple[str, dict[str, Any]]], claim_id: str | None, where: Path) -> dict[str, Any]:
    if claim_id is not None:
        records = [(loc, rec) for loc, rec in records if rec.get("claim_id") == claim_id]
    if not records:
        raise _fail(f"no protected record{f' with claim_id {claim_id}' if claim_id else ''} in {where}", EXIT_BAD_INPUT)
    distinct = {orjson.dumps(rec, option=orjson.OPT_SORT_KEYS) for _, rec in records}
    if len(distinct) > 1:  # identical replays (Kafka at-least-once) are fine; different versions are ambiguous
        locations = ", ".join(loc for loc, _ in records[:5])
        raise _fail(f"{len(records)} different records match in {where} ({locations}); pass --claim-file with the "
                    f"exact record or --claim-id to pick one", EXIT_BAD_INPUT)
    return records[0][1]


def reveal_command(
    *,
    fields: Annotated[str, typer.Option("--fields", help="Comma-separated dotted PHI paths, e.g. patient.last_name")],
    actor: Annotated[str, typer.Option("--actor", help="Who is asking (user or service identity).")],
    role: Annotated[str, typer.Option("--role", help="Role from the PHI policy, e.g. phi-reader, privacy-officer.")],
    reason: Annotated[str, typer.Option("--reason", help="Why the PHI is needed (case or ticket reference).")],
    claim_file: Annotated[Path | None, typer.Option("--claim-file", help="Protected record (JSON or NDJSON).")] = None,
    claim_id: Annotated[str | None, typer.Option("--claim-id", help="Claim to find in --source/--claim-file.")] = None,
    source: Annotated[Path | None, typer.Option("--source", help="NDJSON file or directory of protected records "
                                                                 "(default: the lake's Delta silver table).")] = None,
) -> None:
    """Decrypt PHI fields of one protected claim for an allowed role; every request is audited, also refusals.

    Outside production the revealed values are shown masked (security.mask_phi).
    """
    settings = load_settings()
    if claim_file is None and claim_id is None:
        raise _fail("pass --claim-file FILE or --claim-id ID", EXIT_BAD_INPUT)
    if claim_file is None and source is None and claim_id is not None:
        from apps.cli.reveal import silver_record  # noqa: PLC0415  (the lake every command shares; PySpark)

        record = silver_record(settings, claim_id)  # PreflightError: one line and exit 2 (apps.cli.main)
    else:
        where = claim_file if claim_file is not None else (source or Path(settings.lake.table("silver")))
        try:
            record = _select(_records(where), claim_id, where)
        except FileNotFoundError as exc:
            raise _fail(safe_exception_message(exc), EXIT_BAD_INPUT) from None
    requested = [f.strip() for f in fields.split(",") if f.strip()]
    try:
        protector = PhiProtector.from_settings(settings)
        values = protector.reveal(record, requested, actor=actor, role=role, reason=reason)
    except RevealDeniedError as exc:
        raise _fail(f"{exc} (audited)", EXIT_DENIED) from None
    except DecryptionError as exc:
        raise _fail(f"{exc} (audited)", EXIT_DECRYPT) from None
    except PhiError as exc:
        raise _fail(str(exc), EXIT_BAD_INPUT) from None
    masked = settings.security.mask_phi
    output = {"claim_id": record.get("claim_id"), "environment": settings.security.environment.value,
              "masked": masked, "values": mask_revealed(values) if masked else values}
    sys.stdout.write(orjson.dumps(output, option=orjson.OPT_INDENT_2).decode() + "\n")


def export_command(
    out: Annotated[Path, typer.Option("--out", help="De-identified NDJSON output file.")],
    input_path: Annotated[Path | None, typer.Option("--input", help="Protected or canonical NDJSON file, or a "
                                                                     "directory (default: the Delta silver table).")
                          ] = None,
    deidentified: Annotated[bool, typer.Option("--deidentified", help="HIPAA Safe Harbor de-identification "
                                                                      "(required: the only export mode).")] = False,
) -> None:
    """Export claims de-identified per HIPAA Safe Harbor; rejected lines go to <out>.rejects.ndjson."""
    if not deidentified:
        raise _fail("only de-identified export exists; pass --deidentified", EXIT_BAD_INPUT)
    from libs.phi.deidentify import Deidentifier  # noqa: PLC0415  (keeps `claims --help` fast)

    settings = load_settings()
    try:
        if input_path is None:  # the Delta silver table, read with Spark (libs.batch.export), with progress
            from apps.cli.export import check_silver_export, export_silver_with_progress  # noqa: PLC0415

            check_silver_export(settings)  # PreflightError: one line and exit 2 (apps.cli.main)
            summary = export_silver_with_progress(settings, out, Deidentifier.from_settings(settings))
        else:
            summary = export_deidentified(input_path, out, Deidentifier.from_settings(settings))
    except (FileNotFoundError, PhiError) as exc:
        raise _fail(safe_exception_message(exc), EXIT_BAD_INPUT) from None
    typer.echo(f"read {summary.read} records, wrote {summary.written} de-identified records to {out}", err=True)
    if summary.rejections:
        typer.echo(f"rejected {len(summary.rejections)} records (reason and location in "
                   f"{out.with_name(out.name + '.rejects.ndjson')})", err=True)


@keys_app.command("rotate")
def keys_rotate(
    kind: Annotated[KeyPurpose, typer.Option("--kind", help="encryption (routine) or tokenization (rare: tokens "
                                                            "change).")] = KeyPurpose.ENCRYPTION,
) -> None:
    """Make a new key version active for new writes; data written under older versions stays readable."""
    try:
        typer.echo(rotate(load_settings(), kind))
    except PhiError as exc:
        raise _fail(str(exc), EXIT_BAD_INPUT) from None


@keys_app.command("status")
def keys_status() -> None:
    """Active and held key versions (never key material)."""
    security = load_settings().security
    try:
        keyring = Keyring(security.local_key_file)
        for purpose in KeyPurpose:
            if purpose is KeyPurpose.TOKENIZATION and security.tokenization_secret is not None:
                typer.echo("tokenization: from security.tokenization_secret")
                continue
            if purpose is KeyPurpose.ENCRYPTION and security.key_provider is KeyProviderKind.KMS:
                typer.echo(f"encryption: KMS key {security.kms_key_id} (versions managed by KMS)")
                continue
            typer.echo(f"{purpose.value}: active version {keyring.active_version(purpose)}, "
                       f"held {keyring.versions(purpose)} ({keyring.path})")
    except KeyMaterialError as exc:
        raise _fail(str(exc), EXIT_BAD_INPUT) from None


@audit_app.command("verify")
def audit_verify(
    log: Annotated[Path | None, typer.Option("--log", help="Audit log (default: security.audit_log).")] = None,
) -> None:
    """Recompute the audit log's hash chain; exit 1 and name the first bad line if anything was altered."""
    path = log or load_settings().security.audit_log
    result = verify(path)
    if not result.ok:
        raise _fail(f"{path}:{result.line}: {result.problem} ({result.records} records verified before it)",
                    EXIT_VERIFY_FAILED)
    typer.echo(f"ok: {result.records} audit records, chain intact, head {result.head_hash} ({path})")


def register(app: typer.Typer) -> None:
    """Add `reveal`, `export`, `keys` and `audit` to the `claims` CLI."""
    app.command("reveal")(reveal_command)
    app.command("export")(export_command)
    app.add_typer(keys_app, name="keys")
    app.add_typer(audit_app, name="audit")
