"""Policy pack entry point, run by the Pulumi CLI (`pulumi preview --policy-pack infra/policy`).

The CLI runs this directory as a script, so the repository root is put on sys.path for `import infra`.
"""

import sys
from pathlib import Path

_REPO_ROOT = str(Path(__file__).resolve().parents[2])
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402 - needs the sys.path entry above

from infra.policy.pack import PACK_NAME, build_policies  # noqa: E402

PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=build_policies())
