"""The scenario config: pydantic models that mirror MODEL.md, and how YAML becomes one.

A config is a YAML file validated by `Config`. Every parameter's description gives its
unit. Rates "per year" are continuous-time rates applied over monthly steps of
Δ = 1/12 year; probabilities "per month" are per step.

Loading (`load_config`) does, in order: read the YAML, resolve `extends:` (a path
relative to the file, merged key by key; lists are replaced, not merged), apply
`--set dotted.key=value` overrides, then validate. Every error is an `InputError` whose
message names the field, the value and what was expected.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import numpy as np
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gpusim.errors import InputError
from gpusim.safe_yaml import excerpt, parse_yaml, read_config_text, yaml_problem
from gpusim.scenarios import scenario_path

MAX_FIRMS, MAX_CONTRACTS, MAX_FACILITIES, MAX_LAG = 16, 32, 32, 60
"""Sizes of the kernel's per-path arrays (kernels/params.cuh; a test checks they agree)."""

FACTORS: tuple[str, ...] = ("demand", "growth", "price", "collateral", "rate", "spread")
"""The correlated normal factors of MODEL.md §1, in the order of the random streams."""

_MONTH_RE = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")  # ASCII digits only


def _check_month(value: str) -> str:
    if not isinstance(value, str) or not _MONTH_RE.match(value):
        raise ValueError(f"expected a month as 'YYYY-MM' (e.g. '2026-01'), got {value!r}")
    return value


Month = Annotated[str, AfterValidator(_check_month)]
"""A calendar month written 'YYYY-MM'."""


def month_number(month: str) -> int:
    """Months since year 0 of a 'YYYY-MM' string, so differences count months."""
    year, mon = _MONTH_RE.match(month).groups()  # type: ignore[union-attr]
    return int(year) * 12 + int(mon) - 1


def _ns_month(value: int, step: int) -> int:
    """month_number of the first whole month at the end of datetime64[ns]'s range."""
    month = np.datetime64(value, "ns").astype("datetime64[M]") + step
    return 1970 * 12 + int(month.astype(np.int64))


FIRST_MONTH_NUMBER = _ns_month(np.iinfo(np.int64).min + 1, 1)
"""The first month whose first day datetime64[ns] holds (1677-10; the store's month
coordinate is datetime64[ns], what xarray and pandas read without loss)."""
LAST_MONTH_NUMBER = _ns_month(np.iinfo(np.int64).max, 0)
"""The last month whose first day datetime64[ns] holds (2262-04)."""


def _kind(annotation: Any) -> str:
    """'a number' / 'an integer' / 'a value' for an annotation, for error messages."""
    args = set(get_args(annotation)) or {annotation}
    if int in args and float not in args:
        return "an integer"
    return "a number" if float in args else "a value of the field's type"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True,
                              allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _booleans_are_not_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """YAML's true/false is a boolean, never 1/0: only a bool field takes one."""
        annotation = cls.model_fields[info.field_name].annotation  # type: ignore[index]
        if isinstance(value, bool) and annotation is not bool:
            raise ValueError(f"expected {_kind(annotation)}, got a boolean "
                             f"({str(value).lower()})")
        if isinstance(value, dict) and get_origin(annotation) is dict:
            for key, item in value.items():
                if isinstance(item, bool):
                    raise ValueError(f"{key} = {str(item).lower()}: expected "
                                     f"{_kind(get_args(annotation)[1])}, got a boolean")
        return value


def _pos(description: str, **kw: Any) -> Any:
    return Field(gt=0, description=description, **kw)


def _nonneg(description: str, **kw: Any) -> Any:
    return Field(ge=0, description=description, **kw)


def _prob(description: str, **kw: Any) -> Any:
    return Field(ge=0, le=1, description=description, **kw)


class ScheduleStep(_Model):
    """One step of a piecewise-constant schedule: `value` holds from `month` on."""

    month: Month = Field(description="first month this value applies, 'YYYY-MM'")
    value: float = Field(ge=0, description="the value from that month on (unit of the schedule)")


