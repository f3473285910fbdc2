"""Every CLI error has one prefix; output piped into a reader that stops early (`head`)
ends quietly."""

from __future__ import annotations

import subprocess
import sys

import pytest
from reliability import PROCESS_SECONDS

from gpusim.cli import main


@pytest.mark.parametrize("argv", [["run"], ["run", "x.yaml", "--paths", "abc", "--out", "o"],
                                  ["nope"], ["summary"], ["summary", "missing.zarr"],
                                  ["validate", "missing.yaml"]])
def test_one_prefix(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("gpusim: ") and "gpusim: gpusim" not in err
    assert err.count("gpusim:") == 1


def test_output_into_a_closed_pipe_ends_quietly():
    proc = subprocess.Popen([sys.executable, "-m", "gpusim.cli", "schema"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first line, as `| head -0` would
    _, err = proc.communicate(timeout=PROCESS_SECONDS)
    assert proc.returncode == 1
    assert err == b"", err.decode()


def test_head_reads_the_first_lines():
    proc = subprocess.run(f"'{sys.executable}' -m gpusim.cli schema | head -n 2",
                          shell=True, capture_output=True, text=True, timeout=PROCESS_SECONDS)
    assert proc.stdout.startswith("{") and proc.stderr == ""
