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
both outputs: z_a = √(−2 ln u_a)·cos(2π u_b), z_b = √(−2 ln u_a)·sin(2π u_b), with
cos(2π u_b) and sin(2π u_b) evaluated by `cos_sin_turns` (a table of 2¹⁰ angles and short
series: within 1.2e-16 of the exact values, the same bits on every platform).
Correlated shocks are Z = L·ε with L the (semi-definite) Cholesky factor of C.

Speed (numpy on a CPU; every shortcut below gives the same bits as the formulas above):
- Philox runs on two stacked rows, (c2, c0) and (c1, c3), so that each round is five
  in-place ufunc calls on preallocated buffers instead of ten calls and fresh arrays; on
  a (slot, path) grid the words land so that one pass covers all three Box–Muller pairs.
- u = (w + ½)·2⁻³² is formed exactly from the bits of 2²⁰ + w·2⁻³² (`_open_uniforms`).
- The draws of a month are made `CHUNK_PATHS` paths at a time, straight into the engine's
  month-after-month buffers for ε and the uniforms.
- cos and sin of 2π u_b are not libm's (`cos_sin_turns`): numpy has no SIMD float64 cos
  or sin below AVX-512, and glibc's scalar ones cost ~20 ns each, over half the draws'
  time; the table and series take ~26 vectorized passes (two of them table lookups),
  ~13 ns for both.
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from functools import lru_cache
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
CHUNK_PATHS = 8192
"""Paths drawn at a time on numpy. Smaller chunks keep Philox's three stacked buffers in a
core's L2 cache (4,096 paths: 384 kB), larger ones pay numpy's fixed cost per call
(~1–3 µs, ~70 calls a chunk) fewer times. On the 2-vCPU development VM, shared with other
work (load 9–16), a block of 16,384 market paths ran 8–22% faster in CPU time with
8,192-path chunks than with 4,096 (benchmarks/README.md, numpy section)."""
FIRM_SLOT0 = 2
"""First slot the firms may use; the market uses slots 0 and 1."""

TWO_PI = 6.283185307179586
UNIFORM_SCALE = 2.0**-32


def _round_keys(key: tuple[int, int]) -> list[tuple[int, int]]:
    """The (k0, k1) xor-ed into the (c2·M1, c0·M0) high words in each of the ten rounds."""
    k0, k1 = int(key[0]), int(key[1])
    out = []
    for _ in range(PHILOX_ROUNDS):
        out.append((k0, k1))
        k0 = (k0 + PHILOX_W0) & _MASK32
        k1 = (k1 + PHILOX_W1) & _MASK32
    return out


