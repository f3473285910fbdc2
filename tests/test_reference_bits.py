"""The numpy reference keeps its bits: speed work on it (in-place steps, chunked draws)
must not change a single output.

The golden digests were computed on main before that work (commit 182ce6e), on x86-64
Linux (glibc's libm, OpenBLAS); other platforms' libm may round exp/log/sin/cos
differently, so the digests are checked there only. The chunking check runs everywhere.
"""

from __future__ import annotations

import hashlib
import platform
from pathlib import Path

import numpy as np
import pytest

from gpusim import streams
from gpusim.backends.reference import simulate_block
from gpusim.config import load_config

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "base.yaml"

GOLDEN = {  # case: (overrides, sha256 of every output of paths [1000, 1300), seed 2026)
    "base-f64": ([], "3b9fe34e2bf02b50cb02dc4cb4e21dd1"),
    "base-f32": (["dtype=float32"], "5eaff239a4f2b28da91f89a66570f690"),
    "market-gamma2-f32": (["firms=[]", "dtype=float32", "market.price.convexity=2.0"],
                          "fc4ecfb69ddd6bcf8481683728c0888f"),
    "market-f64": (["firms=[]"], "c60acc4b5ad33bb12134a9808a4a614e"),
}


ADDED_SINCE = {"exposure_at_default"}
"""Outputs added after the digests were recorded (checked by their own tests)."""


def digest(out: dict[str, np.ndarray]) -> str:
    """sha256 (first 32 hex digits) over every output's name and raw bytes, by name, of
    the outputs the digests were recorded with."""
    h = hashlib.sha256()
    for name in sorted(set(out) - ADDED_SINCE):
        h.update(name.encode())
        h.update(np.ascontiguousarray(out[name]).tobytes())
    return h.hexdigest()[:32]


@pytest.mark.skipif(platform.system() != "Linux" or platform.machine() != "x86_64",
                    reason="digests recorded with glibc's libm on x86-64")
@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_reference_outputs_keep_their_bits(case: str) -> None:
    overrides, expected = GOLDEN[case]
    config = load_config(CONFIG, overrides=overrides)
    assert digest(simulate_block(config, 2026, 1000, 1300)) == expected


def test_draw_chunks_change_no_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    paths = np.arange(5, 5 + 1000, dtype=np.uint64)
    whole = streams.market_draws(11, paths, 7)
    monkeypatch.setattr(streams, "CHUNK_PATHS", 96)  # 10 full chunks and a part
    chunked = streams.market_draws(11, paths, 7)
    for a, b in zip(whole, chunked, strict=True):
        assert np.array_equal(a, b)
