"""The README's examples run as written: every ```sh and ```python block, in a scratch
folder, with three documented substitutions (README.md, "Quick start"): the install
steps are dropped (this test runs in an installed environment), every path count becomes
SMALL_PATHS, and the test command itself is left out (it would run this test)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SMALL_PATHS = 200
BLOCKS = re.findall(r"^```(sh|python)\n(.*?)^```", README, flags=re.M | re.S)
INSTALL = re.compile(r"python3 -m venv \.venv && \.venv/bin/pip install [^&]*&& ")


def small(text: str) -> str:
    """The example with SMALL_PATHS paths: `--paths N` and `paths=N` (N with _ or ,)."""
    text = re.sub(r"--paths [\d_,]+", f"--paths {SMALL_PATHS}", text)
    return re.sub(r"\bpaths=[\d_]+", f"paths={SMALL_PATHS}", text)


def shell_commands() -> list[str]:
    commands = []
    for lang, body in BLOCKS:
        if lang != "sh":
            continue
        for line in body.strip().splitlines():
            line = INSTALL.sub("", line).replace(".venv/bin/", "")
            if "pytest" not in line:
                commands.append(small(line))
    return commands


def test_the_readme_has_examples():
    assert [lang for lang, _ in BLOCKS].count("python") >= 1
    assert any(c.startswith("gpusim run base") for c in shell_commands())


def test_shell_examples_run(tmp_path):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    for command in shell_commands():
        proc = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True,
                              text=True, check=False, timeout=300)
        assert proc.returncode == 0, f"{command}\n{proc.stderr[-2000:]}"
    assert (tmp_path / "runs" / "boom-report" / "index.html").is_file()


@pytest.mark.parametrize("index", [i for i, (lang, _) in enumerate(BLOCKS) if lang == "python"])
def test_python_examples_run(tmp_path, index):
    code = small(BLOCKS[index][1])
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, check=False, timeout=300)
    assert proc.returncode == 0, f"{code}\n{proc.stderr[-2000:]}"