Schedule = list[ScheduleStep]


def _sorted_schedule(steps: Schedule, name: str) -> Schedule:
    months = [month_number(s.month) for s in steps]
    if months != sorted(months) or len(set(months)) != len(months):
        raise ValueError(f"{name} steps must be in strictly increasing month order")
    return steps


class Switches(_Model):
    """Parts of the model that can be turned off, so closed forms can be tested."""

    jumps: bool = Field(
        True, description="efficiency shocks and new-generation price launches (on/off)"
    )
    regimes: bool = Field(True, description="boom/bust regime switching; off keeps the initial")
    capacity_response: bool = Field(
        True, description="build scaled by lagged utilization; off builds the schedule as given"
    )
    fire_sale: bool = Field(True, description="seized GPUs push collateral value down (on/off)")


class Growth(_Model):
    """Stochastic token-demand growth rate g, mean-reverting to a regime-dependent level."""

    initial: float = Field(description="g at the start month [1/year, log growth]")
    boom_mean: float = Field(description="long-run g in the boom regime, ḡ[boom] [1/year]")
    bust_mean: float = Field(description="long-run g in the bust regime, ḡ[bust] [1/year]")
    reversion: float = _nonneg("speed κ_g at which g reverts to ḡ[s] [1/year]")
    volatility: float = _nonneg("volatility σ_g of g [1/year^1.5]")


class Demand(_Model):
    """Token demand D and the GPU-hour demand it creates."""

    tokens_per_month: float = _pos("token demand D at the start month [tokens/month]")
    volatility: float = _nonneg("volatility σ_D of log token demand [1/sqrt(year)]")
    growth: Growth
    price_elasticity: float = _nonneg("elasticity ε of inference GPU-hours to price [-]")
    reference_price: float = _pos("price P_ref at which elasticity is neutral [USD/GPU-hour]")
    training_gpu_hours: Schedule = Field(
        default_factory=list,
        description="training demand T, piecewise constant [H100-hours/month]",
    )


class Regime(_Model):
    """Two-state boom/bust Markov chain, switching monthly."""

    initial: Literal["boom", "bust"] = Field("boom", description="regime at the start month")
    p_boom_to_bust: float = _prob("probability of switching boom→bust [1/month]")
    p_bust_to_boom: float = _prob("probability of switching bust→boom [1/month]")


class Efficiency(_Model):
    """Compute per token e: a steady trend plus Poisson shocks ('DeepSeek moments')."""

    gpu_hours_per_million_tokens: float = _pos(
        "compute per token e at the start month [H100-hours per 10^6 tokens]"
    )
    trend_per_year: float = Field(description="steady efficiency gain η (ln e falls) [1/year]")
    shock_rate_per_year: float = _nonneg("Poisson rate λ_E of efficiency shocks [1/year]")
    shock_log_size: float = _nonneg("log-size J_E by which a shock cuts e [-]")
    rebound: float = _prob("fraction ρ of a shock won back by extra token demand [-]")


class Capacity(_Model):
    """Rentable GPU capacity K, built to a schedule and retired at a constant rate."""

    initial_gpus: float = _pos("capacity K at the start month [H100-equivalent GPUs]")
    retirement_per_year: float = Field(ge=0, lt=12, description="retirement rate ω [1/year]")
    build: Schedule = Field(
        default_factory=list,
        description="build schedule b, piecewise constant [H100-equivalent GPUs/month]",
    )
    response: float = _nonneg("sensitivity ξ of the build to lagged utilization [-]")
    target_utilization: float = _prob("utilization u* at which the build is as scheduled [-]")
    max_multiplier: float = _nonneg("cap m_max on the build multiplier [-]")
    lag_months: int = Field(6, ge=0, le=MAX_LAG, description="lag L of the build response [months]")
    hours_per_month: float = Field(
        730.0, gt=0, description="rentable hours per GPU per month [hours/month]"
    )


