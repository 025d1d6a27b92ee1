"""The pinned Prometheus release tarball the EMR primary node's agent runs: fetched once, checked, shipped by infra.

Why a fetch step on the deployer's machine: the EMR nodes have no internet access and Amazon Linux 2023 has no
Prometheus package (infra/emr_bootstrap.py), so `pulumi up` uploads the release tarball into the artifact bucket
beside the bootstrap scripts. It is downloaded from the Prometheus GitHub release into .cache/prometheus/release/ and
kept only when its sha256 is the one pinned in infra/emr_bootstrap.py; the node checks the same digest again.

    .venv/bin/python -m infra.prometheus_release              # every pinned architecture (arm64, amd64)
    .venv/bin/python -m infra.prometheus_release --arch arm64  # only the Graviton one (the stacks' m6g primary)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import urllib.request
from pathlib import Path

from infra.emr_bootstrap import PROMETHEUS_SHA256, PROMETHEUS_VERSION, prometheus_release_name

RELEASE_DIR = Path(__file__).resolve().parent.parent / ".cache" / "prometheus" / "release"
RELEASE_URL = f"https://github.com/prometheus/prometheus/releases/download/v{PROMETHEUS_VERSION}"
DOWNLOAD_TIMEOUT_SECONDS = 300.0


class PrometheusReleaseError(RuntimeError):
    """The tarball is missing or is not the pinned release; the message says which file and how to get it."""


def tarball_path(architecture: str, directory: Path = RELEASE_DIR) -> Path:
    """Where the pinned tarball of one architecture is kept on the deployer's machine."""
    return directory / f"{prometheus_release_name(architecture)}.tar.gz"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks (the tarballs are ~100 MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_tarball(path: Path, architecture: str) -> Path:
    """The path, when it holds the pinned release of `architecture`; PrometheusReleaseError otherwise."""
    expected = PROMETHEUS_SHA256[architecture]
    if not path.is_file():
        msg = (f"{path}: expected the Prometheus {PROMETHEUS_VERSION} {architecture} release tarball, found no such "
               f"file; run `.venv/bin/python -m infra.prometheus_release --arch {architecture}`")
        raise PrometheusReleaseError(msg)
    found = sha256_file(path)
    if found != expected:
        msg = f"{path}: expected sha256 {expected} (Prometheus {PROMETHEUS_VERSION} {architecture}), found {found}"
        raise PrometheusReleaseError(msg)
    return path


def fetch_release(architecture: str, directory: Path = RELEASE_DIR, *, base_url: str = RELEASE_URL,
                  timeout: float = DOWNLOAD_TIMEOUT_SECONDS) -> Path:
    """Download the pinned tarball unless a verified copy is there; a download with another digest is discarded."""
    target = tarball_path(architecture, directory)
    if target.is_file() and sha256_file(target) == PROMETHEUS_SHA256[architecture]:
        return target
    directory.mkdir(parents=True, exist_ok=True)
    url = f"{base_url.rstrip('/')}/{target.name}"
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".download-", delete=False) as partial:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310  (fixed https URL)
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    partial.write(chunk)
        except OSError as error:
            os.unlink(partial.name)
            msg = f"{url}: expected the Prometheus release tarball, the download failed ({error})"
            raise PrometheusReleaseError(msg) from None
    try:
        verify_tarball(Path(partial.name), architecture)
    except PrometheusReleaseError as error:
        os.unlink(partial.name)
        msg = f"{url}: {str(error).split(': ', 1)[1]}; nothing was kept"
        raise PrometheusReleaseError(msg) from None
    os.replace(partial.name, target)
    return target


def main(argv: list[str] | None = None) -> int:
    """Fetch the tarballs (default: every architecture pinned) and print where they are."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--arch", action="append", choices=sorted(PROMETHEUS_SHA256),
                        help="architecture to fetch (repeatable; default: all pinned)")
    parser.add_argument("--dir", type=Path, default=RELEASE_DIR, help="where to keep the tarballs")
    args = parser.parse_args(argv)
    try:
        for architecture in args.arch or sorted(PROMETHEUS_SHA256):
            print(fetch_release(architecture, args.dir))
    except PrometheusReleaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
