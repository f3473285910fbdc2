"""Flat parameter arrays for the fused kernel, laid out as kernels/params.cuh says.

The header's enums are the single definition of the layout (read by
gpusim.backends.header), and the packing is derived from them, not listed: entry
<PREFIX>NAME of an enum holds attribute `name` of the object it packs (a field of
MarketParams, FirmSpec, ContractSpec or FacilitySpec, or a read-only property of one such
as FacilitySpec.secured_mask), over the slots up to the next entry. Adding a parameter
means adding the field and a header entry of the same name; a name on one side only is
an error (LayoutError), not a silent shift. The packer supplies only what no single object
knows: a firm's position in the contract and facility tables (FT_CONTRACT0, FT_FACILITY0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, is_dataclass
from itertools import pairwise

import numpy as np

from gpusim.backends.header import layout
from gpusim.config import Config
from gpusim.errors import InputError
from gpusim.model.firms import FirmSpec, firm_specs
from gpusim.model.market import MarketParams, market_params

NOT_PACKED: dict[str, dict[str, str]] = {
    "MarketParam": {
        "months": "the kernels' `months` argument",
        "training": "row MM_TRAINING of `monthly`",
        "build": "row MM_BUILD of `monthly`",
        "launch_drop": "row MM_LAUNCH_DROP of `monthly`",
        **{f"sigma_{x}": f"in MP_VOL_{x.upper()} (derived_market)" for x in "dgpvrs"},
        "p_ref": "as MP_LN_P_REF (derived_market)",
        "eta": "in MP_ETA_DT (derived_market)",
        "omega": "in MP_RETENTION (derived_market)",
        "delta": "in MP_DELTA_DT (derived_market)",
        "p_cap": "in MP_P_SPAN (derived_market)",
    },
    "FirmField": {
        "name": "not read by the kernel",
        "cost_per_gpu_hour": "in FT_OPERATING_COST (derived_firm)",
        "overhead": "in FT_OPERATING_COST (derived_firm)",
        "haircut": "as FT_RECOVERY (derived_firm)",
        "capex": "the firm's row of `capex`",
        "contracts": "rows of `contract_table` (FT_CONTRACT0, FT_N_CONTRACTS)",
        "facilities": "rows of `facility_table` (FT_FACILITY0, FT_N_FACILITIES)",
    },
    "ContractField": {},
    "FacilityField": {
        "name": "not read by the kernel",
        "draws": "the facility's row of `draws`",
        "secured_on": "as a bitmask, FA_SECURED_MASK (secured_mask)",
    },
}
"""The dataclass fields deliberately left out of the enum that packs their object, and
where the kernel gets them instead. Every other field must have an entry. (MarketMonthly
picks MarketParams' monthly arrays only, so it is not checked this way.)"""


class LayoutError(ValueError):
    """The header's layout and the objects packed into it disagree (a bug, not bad input)."""


def slots(enum: str) -> tuple[str, int, list[tuple[str, int, int]]]:
    """(prefix, <PREFIX>COUNT, [(attribute, first slot, width)]) of a params.cuh enum, in
    slot order: MP_G_MEAN → ("g_mean", 4, 2). The entry with the highest value closes it."""
    entries = sorted(layout()[enum].items(), key=lambda kv: kv[1])
    closing, count = entries[-1]
    if not closing.endswith("_COUNT"):
        raise LayoutError(f"{enum}: its last entry {closing} is not <PREFIX>COUNT")
    prefix = closing.removesuffix("COUNT")
    out = []
    for (key, first), (_, following) in pairwise(entries):
        if not key.startswith(prefix) or following <= first:
            raise LayoutError(f"{enum}: {key} is not a {prefix} entry with a slot of its own")
        out.append((key.removeprefix(prefix).lower(), first, following - first))
    return prefix, count, out


def pack_fields(enum: str, obj: object, row: int | None = None, **given: float) -> np.ndarray:
    """`obj` laid out as `enum` says, (COUNT,) doubles, or (COUNT, row) with `row`.

    Entry <PREFIX>NAME takes `given["name"]` if given, else `obj.name`. A one-slot entry
    takes exactly one number (one row of `row` numbers with `row`); a wider one an array of
    at most its slots, flattened and zero-padded (poisson_cdf is empty with jumps off).
    A dataclass field that is neither an entry nor in NOT_PACKED[enum] is an error.
    """
    prefix, count, entries = slots(enum)
    unit = 1 if row is None else row
    out = np.zeros(count * unit)
    kind = type(obj).__name__
    for name, first, width in entries:
        entry = f"{enum} entry {prefix}{name.upper()}"
        if name not in given and not hasattr(obj, name):
            raise LayoutError(f"{entry}: {kind} has no field or property `{name}`")
        try:
            flat = np.asarray(given[name] if name in given else getattr(obj, name),
                              dtype=np.float64).ravel()
        except (TypeError, ValueError) as e:
            raise LayoutError(f"{entry}: {kind}.{name} is not numeric ({e})") from e
        if flat.size > width * unit or (width == 1 and flat.size != unit):
            raise LayoutError(f"{entry}: {kind}.{name} has {flat.size} values for "
                              f"its {width * unit} slot(s)")
        out[first * unit:first * unit + flat.size] = flat
    names = {name for name, _, _ in entries}
    if set(given) - names:
        raise LayoutError(f"{enum}: no entries for the given {sorted(set(given) - names)}")
    if enum in NOT_PACKED and is_dataclass(obj):
        unpacked = {f.name for f in fields(obj)} - names - set(NOT_PACKED[enum])
        if unpacked:
            raise LayoutError(f"{enum}: {kind} fields {sorted(unpacked)} have no entry in "
                              "params.cuh (add one, or list them in packing.NOT_PACKED)")
    return out if row is None else out.reshape(count, row)


def _table(enum: str, rows: list[np.ndarray]) -> np.ndarray:
    """Rows packed by pack_fields as one (len(rows), COUNT) table, also when empty."""
    return np.array(rows, dtype=np.float64).reshape(len(rows), slots(enum)[1])


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
        """The arrays the kernel reads through pointers, in its argument order
        (GPUSIM_INPUT_PARAMS; the market scalars go by value, `kernel_io.STRUCTS`)."""
        return tuple(np.ascontiguousarray(a) for a in (
            self.monthly, self.firm_table, self.contract_table, self.facility_table,
            self.capex, self.draws))


def derived_market(p: MarketParams) -> dict[str, float]:
    """The market scalars that do not change per path or month, which the kernel would
    otherwise recompute in every path's every month: ln P_ref, σ_D²/2, each shock's σ√Δ,
    ηΔ, δΔ, 1 − ωΔ and P_cap − P_floor. Python floats are IEEE doubles and math.sqrt and
    math.log are the C library's, so these are the very doubles the kernel computed
    (MarketParam's derived entries, params.cuh)."""
    sq = math.sqrt(p.dt)
    return {
        "ln_p_ref": math.log(p.p_ref), "half_var_d": 0.5 * (p.sigma_d * p.sigma_d),
        "vol_d": p.sigma_d * sq, "vol_g": p.sigma_g * sq, "vol_p": p.sigma_p * sq,
        "vol_v": p.sigma_v * sq, "vol_r": p.sigma_r * sq, "vol_s": p.sigma_s * sq,
        "eta_dt": p.eta * p.dt, "delta_dt": p.delta * p.dt, "retention": 1.0 - p.omega * p.dt,
        "p_span": p.p_cap - p.p_floor,
    }


def pack_market(p: MarketParams) -> tuple[np.ndarray, np.ndarray]:
    """The market scalars (MarketParam, with `derived_market`'s) and the per-month
    schedules (MarketMonthly)."""
    return (pack_fields("MarketParam", p, **derived_market(p)),
            pack_fields("MarketMonthly", p, row=p.months))


def derived_firm(spec: FirmSpec, hours: float) -> dict[str, float]:
    """A firm's numbers that do not change per path or month, computed once here in the
    double operations the kernel would repeat (as `derived_market`): the monthly
    operating cost, GPUs × cost per GPU-hour × `hours` (GPU-hours a month) + overhead
    [USD/month], and the recovery 1 − haircut of seized GPUs."""
    return {"operating_cost": spec.gpus * spec.cost_per_gpu_hour * hours + spec.overhead,
            "recovery": 1.0 - spec.haircut}


def pack_firms(specs: tuple[FirmSpec, ...], months: int, hours: float
               ) -> tuple[np.ndarray, ...]:
    """The firm, contract and facility tables, and the capex and draws schedules;
    `hours` are the market's GPU-hours a month (MarketParams.hours)."""
    firms, contracts, facilities = [], [], []
    for spec in specs:
        firms.append(pack_fields("FirmField", spec, contract0=len(contracts),
                                 facility0=len(facilities), **derived_firm(spec, hours)))
        contracts += [pack_fields("ContractField", c) for c in spec.contracts]
        facilities += [pack_fields("FacilityField", f) for f in spec.facilities]
    capex = np.array([s.capex for s in specs]).reshape(len(specs), months)
    draws = np.array([f.draws for s in specs for f in s.facilities]).reshape(-1, months)
    return (_table("FirmField", firms), _table("ContractField", contracts),
            _table("FacilityField", facilities), capex, draws)


def pack(config: Config) -> Packed:
    """The kernel's inputs for a config."""
    p = market_params(config)
    market, monthly = pack_market(p)
    firm_table, contract_table, facility_table, capex, draws = pack_firms(
        firm_specs(config), p.months, p.hours)
    if np.isnan(market).any():
        prefix, _, entries = slots("MarketParam")
        nan = [f"{prefix}{name.upper()}" for name, first, width in entries
               if np.isnan(market[first:first + width]).any()]
        raise InputError(f"the market parameters {nan} are NaN: expected numbers "
                         "(check the config's market section)")
    return Packed(market, monthly, firm_table, contract_table, facility_table,
                  np.ascontiguousarray(capex, dtype=np.float64),
                  np.ascontiguousarray(draws, dtype=np.float64), p.months)