class Launch(_Model):
    """A new GPU generation shipping in volume: a deterministic fall in log price."""

    name: str = Field("launch", description="label, e.g. 'B200 volume'")
    month: Month = Field(description="month of the price step, 'YYYY-MM'")
    log_impact: float = Field(ge=0, description="fall in ln P at that month [-]")


class Price(_Model):
    """Spot rental price P, reverting in log to a utilization-driven fair price P*(u)."""

    initial: float = _pos("spot price P at the start month [USD/H100-hour]")
    floor: float = _pos("fair price at zero utilization P_floor [USD/H100-hour]")
    cap: float = _pos("fair price at full utilization P_cap [USD/H100-hour]")
    convexity: float = _pos("exponent γ of P*(u) = P_floor + (P_cap − P_floor)·u^γ [-]")
    reversion: float = _nonneg("speed κ_P of ln P towards ln P*(u) [1/year]")
    volatility: float = _nonneg("volatility σ_P of log price [1/sqrt(year)]")
    launches: list[Launch] = Field(default_factory=list, description="new-generation launches")

    @model_validator(mode="after")
    def _cap_above_floor(self) -> Price:
        if self.cap < self.floor:
            raise ValueError(
                f"cap ({self.cap}) must be at least floor ({self.floor}) [USD/H100-hour]"
            )
        return self


class Collateral(_Model):
    """Resale value V of a pledged reference GPU."""

    initial: float = _pos(
        "collateral value V0 at the start month if the price is demand.reference_price; "
        "V[0] = V0·(P[0]/P_ref)^β [USD/GPU]")
    price_elasticity: float = Field(description="elasticity β of ln V to ln P [-]")
    depreciation_per_year: float = _nonneg("ageing rate δ of ln V [1/year]")
    volatility: float = _nonneg("volatility σ_V of log collateral value [1/sqrt(year)]")
    fire_sale_impact: float = _nonneg("impact φ of fire sales on ln V per unit of depth [-]")
    market_depth_gpus_per_month: float = _pos(
        "monthly depth Q of the secondary GPU market [GPUs/month]"
    )
    scrap_value: float = _nonneg("floor V_scrap of the collateral value [USD/GPU]")


class Sofr(_Model):
    """SOFR r: a Vasicek (Ornstein–Uhlenbeck) shadow rate, reported floored at 0."""

    initial: float = Field(description="r at the start month [1/year, decimal]")
    mean: float = Field(description="long-run mean r̄ [1/year, decimal]")
    reversion: float = _nonneg("speed κ_r [1/year]")
    volatility: float = _nonneg("volatility σ_r [1/year^1.5, decimal]")


class CreditSpread(_Model):
    """Lessors' credit spread S: log-Ornstein–Uhlenbeck, always positive."""

    initial: float = _pos("S at the start month [1/year, decimal]")
    mean: float = _pos("long-run level S̄ (ln S reverts to ln S̄) [1/year, decimal]")
    reversion: float = _nonneg("speed κ_S of ln S [1/year]")
    volatility: float = _nonneg("volatility σ_S of ln S [1/sqrt(year)]")


class Rates(_Model):
    sofr: Sofr
    credit_spread: CreditSpread


class Market(_Model):
    """MODEL.md §2: demand, efficiency, capacity, price, collateral and rates."""

    demand: Demand
    regime: Regime
    efficiency: Efficiency
    capacity: Capacity
    price: Price
    collateral: Collateral
    rates: Rates


# --- firms and their debt (MODEL.md §3) ----------------------------------------------------

class DefaultHazard(_Model):
    """A counterparty's monthly default probability, by market regime."""

    boom: float = _prob("default probability per month in the boom regime [1/month]", default=0.0)
    bust: float = _prob("default probability per month in the bust regime [1/month]", default=0.0)


