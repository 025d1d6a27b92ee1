"""One settings model for every app (producer, streaming, batch, API, CLI).

Why one model: locally every field has a working embedded default (Kafka on loopback, Delta lake in `.local/`, DuckDB
warehouse); in AWS the same model is rendered from `pulumi stack output --json` (infra exports `app_config`, which is
validated against this model in tests). Layering, lowest to highest precedence:

1. the defaults below,
2. a JSON file named by the `CLAIMS_CONFIG` environment variable (the rendered stack config in AWS),
3. environment variables `CLAIMS__<SECTION>__<KEY>` (e.g. `CLAIMS__KAFKA__BOOTSTRAP_SERVERS`),
4. keyword arguments passed by code (tests).
"""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
# The one local state of every command (`make run`, `claims stream|batch|api|reveal|export`, `claims kafka up`): lake,
# checkpoints, warehouse, keyring, audit log, broker data and logs all live under it (docs/operations.md, "Local
# state"). CLAIMS_LOCAL_DIR moves all of it at once (tests run the real commands against a temporary directory).
LOCAL_DIR = Path(os.environ.get("CLAIMS_LOCAL_DIR") or REPO_ROOT / ".local").resolve()


class Environment(StrEnum):
    """Deployment environment; PHI masking applies everywhere except production."""

    LOCAL = "local"
    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


class KafkaSecurityProtocol(StrEnum):
    """PLAINTEXT only on loopback; MSK uses SASL_SSL with IAM (TLS in transit is mandatory there)."""

    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_SSL = "SASL_SSL"


class KafkaSettings(BaseModel):
    """How to reach the brokers."""

    bootstrap_servers: str = Field(default="127.0.0.1:9092", description="Comma-separated host:port list.")
    security_protocol: KafkaSecurityProtocol = Field(default=KafkaSecurityProtocol.PLAINTEXT)
    sasl_mechanism: str | None = Field(default=None, description="OAUTHBEARER for MSK IAM authentication.")
    aws_region: str | None = Field(default=None, description="Region for MSK IAM token signing.")
    topics_file: Path = Field(default=REPO_ROOT / "configs" / "kafka" / "topics.json",
                              description="The only source of topic names, partitions and retention.")
    client_id: str = Field(default="claims-pipeline")
    local_broker_home: Path = Field(
        default=LOCAL_DIR / "kafka",
        description="Data, logs and pid file of the local broker that `claims kafka up` and `make run` both use; its "
                    "client port is the one of bootstrap_servers.")
    local_controller_port: int = Field(default=9093, ge=1, le=65535,
                                       description="KRaft controller port of the local broker.")
    preflight_timeout_seconds: float = Field(
        default=3.0, gt=0, le=60,
        description="How long a command waits for broker metadata before it says no broker answers (fail fast "
                    "instead of waiting out the clients' 60-second timeouts).")


class LakeSettings(BaseModel):
    """Where the Delta tables and streaming checkpoints live (local path or s3a:// URI)."""

    root: str = Field(default=str(LOCAL_DIR / "lake"), description="Lake root; tables are sub-directories.")
    checkpoint_root: str = Field(default=str(LOCAL_DIR / "checkpoints"), description="Streaming checkpoints.")
    raw_bucket: str | None = Field(default=None, description="S3 bucket of bronze data in AWS.")
    processed_bucket: str | None = Field(default=None, description="S3 bucket of silver/gold data in AWS.")

    def table(self, name: str) -> str:
        """URI of a Delta table under the lake root."""
        return f"{self.root.rstrip('/')}/{name}"


class WarehouseKind(StrEnum):
    """DuckDB file locally, Redshift (through the Data API) in AWS."""

    DUCKDB = "duckdb"
    REDSHIFT = "redshift"


class WarehouseSettings(BaseModel):
    """The analytical warehouse."""

    kind: WarehouseKind = WarehouseKind.DUCKDB
    duckdb_path: Path = Field(default=LOCAL_DIR / "warehouse" / "claims.duckdb")
    redshift_cluster_id: str | None = None
    redshift_database: str = "claims"
    redshift_secret_arn: str | None = Field(default=None, description="Secrets Manager ARN of the admin secret.")
    redshift_copy_role_arn: str | None = Field(default=None, description="IAM role Redshift assumes for COPY.")


class SparkSettings(BaseModel):
    """Spark session and streaming query settings."""

    master: str = Field(default="local[2]", description="local[*] locally; 'yarn' on EMR.")
    trigger_seconds: float = Field(default=5.0, gt=0, description="Micro-batch trigger interval.")
    shuffle_partitions: int = Field(default=4, ge=1)
    max_offsets_per_trigger: int | None = Field(
        default=100_000, ge=1,
        description="Back-pressure cap per micro-batch (also splits availableNow drains): bounds a batch's memory "
                    "(~4 KB per message while it is checked); every batch pays ~1 s of fixed cost, so not smaller.")
    jars_dir: Path = Field(default=REPO_ROOT / ".cache" / "jars" / "spark",
                           description="Connector jars resolved by Maven (Kafka source/sink, Delta).")
    driver_memory: str = "4g"
    fail_on_data_loss: bool = Field(
        default=True,
        description="Stop the stream when offsets vanished before it read them (retention ran out, the topic was "
                    "recreated), with Spark's error naming the partition and offsets. Set false only to resume "
                    "knowingly past the loss (docs/operations.md, 'The stream stopped on lost offsets').")
    quick_jit: bool = Field(
        default=True,
        description="Local masters only: compile with the JVM's C1 compiler alone. On two cores C2's compilation "
                    "took more CPU than its faster code saved (docs/benchmarks.md); on EMR the cluster decides.")


