"""The warehouse and analytics packages depend downwards only: never on deploy tooling, the stream or the apps
(libs/warehouse/load.py used to import libs/deploy/redshift, which imported libs/warehouse/dialect: a cycle)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from libs.settings import REPO_ROOT

FORBIDDEN = ("libs.deploy", "libs.streaming", "apps")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("package", ["libs/warehouse", "libs/analytics"])
def test_no_module_imports_deploy_tooling_the_stream_or_an_app(package: str) -> None:
    modules = sorted((REPO_ROOT / package).rglob("*.py"))
    assert modules, f"{package} has no modules: the check would prove nothing"
    offending = {str(path.relative_to(REPO_ROOT)): sorted(name for name in _imports(path)
                                                          if name.startswith(FORBIDDEN))
                 for path in modules}
    assert {path: names for path, names in offending.items() if names} == {}


def test_deploy_uses_the_warehouse_redshift_helpers_rather_than_its_own() -> None:
    from libs.deploy import redshift  # noqa: PLC0415
    from libs.warehouse import redshift as warehouse_redshift  # noqa: PLC0415

    assert redshift.RedshiftTarget is warehouse_redshift.RedshiftTarget
    assert redshift.wait_for_statement is warehouse_redshift.wait_for_statement