class Counterparty(_Model):
    """Who rents the GPUs: it may insource (build its own) and it may default."""

    name: str = Field(description="counterparty label, e.g. 'microsoft'")
    insourcing_month: Month | None = Field(
        None, description="from this month on renewals use p_insource, 'YYYY-MM' (none: never)"
    )
    p_insource: float = _prob("renewal probability once the counterparty insources [-]",
                              default=0.0)
    default_hazard: DefaultHazard = Field(default_factory=DefaultHazard)


class Renewal(_Model):
    """At its end a contract renews with p = clip(p0·(P/price)^θ, 0, 1), at P·(1+premium)."""

    p0: float = _prob("renewal probability when the spot price equals the contract price [-]")
    theta: float = _nonneg("elasticity θ of renewal to spot price / contract price [-]")
    premium: float = Field(0.0, gt=-1, description="renewal price over spot, P·(1+premium) [-]")
    term_months: int = Field(12, ge=1, le=240, description="length of a renewed term [months]")


class Contract(_Model):
    """A block of GPUs rented at a fixed price until an end month (take-or-pay)."""

    name: str = Field(description="contract label, unique within the firm")
    gpus: float = _pos("GPUs under the contract [H100-equivalent GPUs]")
    price: float = _pos("contract price [USD/GPU-hour]")
    start: Month | None = Field(None, description="first paying month (none: already running)")
    end: Month = Field(description="last paying month of the current term, 'YYYY-MM'")
    renewal: Renewal
    counterparty: Counterparty


class Refinancing(_Model):
    """At maturity the facility rolls over at SOFR + S if LTV and the spread allow."""

    max_ltv: float = _pos("refinancing needs LTV ≤ this [-]")
    max_spread: float = _pos("refinancing needs the credit spread S ≤ this [1/year]")
    term_months: int = Field(36, ge=1, le=240, description="term of the new loan [months]")


class Facility(_Model):
    """A loan: balance, draws, rate, amortization, maturity, collateral and covenants."""

    name: str = Field(description="facility label, unique in the config")
    balance: float = _nonneg("drawn balance at the start month [USD]")
    undrawn: float = _nonneg("undrawn commitment at the start month [USD]", default=0.0)
    draws: Schedule = Field(default_factory=list,
                            description="scheduled draws, piecewise constant [USD/month]")
    rate_type: Literal["fixed", "floating"] = Field(description="fixed rate or SOFR + margin")
    rate: float = Field(ge=0, description="fixed rate, or margin over SOFR if floating [1/year]")
    amortization: Literal["level", "straight_line", "bullet"] = Field(
        description="level payments, equal principal, or all principal at maturity")
    maturity: Month = Field(description="final month, when the balance falls due, 'YYYY-MM'")
    refinancing: Refinancing | None = Field(None, description="rollover rule (none: repay)")
    pledged_share: float = _prob("share of the firm's fleet pledged to this facility [-]",
                                 default=0.0)
    secured_on: list[str] = Field(
        default_factory=list,
        description="contracts whose revenue pays this facility's debt service first")
    cash_sweep: float = _prob(
        "share of the secured contracts' revenue left after debt service that prepays [-]",
        default=0.0)
    max_ltv: float | None = Field(None, gt=0,
                                  description="LTV above which the lender calls for cash [-]")
    min_liquidity: float = _nonneg("minimum-liquidity covenant while outstanding [USD]",
                                   default=0.0)
    seniority: int = Field(ge=1, description="rank in the recovery waterfall, 1 = most senior")


class Fleet(_Model):
    """The firm's GPUs and what running them costs."""

    gpus: float = _pos("GPUs owned [H100-equivalent GPUs]")
    kw_per_gpu: float = _nonneg("power draw per GPU, cooling included [kW]")
    power_price: float = _nonneg("price of power [USD/kWh]")
    opex_per_gpu_hour: float = _nonneg("other operating cost [USD/GPU-hour]")
    overhead_per_month: float = _nonneg("fixed overhead [USD/month]")
    capex: Schedule = Field(default_factory=list,
                            description="committed capex, piecewise constant [USD/month]")


