"""The market of MODEL.md §2 in JAX: the JAX peer of gpusim's engine.

Written as JAX is meant to be used: one `jax.jit` per block shape of a `lax.scan` over the
months, each step vectorized over the paths of the block, with `jax.random` draws made
inside the scan (a key per block from `fold_in(key(seed), block)`, one per month from
`fold_in(block key, month)`), so XLA fuses each month's draws and arithmetic into a few
kernels and the whole month loop runs without going back to Python. The 6×6 correlation
is unrolled into its 21 multiply-adds (σ√Δ folded in), efficiency-shock counts compare
one uniform against the Poisson CDF terms that can be reached in the dtype, and the lagged
utilization u[t−L] lives in a (L+1, n) ring buffer carried through the scan.

Same equations and timing conventions as `gpusim.model.market` and
`gpusim.bench.peers.plain_block`: H[t] uses P[t−1] (P[−1] = P[0]); u[t−L] before the start
is u[0]; month t's draws move the state from t to t+1; a launch dated m lowers ln P[m]. No
firms, so no fire sales. Every block records the nine market outputs of every path and
month in device memory (the months before the last as the scan's stacked outputs, the last
month separately), as gpusim's cube does. A block reports whether its last month is
finite (a non-finite state stays non-finite).

JAX is optional: `load_jax()` says why it cannot be used ("not installed").
"""

from __future__ import annotations

import math
import os
from collections import deque
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from gpusim.backends.reference import simulate_block
from gpusim.bench.peers import CHECKED, OUTPUTS, gpusim_draws, max_relative_errors
from gpusim.config import Config
from gpusim.model.market import BOOM, BUST, MarketParams

IMPLS = ("threefry2x32", "philox4x32", "rbg")
"""JAX PRNG implementations benchmarked: threefry2x32 (JAX's default), philox4x32 (the
generator gpusim uses, in JAX's own layout) and rbg (XLA's RngBitGenerator)."""

PIPELINE = 2
"""Blocks dispatched ahead of the one being waited for (bounds device memory)."""


