"""Flat parameter arrays for the fused kernel, laid out as kernels/params.cuh says.

The header's enums are the single definition of the layout (read by
gpusim.backends.header), so adding a field means adding it to the header and to the
packing function here, and a missing or unknown name is an error, not a silent shift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gpusim.backends.header import layout
from gpusim.config import Config
from gpusim.errors import InputError
from gpusim.model.firms import FirmSpec, firm_specs
from gpusim.model.market import MarketParams, market_params


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

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The parameter arrays in the kernel's argument order (GPUSIM_INPUT_PARAMS)."""
        return tuple(np.ascontiguousarray(a) for a in (
            self.market, self.monthly, self.firm_table, self.contract_table,
            self.facility_table, self.capex, self.draws))


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
    if np.isnan(market).any():
        fields = [k for k, v in layout()["MarketParam"].items() if v < len(market)
                  and np.isnan(market[v])]
        raise InputError(f"the market parameters {fields} are NaN: expected numbers "
                         "(check the config's market section)")
    return Packed(market, monthly, firm_table, contract_table, facility_table,
                  np.ascontiguousarray(capex, dtype=np.float64),
                  np.ascontiguousarray(draws, dtype=np.float64), p.months)