class Firm(_Model):
    """A GPU lessor: fleet, opening cash, contracts and facilities (MODEL.md §3)."""

    name: str = Field(description="firm label, unique in the config")
    fleet: Fleet
    opening_cash: float = Field(description="cash at the start month [USD]")
    seizure_haircut: float = _prob(
        "discount to V at which seized GPUs are sold in a default [-]", default=0.3)
    contracts: list[Contract] = Field(default_factory=list)
    facilities: list[Facility] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Firm:
        where = f"firm {self.name!r}"
        names = [c.name for c in self.contracts]
        _unique(names, f"{where}: contracts.name")
        contracted = sum(c.gpus for c in self.contracts)
        if contracted > self.fleet.gpus:
            raise ValueError(
                f"{where}: contracts hold {contracted:g} GPUs in all, more than "
                f"fleet.gpus = {self.fleet.gpus:g}")
        pledged = sum(f.pledged_share for f in self.facilities)
        if pledged > 1 + 1e-12:
            raise ValueError(
                f"{where}: facilities.pledged_share add up to {pledged:g}; expected ≤ 1")
        _unique([f.seniority for f in self.facilities], f"{where}: facilities.seniority")
        for j, c in enumerate(self.contracts):
            if c.start is not None and month_number(c.start) > month_number(c.end):
                raise ValueError(f"{where}: contracts.{j}.start = {c.start!r} is after its end "
                                 f"{c.end!r}")
        for j, f in enumerate(self.facilities):
            late = [s.month for s in f.draws
                    if s.value > 0 and month_number(s.month) > month_number(f.maturity)]
            if late:
                raise ValueError(f"{where}: facilities.{j}.draws.month = {late[0]!r} is after "
                                 f"its maturity {f.maturity!r}; a facility draws only until "
                                 "it matures")
        for i, facility in enumerate(self.facilities):
            for contract in facility.secured_on:
                if contract not in names:
                    raise ValueError(
                        f"{where}: facilities.{i}.secured_on names {contract!r}, which is not "
                        f"one of its contracts {names}")
        return self


def _unique(values: list[Any], field: str) -> None:
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"{field} must be unique; repeated: {', '.join(repeated)}")


