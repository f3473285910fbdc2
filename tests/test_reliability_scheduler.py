"""An unreachable --scheduler fails fast with exit 2 and the address, writing nothing."""

from __future__ import annotations

import socket
import time

import pytest
from reliability import small_file

from gpusim.cli import main


def _closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:CLOSED", "tcp://no-such-host.invalid:8786",
                                     "bogus::"])
def test_an_unreachable_scheduler_is_exit_2_at_once(tmp_path, capsys, address):
    address = address.replace("CLOSED", str(_closed_port()))
    config, out = small_file(tmp_path), tmp_path / "x.zarr"
    began = time.monotonic()
    assert main(["run", str(config), "--out", str(out), "--paths", "10",
                 "--scheduler", address]) == 2
    assert time.monotonic() - began < 15
    err = capsys.readouterr().err
    assert f"--scheduler {address!r}" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.yaml"]
