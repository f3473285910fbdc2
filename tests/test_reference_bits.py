"""The numpy reference keeps its bits: speed work on it (in-place steps, chunked draws)
must not change a single output.

The golden digests were computed on main before that work (commit 182ce6e), on x86-64
Linux (glibc's libm, OpenBLAS); other platforms' libm may round exp/log/pow differently,
so the digests are checked there only. The chunking check runs everywhere.

One change moved bits on purpose: Box–Muller's cos and sin of 2π·u_b became
`streams.cos_sin_turns` (a table and short series, 1.2e-16 from the exact values) instead
of libm's cos and sin of the rounded angle (up to 6e-16 off, and ~20 ns each). The float64
digests were recorded again then (gpusim 0.2.0); the float32 ones did not change, as the
normals moved by less than float32 rounds. test_streams checks that the normals moved by
rounding only (< 1e-15 of the radius).
"""

from __future__ import annotations

import hashlib
import platform
from pathlib import Path

import numpy as np
import pytest

from gpusim import streams
from gpusim.backends.base import check_finite
from gpusim.backends.reference import simulate_block
from gpusim.config import load_config
from gpusim.errors import SimulationError

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "base.yaml"

GOLDEN = {  # case: (overrides, sha256 of every output of paths [1000, 1300), seed 2026)
    "base-f64": ([], "5fc95b09dd8f3c80c325f3577c2c0870"),
    "base-f32": (["dtype=float32"], "5eaff239a4f2b28da91f89a66570f690"),
    "market-gamma2-f32": (["firms=[]", "dtype=float32", "market.price.convexity=2.0"],
                          "fc4ecfb69ddd6bcf8481683728c0888f"),
    "market-f64": (["firms=[]"], "160d27f58353f3d6a4854d29c034c2dd"),
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


def test_open_uniforms_equal_the_formula_bit_for_bit() -> None:
    """(w + ½)·2⁻³² from the bits of 2²⁰ + w·2⁻³² is the float64 formula exactly, at the
    ends of the word range and on 10⁵ random words."""
    rng = np.random.default_rng(4)
    words = np.concatenate([np.array([0, 1, 2**31, 2**32 - 2, 2**32 - 1], dtype=np.uint64),
                            rng.integers(0, 2**32, 100_000, dtype=np.uint64)])
    expected = (words.astype(np.float64) + 0.5) * 2.0**-32
    got = streams._open_uniforms(words.copy(), np)
    assert got.tobytes() == expected.tobytes()
    assert np.array_equal(streams.uniforms(words.astype(np.uint32)), expected)


def test_market_draws_follow_the_documented_pairs() -> None:
    """ε rows (0, 1), (2, 3), (4, 5) are Box–Muller of slot 0's (w0, w1), slot 0's (w2, w3)
    and slot 1's (w0, w1); U_regime, U_shock are slot 1's w2, w3 (streams' docstring)."""
    seed, month, paths = 99, 4, np.arange(3, 40, dtype=np.uint64)
    eps, u = streams.market_draws(seed, paths, month)
    s0 = [streams.uniforms(w) for w in streams.raw_words(seed, paths, month, 0)]
    s1 = [streams.uniforms(w) for w in streams.raw_words(seed, paths, month, 1)]
    for rows, (u_a, u_b) in zip(((0, 1), (2, 3), (4, 5)),
                                ((s0[0], s0[1]), (s0[2], s0[3]), (s1[0], s1[1])), strict=True):
        z_a, z_b = streams.box_muller(u_a, u_b)
        assert eps[rows[0]].tobytes() == z_a.tobytes() and eps[rows[1]].tobytes() == z_b.tobytes()
    assert u[0].tobytes() == s1[2].tobytes() and u[1].tobytes() == s1[3].tobytes()


def test_precomputed_path_words_change_no_bit() -> None:
    paths = np.arange(2**32 - 5, 2**32 + 5, dtype=np.uint64)  # across the word boundary
    words = streams.path_words(paths)
    for a, b in zip(streams.market_draws(3, paths, 2), streams.market_draws(3, words, 2),
                    strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(streams.contract_uniforms(3, paths, 2, 5),
                          streams.contract_uniforms(3, words, 2, 5))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_check_finite_finds_the_first_bad_value(bad: float) -> None:
    values = np.ones((4, 6))
    values[2, 5] = bad
    with pytest.raises(SimulationError, match=r"price is .* on path 15 at month index 2"):
        check_finite({"price": values}, 10)


def test_check_finite_passes_finite_values_whose_sum_overflows() -> None:
    check_finite({"huge": np.full((3, 4), 1e308), "f32": np.full(5, 3e38, np.float32)}, 0)