class Config(_Model):
    """A whole scenario. See MODEL.md for the equations each block parameterizes."""

    name: str = Field("scenario", description="short scenario name")
    description: str = Field("", description="what the scenario is about")
    start: Month = Field("2026-01", description="first simulated month, 'YYYY-MM'")
    horizon_months: int = Field(84, ge=2, le=600, description="number of months simulated")
    dtype: Literal["float64", "float32"] = Field(
        "float64", description="floating-point precision of the state arithmetic"
    )
    switches: Switches = Field(default_factory=Switches)
    correlations: dict[str, float] = Field(
        default_factory=dict,
        description=(
            "correlations of the monthly shocks as 'factor-factor': rho pairs; missing pairs "
            f"are 0; factors: {', '.join(FACTORS)} [-]"
        ),
    )
    market: Market
    firms: list[Firm] = Field(default_factory=list, description="GPU lessors (MODEL.md §3)")

    @model_validator(mode="after")
    def _months_representable(self) -> Config:
        """Every simulated month must be a date the store's datetime64[ns] coordinate holds
        (outside it numpy wraps around silently: 2300 would come out in the 1700s)."""
        start = month_number(self.start)
        last = start + self.horizon_months - 1
        if start < FIRST_MONTH_NUMBER or last > LAST_MONTH_NUMBER:
            latest = month_label(max(LAST_MONTH_NUMBER - self.horizon_months + 1,
                                     FIRST_MONTH_NUMBER))
            raise ValueError(
                f"start = {self.start!r} with horizon_months = {self.horizon_months} "
                f"simulates {self.start} .. {month_label(last)}, outside "
                f"{month_label(FIRST_MONTH_NUMBER)} .. {month_label(LAST_MONTH_NUMBER)}, "
                "the months the store's time coordinate (datetime64[ns]) can hold; "
                f"expected a start in {month_label(FIRST_MONTH_NUMBER)} .. {latest}")
        return self

    @model_validator(mode="after")
    def _firms_fit_the_kernel(self) -> Config:
        """The fused kernel keeps each path's firms in fixed-size per-thread arrays."""
        contracts = sum(len(f.contracts) for f in self.firms)
        facilities = sum(len(f.facilities) for f in self.firms)
        for what, count, limit in (("firms", len(self.firms), MAX_FIRMS),
                                   ("contracts (all firms)", contracts, MAX_CONTRACTS),
                                   ("facilities (all firms)", facilities, MAX_FACILITIES)):
            if count > limit:
                raise ValueError(f"{count} {what}; at most {limit} are supported (the GPU "
                                 "kernel's per-path state is sized for that)")
        return self

    @model_validator(mode="after")
    def _firms_fit_the_horizon(self) -> Config:
        _unique([f.name for f in self.firms], "firms.name")
        counterparties: dict[str, tuple[str, Counterparty]] = {}
        for firm in self.firms:
            for c in firm.contracts:
                where = f"firm {firm.name!r}, contract {c.name!r}"
                first = counterparties.setdefault(c.counterparty.name, (where, c.counterparty))
                if first[1] != c.counterparty:
                    raise ValueError(
                        f"{where}: counterparty {c.counterparty.name!r} is described "
                        f"differently than in {first[0]}; one counterparty has one insourcing "
                        "month and one default hazard (it defaults once, for all its contracts)")
        _unique([x.name for f in self.firms for x in f.facilities], "facility names")
        start = month_number(self.start)
        for i, firm in enumerate(self.firms):
            at = f"firms.{i} ({firm.name})"
            inside = [(f"{at}.fleet.capex.{k}.month", s.month)
                      for k, s in enumerate(firm.fleet.capex)]
            not_before = []
            for j, c in enumerate(firm.contracts):
                not_before.append((f"{at}.contracts.{j}.end", c.end))
                if c.counterparty.insourcing_month is not None:
                    inside.append((f"{at}.contracts.{j}.counterparty.insourcing_month",
                                   c.counterparty.insourcing_month))
                if c.start is not None:
                    inside.append((f"{at}.contracts.{j}.start", c.start))
            for j, f in enumerate(firm.facilities):
                not_before.append((f"{at}.facilities.{j}.maturity", f.maturity))
                inside += [(f"{at}.facilities.{j}.draws.{k}.month", s.month)
                           for k, s in enumerate(f.draws)]
                _sorted_schedule(f.draws, f"{at}.facilities.{j}.draws")
            _sorted_schedule(firm.fleet.capex, f"{at}.fleet.capex")
            self._check_inside(inside)
            for field, month in not_before:
                if month_number(month) < start:
                    raise ValueError(
                        f"{field} = {month!r} is before the start month {self.start}; "
                        "expected a month that is still to come")
        return self

    @model_validator(mode="after")
    def _months_inside_horizon(self) -> Config:
        start = month_number(self.start)
        named = [
            *((f"market.price.launches.{i}.month", x.month)
              for i, x in enumerate(self.market.price.launches)),
            *((f"market.capacity.build.{i}.month", x.month)
              for i, x in enumerate(self.market.capacity.build)),
            *((f"market.demand.training_gpu_hours.{i}.month", x.month)
              for i, x in enumerate(self.market.demand.training_gpu_hours)),
        ]
        self._check_inside(named)
        for i, launch in enumerate(self.market.price.launches):
            if month_number(launch.month) == start:
                raise ValueError(
                    f"market.price.launches.{i}.month = {launch.month!r} is the start month; "
                    "a launch must fall after it (the start price already reflects the past)"
                )
        _sorted_schedule(self.market.capacity.build, "market.capacity.build")
        _sorted_schedule(self.market.demand.training_gpu_hours, "market.demand.training_gpu_hours")
        correlation_matrix(self.correlations)
        return self

    def _check_inside(self, named: list[tuple[str, str]]) -> None:
        """ValueError naming the first (field, month) outside the simulated months."""
        start = month_number(self.start)
        last = start + self.horizon_months - 1
        for field, month in named:
            if not start <= month_number(month) <= last:
                raise ValueError(f"{field} = {month!r} is outside the simulated months "
                                 f"{self.start} .. {month_label(last)}")

    @property
    def months(self) -> int:
        return self.horizon_months


