"""The API image's build context: what apps/api/Dockerfile copies, assembled from this checkout.

Why a context of built artifacts and not the source tree: the image must carry what was tested and what EMR runs
(the project wheel built by the deploy's own builder, dependencies pinned by requirements.lock) plus the vendored
chart libraries, which are not in git (`make web-assets` fetches them from npm at the lock file's versions). Nothing
else of the checkout (tests, .local state, keyrings) can reach the image. `make api-image` writes the context and,
where a container builder exists, builds it; this machine has none, so the tests check the context against the
Dockerfile's COPY lines instead.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from libs.api.web_assets import missing_vendor_files
from libs.deploy.artifacts import ArtifactError, build_wheel
from libs.settings import REPO_ROOT

DOCKERFILE = REPO_ROOT / "apps" / "api" / "Dockerfile"
IMAGE_WEB_ASSETS_DIR = "/opt/claims/web/vendor"
"""Where the image holds the chart libraries (app_config's api.web_assets_dir in AWS, set by infra/program.py)."""


@dataclass(frozen=True)
class ImageContext:
    """A written build context: its directory, the wheel in it and the chart libraries it holds."""

    directory: Path
    wheel: Path
    web_files: tuple[str, ...]


def write_api_image_context(destination: Path, *, web_assets: Path, project_root: Path = REPO_ROOT) -> ImageContext:
    """Write the Dockerfile, requirements.lock, the project wheel (dist/) and the chart libraries (web/vendor/)
    into `destination` (emptied first). ArtifactError when the chart libraries are missing or the wheel fails."""
    missing = missing_vendor_files(web_assets)
    if missing:
        msg = (f"expected the dashboard's chart libraries in {web_assets}, found {', '.join(missing)} missing; "
               "run `make web-assets`")
        raise ArtifactError(msg)
    if destination.exists():
        shutil.rmtree(destination)
    (destination / "web").mkdir(parents=True)
    shutil.copy2(project_root / "apps" / "api" / "Dockerfile", destination / "Dockerfile")
    shutil.copy2(project_root / "requirements.lock", destination / "requirements.lock")
    wheel = build_wheel(project_root, destination / "dist")
    shutil.copytree(web_assets, destination / "web" / "vendor")
    return ImageContext(destination, wheel, tuple(sorted(path.name for path in (destination / "web" / "vendor")
                                                         .iterdir())))
