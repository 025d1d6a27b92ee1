"""`pulumi up` entry point (Pulumi.yaml: `main: infra/`); all logic lives in infra.program.

Pulumi runs this directory as a script, so the repository root is put on sys.path for `import infra`.
"""

import sys
from pathlib import Path

_REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from infra.program import main  # noqa: E402 - needs the sys.path entry above

main()
