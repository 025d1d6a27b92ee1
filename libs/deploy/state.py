"""The deploy ledger: what the last deploy of an environment applied, kept next to the artifacts in S3.

Why a ledger: the Data API cannot cheaply tell whether a table's definition matches the schema, and operators need
to know which release (wheel, config, job scripts) is live and which ran before it, for a rollback. The ledger is
written only when a deploy changes something, so a repeated deploy leaves it untouched.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError
from pydantic import BaseModel, Field, ValidationError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

HISTORY_LIMIT = 20


class DeployStateError(RuntimeError):
    """The ledger could not be read or written."""


class Release(BaseModel):
    """The artifacts one deploy pointed the jobs at (ledgers written before jars were shipped read as no jars)."""

    wheel_uri: str
    config_uri: str
    job_uris: dict[str, str]
    file_uris: dict[str, str] = Field(default_factory=dict)
    jar_uris: list[str] = Field(default_factory=list, description="Spark connector jars, in `--jars` order.")
    deployed_at: datetime | None = None

    def same_artifacts(self, other: Release | None) -> bool:
        """Equal apart from the deploy time."""
        return other is not None and self.model_dump(exclude={"deployed_at"}) == other.model_dump(
            exclude={"deployed_at"})


class DeployState(BaseModel):
    """Ledger of one environment."""

    schema_version: int = 1
    ddl: dict[str, str] = Field(default_factory=dict, description="Table -> digest of the applied Redshift DDL.")
    migrations: list[int] = Field(default_factory=list, description="Warehouse schema migration versions recorded "
                                  "on Redshift (run or baselined); ledgers from before migrations read as none.")
    current: Release | None = None
    history: list[Release] = Field(default_factory=list, description="Earlier releases, newest first.")

    def with_release(self, release: Release) -> DeployState:
        """A copy whose current release is `release`, the previous one pushed onto the history."""
        history = ([self.current] if self.current else []) + self.history
        stamped = release.model_copy(update={"deployed_at": datetime.now(UTC)})
        return self.model_copy(update={"current": stamped, "history": history[:HISTORY_LIMIT]})


def state_key(environment: str) -> str:
    """Ledger object key of an environment."""
    return f"deploy/{environment}/state.json"


def load_state(s3: S3Client, bucket: str, environment: str) -> DeployState:
    """The ledger, or an empty one before the first deploy."""
    key = state_key(environment)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in {"NoSuchKey", "404"}:
            return DeployState()
        msg = f"s3://{bucket}/{key}: cannot read the deploy ledger ({code})"
        raise DeployStateError(msg) from None
    try:
        return DeployState.model_validate(json.loads(body))
    except (json.JSONDecodeError, ValidationError) as error:
        msg = f"s3://{bucket}/{key}: expected a deploy ledger (JSON DeployState), found invalid content: {error}"
        raise DeployStateError(msg) from None


def save_state(s3: S3Client, bucket: str, environment: str, state: DeployState, kms_key_arn: str | None) -> None:
    """Write the ledger (encrypted with the stack's KMS key)."""
    key = state_key(environment)
    extra: dict[str, str] = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_arn} if kms_key_arn else {}
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=state.model_dump_json(indent=2).encode("utf-8"),
                      ContentType="application/json", **extra)  # type: ignore[arg-type]
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        msg = f"s3://{bucket}/{key}: cannot write the deploy ledger ({code})"
        raise DeployStateError(msg) from None
