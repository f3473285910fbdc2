"""Flat parameter arrays for the fused kernel, laid out as kernels/params.cuh says.

The header's enums are the single definition of the layout: this module parses them, so
adding a field means adding it to the header and to the packing function here, and a
missing or unknown name is an error at import, not a silent shift.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from gpusim import sketch
from gpusim.config import Config
from gpusim.engine import (
    FACILITY_OUTPUTS,
    FIRM_OUTPUTS,
    FLAG_OUTPUTS,
    INTEGER_OUTPUTS,
    MARKET_OUTPUTS,
)
from gpusim.model.firms import FLOWS, FirmSpec, firm_specs
from gpusim.model.market import MarketParams, market_params


def kernel_dir() -> Path:
    """The CUDA sources: gpusim/kernels in a wheel, the top-level kernels/ in a checkout."""
    packaged = Path(__file__).resolve().parents[1] / "kernels"
    if (packaged / "params.cuh").is_file():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / "kernels"
    if (checkout / "params.cuh").is_file():
        return checkout
    raise FileNotFoundError(f"CUDA sources not found in {packaged} or {checkout}")


@cache
def layout() -> dict[str, dict[str, int]]:
    """Enum name → value for every enum in params.cuh, by enum type name."""
    text = (kernel_dir() / "params.cuh").read_text()
    text = re.sub(r"//[^\n]*", "", text)
    enums: dict[str, dict[str, int]] = {}
    for name, body in re.findall(r"enum\s+(\w+)\s*\{(.*?)\}", text, flags=re.S):
        values: dict[str, int] = {}
        next_value = 0
        for item in (x.strip() for x in body.split(",")):
            if not item:
                continue
            key, _, expr = (part.strip() for part in item.partition("="))
            if expr:
                base, _, offset = (p.strip() for p in expr.partition("+"))
                next_value = (values[base] if base in values else int(base)) + (
                    int(offset) if offset else 0)
            values[key] = next_value
            next_value += 1
        enums[name] = values
    return enums


def _table(enum: str, rows: list[dict[str, float]], prefix: str) -> np.ndarray:
    fields = layout()[enum]
    count = fields[f"{prefix}COUNT"]
    out = np.zeros((len(rows), count))
    for i, row in enumerate(rows):
        expected = {k for k in fields if k != f"{prefix}COUNT"}
        given = {prefix + k for k in row}
        if given != expected:
            raise KeyError(f"{enum}: packed {sorted(given ^ expected)} do not match params.cuh")
        for key, value in row.items():
            out[i, fields[prefix + key]] = value
    return out


@dataclass(frozen=True)
class Packed:
    """Everything the kernel reads, as contiguous float64 arrays."""

    market: np.ndarray  # (MP_COUNT,)
    monthly: np.ndarray  # (MM_COUNT, months)
    firm_table: np.ndarray  # (n_firms, FT_COUNT)
    contract_table: np.ndarray  # (n_contracts, CT_COUNT)
    facility_table: np.ndarray  # (n_facilities, FA_COUNT)
    capex: np.ndarray  # (n_firms, months)
    draws: np.ndarray  # (n_facilities, months)
    months: int

    @property
    def counts(self) -> tuple[int, int, int]:
        return len(self.firm_table), len(self.contract_table), len(self.facility_table)


def pack_market(p: MarketParams) -> tuple[np.ndarray, np.ndarray]:
    fields = layout()["MarketParam"]
    scalars = {
        "DT": p.dt, "LN_D0": p.ln_d0, "SIGMA_D": p.sigma_d, "G0": p.g0,
        "G_BOOM": p.g_mean[0], "G_BUST": p.g_mean[1], "KAPPA_G": p.kappa_g,
        "SIGMA_G": p.sigma_g, "ELASTICITY": p.elasticity, "P_REF": p.p_ref,
        "REGIME0": p.regime0, "P_BOOM_BUST": p.p_switch[0], "P_BUST_BOOM": p.p_switch[1],
        "REGIMES_ON": p.regimes_on, "LN_E0": p.ln_e0, "ETA": p.eta,
        "JUMP_SIZE": p.jump_size, "REBOUND": p.rebound, "N_POISSON": len(p.poisson_cdf),
        "K0": p.k0, "OMEGA": p.omega, "XI": p.xi, "U_STAR": p.u_star, "M_MAX": p.m_max,
        "LAG": p.lag, "HOURS": p.hours, "RESPONSE_ON": p.response_on, "LN_P0": p.ln_p0,
        "P_FLOOR": p.p_floor, "P_CAP": p.p_cap, "GAMMA": p.gamma, "KAPPA_P": p.kappa_p,
        "SIGMA_P": p.sigma_p, "LN_V0": p.ln_v0, "BETA": p.beta, "DELTA": p.delta,
        "SIGMA_V": p.sigma_v, "PHI": p.phi, "DEPTH": p.depth, "LN_V_SCRAP": p.ln_v_scrap,
        "FIRE_SALE_ON": p.fire_sale_on, "R0": p.r0, "R_MEAN": p.r_mean,
        "KAPPA_R": p.kappa_r, "SIGMA_R": p.sigma_r, "LN_S0": p.ln_s0,
        "LN_S_MEAN": p.ln_s_mean, "KAPPA_S": p.kappa_s, "SIGMA_S": p.sigma_s,
    }
    arrays = {"CHOL", "POISSON", "COUNT"}
    missing = {k.removeprefix("MP_") for k in fields} - arrays - set(scalars)
    if missing:
        raise KeyError(f"MarketParam fields not packed: {sorted(missing)}")
    market = np.zeros(fields["MP_COUNT"])
    for key, value in scalars.items():
        market[fields["MP_" + key]] = float(value)
    market[fields["MP_CHOL"]:fields["MP_CHOL"] + 36] = np.asarray(p.chol).ravel()
    market[fields["MP_POISSON"]:fields["MP_POISSON"] + len(p.poisson_cdf)] = p.poisson_cdf
    rows = layout()["MarketMonthly"]
    monthly = np.zeros((rows["MM_COUNT"], p.months))
    monthly[rows["MM_TRAINING"]] = p.training
    monthly[rows["MM_BUILD"]] = p.build
    monthly[rows["MM_LAUNCH_DROP"]] = p.launch_drop
    return market, monthly


def pack_firms(specs: tuple[FirmSpec, ...], months: int) -> tuple[np.ndarray, ...]:
    firms, contracts, facilities = [], [], []
    for spec in specs:
        firms.append({
            "GPUS": spec.gpus, "COST": spec.cost_per_gpu_hour, "OVERHEAD": spec.overhead,
            "CASH0": spec.opening_cash, "HAIRCUT": spec.haircut,
            "CONTRACT0": len(contracts), "N_CONTRACTS": len(spec.contracts),
            "FACILITY0": len(facilities), "N_FACILITIES": len(spec.facilities),
        })
        contracts += [{
            "GPUS": c.gpus, "PRICE": c.price, "START": c.start, "END": c.end, "P0": c.p0,
            "THETA": c.theta, "PREMIUM": c.premium, "TERM": c.term,
            "INSOURCE": c.insource_month, "P_INSOURCE": c.p_insource,
            "HAZARD_BOOM": c.hazard[0], "HAZARD_BUST": c.hazard[1], "STREAM": c.stream,
            "DEFAULT_STREAM": c.default_stream,
        } for c in spec.contracts]
        facilities += [{
            "BALANCE": f.balance, "UNDRAWN": f.undrawn, "FLOATING": f.floating,
            "RATE": f.rate, "AMORTIZATION": f.amortization, "MATURITY": f.maturity,
            "REFI_MAX_LTV": f.refi_max_ltv, "REFI_MAX_SPREAD": f.refi_max_spread,
            "REFI_TERM": f.refi_term, "PLEDGED": f.pledged_share,
            "SECURED_MASK": sum(1 << k for k in f.secured_on), "SWEEP": f.cash_sweep,
            "MAX_LTV": f.max_ltv, "MIN_LIQUIDITY": f.min_liquidity,
        } for f in spec.facilities]
    capex = np.array([s.capex for s in specs]).reshape(len(specs), months)
    draws = np.array([f.draws for s in specs for f in s.facilities]).reshape(-1, months)
    return (_table("FirmField", firms, "FT_"), _table("ContractField", contracts, "CT_"),
            _table("FacilityField", facilities, "FA_"), capex, draws)


def pack(config: Config) -> Packed:
    """The kernel's inputs for a config."""
    p = market_params(config)
    market, monthly = pack_market(p)
    firm_table, contract_table, facility_table, capex, draws = pack_firms(
        firm_specs(config), p.months)
    assert not np.isnan(market).any()
    return Packed(market, monthly, firm_table, contract_table, facility_table,
                  np.ascontiguousarray(capex, dtype=np.float64),
                  np.ascontiguousarray(draws, dtype=np.float64), p.months)


