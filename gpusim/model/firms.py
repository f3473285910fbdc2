"""GPU lessors and their debt (MODEL.md §3), one monthly step at a time, vectorized over paths.

This is the reference arithmetic for the firms. `FirmSpec` flattens a configured firm into
numbers (months as 0-based indices from the start month); `FirmState` holds every path's
cash, contracts and facilities; `firm_month` advances one firm by one month given the
market of that month, in MODEL.md's order:

1. contracts: a contract whose term ended last month renews with p = clip(p0·(P/price)^θ,
   0, 1) (p_insource once its counterparty insources) at P·(1+premium), or lapses; an
   active contract's counterparty defaults with its regime's monthly hazard, drawn once per
   counterparty (the uniform of its first contract), so a counterparty that defaults ends
   all its contracts, with every lessor, in the same month. Lapsed and defaulted
   contracts' GPUs join the spot pool for good;
2. revenue = contracted GPUs × price × hours + spot GPUs × P × u × hours;
   operating cost = GPUs × (kW × hours × power price + opex × hours) + overhead;
3. cash += revenue − operating cost − capex + draws (draws capped by the undrawn amount);
4. interest (fixed, or SOFR + margin) and scheduled principal (level annuity over the
   months to maturity, straight-line, or none for a bullet) on every facility; a facility
   secured on contracts then prepays `cash_sweep` × what those contracts earned beyond its
   debt service;
5. at maturity the balance rolls over for `term_months` at SOFR + S (the new margin is
   that month's spread) if LTV ≤ max_ltv and S ≤ max_spread, else it is repaid in cash;
6. LTV = balance / (pledged share × fleet × V); above max LTV the lender calls for cash
   collateral that brings the LTV net of that cash, (balance − posted) / value, back to max
   LTV. The posted cash is restricted (it leaves `cash`) and is recomputed every month, so
   it is released as the LTV recovers. Posting cash rather than prepaying keeps the debt
   schedule independent of the collateral path: lower collateral values can then only
   lower unrestricted cash, which is what makes fire-sale feedback raise defaults;
7. cash below the largest minimum-liquidity covenant of the outstanding facilities (or
   below zero) is a default. In the default month the firm pays nothing through steps 4–6:
   each lender's claim is its balance before them plus that month's interest; the GPUs
   pledged to facilities with a claim are sold at V·(1 − haircut), and the proceeds plus
   the cash left after step 3 (unrestricted and posted) go to the claims by seniority; what
   is unpaid is the lender's loss. The seized GPUs are returned so that the market's
   fire-sale term sees them next month. Each facility's exposure at default (EAD) is the
   balance it entered the default month with (last month's closing balance, before this
   month's draws). A defaulted firm stays defaulted: from then on its flows, cash and
   debt are zero.

Every month's cash change is the sum of the `FLOWS` terms, which can be recorded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from gpusim.config import Config, Facility, month_number
from gpusim.model.market import schedule_array

NEVER = 1 << 30
"""A month index that never comes (no insourcing)."""

AMORTIZATION = {"level": 0, "straight_line": 1, "bullet": 2}

FLOWS = ("revenue", "operating_cost", "capex", "draws", "interest", "principal", "sweep",
         "repayment", "margin_call", "settlement")
"""Cash-flow terms: Δcash = revenue − operating_cost − capex + draws − every other term."""


@dataclass(frozen=True)
class ContractSpec:
    gpus: float
    price: float
    start: int
    end: int
    p0: float
    theta: float
    premium: float
    term: int
    insource_month: int
    p_insource: float
    hazard: tuple[float, float]  # (boom, bust) per month
    stream: int  # global contract index: its renewal uniform is stream's first
    default_stream: int  # first contract of the same counterparty: its default uniform


@dataclass(frozen=True)
class FacilitySpec:
    name: str
    balance: float
    undrawn: float
    draws: np.ndarray  # (months,) USD
    floating: bool
    rate: float  # fixed rate or margin [1/year]
    amortization: int
    maturity: int
    refi_max_ltv: float  # -inf: never refinanced
    refi_max_spread: float
    refi_term: int
    pledged_share: float
    secured_on: tuple[int, ...]  # local contract indices
    cash_sweep: float
    max_ltv: float  # inf: no LTV test
    min_liquidity: float

    @property
    def secured_mask(self) -> int:
        """`secured_on` as a bitmask: bit k set when secured on local contract k."""
        return sum(1 << k for k in self.secured_on)


@dataclass(frozen=True)
class FirmSpec:
    name: str
    gpus: float
    cost_per_gpu_hour: float  # power + other opex [USD/GPU-hour]
    overhead: float
    capex: np.ndarray  # (months,) USD
    opening_cash: float
    haircut: float
    contracts: tuple[ContractSpec, ...]
    facilities: tuple[FacilitySpec, ...]  # in seniority order, most senior first

    @property
    def n_contracts(self) -> int:
        return len(self.contracts)

    @property
    def n_facilities(self) -> int:
        return len(self.facilities)


def _facility_spec(f: Facility, start: int, months: int, contract_names: list[str],
                   start_label: str) -> FacilitySpec:
    refi = f.refinancing
    return FacilitySpec(
        name=f.name, balance=f.balance, undrawn=f.undrawn,
        draws=schedule_array(f.draws, start_label, months),
        floating=f.rate_type == "floating", rate=f.rate,
        amortization=AMORTIZATION[f.amortization],
        maturity=month_number(f.maturity) - start,
        refi_max_ltv=refi.max_ltv if refi else -math.inf,
        refi_max_spread=refi.max_spread if refi else -math.inf,
        refi_term=refi.term_months if refi else 0,
        pledged_share=f.pledged_share,
        secured_on=tuple(sorted(contract_names.index(c) for c in f.secured_on)),
        cash_sweep=f.cash_sweep,
        max_ltv=f.max_ltv if f.max_ltv is not None else math.inf,
        min_liquidity=f.min_liquidity,
    )


def firm_specs(config: Config) -> tuple[FirmSpec, ...]:
    """Every configured firm as a FirmSpec; contracts numbered globally for their streams."""
    start, months = month_number(config.start), config.horizon_months
    specs, stream = [], 0
    first_of: dict[str, int] = {}  # counterparty → global index of its first contract
    for firm in config.firms:
        contracts = []
        for c in firm.contracts:
            cp = c.counterparty
            contracts.append(ContractSpec(
                gpus=c.gpus, price=c.price,
                start=month_number(c.start) - start if c.start else -1,
                end=month_number(c.end) - start,
                p0=c.renewal.p0, theta=c.renewal.theta, premium=c.renewal.premium,
                term=c.renewal.term_months,
                insource_month=(month_number(cp.insourcing_month) - start
                                if cp.insourcing_month else NEVER),
                p_insource=cp.p_insource,
                hazard=(cp.default_hazard.boom, cp.default_hazard.bust),
                stream=stream,
                default_stream=first_of.setdefault(cp.name, stream),
            ))
            stream += 1
        names = [c.name for c in firm.contracts]
        facilities = sorted(firm.facilities, key=lambda f: f.seniority)
        specs.append(FirmSpec(
            name=firm.name, gpus=firm.fleet.gpus,
            cost_per_gpu_hour=(firm.fleet.kw_per_gpu * firm.fleet.power_price
                               + firm.fleet.opex_per_gpu_hour),
            overhead=firm.fleet.overhead_per_month,
            capex=schedule_array(firm.fleet.capex, config.start, months),
            opening_cash=firm.opening_cash, haircut=firm.seizure_haircut,
            contracts=tuple(contracts),
            facilities=tuple(_facility_spec(f, start, months, names, config.start)
                             for f in facilities),
        ))
    return tuple(specs)


def facility_order(config: Config) -> list[tuple[str, str]]:
    """(firm, facility) names in the order the engine outputs facilities (seniority within firm)."""
    return [(firm.name, f.name) for firm in config.firms
            for f in sorted(firm.facilities, key=lambda f: f.seniority)]


@dataclass
class FirmState:
    """One firm on every path of a block."""

    cash: Any
    defaulted: Any  # bool
    default_month: Any  # int32, -1 while alive
    active: list[Any]  # per contract, bool: paying this month
    gone: list[Any]  # per contract, bool: its counterparty has defaulted (for good)
    price: list[Any]  # per contract, current price [USD/GPU-hour]
    end: list[Any]  # per contract, last paying month of the current term (int32)
    balance: list[Any]  # per facility [USD]
    undrawn: list[Any]
    maturity: list[Any]  # int32
    floating: list[Any]  # bool
    rate: list[Any]  # fixed rate or margin [1/year]
    loss: list[Any]  # per facility, cumulative loss [USD]
    posted: list[Any]  # per facility, cash collateral held under margin calls [USD]
    ead: list[Any]  # per facility, exposure at default: balance entering the default month
    flows: dict[str, Any] = field(default_factory=dict)


def initial_firm_state(spec: FirmSpec, n: int, dtype: Any, xp: ModuleType = np) -> FirmState:
    def full(value: float, dt: Any = dtype) -> Any:
        return xp.full(n, value, dtype=dt)

    return FirmState(
        cash=full(spec.opening_cash), defaulted=xp.zeros(n, dtype=bool),
        default_month=full(-1, xp.int32),
        active=[xp.full(n, c.start <= 0, dtype=bool) for c in spec.contracts],
        gone=[xp.zeros(n, dtype=bool) for c in spec.contracts],
        price=[full(c.price) for c in spec.contracts],
        end=[full(c.end, xp.int32) for c in spec.contracts],
        balance=[full(f.balance) for f in spec.facilities],
        undrawn=[full(f.undrawn) for f in spec.facilities],
        maturity=[full(f.maturity, xp.int32) for f in spec.facilities],
        floating=[xp.full(n, f.floating, dtype=bool) for f in spec.facilities],
        rate=[full(f.rate) for f in spec.facilities],
        loss=[full(0.0) for f in spec.facilities],
        posted=[full(0.0) for f in spec.facilities],
        ead=[full(0.0) for f in spec.facilities],
    )


@dataclass(frozen=True)
class MarketNow:
    """The market of one month that the firms see."""

    price: Any  # P [USD/GPU-hour]
    utilization: Any  # u
    collateral: Any  # V [USD/GPU]
    sofr: Any  # r [1/year]
    spread: Any  # S [1/year]
    regime: Any  # 0 boom, 1 bust
    hours: float  # hours per month


def renewal_probability(c: ContractSpec, spot: Any, price: Any, t: int, xp: ModuleType) -> Any:
    """clip(p0·(P/price)^θ, 0, 1), or p_insource once the counterparty insources."""
    if t >= c.insource_month:
        return c.p_insource
    return xp.clip(c.p0 * (spot / price) ** c.theta, 0.0, 1.0)


def update_contracts(spec: FirmSpec, s: FirmState, m: MarketNow, t: int, u_renew: list[Any],
                     u_default: list[Any], xp: ModuleType) -> None:
    """Step 1: starts, renewals or lapses at term end, counterparty defaults."""
    real = s.cash.dtype.type
    for k, c in enumerate(spec.contracts):
        hazard = xp.where(m.regime == 0, real(c.hazard[0]), real(c.hazard[1]))
        s.gone[k] = s.gone[k] | (u_default[k] < hazard)  # a defaulted counterparty stays so
        if t == c.start:
            s.active[k] = ~s.gone[k]
        due = s.active[k] & (s.end[k] < t)
        renew = due & (u_renew[k] < renewal_probability(c, m.price, s.price[k], t, xp))
        s.price[k] = xp.where(renew, m.price * (1.0 + c.premium), s.price[k])
        s.end[k] = xp.where(renew, t + c.term - 1, s.end[k]).astype(xp.int32)
        s.active[k] = s.active[k] & ~(due & ~renew) & ~s.gone[k]


def level_payment(balance: Any, monthly_rate: Any, months_left: Any, xp: ModuleType) -> Any:
    """Annuity payment that retires `balance` in `months_left` payments at `monthly_rate`."""
    safe = xp.where(monthly_rate > 0, monthly_rate, 1.0)
    annuity = balance * safe / (1.0 - (1.0 + safe) ** (-months_left))
    return xp.where(monthly_rate > 0, annuity, balance / months_left)


def scheduled_principal(f: FacilitySpec, balance: Any, interest: Any, monthly_rate: Any,
                        months_left: Any, xp: ModuleType) -> Any:
    """Principal due this month under the facility's amortization."""
    if f.amortization == AMORTIZATION["bullet"]:
        return xp.zeros_like(balance)
    if f.amortization == AMORTIZATION["straight_line"]:
        return balance / months_left
    return level_payment(balance, monthly_rate, months_left, xp) - interest


