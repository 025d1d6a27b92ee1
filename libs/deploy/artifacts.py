"""Build the deployable artifacts (the project wheel, the Spark job scripts) and ship them to the artifact bucket.

Why content-addressed keys (`artifacts/<kind>/<sha256>/<file>`): an object's key changes exactly when its content
does, so an unchanged artifact is never re-uploaded, EMR step arguments (which name the keys) change exactly when
the code does, and every earlier release stays in the bucket for a rollback.

The Spark connector jars (Kafka source/sink, Delta, MSK IAM auth and their runtime dependencies) are artifacts too:
the EMR nodes cannot reach Maven Central, so the jars Maven resolved into .cache/jars/spark for local runs are
shipped as they are, one object per jar, and the steps pass their URIs with `--jars`.

The wheel is digested over its *members* (names and contents), not its zip bytes: zip headers carry timestamps and
compression details that differ between two builds of the same source. The build also sets SOURCE_DATE_EPOCH so
the bytes are reproducible too when the toolchain is.
"""

from __future__ import annotations

import fnmatch
import hashlib
import mimetypes
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from libs.deploy.plan import Action, Component, PlanItem

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# 1980-01-01, the earliest timestamp a zip file can hold.
REPRODUCIBLE_EPOCH = "315532800"
DIGEST_METADATA_KEY = "sha256"


class ArtifactError(RuntimeError):
    """An artifact could not be built, read or uploaded."""


class ArtifactKind(StrEnum):
    """What an artifact is; the kind is the first part of its key."""

    WHEEL = "wheel"
    JOB = "job"
    CONFIG = "config"
    FILE = "file"
    JAR = "jar"


@dataclass(frozen=True)
class Artifact:
    """One object to ship: its bytes, content digest and key."""

    kind: ArtifactKind
    name: str  # logical name in the plan: 'wheel', 'streaming', 'batch', 'app-config', 'topics.json', a jar's file
    filename: str  # last part of the key; Spark and pip care about the file name and extension
    body: bytes
    digest: str

    @property
    def key(self) -> str:
        """Content-addressed object key."""
        return f"artifacts/{self.kind.value}/{self.digest}/{self.filename}"

    def uri(self, bucket: str) -> str:
        """s3:// URI of the object in `bucket`."""
        return f"s3://{bucket}/{self.key}"

    @property
    def content_type(self) -> str:
        """MIME type for the upload."""
        if self.filename.endswith(".whl"):
            return "application/zip"
        if self.filename.endswith(".jar"):
            return "application/java-archive"  # explicit: Python's built-in MIME table lacks .jar (only /etc has it)
        return mimetypes.guess_type(self.filename)[0] or "application/octet-stream"


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        msg = f"{path}: cannot read the {what}: {error.strerror}"
        raise ArtifactError(msg) from None


def file_artifact(kind: ArtifactKind, name: str, path: Path, filename: str | None = None) -> Artifact:
    """An artifact from a local file, addressed by the sha256 of its bytes."""
    body = _read(path, f"{name} file")
    return Artifact(kind=kind, name=name, filename=filename or path.name, body=body, digest=sha256_hex(body))


def bytes_artifact(kind: ArtifactKind, name: str, filename: str, body: bytes) -> Artifact:
    """An artifact from bytes made in memory (the rendered config)."""
    return Artifact(kind=kind, name=name, filename=filename, body=body, digest=sha256_hex(body))


def wheel_content_digest(path: Path) -> str:
    """sha256 over the wheel's member names and contents, in name order (independent of zip metadata)."""
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(path) as wheel:
            for info in sorted(wheel.infolist(), key=lambda i: i.filename):
                if info.is_dir():
                    continue
                digest.update(info.filename.encode("utf-8") + b"\0")
                digest.update(hashlib.sha256(wheel.read(info)).digest())
    except (OSError, zipfile.BadZipFile) as error:
        msg = f"{path}: expected a wheel (zip archive), cannot read it: {error}"
        raise ArtifactError(msg) from None
    return digest.hexdigest()


def wheel_artifact(path: Path) -> Artifact:
    """The project wheel as an artifact; the file name is kept so pip and Spark recognise it."""
    return Artifact(kind=ArtifactKind.WHEEL, name="wheel", filename=path.name, body=_read(path, "wheel"),
                    digest=wheel_content_digest(path))


def find_wheel(wheel_dir: Path, distribution: str = "medical_claims_pipeline") -> Path:
    """The single wheel of `distribution` in a directory of prebuilt wheels."""
    wheels = sorted(wheel_dir.glob(f"{distribution}-*.whl"))
    if len(wheels) != 1:
        msg = (f"{wheel_dir}: expected exactly one {distribution}-*.whl, found {len(wheels)}"
               + (f" ({', '.join(w.name for w in wheels)})" if wheels else ""))
        raise ArtifactError(msg)
    return wheels[0]


# File-name prefixes of the connector jars a Spark job cannot start without (scripts/fetch_jars.sh requires them too):
# the Kafka source/sink, Delta, and the MSK IAM login module the stacks' SASL_SSL Kafka clients load.
REQUIRED_SPARK_JARS = ("spark-sql-kafka-0-10_2.13-", "delta-spark_2.13-", "aws-msk-iam-auth-")


