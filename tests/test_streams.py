"""Philox4x32-10 streams: known answers, the counter layout, and the distributions."""

from __future__ import annotations

import numpy as np
import pytest

from gpusim import streams
from gpusim.config import FACTORS, correlation_factor, correlation_matrix
from gpusim.streams import box_muller, market_draws, philox4x32, raw_words, seed_key, uniforms

EXTENDED = np.finfo(np.longdouble).nmant >= 63
"""Whether np.longdouble carries ≥ 64 bits of mantissa (x86-64 Linux): the exact reference
for the tests of `cos_sin_turns` below (11 more bits than float64)."""
needs_extended = pytest.mark.skipif(not EXTENDED, reason="np.longdouble is float64 here")
PI = np.longdouble("3.14159265358979323846264338327950288")


def edge_words() -> np.ndarray:
    """32-bit words at the ends of the range, of each table cell (2²² words a cell) and of
    each quadrant, and their neighbours."""
    cell = 1 << (32 - streams.TURN_BITS)
    ends = np.array([0, cell - 1, cell, 2**30 - 1, 2**30, 2**31 - 1, 2**31, 3 * 2**30,
                     2**32 - cell, 2**32 - 1], dtype=np.int64)
    return np.unique(np.clip(ends[:, None] + np.arange(-2, 3), 0, 2**32 - 1)).astype(np.uint64)

# Random123's known-answer vectors for philox4x32_R(10, ctr, key).
KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize(("counter", "key", "expected"), KNOWN_ANSWERS)
def test_philox_known_answers(counter, key, expected):
    assert tuple(int(w) for w in philox4x32(counter, key)) == expected


def test_philox_vectorized_equals_scalar():
    rng = np.random.default_rng(3)
    counters = rng.integers(0, 2**32, size=(4, 50), dtype=np.uint64)
    key = (0x12345678, 0x9ABCDEF0)
    vector = np.stack(philox4x32(tuple(counters), key))
    for i in range(50):
        scalar = philox4x32(tuple(int(c) for c in counters[:, i]), key)
        assert tuple(int(w) for w in scalar) == tuple(int(w) for w in vector[:, i])


def test_counter_layout_is_documented_one():
    """counter = (slot, month, path mod 2^32, path div 2^32), key = (seed lo, seed hi)."""
    seed, path, month, slot = 0x0123456789ABCDEF, 2**32 + 7, 11, 1
    words = raw_words(seed, np.array([path]), month, slot)
    expected = philox4x32((slot, month, 7, 1), (0x89ABCDEF, 0x01234567))
    assert [int(w[0]) for w in words] == [int(w) for w in expected]
    assert seed_key(seed) == (0x89ABCDEF, 0x01234567)


def test_seed_out_of_range_rejected():
    with pytest.raises(ValueError, match="seed"):
        seed_key(2**64)


def test_uniforms_in_open_interval():
    words = np.array([0, 1, 2**31, 2**32 - 1], dtype=np.uint32)
    u = uniforms(words)
    assert np.all(u > 0) and np.all(u < 1)
    assert u[0] == 0.5 * 2.0**-32 and u[-1] == 1 - 0.5 * 2.0**-32


def test_draws_are_pure_functions_of_seed_path_month():
    paths = np.arange(1000, 1100, dtype=np.uint64)
    eps, u = market_draws(7, paths, month=5)
    eps_sub, u_sub = market_draws(7, paths[[3, 50, 99]], month=5)
    np.testing.assert_array_equal(eps[:, [3, 50, 99]], eps_sub)
    np.testing.assert_array_equal(u[:, [3, 50, 99]], u_sub)
    eps_other, _ = market_draws(7, paths, month=6)
    eps_seed, _ = market_draws(8, paths, month=5)
    assert not np.any(eps == eps_other) and not np.any(eps == eps_seed)


def test_box_muller_uses_both_values_of_a_pair():
    u_a, u_b = np.array([0.3]), np.array([0.1])
    z_a, z_b = box_muller(u_a, u_b)
    radius = np.sqrt(-2 * np.log(0.3))
    np.testing.assert_allclose([z_a[0], z_b[0]], [radius * np.cos(0.2 * np.pi),
                                                  radius * np.sin(0.2 * np.pi)])


def test_turn_table_is_correctly_rounded_and_exact_at_the_quadrants():
    cos, sin = streams.turn_table()
    n = 1 << streams.TURN_BITS
    assert cos.shape == sin.shape == (n,) and not cos.flags.writeable
    q = n // 4
    assert (cos[0], sin[0], sin[q], cos[2 * q], sin[3 * q]) == (1.0, 0.0, 1.0, -1.0, -1.0)
    for zero in (cos[q], sin[2 * q], cos[3 * q]):  # +0, not −0
        assert zero == 0.0 and not np.signbit(zero)
    # cos θ = sin(π/2 − θ): the two halves of the first quadrant come from separate sums
    np.testing.assert_array_equal(cos[1:q], sin[q - 1:0:-1])
    j = np.arange(n)
    assert np.all(np.abs(cos - np.cos(2 * np.pi * j / n)) < 1e-15)  # libm's, rounded angle
    if EXTENDED:  # correctly rounded: within half an ulp, up to the reference's own 1e-18
        angle = 2 * PI * j.astype(np.longdouble) / n
        for table, exact in ((cos, np.cos(angle)), (sin, np.sin(angle))):
            away = np.abs(table.astype(np.longdouble) - exact)
            assert np.all(away <= 0.5 * np.spacing(np.abs(table)) + 1e-18)