def month_label(number: int) -> str:
    """Inverse of `month_number`: 'YYYY-MM'."""
    return f"{number // 12:04d}-{number % 12 + 1:02d}"


# --- correlations ------------------------------------------------------------------------

def correlation_matrix(pairs: Mapping[str, float]) -> np.ndarray:
    """The factor correlation matrix C from named pairs ('price-collateral': 0.6).

    Raises ValueError naming the pair, or the smallest eigenvalue, when C is not a valid
    correlation matrix (entries in [-1, 1], each pair once, positive semi-definite).
    """
    n = len(FACTORS)
    c = np.eye(n)
    seen: dict[frozenset[str], str] = {}
    for key, rho in pairs.items():
        names = key.split("-")
        if len(names) != 2 or any(f not in FACTORS for f in names) or names[0] == names[1]:
            raise ValueError(
                f"correlations key {key!r} is not a pair of two different factors "
                f"'a-b' with a, b in {{{', '.join(FACTORS)}}}"
            )
        if frozenset(names) in seen:
            raise ValueError(f"correlations: {key!r} repeats {seen[frozenset(names)]!r}")
        seen[frozenset(names)] = key
        if not -1.0 <= rho <= 1.0:
            raise ValueError(f"correlations.{key} = {rho} is outside [-1, 1]")
        i, j = FACTORS.index(names[0]), FACTORS.index(names[1])
        c[i, j] = c[j, i] = rho
    smallest = float(np.linalg.eigvalsh(c)[0])
    if smallest < -1e-10:
        raise ValueError(
            "correlations do not form a valid correlation matrix: its smallest eigenvalue "
            f"is {smallest:.4g} (expected ≥ 0, positive semi-definite); "
            "lower the largest pairs in magnitude"
        )
    return c


def correlation_factor(c: np.ndarray) -> np.ndarray:
    """Lower-triangular L with L·Lᵀ = C, also for a singular (semi-definite) C.

    A Cholesky factorization that sets a column to zero where its pivot vanishes, so
    perfectly correlated factors are allowed (they share one shock).
    """
    n = c.shape[0]
    lower = np.zeros_like(c, dtype=np.float64)
    for j in range(n):
        pivot = c[j, j] - lower[j, :j] @ lower[j, :j]
        if pivot <= 1e-12:
            continue
        lower[j, j] = np.sqrt(pivot)
        for i in range(j + 1, n):
            lower[i, j] = (c[i, j] - lower[i, :j] @ lower[j, :j]) / lower[j, j]
    return lower


# --- loading -----------------------------------------------------------------------------

