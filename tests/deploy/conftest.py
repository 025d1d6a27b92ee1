"""Fixtures for the deploy tests: a moto server on loopback, a synthetic dev stack on it, a wheel built once, and a
directory of synthetic connector jars."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.redshiftdata.models import RedshiftDataAPIServiceBackend, Statement
from moto.redshiftdata.responses import RedshiftDataAPIServiceResponse
from moto.server import ThreadedMotoServer

from libs.deploy.artifacts import build_wheel
from libs.deploy.emr_steps import JobKind
from libs.settings import REPO_ROOT

REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """A moto server in this process (so the tests can make Redshift statements progress), on a free port."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never sign anything with real credentials."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "CLAIMS_CONFIG"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def redshift_statements_finish(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto leaves Data API statements STARTED forever; a real cluster finishes DDL in moments.

    The first describe of a statement answers STARTED (so the deploy's polling loop is exercised), the next FINISHED.
    """
    original = RedshiftDataAPIServiceBackend.describe_statement
    seen: set[str] = set()

    def describe(self: RedshiftDataAPIServiceBackend, statement_id: str) -> Statement:
        statement = original(self, statement_id)
        if statement_id in seen:
            statement.status = "FINISHED"
        seen.add(statement_id)
        return statement

    monkeypatch.setattr(RedshiftDataAPIServiceBackend, "describe_statement", describe)


@pytest.fixture(autouse=True)
def redshift_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto 5.2 has no BatchExecuteStatement (the warehouse load and the schema migrations use it): emulate it.

    A batch is recorded as one statement whose SubStatements are its SQL texts, in order, as the real API describes
    a batch; it progresses like any other statement (see redshift_statements_finish).
    """

    def batch_execute_statement(self: RedshiftDataAPIServiceResponse) -> tuple[int, dict[str, str], str]:
        sqls: list[str] = self._get_param("Sqls")
        statement = self.redshiftdata_backend.execute_statement(
            cluster_identifier=self._get_param("ClusterIdentifier"), database=self._get_param("Database"),
            db_user=self._get_param("DbUser"), parameters=[], secret_arn=self._get_param("SecretArn"),
            sql="; ".join(sqls))
        statement.sub_statements = [{"Id": f"{statement.id}:{number}", "QueryString": sql, "Status": "FINISHED"}
                                    for number, sql in enumerate(sqls, start=1)]  # type: ignore[misc]
        return 200, {}, json.dumps({"ClusterIdentifier": statement.cluster_identifier, "Id": statement.id,
                                    "CreatedAt": statement.created_at, "Database": statement.database,
                                    "SecretArn": statement.secret_arn})

    monkeypatch.setattr(RedshiftDataAPIServiceResponse, "batch_execute_statement", batch_execute_statement,
                        raising=False)


@pytest.fixture(scope="session")
def prebuilt_wheel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project wheel, built once per session with the deploy's own builder (it takes a few seconds)."""
    out = tmp_path_factory.mktemp("wheel")
    build_wheel(REPO_ROOT, out)
    return out


@dataclass(frozen=True)
class Stack:
    """Resources of one synthetic stack on the moto server, and its outputs file."""

    endpoint: str
    bucket: str
    cluster_id: str
    redshift_cluster: str
    outputs: dict[str, Any]
    outputs_file: Path

    def client(self, service: str) -> Any:
        """A boto3 client on the moto server."""
        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint)  # type: ignore[call-overload]


def _stack_outputs(endpoint: str, bucket: str, cluster_id: str, redshift: str, secret_arn: str,
                   kms_arn: str) -> dict[str, Any]:
    """What infra/__main__.py exports for a dev stack (app_config leaves top-level duplicates to the deploy)."""
    return {
        "app_config": {
            "environment": "dev",
            "kafka": {"bootstrap_servers": "b-1.claims-dev.kafka.us-east-1.amazonaws.com:9098",
                      "security_protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER", "aws_region": REGION},
            "lake": {"root": "s3a://claims-dev-processed/lake", "checkpoint_root": "s3a://claims-dev-processed/chk",
                     "raw_bucket": "claims-dev-raw", "processed_bucket": "claims-dev-processed"},
            "warehouse": {"kind": "redshift"},
            "spark": {"master": "yarn", "trigger_seconds": 10},
            "security": {"key_provider": "kms"},
            "aws": {"endpoint_url": endpoint},
        },
        "artifact_bucket": bucket,
        "emr_cluster_id": cluster_id,
        "msk_bootstrap_brokers": "b-1.claims-dev.kafka.us-east-1.amazonaws.com:9098",
        "redshift_cluster_identifier": redshift,
        "redshift_database": "claims",
        "redshift_secret_arn": secret_arn,
        "kms_key_arn": kms_arn,
        "region": REGION,
        "environment": "dev",
        "some_output_the_deploy_ignores": "x",
    }


@pytest.fixture
def stack(moto_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Stack:
    """A fresh artifact bucket, EMR cluster, Redshift cluster, admin secret and KMS key; names unique per test."""
    suffix = str(abs(hash(request.node.nodeid)) % 10**8)
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_url)
    bucket = f"claims-dev-artifacts-{suffix}"
    s3.create_bucket(Bucket=bucket)
    kms_arn = boto3.client("kms", region_name=REGION, endpoint_url=moto_url).create_key()["KeyMetadata"]["Arn"]
    cluster_id = boto3.client("emr", region_name=REGION, endpoint_url=moto_url).run_job_flow(
        Name=f"claims-dev-{suffix}", ReleaseLabel="emr-7.5.0",
        Instances={"MasterInstanceType": "m5.xlarge", "SlaveInstanceType": "m5.xlarge", "InstanceCount": 3,
                   "KeepJobFlowAliveWhenNoSteps": True},
        JobFlowRole="EMR_EC2_DefaultRole", ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]
    redshift = f"claims-dev-{suffix}"
    boto3.client("redshift", region_name=REGION, endpoint_url=moto_url).create_cluster(
        ClusterIdentifier=redshift, NodeType="ra3.xlplus", MasterUsername="admin",
        MasterUserPassword="Synthetic-Passw0rd", DBName="claims", ClusterType="single-node",
    )
    secret_arn = boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto_url).create_secret(
        Name=f"claims-dev-redshift-admin-{suffix}", SecretString=json.dumps({"username": "admin", "password": "x"}),
    )["ARN"]
    outputs = _stack_outputs(moto_url, bucket, cluster_id, redshift, secret_arn, kms_arn)
    outputs_file = tmp_path / "outputs.json"
    outputs_file.write_text(json.dumps(outputs), encoding="utf-8")
    return Stack(moto_url, bucket, cluster_id, redshift, outputs, outputs_file)