def firm_month(spec: FirmSpec, s: FirmState, m: MarketNow, t: int, u_renew: list[Any],
               u_default: list[Any], xp: ModuleType = np, record_flows: bool = False) -> dict:
    """Advance one firm by month t on every path; returns its outputs for month t.

    Also returns, under "seized", the GPUs seized (and dumped on the market) this month.
    """
    alive = ~s.defaulted
    zero = xp.zeros_like(s.cash)
    real = s.cash.dtype.type  # constants enter in the state's precision, as in the kernel
    update_contracts(spec, s, m, t, u_renew, u_default, xp)
    entering = list(s.balance)  # last month's closing balances: the exposure at default

    # 2. revenue and operating cost
    contracted, contract_revenue, secured_revenue = zero, zero, {}
    for k, c in enumerate(spec.contracts):
        gpus = xp.where(s.active[k], real(c.gpus), real(0))
        earned = gpus * s.price[k] * m.hours
        contracted = contracted + gpus
        contract_revenue = contract_revenue + earned
        secured_revenue[k] = earned
    spot_revenue = (spec.gpus - contracted) * m.price * m.utilization * m.hours
    revenue = xp.where(alive, contract_revenue + spot_revenue, 0.0)
    operating_cost = xp.where(alive, real(spec.gpus * spec.cost_per_gpu_hour * m.hours
                                          + spec.overhead), real(0))
    capex = xp.where(alive, real(spec.capex[t]), 0.0)

    # 3. cash before debt service, with draws
    draws = zero
    for j, f in enumerate(spec.facilities):
        d = xp.where(alive, xp.minimum(real(f.draws[t]), s.undrawn[j]), 0.0)
        s.undrawn[j] = s.undrawn[j] - d
        s.balance[j] = s.balance[j] + d
        draws = draws + d
    cash = s.cash + revenue - operating_cost - capex + draws
    cash_before_service = cash
    posted_before = list(s.posted)
    claims = []

    # 4-6. debt service, maturity, LTV test
    interest_sum, principal_sum, sweep_sum, repay_sum, call_sum = zero, zero, zero, zero, zero
    pledged_value_sum, pledged_balance_sum, breach = zero, zero, xp.zeros_like(alive)
    required = zero
    for j, f in enumerate(spec.facilities):
        b = s.balance[j]
        annual = xp.where(s.floating[j], m.sofr + s.rate[j], s.rate[j])
        monthly = annual / 12.0
        interest = b * monthly
        claims.append(b + interest)
        months_left = xp.maximum(s.maturity[j] - t + 1, 1).astype(b.dtype)
        principal = xp.minimum(scheduled_principal(f, b, interest, monthly, months_left, xp), b)
        b = b - principal
        sweep = zero
        if f.secured_on and f.cash_sweep > 0:
            earned = sum((secured_revenue[k] for k in f.secured_on), zero)
            sweep = xp.minimum(f.cash_sweep * xp.maximum(earned - interest - principal, 0.0), b)
            b = b - sweep
        collateral = f.pledged_share * spec.gpus * m.collateral
        ltv = xp.where(collateral > 0, b / xp.where(collateral > 0, collateral, 1.0), 0.0)
        at_maturity = (s.maturity[j] == t) & (b > 0)
        roll = at_maturity & (ltv <= f.refi_max_ltv) & (m.spread <= f.refi_max_spread)
        repayment = xp.where(at_maturity & ~roll, b, 0.0)
        b = b - repayment
        s.maturity[j] = xp.where(roll, s.maturity[j] + f.refi_term, s.maturity[j]).astype(
            xp.int32)
        s.floating[j] = s.floating[j] | roll
        s.rate[j] = xp.where(roll, m.spread, s.rate[j])
        ltv = xp.where(collateral > 0, b / xp.where(collateral > 0, collateral, 1.0), 0.0)
        if math.isfinite(f.max_ltv):
            over = (ltv > f.max_ltv) & (b > 0)
            to_post = xp.where(over, b - f.max_ltv * collateral, 0.0)
        else:
            over, to_post = xp.zeros_like(alive), zero
        call = to_post - s.posted[j]  # negative: cash released back to the firm
        s.posted[j] = xp.where(alive, to_post, s.posted[j])
        breach = breach | over
        if f.pledged_share > 0 and math.isfinite(f.max_ltv):
            pledged_value_sum = pledged_value_sum + collateral
            pledged_balance_sum = pledged_balance_sum + b
        required = xp.maximum(required, xp.where(b > 0, real(f.min_liquidity), real(0)))
        s.balance[j] = xp.where(alive, b, s.balance[j])
        cash = cash - interest - principal - sweep - repayment - call
        interest_sum, principal_sum = interest_sum + interest, principal_sum + principal
        sweep_sum, repay_sum, call_sum = sweep_sum + sweep, repay_sum + repayment, call_sum + call

    # 7. liquidity test and default
    defaults = alive & ((cash < required) | (cash < 0))
    # only GPUs pledged to a lender with a claim are seized (a repaid loan's are not)
    pledged = sum((xp.where(claims[j] > 0, real(f.pledged_share), real(0))
                   for j, f in enumerate(spec.facilities)), zero)
    seized = xp.where(defaults, pledged * spec.gpus, 0.0)
    posted_before = sum(posted_before, zero)
    pool = seized * m.collateral * (1.0 - spec.haircut) + xp.maximum(
        cash_before_service + posted_before, 0.0)
    for j, _ in enumerate(spec.facilities):
        paid = xp.minimum(pool, claims[j])
        pool = pool - paid
        s.loss[j] = s.loss[j] + xp.where(defaults, claims[j] - paid, 0.0)
        s.ead[j] = xp.where(defaults, entering[j], s.ead[j])
        s.balance[j] = xp.where(defaults | s.defaulted, 0.0, s.balance[j])
        s.posted[j] = xp.where(defaults | s.defaulted, 0.0, s.posted[j])

    settle = defaults
    flows = {
        "revenue": revenue, "operating_cost": operating_cost, "capex": capex, "draws": draws,
        "interest": xp.where(alive & ~settle, interest_sum, 0.0),
        "principal": xp.where(alive & ~settle, principal_sum, 0.0),
        "sweep": xp.where(alive & ~settle, sweep_sum, 0.0),
        "repayment": xp.where(alive & ~settle, repay_sum, 0.0),
        "margin_call": xp.where(alive & ~settle, call_sum, 0.0),
        "settlement": xp.where(settle, cash_before_service, 0.0),
    }
    s.cash = xp.where(alive & ~settle, cash, 0.0)
    s.default_month = xp.where(defaults, t, s.default_month).astype(xp.int32)
    s.defaulted = s.defaulted | defaults
    if record_flows:
        s.flows = flows
    ltv_firm = xp.where(pledged_value_sum > 0, pledged_balance_sum
                        / xp.where(pledged_value_sum > 0, pledged_value_sum, 1.0), 0.0)
    return {
        "revenue": revenue,
        "ebitda": revenue - operating_cost,
        "cash": s.cash,
        "debt": sum(s.balance, zero),
        "ltv": xp.where(s.defaulted & ~defaults, 0.0, ltv_firm),
        "ltv_breach": breach & alive,
        "defaulted": s.defaulted,
        "seized": seized,
    }
