"""Every output variable, declared once: its name, dims, dtype, units, long name and how
summary mode keeps it.

The backends record these variables (the numpy reference by name, the kernel in the order
of its `MarketOutput`, `FirmOutput` and `FacilityOutput` enums, which a test holds against
this list), the cube gives them their dims and attributes, and the summary store derives its
sketches and counts from their summary forms. Adding an output means adding it here and to
the arithmetic that computes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from gpusim import sketch

if TYPE_CHECKING:  # annotations only: the accessor imports this module, not pydantic
    from gpusim.config import Config

Group = Literal["market", "firm", "facility", "path_firm", "path_facility"]
"""What a variable is indexed by: monthly market, firm or facility values, or one value per
path and firm or facility."""

DIMS: dict[Group, tuple[str, ...]] = {
    "market": ("path", "month"),
    "firm": ("path", "month", "firm"),
    "facility": ("path", "month", "facility"),
    "path_firm": ("path", "firm"),
    "path_facility": ("path", "facility"),
}
"""The cube's dims of each group (the backends lay blocks out month-major, see
`gpusim.cube.to_path_major`)."""

Kind = Literal["real", "flag", "month"]
"""real: the run's float dtype; flag: a 0/1 int8; month: an int32 month index."""

Summary = Literal["sketch", "count", "exact", "implied"]
"""How summary mode keeps a variable: a quantile sketch per month (and entity); the count
of paths where the 0/1 flag is 1; every path's value, exactly; or not at all, because
another variable implies it (`defaulted` follows from `default_month`)."""


@dataclass(frozen=True)
class Output:
    """One output variable of the model (MODEL.md §4)."""

    name: str
    group: Group
    units: str
    long_name: str
    kind: Kind = "real"
    summary: Summary = "sketch"
    count: tuple[str, str] | None = None  # (name, long_name) of its summary-mode count
    flag_meanings: str | None = None  # CF flag_meanings of a 0/1 variable

    @property
    def dims(self) -> tuple[str, ...]:
        return DIMS[self.group]

    def dtype(self, real: str) -> str:
        """numpy dtype name in a run of float dtype `real`."""
        return {"real": real, "flag": "int8", "month": "int32"}[self.kind]

    def attrs(self) -> dict[str, Any]:
        """The cube variable's attributes, CF-1.11: `units` (UDUNITS where one exists, see
        docs/conventions.md for currency and GPU units), `long_name`, and for a 0/1 flag
        `flag_values` with `flag_meanings`."""
        attrs: dict[str, Any] = {"units": self.units, "long_name": self.long_name}
        if self.flag_meanings is not None:
            attrs |= {"flag_values": [0, 1], "flag_meanings": self.flag_meanings}
        if self.kind == "month":
            attrs["comment"] = MONTH_INDEX_COMMENT
        return attrs


MONTH_INDEX_COMMENT = ("index into the month coordinate (0: the start month); -1: none. "
                       "ds.gpusim.default_dates() gives it as dates (NaT: none)")
"""CF has no unit for an index into another coordinate, so its meaning is spelled out."""


