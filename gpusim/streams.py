"""Counter-based random streams: Philox4x32-10 in vectorized numpy.

Every random number gpusim uses is a pure function of (seed, path, month, slot), so a
block of paths can be computed alone, in any order, on any device, and give the same
numbers. The CUDA kernel reproduces this layout bit for bit, so keep the two in step.

Layout (one Philox4x32-10 call yields four 32-bit words):

    key     = (seed mod 2³², seed div 2³² mod 2³²)         seed: integer in [0, 2⁶⁴)
    counter = (slot, month, path mod 2³², path div 2³²)    month: 0-based step index

Per path and month the market uses two slots:

    slot 0: words w0..w3 → ε_demand, ε_growth, ε_price, ε_collateral
    slot 1: words w0, w1 → ε_rate, ε_spread;  w2 → U_regime;  w3 → U_shock
    slots ≥ FIRM_SLOT0: reserved for the firms (contracts, counterparties)

Words become uniforms in the open interval (0, 1) as u = (w + ½)·2⁻³², computed in
float64. Normals come by Box–Muller from consecutive pairs of uniforms (u_a, u_b), using
both outputs: z_a = √(−2 ln u_a)·cos(2π u_b), z_b = √(−2 ln u_a)·sin(2π u_b).
Correlated shocks are Z = L·ε with L the (semi-definite) Cholesky factor of C.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9
PHILOX_W1 = 0xBB67AE85
PHILOX_ROUNDS = 10
_MASK32 = 0xFFFFFFFF

MARKET_SLOTS = 2
FIRM_SLOT0 = 2
"""First slot the firms may use; the market uses slots 0 and 1."""

TWO_PI = 6.283185307179586
UNIFORM_SCALE = 2.0**-32


def philox4x32(
    counter: tuple[Any, Any, Any, Any], key: tuple[int, int], xp: ModuleType = np
) -> tuple[Any, Any, Any, Any]:
    """Philox4x32-10 (Salmon et al. 2011, Random123) on arrays of counters.

    `counter` words are integer arrays (or ints) that broadcast together, each < 2³²;
    `key` is two ints < 2³². Returns four uint32 arrays. Arithmetic is done in uint64 so
    that the 32×32→64-bit products are exact.
    """
    u64 = xp.uint64
    shape = xp.broadcast_shapes(*(xp.shape(c) for c in counter))
    c0, c1, c2, c3 = (xp.broadcast_to(xp.asarray(c, dtype=u64), shape) for c in counter)
    mask, m0, m1 = u64(_MASK32), u64(PHILOX_M0), u64(PHILOX_M1)
    shift = u64(32)
    k0, k1 = key
    for _ in range(PHILOX_ROUNDS):
        p0 = c0 * m0
        p1 = c2 * m1
        hi1 = p1 >> shift
        hi1 ^= c1
        hi1 ^= u64(k0)
        hi0 = p0 >> shift
        hi0 ^= c3
        hi0 ^= u64(k1)
        p1 &= mask
        p0 &= mask
        c0, c1, c2, c3 = hi1, p1, hi0, p0
        k0 = (k0 + PHILOX_W0) & _MASK32
        k1 = (k1 + PHILOX_W1) & _MASK32
    return tuple(c.astype(xp.uint32) for c in (c0, c1, c2, c3))  # type: ignore[return-value]


def seed_key(seed: int) -> tuple[int, int]:
    """The Philox key for a seed in [0, 2⁶⁴)."""
    if not 0 <= int(seed) < 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed}")
    seed = int(seed)
    return seed & _MASK32, (seed >> 32) & _MASK32


def uniforms(words: Any, xp: ModuleType = np) -> Any:
    """32-bit words → float64 uniforms in the open interval (0, 1)."""
    return (words.astype(xp.float64) + 0.5) * UNIFORM_SCALE


def box_muller(u_a: Any, u_b: Any, xp: ModuleType = np) -> tuple[Any, Any]:
    """Two independent standard normals from two independent uniforms in (0, 1)."""
    radius = xp.sqrt(-2.0 * xp.log(u_a))
    angle = TWO_PI * u_b
    return radius * xp.cos(angle), radius * xp.sin(angle)


def path_words(paths: Any, xp: ModuleType = np) -> tuple[Any, Any]:
    """Counter words (low, high) of 64-bit path indices."""
    paths = xp.asarray(paths, dtype=xp.uint64)
    return paths & xp.uint64(_MASK32), paths >> xp.uint64(32)


def raw_words(seed: int, paths: Any, month: int, slot: int, xp: ModuleType = np) -> tuple:
    """The four Philox words for (seed, paths, month, slot)."""
    lo, hi = path_words(paths, xp)
    return philox4x32((slot, month, lo, hi), seed_key(seed), xp)


def market_draws(seed: int, paths: Any, month: int, xp: ModuleType = np) -> tuple[Any, Any]:
    """Independent normals ε (6, n) and uniforms (2, n) for one month of the market.

    Row order of ε follows `gpusim.config.FACTORS`; uniforms are (U_regime, U_shock).
    Both slots go through Philox in one vectorized call.
    """
    lo, hi = path_words(paths, xp)
    n = lo.shape[0]
    slot = xp.repeat(xp.arange(MARKET_SLOTS, dtype=xp.uint64), n)
    w0, w1, w2, w3 = philox4x32(
        (slot, month, xp.tile(lo, MARKET_SLOTS), xp.tile(hi, MARKET_SLOTS)),
        seed_key(seed),
        xp,
    )
    u0, u1, u2, u3 = (uniforms(w, xp) for w in (w0, w1, w2, w3))
    z0, z1 = box_muller(u0, u1, xp)  # slot 0: demand, growth | slot 1: rate, spread
    z2, z3 = box_muller(u2[:n], u3[:n], xp)  # slot 0 only: price, collateral
    eps = xp.stack([z0[:n], z1[:n], z2, z3, z0[n:], z1[n:]])
    return eps, xp.stack([u2[n:], u3[n:]])


def contract_uniforms(seed: int, paths: Any, month: int, contracts: int,
                      xp: ModuleType = np) -> Any:
    """Uniforms (contracts, 2, n) for one month: (U_renewal, U_counterparty_default).

    Contract c (numbered across all firms in config order) uses slot FIRM_SLOT0 + c // 2,
    words (0, 1) if c is even and (2, 3) if odd.
    """
    lo, hi = path_words(paths, xp)
    n = lo.shape[0]
    slots = (contracts + 1) // 2
    slot = xp.repeat(xp.arange(FIRM_SLOT0, FIRM_SLOT0 + slots, dtype=xp.uint64), n)
    words = philox4x32((slot, month, xp.tile(lo, slots), xp.tile(hi, slots)),
                       seed_key(seed), xp)
    u = xp.stack([uniforms(w, xp).reshape(slots, n) for w in words], axis=1)  # (slots, 4, n)
    return u.reshape(slots * 2, 2, n)[:contracts]