def _names(enum: str, prefix: str) -> list[str]:
    """Output names in enum order: MO_TOKEN_DEMAND → token_demand."""
    fields = sorted(layout()[enum].items(), key=lambda kv: kv[1])
    return [k.removeprefix(prefix).lower() for k, _ in fields if k != f"{prefix}COUNT"]


def unpack(raw: dict[str, Any], record_flows: bool = False) -> dict[str, Any]:
    """Kernel outputs (variable, month, [entity,] path) → `engine.simulate_block`'s dict."""
    out: dict[str, Any] = {}
    for key, enum, prefix in (("market", "MarketOutput", "MO_"), ("firm", "FirmOutput", "FO_"),
                              ("facility", "FacilityOutput", "AO_")):
        for v, name in enumerate(_names(enum, prefix)):
            values = raw[key][v]
            out[name] = values.astype(INTEGER_OUTPUTS[name]) if name in INTEGER_OUTPUTS \
                else values
    out["default_month"] = raw["default_month"]
    out["loss_total"] = raw["loss_total"]
    if record_flows:
        for v, name in enumerate(_names("Flow", "FL_")):
            out[f"flow_{name}"] = raw["flows"][v]
    return out


def output_shapes(packed: Packed, n: int) -> dict[str, tuple[int, ...]]:
    """Shapes of the kernel's raw output arrays for a block of n paths."""
    months = packed.months
    n_firms, _, n_facilities = packed.counts
    count = {enum: layout()[enum][prefix + "COUNT"] for enum, prefix in (
        ("MarketOutput", "MO_"), ("FirmOutput", "FO_"), ("FacilityOutput", "AO_"),
        ("Flow", "FL_"))}
    return {
        "market": (count["MarketOutput"], months, n),
        "firm": (count["FirmOutput"], months, n_firms, n),
        "facility": (count["FacilityOutput"], months, n_facilities, n),
        "default_month": (n_firms, n),
        "loss_total": (n_facilities, n),
        "flows": (count["Flow"], months, n_firms, n),
    }