def _read_yaml(path: Path) -> dict[str, Any]:
    text = read_config_text(path)
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as err:
        raise InputError(f"config file {str(path)!r} is not valid YAML: "
                         f"{yaml_problem(err, text)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(
            f"config file {str(path)!r} must hold a mapping of keys, got {type(data).__name__}"
        )
    return data


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` merged into a copy of `base`: mappings merge key by key, anything else replaces.

    Neither input is modified; the result shares no mutable parts with them.
    """
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve_extends(path: Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The raw mapping of a config file with its `extends:` chain merged in."""
    path = path.resolve()
    if path in _chain:
        cycle = " -> ".join(p.name for p in (*_chain, path))
        raise InputError(f"extends: cycle in config files: {cycle}")
    data = _read_yaml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise InputError(f"extends: expected a file name, got {parent!r} in {path.name}")
    base = resolve_extends(path.parent / parent, (*_chain, path))
    return deep_merge(base, data)


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply `dotted.key=value` overrides (value parsed as YAML) to a raw config mapping.

    List items are addressed by index or by name (`market.price.launches.0.log_impact=0.2`,
    `firms.miner.facilities.term_loan.rate=0.12`).
    """
    data = deep_merge({}, data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set {item!r}: expected dotted.key=value")
        try:
            value = parse_yaml(raw)  # the config files' limits hold for --set values too
        except yaml.YAMLError:
            value = raw
        parts = key.strip().split(".")
        node: Any = data
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(node, list):
                index = _list_index(node, part, item, ".".join(parts[:depth]) or "config")
                if last:
                    node[index] = value
                else:
                    node = node[index]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    if not isinstance(node.get(part), dict | list):
                        node[part] = {}
                    node = node[part]
            else:
                raise InputError(
                    f"--set {item!r}: {'.'.join(parts[:depth])} is a value, not a section"
                )
    return data


def _list_index(items: list[Any], part: str, item: str, where: str) -> int:
    """The index `part` means in a list of --set: a position, or the `name:` of an item
    (firms, facilities, contracts, launches all have one)."""
    if part.isdigit() and int(part) < len(items):
        return int(part)
    names = [x.get("name") for x in items if isinstance(x, dict)]
    if part in names:
        return names.index(part)
    named = f" or a name ({', '.join(map(str, names))})" if any(names) else ""
    raise InputError(f"--set {item!r}: {where} is a list of {len(items)} items; expected an "
                     f"index 0..{len(items) - 1}{named}, got {part!r}")


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> Config:
    """Read, merge (`extends:`), override (`--set`) and validate a scenario config:
    a YAML file, or a shipped scenario's name (`"base"`, see gpusim.scenarios)."""
    raw = apply_overrides(resolve_extends(scenario_path(path)), overrides)
    return config_from_dict(raw, source=str(path))


def config_from_dict(raw: Mapping[str, Any], source: str = "config") -> Config:
    """Validate a raw mapping as a `Config`, turning pydantic errors into an InputError."""
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise InputError(format_validation_error(err, source)) from None


def config_to_yaml(config: Config) -> str:
    """The resolved config as YAML (all defaults filled in), for provenance."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


# --- error messages ----------------------------------------------------------------------

def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class that holds the field at `loc` (for did-you-mean)."""
    model: Any = Config
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if isinstance(model, type) else None
        if field is None:
            return None
        model = _inner_model(field.annotation)
        if model is None:
            return None
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (list, tuple) and get_args(annotation):
        return _inner_model(get_args(annotation)[0])
    return None


def format_validation_error(err: ValidationError, source: str) -> str:
    """One line per problem: `field = value: what was expected (did you mean ...?)`."""
    lines = []
    for e in err.errors():
        loc = tuple(e["loc"])
        field = ".".join(str(p) for p in loc) or "config"
        if e["type"] == "extra_forbidden":
            parent = _model_at(loc[:-1])
            options = list(parent.model_fields) if parent else []
            guess = difflib.get_close_matches(str(loc[-1]), options, n=1, cutoff=0.6)
            hint = f"did you mean {guess[0]!r}?" if guess else f"expected one of {options}"
            lines.append(f"{field}: unknown key; {hint}")
            continue
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "missing":
            lines.append(f"{field}: required but missing")
        elif isinstance(e.get("input"), dict) or not loc:
            lines.append(f"{field}: {message}" if loc else message)
        else:
            lines.append(f"{field} = {excerpt(repr(e.get('input')))}: {excerpt(message, 300)}")
    return f"invalid config {source}:\n  " + "\n  ".join(lines)