def load_jax() -> tuple[ModuleType | None, str | None]:
    """(jax, None) if JAX imports, else (None, why not). Enables 64-bit types (the
    benchmark's arrays always name their dtype) and stops JAX from preallocating most of
    the GPU's memory, which CuPy shares in the same process."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    try:
        import jax
    except ImportError:
        return None, "not installed"
    except Exception as err:  # noqa: BLE001 - a broken install is reported, not raised
        return None, f"import failed: {type(err).__name__}: {err}"
    jax.config.update("jax_enable_x64", True)
    return jax, None


def jax_device(kind: str) -> tuple[Any, str | None]:
    """(the first JAX device of `kind` ('cpu' or 'gpu'), None), else (None, why not)."""
    jax, reason = load_jax()
    if jax is None:
        return None, reason
    try:
        return jax.devices(kind)[0], None
    except RuntimeError:
        hint = " (pip install 'jax[cuda12]')" if kind == "gpu" else ""
        return None, f"JAX has no {kind.upper()} backend here{hint}"


class State(NamedTuple):
    """Every path of a block at one month (logs where MODEL.md uses logs)."""

    ln_d: Any  # ln token demand [ln tokens/month]
    g: Any  # token growth rate [1/year]
    regime: Any  # 0 boom, 1 bust (int8)
    ln_e: Any  # ln H100-hours per 10^6 tokens
    k: Any  # capacity [GPUs]
    ln_p: Any  # ln spot price [ln USD/H100-hour]
    ln_p_prev: Any  # ln P[t−1]
    ln_v: Any  # ln collateral value [ln USD/GPU]
    x_r: Any  # SOFR shadow rate [1/year]
    ln_s: Any  # ln credit spread [ln 1/year]
    u_hist: Any  # (lag+1, n) utilization, u[t] at row t mod (lag+1)


class JaxMarket:
    """The market for one `MarketParams` (so one horizon), dtype and PRNG implementation.

    `block(key, n)` simulates n paths: (stacked outputs (months−1, n) each, last month (n,)
    each, all-finite flag), in `OUTPUTS` order. `fed_block(eps, unif)` does the same with
    given draws (months−1, 6, n) and (months−1, 2, n) instead of `jax.random`'s.
    """

    def __init__(self, p: MarketParams, dtype: Any, impl: str = "threefry2x32") -> None:
        jax, reason = load_jax()
        if jax is None:
            raise RuntimeError(f"JAX: {reason}")
        self.jax, self.p, self.impl = jax, p, impl
        self.dtype = np.dtype(dtype)
        self.block = jax.jit(self._random_block, static_argnames=("n",))
        self.fed_block = jax.jit(self._fed_block)
        self._constants()

    def _constants(self) -> None:
        """Python floats of the step (weakly typed: they keep the dtype of the arrays)."""
        p, dt = self.p, self.p.dt
        vol = np.array([p.sigma_d, p.sigma_g, p.sigma_p, p.sigma_v, p.sigma_r, p.sigma_s])
        chol = (vol[:, None] * math.sqrt(dt)) * np.asarray(p.chol, np.float64)
        self.chol = [[float(c) for c in row] for row in chol]
        self.h_const = p.elasticity * math.log(p.p_ref) - math.log(1e6)
        self.k_keep, self.kg_dt, self.kp_dt = 1 - p.omega * dt, p.kappa_g * dt, p.kappa_p * dt
        self.r_keep, self.r_pull = 1 - p.kappa_r * dt, p.kappa_r * dt * p.r_mean
        self.s_keep, self.s_pull = 1 - p.kappa_s * dt, p.kappa_s * dt * p.ln_s_mean
        months = p.months
        self.xs = (np.arange(months - 1), p.training[:-1].astype(self.dtype),
                   p.build[:-1].astype(self.dtype), p.launch_drop[1:].astype(self.dtype))

    # --- one month -------------------------------------------------------------------------

    def _initial(self, n: int) -> State:
        jnp, p, f = self.jax.numpy, self.p, self.dtype

        def full(value: float) -> Any:
            return jnp.full(n, value, f)

        s = State(full(p.ln_d0), full(p.g0), jnp.full(n, p.regime0, jnp.int8), full(p.ln_e0),
                  full(p.k0), full(p.ln_p0), full(p.ln_p0), full(p.ln_v0), full(p.r0),
                  full(p.ln_s0), None)
        _, u0 = self._record(s, float(p.training[0]))  # u before the start month is u[0]
        return s._replace(u_hist=jnp.broadcast_to(u0, (p.lag + 1, n)))

    def _record(self, s: State, training: Any) -> tuple[tuple[Any, ...], Any]:
        """The nine outputs of month t (`OUTPUTS` order) and u[t]."""
        jnp, p = self.jax.numpy, self.p
        h = jnp.exp(s.ln_d + s.ln_e + self.h_const - p.elasticity * s.ln_p_prev) + training
        u = jnp.minimum(h / (s.k * p.hours), 1.0)
        out = (jnp.exp(s.ln_d), h, s.k, u, jnp.exp(s.ln_p), jnp.exp(s.ln_v),
               jnp.maximum(s.x_r, 0.0), jnp.exp(s.ln_s), s.regime)
        return out, u

    def _shocks(self, eps: Any) -> list[Any]:
        """σ√Δ·L·ε in FACTORS order, the lower-triangular product written out."""
        rows = []
        for i in range(6):
            terms = [self.chol[i][j] * eps[j] for j in range(i + 1) if self.chol[i][j] != 0.0]
            rows.append(sum(terms[1:], terms[0]) if terms else 0.0 * eps[i])
        return rows

    def _advance(self, s: State, u: Any, u_lag: Any, eps: Any, unif: Any, build: Any,
                 drop: Any) -> State:
        """The state at t+1 from the state at t, u[t], u[t−L] and month t's draws."""
        jnp, p, dt = self.jax.numpy, self.p, self.p.dt
        z_d, z_g, z_p, z_v, z_r, z_s = self._shocks(eps)
        u_regime, u_shock = unif[0], unif[1]
        # U < 1, so CDF terms that round to 1 in the uniforms' dtype never count
        cdf = [float(c) for c in np.asarray(p.poisson_cdf, u_shock.dtype) if c < 1.0]
        count = sum((u_shock > c).astype(self.dtype) for c in cdf) if cdf else 0.0
        jump = count * p.jump_size
        bust = s.regime == 1
        ln_d = s.ln_d + (s.g - 0.5 * p.sigma_d**2) * dt + z_d + p.rebound * jump
        ln_e = s.ln_e - p.eta * dt - jump
        g = s.g + self.kg_dt * (jnp.where(bust, p.g_mean[BUST], p.g_mean[BOOM]) - s.g) + z_g
        regime = s.regime
        if p.regimes_on:
            flip = u_regime < jnp.where(bust, p.p_switch[BUST], p.p_switch[BOOM])
            regime = regime ^ flip.astype(jnp.int8)
        grow = jnp.clip(1.0 + p.xi * (u_lag - p.u_star), 0.0, p.m_max) if p.response_on else 1.0
        k = s.k * self.k_keep + build * grow
        fair = jnp.log(p.p_floor + (p.p_cap - p.p_floor) * u**p.gamma)
        ln_p = s.ln_p + self.kp_dt * (fair - s.ln_p) + z_p - drop
        ln_v = s.ln_v + p.beta * (ln_p - s.ln_p) + z_v - p.delta * dt
        if math.isfinite(p.ln_v_scrap):
            ln_v = jnp.maximum(ln_v, p.ln_v_scrap)
        x_r = s.x_r * self.r_keep + self.r_pull + z_r
        ln_s = s.ln_s * self.s_keep + self.s_pull + z_s
        return State(ln_d, g, regime, ln_e, k, ln_p, s.ln_p, ln_v, x_r, ln_s, s.u_hist)

    def _step(self, s: State, xs: tuple[Any, ...], eps: Any, unif: Any
              ) -> tuple[State, tuple[Any, ...]]:
        """Record month t, then move every path to t+1."""
        t, training, build, drop = xs
        out, u = self._record(s, training)
        rows = self.p.lag + 1
        u_hist = self.jax.lax.dynamic_update_index_in_dim(s.u_hist, u, t % rows, 0)
        u_lag = self.jax.lax.dynamic_index_in_dim(u_hist, (t + 1) % rows, 0, keepdims=False)
        s = self._advance(s._replace(u_hist=u_hist), u, u_lag, eps, unif, build, drop)
        return s, out

    # --- a block ------------------------------------------------------------------------------

    def _finish(self, s: State, ys: tuple[Any, ...]) -> tuple[Any, Any, Any]:
        jnp = self.jax.numpy
        last, _ = self._record(s, float(self.p.training[-1]))
        finite = jnp.all(jnp.stack([jnp.isfinite(v).all() for v in last[:-1]]))
        return ys, last, finite

    def _random_block(self, key: Any, n: int) -> tuple[Any, Any, Any]:
        random = self.jax.random

        def body(s: State, xs: tuple[Any, ...]) -> tuple[State, tuple[Any, ...]]:
            k_eps, k_unif = random.split(random.fold_in(key, xs[0]))
            eps = random.normal(k_eps, (6, n), self.dtype)
            unif = random.uniform(k_unif, (2, n), self.dtype)
            return self._step(s, xs, eps, unif)

        s, ys = self.jax.lax.scan(body, self._initial(n), self.xs)
        return self._finish(s, ys)

    def _fed_block(self, eps: Any, unif: Any) -> tuple[Any, Any, Any]:
        def body(s: State, xs: tuple[Any, ...]) -> tuple[State, tuple[Any, ...]]:
            *month, e, u = xs
            # like the engine: normals rounded to the dtype, uniforms compared in float64
            return self._step(s, tuple(month), e.astype(self.dtype), u)

        s, ys = self.jax.lax.scan(body, self._initial(eps.shape[-1]), (*self.xs, eps, unif))
        return self._finish(s, ys)


