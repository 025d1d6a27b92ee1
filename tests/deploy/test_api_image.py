"""The API image's build context holds everything apps/api/Dockerfile copies, and the Dockerfile agrees with the
Kubernetes component that runs it and with the setting that finds the chart libraries.

No container builder runs here (no docker on the machine), so this checks what a build would consume: each COPY
source exists in the context; the wheel holds the `claims` console script the pod's args start with; every runtime
dependency of the wheel has a pin in requirements.lock (so `pip install --constraint` resolves to the tested versions);
user, port and the chart libraries' directory are the ones infra and app_config use.
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from infra import api_service
from infra.program import _api_settings
from libs.api.web_assets import VENDOR_FILES
from libs.deploy.api_image import DOCKERFILE, IMAGE_WEB_ASSETS_DIR, write_api_image_context
from libs.deploy.artifacts import ArtifactError
from libs.settings import REPO_ROOT

pytestmark = pytest.mark.slow  # builds the project wheel


def _instructions() -> list[tuple[str, str]]:
    lines = [line.strip() for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()]
    return [(line.split(" ", 1)[0], line.split(" ", 1)[1]) for line in lines if line and not line.startswith("#")]


@pytest.fixture(scope="module")
def web_assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("vendor")
    for name in VENDOR_FILES:
        (directory / name).write_text(f"/* {name} */\n", encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory, web_assets: Path) -> Path:
    return write_api_image_context(tmp_path_factory.mktemp("image") / "context", web_assets=web_assets).directory


def test_every_copy_source_is_in_the_context(context: Path):
    copies = [arguments.split()[:-1] for instruction, arguments in _instructions() if instruction == "COPY"]
    sources = [source for sources in copies for source in sources]
    assert sources, "the Dockerfile copies nothing?"
    for source in sources:
        assert (context / source).exists(), f"COPY {source}: not in the build context"
    assert sorted(path.name for path in (context / "web" / "vendor").iterdir()) == sorted(VENDOR_FILES)
    assert (context / "Dockerfile").read_bytes() == DOCKERFILE.read_bytes()


def test_the_wheel_runs_the_pods_command_and_its_dependencies_are_pinned(context: Path):
    (wheel,) = (context / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        entry_points = archive.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "apps/cli/main.py" in names
    assert "libs/api/web_assets.py" in names
    assert re.search(r"^claims\s*=\s*apps\.cli\.main:", entry_points, re.MULTILINE), entry_points
    (cmd,) = [arguments for instruction, arguments in _instructions() if instruction == "CMD"]
    assert cmd.startswith('["claims", "api"')
    pins = {re.split(r"[=<>!~ ]", line, maxsplit=1)[0].lower().replace("_", "-")
            for line in (REPO_ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#")}
    required = [re.split(r"[ ;<>=!~(\[]", line.removeprefix("Requires-Dist: "), maxsplit=1)[0].lower()
                .replace("_", "-").replace(".", "-")
                for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert required
    unpinned = [name for name in required if name not in {pin.replace(".", "-") for pin in pins}]
    assert unpinned == [], f"runtime dependencies without a requirements.lock pin: {unpinned}"


def test_user_port_and_chart_directory_agree_with_infra():
    instructions = dict(_instructions())
    assert instructions["USER"] == str(api_service.RUN_AS_USER)
    assert instructions["EXPOSE"] == str(api_service.HTTPS_PORT)
    workdir = instructions["WORKDIR"]
    vendor_copy = [arguments.split() for instruction, arguments in _instructions()
                   if instruction == "COPY" and arguments.startswith("web/vendor/")]
    assert [str(Path(workdir) / destination) for _source, destination in vendor_copy] == [IMAGE_WEB_ASSETS_DIR]


def test_app_config_points_the_api_at_the_images_chart_libraries():
    from infra.config import ApiConfig, StackConfig  # noqa: PLC0415

    config = StackConfig.model_construct(api=ApiConfig.model_construct(
        jwks_url="https://issuer.example/.well-known/jwks.json", issuer="https://issuer.example", audience="claims"))
    assert _api_settings(config)["api"]["web_assets_dir"] == IMAGE_WEB_ASSETS_DIR


def test_missing_chart_libraries_stop_the_context_naming_the_make_target(tmp_path: Path):
    with pytest.raises(ArtifactError, match=r"run `make web-assets`"):
        write_api_image_context(tmp_path / "context", web_assets=tmp_path / "nothing-vendored")
    assert not (tmp_path / "context").exists()
    result = subprocess.run([sys.executable, "-m", "apps.cli.main", "api", "image-context", str(tmp_path / "c")],
                            capture_output=True, text=True, check=False, cwd=REPO_ROOT, timeout=120,
                            env={"CLAIMS__API__WEB_ASSETS_DIR": str(tmp_path / "nothing-vendored"),
                                 "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 2, result.stderr
    assert "run `make web-assets`" in result.stderr