def spark_jar_artifacts(jars_dir: Path) -> list[Artifact]:
    """Every jar of the Maven-resolved connector directory as an artifact, in file-name order.

    The order is fixed so that the `--jars` argument, and with it the EMR step arguments, is the same on every deploy
    of the same jars. Fails naming `make jars` when the directory is missing, empty or lacks a required connector:
    a step without them would only fail on the cluster, after the old step had been cancelled.
    """
    jars = sorted(jars_dir.glob("*.jar")) if jars_dir.is_dir() else []
    missing = [prefix for prefix in REQUIRED_SPARK_JARS if not any(j.name.startswith(prefix) for j in jars)]
    if missing:
        found = f"found {len(jars)} jars" if jars_dir.is_dir() else "found no such directory"
        msg = (f"{jars_dir}: expected the Spark connector jars resolved by Maven, including "
               f"{', '.join(p + '*.jar' for p in missing)}; {found}. Run `make jars` (bash scripts/fetch_jars.sh) "
               "and deploy again")
        raise ArtifactError(msg)
    return [file_artifact(ArtifactKind.JAR, jar.name, jar) for jar in jars]


def _package_dirs(project_root: Path) -> list[str]:
    """Top-level package directories the build includes ([tool.setuptools.packages.find] include patterns)."""
    pyproject = project_root / "pyproject.toml"
    try:
        config = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        msg = f"{pyproject}: cannot read the project definition: {error}"
        raise ArtifactError(msg) from None
    patterns = config.get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {}).get("include", [])
    return sorted(
        child.name for child in project_root.iterdir()
        if child.is_dir() and (child / "__init__.py").is_file()
        and any(fnmatch.fnmatch(child.name, pattern) for pattern in patterns)
    )


def _stage_sources(project_root: Path, staging: Path) -> None:
    """Copy only what the build needs, so the build neither writes build/ into the work tree nor sees stray files."""
    for name in ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in"):
        if (project_root / name).is_file():
            shutil.copy2(project_root / name, staging / name)
    for package in _package_dirs(project_root):
        shutil.copytree(project_root / package, staging / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache"))


def build_wheel(project_root: Path, out_dir: Path, *, python: str = sys.executable,
                timeout_seconds: float = 600.0) -> Path:
    """Build the project wheel (`pip wheel --no-deps`) into `out_dir`, replacing an older wheel there."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="claims-wheel-") as tmp:
        staging, built = Path(tmp) / "src", Path(tmp) / "dist"
        staging.mkdir()
        _stage_sources(project_root, staging)
        env = {**os.environ, "SOURCE_DATE_EPOCH": REPRODUCIBLE_EPOCH}
        command = [python, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(built), str(staging)]
        try:
            completed = subprocess.run(  # noqa: S603  (fixed argument list, no shell)
                command, env=env, capture_output=True, text=True, timeout=timeout_seconds, check=False,
            )
        except subprocess.TimeoutExpired:
            msg = f"building the wheel of {project_root}: pip did not finish within {timeout_seconds:.0f} s"
            raise ArtifactError(msg) from None
        if completed.returncode != 0:
            tail = "\n".join(completed.stderr.strip().splitlines()[-15:])
            msg = f"building the wheel of {project_root}: pip exited with status {completed.returncode}:\n{tail}"
            raise ArtifactError(msg)
        wheel = find_wheel(built)
        for old in out_dir.glob("medical_claims_pipeline-*.whl"):
            old.unlink()
        return Path(shutil.copy2(wheel, out_dir / wheel.name))


def _remote_digest(s3: S3Client, bucket: str, key: str) -> str | None:
    """The digest recorded on an existing object, '' if it has none, None if there is no object."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in {"404", "NoSuchKey", "NotFound"}:
            return None
        msg = f"s3://{bucket}/{key}: cannot inspect the object ({code})"
        raise ArtifactError(msg) from None
    return head.get("Metadata", {}).get(DIGEST_METADATA_KEY, "")


def plan_uploads(s3: S3Client, bucket: str, artifacts: Iterable[Artifact]) -> list[tuple[Artifact, PlanItem]]:
    """Which artifacts are missing (create), present with another digest (update) or already there (unchanged)."""
    planned: list[tuple[Artifact, PlanItem]] = []
    for artifact in artifacts:
        remote = _remote_digest(s3, bucket, artifact.key)
        if remote is None:
            action, detail = Action.CREATE, f"upload {artifact.uri(bucket)}"
        elif remote != artifact.digest:
            # The key embeds the digest, so this is an object written by something else (or damaged): replace it.
            action, detail = Action.UPDATE, f"re-upload {artifact.uri(bucket)} (recorded digest differs)"
        else:
            action, detail = Action.UNCHANGED, artifact.uri(bucket)
        component = Component.CONFIG if artifact.kind is ArtifactKind.CONFIG else Component.ARTIFACT
        planned.append((artifact, PlanItem(component, artifact.name, action, detail)))
    return planned


def upload(s3: S3Client, bucket: str, artifact: Artifact, kms_key_arn: str | None) -> None:
    """Put one artifact, encrypted with the stack's KMS key, recording its digest as object metadata."""
    encryption: dict[str, str] = (
        {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_arn} if kms_key_arn else {}
    )
    try:
        s3.put_object(Bucket=bucket, Key=artifact.key, Body=artifact.body, ContentType=artifact.content_type,
                      Metadata={DIGEST_METADATA_KEY: artifact.digest}, **encryption)  # type: ignore[arg-type]
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        msg = f"{artifact.uri(bucket)}: upload of {artifact.name} failed ({code})"
        raise ArtifactError(msg) from None