class MonitoringSettings(BaseModel):
    """Prometheus endpoints of each app, and the ports of the monitoring processes themselves.

    One place for every port: configs/monitoring/scrape-jobs.yaml names these fields (`port_setting`), the local
    stack (libs.monitoring.local) and the EMR agent (infra/emr_bootstrap.py) read them from here.
    """

    producer_metrics_port: int = Field(default=9464, ge=0, le=65535)
    streaming_metrics_port: int = Field(default=9465, ge=0, le=65535)
    api_port: int = Field(default=8080, ge=0, le=65535)
    exporter_port: int = Field(default=9466, ge=0, le=65535,
                               description="The lag exporter (`claims monitor exporter`, libs.monitoring.lag).")
    prometheus_port: int = Field(default=9090, ge=1, le=65535,
                                 description="Prometheus (local server; the agent on the EMR primary node).")
    alertmanager_port: int = Field(default=9094, ge=1, le=65535,
                                   description="Local Alertmanager; not its usual 9093, the local Kafka controller "
                                               "listens there.")
    remote_write_url: str | None = Field(default=None, description="Amazon Managed Prometheus remote write URL.")


class KeyProviderKind(StrEnum):
    """Where data keys for envelope encryption come from."""

    LOCAL = "local"
    KMS = "kms"


class SecuritySettings(BaseModel):
    """PHI protection: policy, keys, masking and audit."""

    environment: Environment = Environment.LOCAL
    phi_policy_file: Path = Field(default=REPO_ROOT / "configs" / "security" / "phi-policy.json")
    key_provider: KeyProviderKind = KeyProviderKind.LOCAL
    local_key_file: Path = Field(default=LOCAL_DIR / "keys" / "keyring.json",
                                 description="Local keyring (tokenization and key-encryption keys).")
    kms_key_id: str | None = Field(default=None, description="KMS key ARN or alias in AWS.")
    tokenization_secret: SecretStr | None = Field(default=None, description="Overrides the keyring's HMAC key.")
    audit_log: Path = Field(default=LOCAL_DIR / "audit" / "audit.jsonl", description="Append-only audit log.")

    @property
    def mask_phi(self) -> bool:
        """PHI is masked in every environment except production."""
        return self.environment is not Environment.PROD


class ApiSettings(BaseModel):
    """The REST API (apps/api): who may call it and how much. Listens on `monitoring.api_port` by default."""

    jwks_url: str | None = Field(
        default=None,
        description="The OAuth2 issuer's JWKS URL (stack config in AWS); unset: tokens are signed and verified with "
                    "a key derived from the local keyring (`claims api token`, local environment only).")
    issuer: str = Field(default="claims-local", description="Expected `iss` claim of bearer tokens.")
    audience: str = Field(default="claims-api", description="Expected `aud` claim of bearer tokens.")
    role_claim: str = Field(default="roles", description="Token claim holding the caller's roles (a list).")
    local_token_ttl_seconds: int = Field(default=3600, ge=60, le=86_400,
                                         description="Lifetime of tokens printed by `claims api token`.")
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024,
                                description="Largest request body accepted (HTTP 413 above).")
    rate_limit_per_second: float = Field(default=50.0, gt=0, description="Sustained requests per client per second.")
    rate_limit_burst: int = Field(default=100, ge=1, description="Requests a client may send at once.")
    idempotency_db: Path = Field(default=LOCAL_DIR / "api" / "idempotency.sqlite3",
                                 description="Idempotency-Key store (SQLite, 0600).")
    kafka_delivery_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="How long a request waits for Kafka's acknowledgements (503 after).")
    web_assets_dir: Path = Field(
        default=REPO_ROOT / ".cache" / "web" / "vendor",
        description="The dashboard's chart libraries (vega, vega-lite, vega-embed), vendored by `make web-assets`; "
                    "the API image has them at libs.deploy.api_image.IMAGE_WEB_ASSETS_DIR.")


class AwsSettings(BaseModel):
    """AWS endpoints; `endpoint_url` points at a moto server in tests."""

    region: str = "us-east-1"
    endpoint_url: str | None = None
    artifact_bucket: str | None = None
    emr_cluster_id: str | None = Field(
        default=None, description="The stack's EMR cluster: `POST /v1/batches` submits the daily batch there.")


class Settings(BaseSettings):
    """Every app's configuration. See the module docstring for the layering."""

    model_config = SettingsConfigDict(env_prefix="CLAIMS__", env_nested_delimiter="__", extra="forbid")

    environment: Environment = Environment.LOCAL
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    lake: LakeSettings = Field(default_factory=LakeSettings)
    warehouse: WarehouseSettings = Field(default_factory=WarehouseSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    aws: AwsSettings = Field(default_factory=AwsSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)

    @model_validator(mode="after")
    def _one_environment(self) -> Settings:
        """`security.environment` follows the top-level environment unless it was set explicitly.

        PHI masking and the production key checks read `security.environment`; a stack that only says
        `environment: prod` must not leave masking switched on (or a local keyring allowed) by default.
        """
        if "environment" not in self.security.model_fields_set:
            self.security.environment = self.environment
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Init kwargs beat environment variables, which beat the CLAIMS_CONFIG file, which beats defaults."""
        return (init_settings, env_settings, _JsonFileSource(settings_cls))


class _JsonFileSource(PydanticBaseSettingsSource):
    """Reads the JSON file named by CLAIMS_CONFIG (the config rendered from stack outputs)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("CLAIMS_CONFIG")
        if not path:
            return {}
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            msg = f"CLAIMS_CONFIG {path}: expected a JSON object, found {type(data).__name__}"
            raise ValueError(msg)
        return data


def load_settings(**overrides: Any) -> Settings:
    """Settings from all layers; keyword overrides win (used by tests and entry points)."""
    return Settings(**overrides)