@lru_cache(maxsize=16)
def _round_constants(key: tuple[int, int], ndim: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The multipliers (M1, M0) and the ten round keys, as numpy uint64 arrays shaped
    (2, 1, …) to broadcast over stacked rows of `ndim` counter axes: made once per key, not
    per call (a chunk of draws would otherwise spend ~10 µs of Python on them). Read-only."""
    ones = (1,) * ndim
    mult = np.asarray([PHILOX_M1, PHILOX_M0], dtype=np.uint64).reshape((2, *ones))
    keys = np.asarray(_round_keys(key), dtype=np.uint64).reshape((PHILOX_ROUNDS, 2, *ones))
    for array in (mult, keys):
        array.flags.writeable = False
    return mult, list(keys)


def _philox_rows(counter: tuple[Any, Any, Any, Any], key: tuple[int, int],
                 xp: ModuleType = np) -> tuple[Any, Any]:
    """Philox4x32-10 as two stacked uint64 arrays (2, *shape) of 32-bit values.

    Returns (A, B) with A = (w0, w2) and B = (w1, w3), each stacked along its first axis
    in memory order (so that, on a (slot, path) grid, A's rows run w0 s0, w0 s1, w2 s0,
    w2 s1). One round, with A held as (c2, c0) and B as (c1, c3): P = A·(M1, M0);
    H = (P >> 32) ^ B ^ (k0, k1); then A ← (H[1], H[0]) and B ← P & (2³² − 1), which is
    the Random123 round (c0, c1, c2, c3) ← (hi(c2·M1) ^ c1 ^ k0, lo(c2·M1),
    hi(c0·M0) ^ c3 ^ k1, lo(c0·M0)). Three buffers rotate; no array is allocated inside
    the loop, and every operand of a round is contiguous or broadcast along the stacking
    axis only (numpy's fastest loops).
    """
    u64 = xp.uint64
    shape = tuple(np.broadcast_shapes(*(np.shape(c) for c in counter)))
    x = xp.empty((2, *shape), dtype=u64)  # holds A (reversed from the first round on)
    b = xp.empty((2, *shape), dtype=u64)
    free = xp.empty((2, *shape), dtype=u64)
    x[0], x[1], b[0], b[1] = counter[2], counter[0], counter[1], counter[3]
    mult, keys = _round_constants((int(key[0]), int(key[1])), len(shape))
    if xp is not np:  # on a device: copied there per call (a cache would pin one device)
        mult, keys = xp.asarray(mult), [xp.asarray(k) for k in keys]
    mask, shift = u64(_MASK32), u64(32)
    a = x
    for r in range(PHILOX_ROUNDS):
        xp.multiply(a, mult, out=free)  # P = (c2·M1, c0·M0), exact in 64 bits
        xp.right_shift(free, shift, out=x)
        x ^= b
        x ^= keys[r]  # x = (hi(c2·M1) ^ c1 ^ k0, hi(c0·M0) ^ c3 ^ k1) = (c0', c2')
        free &= mask  # (lo(c2·M1), lo(c0·M0)) = (c1', c3')
        a = x[::-1]
        b, free = free, b
    return x, b


def philox4x32(
    counter: tuple[Any, Any, Any, Any], key: tuple[int, int], xp: ModuleType = np
) -> tuple[Any, Any, Any, Any]:
    """Philox4x32-10 (Salmon et al. 2011, Random123) on arrays of counters.

    `counter` words are integer arrays (or ints) that broadcast together, each < 2³²;
    `key` is two ints < 2³². Returns four uint32 arrays. Arithmetic is done in uint64 so
    that the 32×32→64-bit products are exact.
    """
    a, b = _philox_rows(counter, key, xp)
    return tuple(w.astype(xp.uint32) for w in (a[0], b[0], a[1], b[1]))  # type: ignore[return-value]


def seed_key(seed: int) -> tuple[int, int]:
    """The Philox key for a seed in [0, 2⁶⁴)."""
    if not 0 <= int(seed) < 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed}")
    seed = int(seed)
    return seed & _MASK32, (seed >> 32) & _MASK32


_TWO_20 = 0x4130000000000000
"""The bits of the double 2²⁰, whose mantissa counts in steps of 2⁻³²: or-ed with a 32-bit
word w they make the double 2²⁰ + w·2⁻³²."""
_OPEN_OFFSET = 2.0**20 - 2.0**-33
"""(2²⁰ + w·2⁻³²) − (2²⁰ − 2⁻³³) = (w + ½)·2⁻³², exactly (Sterbenz: the two are within a
factor 2 of each other, and 2²⁰ − 2⁻³³ is a double)."""


def _open_uniforms(words: Any, xp: ModuleType, out: Any = None) -> Any:
    """(w + ½)·2⁻³² in float64, exactly, for 32-bit words held in uint64: the uniforms of
    `uniforms`, bit for bit. Overwrites `words`, and without `out` also returns their
    memory as the uniforms (a float64 view).

    Two vectorized passes (or the exponent in, subtract) where numpy converts uint64 to
    float64 one element at a time and then needs a third pass to scale.
    """
    words |= xp.uint64(_TWO_20)
    near = words.view(xp.float64)  # 2²⁰ + w·2⁻³²
    return xp.subtract(near, _OPEN_OFFSET, out=near if out is None else out)


def uniforms(words: Any, xp: ModuleType = np) -> Any:
    """32-bit words → float64 uniforms in the open interval (0, 1)."""
    u = xp.add(words, 0.5, dtype=xp.float64)
    u *= UNIFORM_SCALE
    return u


TURN_BITS = 10
"""`cos_sin_turns` tabulates cos and sin at 2^TURN_BITS angles evenly spaced on the circle."""
_TURNS = float(1 << TURN_BITS)
_PI_DIGITS = "3.14159265358979323846264338327950288419716939937510582097494459"


def _decimal_cos_sin(x: Decimal) -> tuple[Decimal, Decimal]:
    """cos x and sin x by their Taylor series in the current decimal context (0 ≤ x ≤ π/2)."""
    cos, sin, term, k = Decimal(1), x, x, 1
    while True:
        term = -term * x / (k + 1)  # (−1)^… x^(k+1)/(k+1)!, the next cos term
        cos_next = cos + term
        term = term * x / (k + 2)  # …/(k+2)!, the next sin term
        sin_next = sin + term
        if cos_next == cos and sin_next == sin:
            return cos, sin
        cos, sin, k = cos_next, sin_next, k + 2


@lru_cache(maxsize=1)
def turn_table() -> tuple[np.ndarray, np.ndarray]:
    """cos(2πj/2¹⁰) and sin(2πj/2¹⁰) for j = 0 … 2¹⁰−1, float64, correctly rounded.

    The first quadrant is summed in 50-digit decimal arithmetic and rounded once (Python's
    float(Decimal) rounds correctly); the other quadrants follow from it by exact sign
    changes, and the quadrant points are exact (cos 0 = 1, cos π/2 = 0, …). No libm is
    involved, so the table is the same everywhere. Read-only; made once (~7 ms).
    """
    quarter = 1 << (TURN_BITS - 2)
    cos_q, sin_q = np.empty(quarter), np.empty(quarter)
    with localcontext() as context:
        context.prec = 50
        step = 2 * Decimal(_PI_DIGITS) / (1 << TURN_BITS)
        for j in range(quarter):
            c, s = _decimal_cos_sin(step * j)
            cos_q[j], sin_q[j] = float(c), float(s)
    cos_q[0], sin_q[0] = 1.0, 0.0
    minus_cos, minus_sin = 0.0 - cos_q, 0.0 - sin_q  # 0 − x: cos π/2 is +0, not −0
    # θ + π/2: (cos, sin) → (−sin, cos); the four quadrants in turn
    cos = np.concatenate([cos_q, minus_sin, minus_cos, sin_q])
    sin = np.concatenate([sin_q, cos_q, minus_sin, minus_cos])
    for array in (cos, sin):
        array.flags.writeable = False
    return cos, sin


def cos_sin_turns(u: Any, xp: ModuleType = np, out: tuple[Any, Any] | None = None
                  ) -> tuple[Any, Any]:
    """cos(2πu) and sin(2πu) of float64 u in [0, 1), within 1.2e-16 of the exact values.

    2¹⁰u = j + r (both exact: j the whole part, 0 ≤ r < 1) and δ = 2πr/2¹⁰ < 0.0062, so
    with C_j, S_j from `turn_table`, sin δ = δ − δ³/6 + δ⁵/120 and 1 − cos δ = δ²/2 − δ⁴/24
    + δ⁶/720 (the series' next terms are below 1e-19):

        cos 2πu = C_j − (C_j·(1 − cos δ) + S_j·sin δ)
        sin 2πu = S_j + (C_j·sin δ − S_j·(1 − cos δ))

    The error is the table's and the last rounding's (≤ ½ ulp each) plus ~1e-18 from the
    small correction terms. For comparison, libm's cos(2π·u) carries the rounding of the
    angle 2π·u itself (up to 4.4e-16), and its bits differ between platforms. `out`: two
    float64 arrays shaped like u to write into.
    """
    cos_out, sin_out = out if out is not None else (xp.empty_like(u), xp.empty_like(u))
    cos_table, sin_table = (xp.asarray(t) for t in turn_table())
    # four scratch arrays, reused in turn: fresh temporaries per operation would each be
    # a separate allocation, which glibc may serve by mmap and so with page faults
    delta, a, b, c = (xp.empty_like(u, dtype=xp.float64) for _ in range(4))
    xp.multiply(u, _TURNS, out=delta)
    xp.modf(delta, delta, a)  # 2¹⁰u = j + r: r into delta, j into a (outputs by position: CuPy)
    j = a.astype(xp.intp)
    delta *= TWO_PI / _TURNS  # δ = 2πr/2¹⁰, rounded once
    d2 = xp.multiply(delta, delta, out=a)
    sin_d = _horner(d2, (1.0, -1.0 / 6.0, 1.0 / 120.0), xp, out=b)
    sin_d *= delta
    versine = _horner(d2, (0.5, -1.0 / 24.0, 1.0 / 720.0), xp, out=delta)  # 1 − cos δ
    versine *= d2
    cos_j = xp.take(cos_table, j, out=cos_out)
    sin_j = xp.take(sin_table, j, out=sin_out)
    cos_shift = xp.multiply(cos_j, versine, out=a)
    cos_shift += xp.multiply(sin_j, sin_d, out=c)  # C_j·(1 − cos δ) + S_j·sin δ
    sin_shift = xp.multiply(cos_j, sin_d, out=c)
    sin_shift -= xp.multiply(sin_j, versine, out=b)  # C_j·sin δ − S_j·(1 − cos δ)
    cos_j -= cos_shift  # in cos_out
    sin_j += sin_shift  # in sin_out
    return cos_out, sin_out


def _horner(x: Any, coefficients: tuple[float, ...], xp: ModuleType, out: Any) -> Any:
    """c₀ + x·(c₁ + x·(c₂ + …)), into `out`."""
    acc = xp.multiply(x, coefficients[-1], out=out)
    for c in coefficients[-2:0:-1]:
        acc += c
        acc *= x
    acc += coefficients[0]
    return acc


def box_muller(u_a: Any, u_b: Any, xp: ModuleType = np) -> tuple[Any, Any]:
    """Two independent standard normals from two independent uniforms in (0, 1)."""
    radius = xp.sqrt(-2.0 * xp.log(u_a))
    cos, sin = cos_sin_turns(u_b, xp)
    return radius * cos, radius * sin


def path_words(paths: Any, xp: ModuleType = np) -> tuple[Any, Any]:
    """Counter words (low, high) of 64-bit path indices."""
    paths = xp.asarray(paths, dtype=xp.uint64)
    return paths & xp.uint64(_MASK32), paths >> xp.uint64(32)


def _words(paths: Any, xp: ModuleType) -> tuple[Any, Any]:
    """(low, high) counter words of `paths`: path indices, or their `path_words` already
    (the engine computes those once per block instead of once a month)."""
    return paths if isinstance(paths, tuple) else path_words(paths, xp)


def raw_words(seed: int, paths: Any, month: int, slot: int, xp: ModuleType = np) -> tuple:
    """The four Philox words for (seed, paths, month, slot)."""
    lo, hi = path_words(paths, xp)
    return philox4x32((slot, month, lo, hi), seed_key(seed), xp)


def market_draws(seed: int, paths: Any, month: int, xp: ModuleType = np,
                 out: tuple[Any, Any] | None = None) -> tuple[Any, Any]:
    """Independent normals ε (6, n) and uniforms (2, n) for one month of the market.

    `paths`: the path indices (n,), or their counter words `path_words(paths)`.

    Row order of ε follows `gpusim.config.FACTORS`; uniforms are (U_regime, U_shock).
    Both slots go through Philox in one vectorized call, on a (slot, path) grid. On numpy
    the paths are taken `CHUNK_PATHS` at a time (see there); every number is a function
    of its own path only, so the chunking changes no bit. `out`: float64 arrays (6, n)
    and (2, n) to write into, reused month after month by the engine.
    """
    lo, hi = _words(paths, xp)
    n = lo.shape[0]
    eps, u = out if out is not None else (xp.empty((6, n)), xp.empty((2, n)))
    key = seed_key(seed)
    for a, b in _chunks(n, xp):
        _market_draws_into(eps[:, a:b], u[:, a:b], key, lo[a:b], hi[a:b], month, xp)
    return eps, u


def _chunks(n: int, xp: ModuleType) -> list[tuple[int, int]]:
    """[a, b) ranges of at most `CHUNK_PATHS` paths covering 0..n (one range off numpy)."""
    step = CHUNK_PATHS if xp is np else max(n, 1)
    return [(a, min(a + step, n)) for a in range(0, n, step)]


def _market_draws_into(eps: Any, u: Any, key: tuple[int, int], lo: Any, hi: Any,
                       month: int, xp: ModuleType) -> None:
    """`market_draws` for one chunk of paths, written into eps (6, m) and u (2, m).

    On the (slot, path) grid Philox's A rows are w0 s0, w0 s1, w2 s0, w2 s1 and its B
    rows w1 s0, w1 s1, w3 s0, w3 s1: the first three of each are the u_a and u_b of the
    Box–Muller pairs of ε rows (0, 1), (4, 5) and (2, 3), the last ones U_regime and
    U_shock. Each pass below covers the three pairs at once, in the words' own memory.
    """
    n = lo.shape[0]
    slots = xp.arange(MARKET_SLOTS, dtype=xp.uint64).reshape(MARKET_SLOTS, 1)
    a, b = (w.reshape(2 * MARKET_SLOTS, n) for w in _philox_rows((slots, month, lo, hi), key, xp))
    _open_uniforms(a[3], xp, out=u[0])  # U_regime: w2 of slot 1
    _open_uniforms(b[3], xp, out=u[1])  # U_shock: w3 of slot 1
    radius = _open_uniforms(a[:3], xp)  # u_a
    xp.log(radius, out=radius)
    radius *= -2.0
    xp.sqrt(radius, out=radius)
    trig = xp.empty((3, 2, n))  # (cos, sin)(2π u_b) of each pair
    cos_sin_turns(_open_uniforms(b[:3], xp), xp, out=(trig[:, 0], trig[:, 1]))  # u_b
    pairs = eps.reshape(3, 2, n)  # ε rows (0, 1), (2, 3), (4, 5): (z_a, z_b) of a pair
    xp.multiply(trig[0], radius[0], out=pairs[0])
    xp.multiply(trig[1:], radius[1:, None], out=pairs[2:0:-1])  # pairs of ε (4, 5), (2, 3)


def contract_uniforms(seed: int, paths: Any, month: int, contracts: int,
                      xp: ModuleType = np) -> Any:
    """Uniforms (contracts, 2, n) for one month: (U_renewal, U_counterparty_default).

    `paths`: the path indices (n,), or their counter words `path_words(paths)`.

    Contract c (numbered across all firms in config order) uses slot FIRM_SLOT0 + c // 2,
    words (0, 1) if c is even and (2, 3) if odd. Like `market_draws`, the slots go
    through Philox's stacked rows on a (slot, path) grid, `CHUNK_PATHS` paths at a time,
    straight into the uniforms.
    """
    lo, hi = _words(paths, xp)
    n = lo.shape[0]
    slots = (contracts + 1) // 2
    slot = xp.arange(FIRM_SLOT0, FIRM_SLOT0 + slots, dtype=xp.uint64).reshape(slots, 1)
    key = seed_key(seed)
    u = xp.empty((slots, 4, n), dtype=xp.float64)
    for start, stop in _chunks(n, xp):
        a, b = _philox_rows((slot, month, lo[start:stop], hi[start:stop]), key, xp)
        words = xp.moveaxis(u[:, :, start:stop], 1, 0)  # (word, slot, path) view of u
        _open_uniforms(a, xp, out=words[0::2])  # w0, w2 of each slot
        _open_uniforms(b, xp, out=words[1::2])  # w1, w3
    return u.reshape(slots * 2, 2, n)[:contracts]
