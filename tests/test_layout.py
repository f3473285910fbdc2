"""The house rules of docs/architecture.md: dependencies flow one way and modules stay
small enough to hold one idea."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 460
"""About 450 lines a module; the config schema is the one exception."""
EXCEPTIONS = {"gpusim/config.py"}


def test_modules_stay_small():
    too_long = {}
    for path in sorted((ROOT / "gpusim").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES and name not in EXCEPTIONS:
            too_long[name] = lines
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"


def test_imports_follow_the_layers():
    """pyproject.toml's import-linter contracts (layers, no circles) hold."""
    linter = Path(sys.executable).with_name("lint-imports")
    command = str(linter) if linter.is_file() else shutil.which("lint-imports")
    if command is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    proc = subprocess.run([command], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]