@pytest.fixture
def job_scripts(tmp_path: Path) -> dict[JobKind, Path]:
    """Synthetic Spark entry scripts (the real apps/*/main.py are other engineers' work in progress)."""
    scripts = {}
    for job in JobKind:
        path = tmp_path / "jobs" / job.value / "main.py"
        path.parent.mkdir(parents=True)
        path.write_text(f'"""Synthetic {job.value} job."""\nprint("{job.value}")\n', encoding="utf-8")
        scripts[job] = path
    return scripts


# Named like the jars scripts/fetch_jars.sh resolves (the deploy requires the first three by name).
SYNTHETIC_SPARK_JARS = ("spark-sql-kafka-0-10_2.13-4.0.2.jar", "delta-spark_2.13-4.0.0.jar",
                        "aws-msk-iam-auth-2.2.0.jar", "kafka-clients-3.9.1.jar", "sts-2.26.8.jar")


def write_jar(path: Path, marker: str) -> Path:
    """A small, valid jar (a zip with a manifest) whose bytes depend on `marker` only."""
    with zipfile.ZipFile(path, "w") as jar:
        jar.writestr(zipfile.ZipInfo("META-INF/MANIFEST.MF", date_time=(1980, 1, 1, 0, 0, 0)),
                     f"Manifest-Version: 1.0\nX-Synthetic: {marker}\n")
    return path


@pytest.fixture
def spark_jars(tmp_path: Path) -> Path:
    """A connector jar directory like .cache/jars/spark, with small synthetic jars (the real ones weigh ~30 MB)."""
    jars_dir = tmp_path / "jars" / "spark"
    jars_dir.mkdir(parents=True)
    for name in SYNTHETIC_SPARK_JARS:
        write_jar(jars_dir / name, name)
    return jars_dir