def summary_shapes(packed: Packed) -> dict[str, tuple[int, ...]]:
    """Shapes of the summary kernel's count arrays (per block, whatever its size)."""
    months, buckets = packed.months, sketch.BUCKETS
    n_firms, _, n_facilities = packed.counts
    count = {enum: layout()[enum][prefix + "COUNT"] for enum, prefix in (
        ("MarketOutput", "MO_"), ("FirmOutput", "FO_"), ("FacilityOutput", "AO_"))}
    return {
        "market": (count["MarketOutput"], months, buckets),
        "firm": (count["FirmOutput"], months, n_firms, buckets),
        "facility": (count["FacilityOutput"], months, n_facilities, buckets),
        "bust": (months,),
        "ltv_breach": (months, n_firms),
        "nonfinite": (1,),
    }


def sketch_layout() -> tuple[float, float, int, int, int]:
    """kernels/sketch.cuh's SketchLayout, from gpusim.sketch's constants: (min_magnitude,
    log_gamma, key_min, key_max, buckets)."""
    return (sketch.MIN_MAGNITUDE, sketch.LOG_GAMMA, sketch.KEY_MIN, sketch.KEY_MAX,
            sketch.BUCKETS)


def unpack_summary(raw: dict[str, Any]) -> dict[str, Any]:
    """Summary kernel counts → summary-mode names: `<variable>_sketch` (month, [entity,]
    bucket) for every monthly variable but the 0/1 flags, `bust_count` (month) and
    `ltv_breach_count` (month, firm). The flags' rows, which the kernel leaves at zero,
    are dropped; so is `defaulted` (default curves use the exact default months)."""
    out: dict[str, Any] = {}
    for key, enum, prefix in (("market", "MarketOutput", "MO_"), ("firm", "FirmOutput", "FO_"),
                              ("facility", "FacilityOutput", "AO_")):
        for v, name in enumerate(_names(enum, prefix)):
            if name not in FLAG_OUTPUTS:
                out[f"{name}_sketch"] = raw[key][v]
    out["bust_count"] = raw["bust"]
    out["ltv_breach_count"] = raw["ltv_breach"]
    return out


def check_names() -> None:
    """The kernel's output and flow names are the engine's (run by the tests)."""
    assert _names("MarketOutput", "MO_") == list(MARKET_OUTPUTS)
    assert _names("FirmOutput", "FO_") == list(FIRM_OUTPUTS)
    assert _names("FacilityOutput", "AO_") == list(FACILITY_OUTPUTS)
    assert _names("Flow", "FL_") == list(FLOWS)
