"""`claims reveal --claim-id ID` from the lake: find the claim's protected record in the Delta silver table.

The command is registered with the other PHI operations (apps/cli/phi.py). Without --claim-file or --source, the
record comes from the lake every command shares: silver's `claim_json` of the claim as it currently stands
(libs.lake.current_claims: replacements applied, voids removed). The table and the keyring that protected it are
checked before Spark starts (one line, exit 2).
"""

from __future__ import annotations

from typing import Any

import orjson

from libs.preflight import PreflightError, check_keyring, check_lake
from libs.settings import Settings


def silver_record(settings: Settings, claim_id: str) -> dict[str, Any]:
    """The protected record of `claim_id` as it currently stands in silver; PreflightError when it is not there."""
    from libs.lake import LakeTables, current_claims, read_delta  # noqa: PLC0415  (PySpark only for this path)
    from libs.phi.logging import LOG_DIR  # noqa: PLC0415
    from libs.spark.session import build_spark_session  # noqa: PLC0415

    check_lake(settings.lake, ("silver", "claim_events"))
    check_keyring(settings.security, protects=settings.lake.root)
    tables = LakeTables.from_settings(settings.lake)
    spark = build_spark_session(settings.spark, app_name="claims-reveal", log_file=LOG_DIR / "reveal-spark.log")
    try:
        current = current_claims(read_delta(spark, tables.silver), read_delta(spark, tables.claim_events))
        rows = current.filter(current["claim_id"] == claim_id).select("claim_json").limit(2).collect()
    finally:
        spark.stop()
    if not rows:
        raise PreflightError(f"claim {claim_id} among the current claims of {tables.silver}", "no such claim",
                             "check the id, or pass --claim-file FILE with the protected record")
    return dict(orjson.loads(rows[0]["claim_json"]))
