"""The import layers of pyproject.toml's [tool.importlinter] hold (scripts/test.sh runs
`lint-imports` too; this keeps them checked wherever only pytest runs)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_layers_and_no_cycles() -> None:
    # In a process of its own: import-linter configures logging with dictConfig, which would
    # disable the loggers of this test process (the scheduler's, whose records tests read).
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint), "--no-cache", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