def equal_blocks(paths: int, block: int) -> tuple[int, int]:
    """(blocks, paths per block): equal blocks of at most `block` paths covering `paths`
    (the last one padded by fewer paths than there are blocks), so that one compiled
    shape serves every block."""
    blocks = -(-paths // block)
    return blocks, -(-paths // blocks)


def run_jax(market: JaxMarket, device: Any, paths: int, block: int, seed: int
            ) -> dict[str, list[Any]]:
    """Simulate `paths` paths in equal blocks on `device`; wait for the last block.

    Returns the last month of `CHECKED` per block (device arrays; the padding paths of
    the last block are cut when they come to the host). Raises FloatingPointError if a
    block is not finite.
    """
    jax = market.jax
    blocks, size = equal_blocks(paths, block)
    keep: dict[str, list[Any]] = {name: [] for name in CHECKED}
    pending: deque[Any] = deque()
    with jax.default_device(device):
        base = jax.random.key(seed % 2**63, impl=market.impl)
        for b in range(blocks):
            _, last, finite = market.block(jax.random.fold_in(base, b), n=size)
            for name in CHECKED:
                keep[name].append(last[OUTPUTS.index(name)])
            pending.append(finite)
            while len(pending) > PIPELINE:
                _check(pending.popleft())
        while pending:
            _check(pending.popleft())
    return keep


def _check(finite: Any) -> None:
    if not bool(finite):  # waits for the block
        raise FloatingPointError("JAX market: non-finite values in a block")


def jax_equation_check(config: Config, p: MarketParams, device: Any, seed: int,
                       n: int = 4096) -> dict[str, Any]:
    """The JAX step fed gpusim's Philox draws against `simulate_block`, as
    `gpusim.bench.peers.equation_check` does for plain numpy (same tolerances)."""
    jax, _ = load_jax()
    market = JaxMarket(p, config.dtype)
    eps = np.empty((p.months - 1, 6, n))
    unif = np.empty((p.months - 1, 2, n))
    draw = gpusim_draws(seed, n)
    for t in range(p.months - 1):
        draw(eps[t], unif[t], t)
    with jax.default_device(device):
        ys, last, _ = market.fed_block(eps, unif)
        mine = {name: np.concatenate([np.asarray(ys[i]), np.asarray(last[i])[None]])
                for i, name in enumerate(OUTPUTS)}
    tol = 1e-9 if np.dtype(config.dtype) == np.float64 else 1e-3
    worst = max_relative_errors(simulate_block(config, seed, 0, n, params=p), mine)
    return {"paths": n, "tol": tol, "max_rel_err": worst, "pass": max(worst.values()) <= tol}
