"""The import layers of pyproject.toml's [tool.importlinter] hold (scripts/test.sh runs
`lint-imports` too; this keeps them checked wherever only pytest runs)."""

from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]


def test_import_layers_and_no_cycles() -> None:
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0