OUTPUTS: tuple[Output, ...] = (
    # market, per (path, month): the kernel's MarketOutput order
    Output("token_demand", "market", "tokens/month", "token demand D"),
    Output("gpu_hour_demand", "market", "H100-hours/month",
           "GPU-hour demand H (inference + training)"),
    Output("capacity", "market", "H100-equivalent GPUs", "rentable GPU capacity K"),
    Output("utilization", "market", "1", "utilization u = min(1, H / (K·hours))"),
    Output("rental_price", "market", "USD/H100-hour", "spot rental price P"),
    Output("collateral_value", "market", "USD/GPU", "resale value V of a pledged reference GPU"),
    Output("sofr", "market", "1/year", "SOFR r (Vasicek, floored at 0)"),
    Output("credit_spread", "market", "1/year", "lessors' credit spread S"),
    Output("regime", "market", "1", "market regime (0 boom, 1 bust)", "flag", "count",
           ("bust_count", "paths in the bust regime"), "boom bust"),
    # firms, per (path, month, firm): FirmOutput order
    Output("revenue", "firm", "USD/month", "firm revenue (contracts + spot)"),
    Output("ebitda", "firm", "USD/month", "revenue minus operating cost"),
    Output("cash", "firm", "USD", "cash at the end of the month"),
    Output("debt", "firm", "USD", "outstanding balance of all facilities"),
    Output("ltv", "firm", "1", "pledged balance / pledged collateral value, as tested"),
    Output("ltv_breach", "firm", "1", "1 if any facility's LTV test failed this month", "flag",
           "count", ("ltv_breach_count", "paths with an LTV breach"), "no_breach breach"),
    Output("defaulted", "firm", "1", "1 from the month the firm defaulted on", "flag",
           "implied", flag_meanings="performing defaulted"),
    # facilities, per (path, month, facility): FacilityOutput order
    Output("balance", "facility", "USD", "facility balance at the end of the month"),
    Output("loss", "facility", "USD", "facility's lender loss to date (cumulative)"),
    # per path
    Output("default_month", "path_firm", "1", "month index of the firm's default (-1: none)",
           "month", "exact"),
    Output("loss_total", "path_facility", "USD", "facility's lender loss over the run",
           summary="exact"),
    Output("exposure_at_default", "path_facility", "USD",
           "facility balance at the end of the month before its firm's default (the opening "
           "balance for a default in month 0; 0: no default, see default_month)",
           summary="exact"),
)

BY_NAME: dict[str, Output] = {o.name: o for o in OUTPUTS}


def names(group: Group) -> tuple[str, ...]:
    """The names of one group's variables, in declaration (and kernel enum) order."""
    return tuple(o.name for o in OUTPUTS if o.group == group)


MARKET = names("market")
FIRM = names("firm")
FACILITY = names("facility")
PER_PATH = (*names("path_firm"), *names("path_facility"))
MONTHLY = (*MARKET, *FIRM, *FACILITY)
FLAGS = tuple(o.name for o in OUTPUTS if o.kind == "flag")


def output_names(config: Config) -> list[str]:
    """The cube's variables for this config (no firm variables without firms)."""
    if not config.firms:
        return list(MARKET)
    return [o.name for o in OUTPUTS]


def output_dtype(name: str, config: Config) -> str:
    """The dtype of variable `name` in a run of `config`."""
    return BY_NAME[name].dtype(config.dtype)


def dimension_sizes(config: Config, paths: int = 0) -> dict[str, int]:
    """Length of every dimension of a cube or summary store of `paths` paths."""
    return {"path": paths, "month": config.horizon_months, "firm": len(config.firms),
            "facility": sum(len(f.facilities) for f in config.firms),
            "bucket": sketch.BUCKETS}


# --- summary mode ----------------------------------------------------------------------------

def sketch_name(name: str) -> str:
    """The summary store's variable that holds the sketches of `name`."""
    return f"{name}_sketch"


def summary_variables(config: Config) -> dict[str, tuple[tuple[str, ...], str, dict]]:
    """name → (dims, dtype, attrs) of a summary store's data variables: every sketched
    variable's `<name>_sketch` (month, [entity,] bucket) and the exact per-path
    variables in output order, then every counted flag's count (month, [entity])."""
    out: dict[str, tuple[tuple[str, ...], str, dict]] = {}
    for name in output_names(config):
        o = BY_NAME[name]
        if o.summary == "exact":
            out[name] = (o.dims, o.dtype(config.dtype), o.attrs())
        elif o.summary == "sketch":
            out[sketch_name(name)] = (
                (*o.dims[1:], "bucket"), "int64",
                {"units": "1", "long_name": f"quantile sketch of {name} "
                 f"({o.units}): paths per bucket", "sketched_units": o.units})
    for name in output_names(config):  # the counts last
        o = BY_NAME[name]
        if o.summary == "count":
            count, long_name = o.count
            out[count] = (o.dims[1:], "int64", {"units": "1", "long_name": long_name})
    return out


def count_names(config: Config) -> list[str]:
    """The summary variables that are counts (sketches and flag counts), not per path."""
    return [name for name in summary_variables(config) if name not in PER_PATH]


def counted_flags(config: Config) -> dict[str, str]:
    """Flag variable → the name of its summary-mode count, for this config."""
    return {name: BY_NAME[name].count[0] for name in output_names(config)
            if BY_NAME[name].summary == "count"}
