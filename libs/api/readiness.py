"""Readiness: can this API replica do its work right now? Kafka, the lake and the warehouse, each checked.

Why three separate checks with names: a load balancer only needs "ready or not" (200/503), but an operator needs to
know *what* is down; the answer lists every check with its outcome and a PHI-free reason. Liveness (`/healthz`) is
separate and checks nothing external, so a broker outage takes replicas out of rotation without restarting them.

- kafka: the broker answers and the raw and dead-letter topics exist;
- lake: the lake root is reachable (a local directory that exists, or an S3 bucket that answers HeadBucket);
- warehouse: the DuckDB file opens read-only (a batch holding its write lock counts as reachable), or the Redshift
  cluster reports itself available.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from libs.phi.logging import safe_exception_message
from libs.settings import Settings, WarehouseKind

CHECK_TIMEOUT_SECONDS = 5.0

Check = Callable[[], str | None] | Callable[[], None]  # a note (or None) when fine; raises when not


@dataclass(frozen=True)
class CheckResult:
    """One dependency's state."""

    name: str
    ok: bool
    detail: str | None = None


class CheckFailedError(Exception):
    """A readiness check failed; the message is PHI-free (names, paths, error types)."""

    phi_safe = True


def check_lake(settings: Settings) -> str | None:
    """The lake root exists (local) or its bucket answers (S3)."""
    root = settings.lake.root
    parts = urlsplit(root)
    if parts.scheme in ("s3", "s3a"):
        import boto3  # noqa: PLC0415  (only deployments on S3 pay for the import)

        client = boto3.client("s3", region_name=settings.aws.region, endpoint_url=settings.aws.endpoint_url)
        client.head_bucket(Bucket=parts.netloc)
        return None
    path = Path(parts.path if parts.scheme == "file" else root)
    if not path.is_dir():
        msg = f"expected the lake root directory {path}, found none (no claims streamed yet?)"
        raise CheckFailedError(msg)
    return None


def check_warehouse(settings: Settings) -> str | None:
    """The warehouse answers: DuckDB opens read-only, or the Redshift cluster is available."""
    warehouse = settings.warehouse
    if warehouse.kind is WarehouseKind.REDSHIFT:
        import boto3  # noqa: PLC0415

        client = boto3.client("redshift", region_name=settings.aws.region, endpoint_url=settings.aws.endpoint_url)
        clusters = client.describe_clusters(ClusterIdentifier=warehouse.redshift_cluster_id)["Clusters"]
        status = clusters[0].get("ClusterStatus") if clusters else None
        if status != "available":
            msg = f"expected Redshift cluster {warehouse.redshift_cluster_id} available, found {status}"
            raise CheckFailedError(msg)
        return None
    import duckdb  # noqa: PLC0415

    path = warehouse.duckdb_path
    if not path.exists():
        msg = f"expected the DuckDB warehouse {path}, found no file (run `claims batch` first)"
        raise CheckFailedError(msg)
    try:
        duckdb.connect(str(path), read_only=True).close()
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            return "busy: a batch holds the write lock"
        raise
    return None


def run_checks(checks: dict[str, Check], timeout: float = CHECK_TIMEOUT_SECONDS) -> list[CheckResult]:
    """Run the checks side by side, each bounded by `timeout`; a check that raises or times out is not ok."""
    results: list[CheckResult] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(checks) or 1, thread_name_prefix="readyz") as pool:
        futures = {name: pool.submit(check) for name, check in checks.items()}
        for name, future in futures.items():
            try:
                results.append(CheckResult(name, True, future.result(timeout=timeout)))
            except concurrent.futures.TimeoutError:
                results.append(CheckResult(name, False, f"no answer within {timeout:.0f} s"))
            except Exception as exc:  # noqa: BLE001  (any failure is a reason to report, never to crash the probe)
                results.append(CheckResult(name, False, safe_exception_message(exc)))
    return results