@needs_extended
def test_cos_sin_turns_are_within_their_documented_error():
    """1.2e-16 absolute (the table's and the last rounding's half ulp, plus ~1e-18), on 10⁶
    uniforms from random words and at `edge_words`, where libm's cos(2π·u) is off by up to
    ~6e-16 (the rounding of 2π·u): an exact reference in 64-bit-mantissa arithmetic."""
    rng = np.random.default_rng(8)
    words = np.concatenate([edge_words(), rng.integers(0, 2**32, 10**6, dtype=np.uint64)])
    u = (words.astype(np.float64) + 0.5) * 2.0**-32
    cos, sin = streams.cos_sin_turns(u)
    angle = 2 * PI * (words.astype(np.longdouble) + np.longdouble(0.5)) / 2**32
    assert np.max(np.abs(cos - np.cos(angle))) <= 1.2e-16
    assert np.max(np.abs(sin - np.sin(angle))) <= 1.2e-16
    assert np.max(np.abs(np.cos(streams.TWO_PI * u) - np.cos(angle))) > 4e-16  # libm's


def test_cos_sin_turns_everywhere_in_the_unit_interval():
    """Any float64 u in [0, 1), not only the uniforms of words (and into `out`), within
    1e-15 of libm's (whose own error is up to ~6e-16 here); u = 1 is out of range."""
    rng = np.random.default_rng(9)
    u = np.concatenate([[0.0, 0.25, 0.5, 0.75, np.nextafter(1.0, 0.0)], rng.random(10**5)])
    out = (np.empty_like(u), np.empty_like(u))
    cos, sin = streams.cos_sin_turns(u, out=out)
    assert cos is out[0] and sin is out[1]
    assert np.max(np.abs(cos - np.cos(2 * np.pi * u))) < 1e-15
    assert np.max(np.abs(sin - np.sin(2 * np.pi * u))) < 1e-15
    assert (cos[:4].tolist(), sin[:4].tolist()) == ([1.0, 0.0, -1.0, 0.0], [0.0, 1.0, 0.0, -1.0])
    with pytest.raises(IndexError):
        streams.cos_sin_turns(np.array([1.0]))


def test_normals_differ_from_libms_box_muller_by_rounding_only():
    """The draws' normals against √(−2 ln u_a)·cos(2π·u_b) with libm's cos and sin (how
    they were made before `cos_sin_turns`): within 1e-15 of the radius, ε by ε."""
    paths = np.arange(50_000, dtype=np.uint64)
    eps, _ = market_draws(5, paths, month=2)
    words = [uniforms(w) for w in raw_words(5, paths, 2, 0) + raw_words(5, paths, 2, 1)]
    for rows, (u_a, u_b) in zip(((0, 1), (2, 3), (4, 5)),
                                ((words[0], words[1]), (words[2], words[3]),
                                 (words[4], words[5])), strict=True):
        radius = np.sqrt(-2.0 * np.log(u_a))
        angle = streams.TWO_PI * u_b
        assert np.max(np.abs(eps[rows[0]] - radius * np.cos(angle)) / radius) < 1e-15
        assert np.max(np.abs(eps[rows[1]] - radius * np.sin(angle)) / radius) < 1e-15


def test_normals_and_uniforms_have_their_distributions():
    """Moments of 6×200k normals and 2×200k uniforms within 4 standard errors."""
    n = 200_000
    eps, u = market_draws(2024, np.arange(n, dtype=np.uint64), month=0)
    se_mean, se_var = 1 / np.sqrt(n), np.sqrt(2 / (n - 1))
    assert np.all(np.abs(eps.mean(axis=1)) < 4 * se_mean)
    assert np.all(np.abs(eps.var(axis=1, ddof=1) - 1) < 4 * se_var)
    # excess kurtosis of a normal is 0 with standard error sqrt(24/n)
    kurt = (eps**4).mean(axis=1) / eps.var(axis=1) ** 2 - 3
    assert np.all(np.abs(kurt) < 4 * np.sqrt(24 / n))
    # uniform(0,1): mean 1/2 (sd 1/sqrt(12)), the draws mutually uncorrelated
    assert np.all(np.abs(u.mean(axis=1) - 0.5) < 4 / np.sqrt(12 * n))
    corr = np.corrcoef(np.vstack([eps, u]))
    off_diagonal = corr[~np.eye(8, dtype=bool)]
    assert np.all(np.abs(off_diagonal) < 4 / np.sqrt(n))


def test_correlated_shocks_have_the_configured_correlation():
    pairs = {"demand-growth": 0.5, "price-collateral": 0.7, "rate-spread": -0.4,
             "demand-price": 0.3, "growth-price": 0.2}
    c = correlation_matrix(pairs)
    lower = correlation_factor(c)
    n = 100_000
    eps, _ = market_draws(99, np.arange(n, dtype=np.uint64), month=3)
    sample = np.corrcoef(lower @ eps)
    # standard error of a sample correlation is (1 - rho^2) / sqrt(n)
    se = (1 - c**2) / np.sqrt(n) + np.eye(len(FACTORS))
    assert np.all(np.abs(sample - c) < 4 * se)


def test_semidefinite_correlation_factor():
    c = correlation_matrix({"demand-growth": 1.0})
    lower = correlation_factor(c)
    np.testing.assert_allclose(lower @ lower.T, c, atol=1e-12)
    assert np.allclose(np.tril(lower), lower)
