"""The CUDA kernel's arithmetic, without a GPU: the headers compiled as host C++ (driven
through ctypes) against the numpy reference path by path, and the kernels compiled to PTX.
Tests that need a compiler skip with the reason where none is found; GPU tests are marked
`gpu` and live in test_gpu.py.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from dataclasses import dataclass, replace
from dataclasses import fields as dc_fields
from types import SimpleNamespace
from typing import get_args

import numpy as np
import pytest
from conftest import CONFIGS
from helpers import firms_config, small_config

from gpusim import load_config, sketch, streams
from gpusim.backends import host, kernel_io
from gpusim.backends.cuda import KERNELS
from gpusim.backends.header import kernel_dir, layout, limits
from gpusim.backends.packing import (
    NOT_PACKED,
    LayoutError,
    derived_firm,
    derived_market,
    pack,
    pack_fields,
    slots,
)
from gpusim.backends.reference import dense_counts, simulate_block
from gpusim.outputs import BY_NAME, OUTPUTS, PER_PATH, count_names

needs_cxx = pytest.mark.skipif(host.host_compiler() is None,
                               reason="no C++ compiler (g++, c++, clang++ or $CXX) found")
NVCC = shutil.which("nvcc")
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc not found")

DISCRETE = {o.name for o in OUTPUTS if o.kind != "real"}


def assert_paths_agree(reference: dict, kernel: dict, rtol: float) -> None:
    """Continuous outputs within rtol (relative to each variable's scale where values
    cancel, e.g. EBITDA near zero); discrete outputs identical, path by path."""
    assert set(reference) == set(kernel)
    for name, expected in reference.items():
        got = kernel[name]
        assert got.shape == expected.shape, name
        if name in DISCRETE:
            mismatched = np.count_nonzero(got != expected)
            assert mismatched == 0, f"{name}: {mismatched} values differ"
            continue
        scale = np.max(np.abs(expected)) if expected.size else 0.0
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * 1e-3 * scale,
                                   err_msg=name)


@needs_cxx
@pytest.mark.parametrize(("counter", "key", "expected"), [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
])
def test_host_philox_known_answers(counter, key, expected):
    assert host.philox_host(counter, key) == expected


@needs_cxx
@pytest.mark.parametrize("make", [small_config, firms_config], ids=["market", "firms"])
def test_host_kernel_equals_numpy_path_by_path(make):
    config = make()
    reference = simulate_block(config, seed=17, start=1000, stop=11_000)
    kernel = host.HostBackend(config)(17, 1000, 11_000)
    assert_paths_agree(reference, kernel, rtol=1e-9)


@needs_cxx
def test_host_kernel_equals_numpy_on_the_base_scenario():
    config = load_config(CONFIGS / "base.yaml")
    reference = simulate_block(config, seed=2026, start=0, stop=10_000)
    kernel = host.HostBackend(config)(2026, 0, 10_000)
    assert_paths_agree(reference, kernel, rtol=1e-9)


@needs_cxx
def test_host_kernel_cash_flows_equal_numpy():
    config = firms_config()
    reference = simulate_block(config, seed=3, start=0, stop=2000, record_flows=True)
    kernel = host.HostBackend(config)(3, 0, 2000, record_flows=True)
    assert_paths_agree(reference, kernel, rtol=1e-9)


@needs_cxx
def test_host_kernel_float32_tracks_float64():
    """float32 state arithmetic: prices within 1e-3 relative of float64 over 24 months."""
    f64 = simulate_block(small_config(), seed=5, start=0, stop=2000)
    f32 = host.HostBackend(small_config("dtype=float32"))(5, 0, 2000)
    assert f32["rental_price"].dtype == np.float32
    np.testing.assert_allclose(f32["rental_price"], f64["rental_price"], rtol=1e-3)
    np.testing.assert_allclose(f32["collateral_value"], f64["collateral_value"], rtol=1e-3)


@needs_cxx
def test_numpy_float32_runs_in_float32_like_the_kernel():
    """In float32 the numpy engine keeps its state and outputs in float32, with every
    constant and schedule rounded to float32 where the kernel rounds it, so the two agree
    to float32 rounding (their exp/log/pow differ in the last bits) with identical
    discrete events on these paths."""
    config = firms_config("dtype=float32")
    reference = simulate_block(config, seed=31, start=2000, stop=8000)
    kernel = host.HostBackend(config)(31, 2000, 8000)
    for name, values in reference.items():
        assert values.dtype == kernel[name].dtype, name
        assert values.dtype == BY_NAME[name].dtype("float32"), name
    assert_paths_agree(reference, kernel, rtol=1e-3)  # losses: differences of ~1e9 USD


def test_kernel_output_enums_match_the_declared_outputs():
    from gpusim import outputs
    from gpusim.backends import header
    from gpusim.model.firms import FLOWS

    assert header.names("MarketOutput", "MO_") == list(outputs.MARKET)
    assert header.names("FirmOutput", "FO_") == list(outputs.FIRM)
    assert header.names("FacilityOutput", "AO_") == list(outputs.FACILITY)
    assert header.names("Flow", "FL_") == list(FLOWS)


def test_packed_layout_matches_the_header():
    packed = pack(firms_config())
    fields = layout()
    assert packed.market.shape == (fields["MarketParam"]["MP_COUNT"],)
    assert packed.monthly.shape == (fields["MarketMonthly"]["MM_COUNT"], 24)
    assert packed.firm_table.shape == (2, fields["FirmField"]["FT_COUNT"])
    assert packed.contract_table.shape == (2, fields["ContractField"]["CT_COUNT"])
    assert packed.facility_table.shape == (3, fields["FacilityField"]["FA_COUNT"])
    assert packed.capex.shape == (2, 24) and packed.draws.shape == (3, 24)


def packed_fields(config):
    """The packed arrays of a config, read back by entry name: name → slots (a 2-slot
    entry of the market gives 2 values; of a table, (rows, 2))."""
    packed, out = pack(config), {}
    for enum, array in (("MarketParam", packed.market), ("MarketMonthly", packed.monthly),
                        ("FirmField", packed.firm_table.T),
                        ("ContractField", packed.contract_table.T),
                        ("FacilityField", packed.facility_table.T)):
        _, _, entries = slots(enum)
        for name, first, width in entries:
            values = array[first:first + width]
            out[f"{enum}.{name}"] = values[0] if width == 1 else values.T
    return out


def test_packing_equals_the_hand_written_layout_of_the_firms_config():
    """The derived packing, checked against numbers written out by hand from
    tests/helpers.py (LESSOR, MINER, SMALL), including the 2-slot entries."""
    got = packed_fields(firms_config())
    cdf = np.cumsum([np.exp(-1 / 12) * (1 / 12) ** k / math.factorial(k) for k in range(12)])
    expected = {
        "MarketParam.dt": 1 / 12,
        "MarketParam.g_mean": [0.6, 0.0],  # (boom, bust)
        "MarketParam.p_switch": [0.05, 0.1],  # (boom → bust, bust → boom)
        "MarketParam.lag": 3,
        # derived once on the host (packing.derived_market)
        "MarketParam.ln_p_ref": math.log(2.0),
        "MarketParam.half_var_d": 0.5 * 0.3**2,
        "MarketParam.vol_d": 0.3 * math.sqrt(1 / 12),
        "MarketParam.vol_s": 0.4 * math.sqrt(1 / 12),
        "MarketParam.retention": 1 - 0.18 / 12,
        "MarketParam.p_span": 8.0 - 0.8,
        "MarketParam.n_poisson": 12,
        "MarketParam.poisson_cdf": cdf,
        "MarketMonthly.training": np.full(24, 2.0e8),
        "MarketMonthly.launch_drop": np.eye(24)[6] * 0.1,  # B200 volume, 2026-07
        "FirmField.gpus": [100_000, 20_000],
        # GPUs × (kW × power price + opex) × 730 hours + overhead, computed once on the host
        "FirmField.operating_cost": [100_000 * (1.2 * 0.08 + 0.2) * 730.0 + 4.0e7,
                                     20_000 * (1.3 * 0.06 + 0.3) * 730.0 + 1.0e6],
        "FirmField.recovery": [1 - 0.3, 1 - 0.3],  # 1 − seizure haircut (0.3 by default)
        "FirmField.opening_cash": [5.0e8, 3.0e7],
        "FirmField.contract0": [0, 2],
        "FirmField.n_contracts": [2, 0],
        "FirmField.facility0": [0, 2],
        "FirmField.n_facilities": [2, 1],
        "ContractField.hazard": [[0.0005, 0.002], [0.002, 0.01]],  # (boom, bust)
        "ContractField.insource_month": [17, 1 << 30],  # 2027-06; never
        "ContractField.default_stream": [0, 1],
        "FacilityField.amortization": [0, 2, 1],  # level, bullet, straight_line
        "FacilityField.floating": [1, 0, 0],
        "FacilityField.pledged_share": [0.5, 0.0, 1.0],
        "FacilityField.secured_mask": [1, 0, 0],  # ddtl: secured on hyperscaler
        "FacilityField.cash_sweep": [0.2, 0.0, 0.0],
        "FacilityField.max_ltv": [0.8, np.inf, 0.85],
        "FacilityField.refi_max_ltv": [0.7, 0.9, -np.inf],
    }
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-15, atol=0, err_msg=name)
    jumps_off = packed_fields(firms_config("switches.jumps=false"))
    assert jumps_off["MarketParam.n_poisson"] == 0
    assert not jumps_off["MarketParam.poisson_cdf"].any()
    both = packed_fields(firms_config("firms.0.facilities.0.secured_on=[hyperscaler, lab]"))
    assert list(both["FacilityField.secured_mask"]) == [0b11, 0, 0]


def test_packing_fails_loudly_when_the_header_and_the_dataclasses_disagree():
    from gpusim.model.firms import FacilitySpec, firm_specs
    from gpusim.model.market import market_params

    config = firms_config()
    lessor = firm_specs(config)[0]
    derived = derived_firm(lessor, 730.0)
    no_cash = SimpleNamespace(**{k: v for k, v in vars(lessor).items() if k != "opening_cash"})
    with pytest.raises(LayoutError, match=r"FirmField entry FT_OPENING_CASH: .* `opening_cash`"):
        pack_fields("FirmField", no_cash, contract0=0, facility0=0, **derived)
    with pytest.raises(LayoutError, match=r"FirmField: no entries for the given \['bogus'\]"):
        pack_fields("FirmField", lessor, contract0=0, facility0=0, bogus=1.0, **derived)
    long_cdf = replace(market_params(config), poisson_cdf=np.zeros(13))
    with pytest.raises(LayoutError, match=r"MP_POISSON_CDF: .*13 values for its 12 slot"):
        pack_fields("MarketParam", long_cdf, **derived_market(long_cdf))
    with pytest.raises(LayoutError, match=r"MarketParam entry MP_LN_P_REF: .* `ln_p_ref`"):
        pack_fields("MarketParam", market_params(config))  # the derived entries not given

    @dataclass(frozen=True)
    class WithCovenant(FacilitySpec):
        min_dscr: float = 1.2

    facility = lessor.facilities[0]
    extra = WithCovenant(**{f.name: getattr(facility, f.name) for f in dc_fields(facility)})
    with pytest.raises(LayoutError, match=r"FacilityField: .*\['min_dscr'\]"):
        pack_fields("FacilityField", extra)


def test_fields_left_unpacked_are_real_fields_without_an_entry():
    from gpusim.model.firms import ContractSpec, FacilitySpec, FirmSpec
    from gpusim.model.market import MarketParams

    packs = {"MarketParam": MarketParams, "FirmField": FirmSpec,
             "ContractField": ContractSpec, "FacilityField": FacilitySpec}
    assert set(NOT_PACKED) == set(packs)
    for enum, cls in packs.items():
        entries = {name for name, _, _ in slots(enum)[2]}
        left_out = set(NOT_PACKED[enum])
        assert left_out <= {f.name for f in dc_fields(cls)}, enum
        assert not left_out & entries, enum
    assert {name for name, _, _ in slots("MarketMonthly")[2]} == {"training", "build",
                                                                  "launch_drop"}


@needs_nvcc
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_kernels_compile_to_ptx(tmp_path, arch):
    out = tmp_path / f"gpusim-{arch}.ptx"
    proc = subprocess.run(
        [NVCC, "-ptx", f"-arch={arch}", "-std=c++14", str(kernel_dir() / "gpusim.cu"), "-o",
         str(out)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    ptx = out.read_text()
    for name in KERNELS:
        assert f".entry {name}(" in ptx, name


def test_config_limits_match_the_kernel_state_sizes():
    from gpusim import config
    from gpusim.errors import InputError

    ours = {name: getattr(config, name) for name in dir(config) if name.startswith("MAX_")}
    assert ours == limits()
    assert set(ours) == {"MAX_FIRMS", "MAX_CONTRACTS", "MAX_FACILITIES", "MAX_LAG"}
    small_config(f"market.capacity.lag_months={config.MAX_LAG}")
    with pytest.raises(InputError, match="lag_months"):
        small_config(f"market.capacity.lag_months={config.MAX_LAG + 1}")


def test_amortization_kinds_match_the_header_and_the_config():
    from gpusim.config import Facility
    from gpusim.model.firms import AMORTIZATION

    assert {f"AM_{kind.upper()}": code for kind, code in AMORTIZATION.items()} == layout()[
        "Amortization"]
    assert get_args(Facility.model_fields["amortization"].annotation) == tuple(AMORTIZATION)


def test_too_many_contracts_for_the_kernel_is_rejected():
    from helpers import LESSOR, SMALL

    from gpusim.config import apply_overrides, config_from_dict
    from gpusim.errors import InputError

    raw = apply_overrides(SMALL, [])
    lessor = apply_overrides(LESSOR, [])
    lessor["fleet"]["gpus"] = 1e9
    lessor["contracts"] = [dict(lessor["contracts"][1], name=f"c{i}") for i in range(33)]
    lessor["contracts"][0]["name"] = "hyperscaler"
    raw["firms"] = [lessor]
    with pytest.raises(InputError, match=r"33 contracts .* at most 32"):
        config_from_dict(raw)


# --- summary mode inside the kernel ----------------------------------------------------------

@needs_cxx
def test_kernel_buckets_equal_the_numpy_sketch():
    """sketch.cuh's bucket of every value is sketch.bucket_index's: random magnitudes over
    the whole range and beyond, both signs, zeros, bucket edges γᵏ and their neighbours."""
    rng = np.random.default_rng(11)
    magnitudes = 10.0 ** rng.uniform(-12, 33, 20_000)
    keys = np.arange(sketch.KEY_MIN - 2, sketch.KEY_MAX + 3)
    edges = np.exp(keys * sketch.LOG_GAMMA)
    values = np.concatenate([
        magnitudes, -magnitudes, [0.0, -0.0, sketch.MIN_MAGNITUDE, -sketch.MIN_MAGNITUDE,
                                  sketch.MAX_MAGNITUDE, np.inf, -np.inf],
        edges, np.nextafter(edges, 0), np.nextafter(edges, np.inf), -edges])
    np.testing.assert_array_equal(host.sketch_bucket_host(values), sketch.bucket_index(values))
    assert host.sketch_bucket_host(np.array([np.nan]))[0] == sketch.ZERO


@needs_cxx
def test_kernel_buckets_equal_the_numpy_sketch_at_every_exact_edge():
    """The kernel buckets by the edge table (a guess, then comparisons): at every edge of
    the table, one ulp either side, both signs, and float32 values (what the float32
    kernel buckets), its bucket is sketch.bucket_index's."""
    edges = kernel_io.sketch_edges()
    rng = np.random.default_rng(12)
    values = np.concatenate([edges, np.nextafter(edges, 0), np.nextafter(edges, np.inf),
                             np.nextafter(np.nextafter(edges, 0), 0)])
    values = np.concatenate([values, -values,
                             (10.0 ** rng.uniform(-10, 31, 20_000)).astype(np.float32)])
    np.testing.assert_array_equal(host.sketch_bucket_host(values), sketch.bucket_index(values))


@needs_cxx
def test_kernel_box_muller_is_within_an_ulp_or_two_of_numpy():
    """The kernel's own log and sin/cos (gsmath.cuh, fdlibm's algorithms) give Box–Muller
    normals within 2 ulp of the radius of libm's formula (the angle 2π·u rounded, then
    cos and sin), and within 1e-15 of the radius of the numpy reference's
    (`streams.box_muller`, whose cos and sin are exact to 1.2e-16), at 10⁶ uniform pairs
    from random words and at the extremes of the uniforms ((w + ½)·2⁻³², w = 0 and
    2³² − 1, and the quadrant edges)."""
    rng = np.random.default_rng(5)
    words = rng.integers(0, 2**32, size=(1_000_000, 2), dtype=np.uint64)
    edges = np.array([0, 1, 2**30, 2**31, 3 * 2**30, 2**32 - 1], dtype=np.uint64)
    words = np.concatenate([words, np.stack(np.meshgrid(edges, edges), -1).reshape(-1, 2)])
    u = (words.astype(np.float64) + 0.5) * 2.0**-32
    z_a, z_b = host.box_muller_host(u[:, 0], u[:, 1])
    radius = np.sqrt(-2.0 * np.log(u[:, 0]))
    angle = 2.0 * np.pi * u[:, 1]
    ulp = np.spacing(radius)
    assert np.all(np.abs(z_a - radius * np.cos(angle)) <= 2 * ulp)
    assert np.all(np.abs(z_b - radius * np.sin(angle)) <= 2 * ulp)
    for kernel, reference in zip((z_a, z_b), streams.box_muller(u[:, 0], u[:, 1]), strict=True):
        assert np.max(np.abs(kernel - reference) / radius) < 1e-15


def test_edge_table_header_is_generated_from_the_sketch():
    """kernels/sketch_edges.cuh is what kernel_io.edges_header makes from gpusim.sketch
    today (regenerate it when the sketch's constants change), and its edges read back as
    the same doubles."""
    text = (kernel_dir() / kernel_io.EDGES_HEADER).read_text()
    assert text == kernel_io.edges_header()
    edges = kernel_io.sketch_edges()
    assert len(edges) == sketch.SIDE - 1
    buckets = sketch.bucket_index(np.concatenate([edges, np.nextafter(edges, 0)]))
    np.testing.assert_array_equal(buckets[:len(edges)], np.arange(len(edges)) + sketch.ZERO + 2)
    np.testing.assert_array_equal(buckets[len(edges):], np.arange(len(edges)) + sketch.ZERO + 1)


def summary_of(config, seed, start, stop):
    """(numpy engine's cube, host kernel's cube, host summary kernel's block)."""
    return (simulate_block(config, seed=seed, start=start, stop=stop),
            host.HostBackend(config)(seed, start, stop),
            host.HostBackend(config).summarize(seed, start, stop))


@needs_cxx
@pytest.mark.parametrize("make", [lambda: load_config(CONFIGS / "base.yaml"), firms_config,
                                  small_config, lambda: firms_config("dtype=float32")],
                         ids=["base", "firms", "market", "firms-f32"])
def test_summary_kernel_counts_equal_the_sketches_of_the_cube(make):
    """The summary kernel's counts are, bucket for bucket, the numpy sketches of the
    kernel's own cube and, in float64, of the numpy engine's (float32 runs agree with
    numpy only to float32 rounding, so a value near a bucket edge may change bucket);
    its per-path results are the cube's."""
    config = make()
    numpy_cube, kernel_cube, summary = summary_of(config, 31, 2000, 8000)
    assert int(summary["nonfinite"][0]) == 0
    names = count_names(config)
    cubes = (kernel_cube, numpy_cube) if config.dtype == "float64" else (kernel_cube,)
    for cube in cubes:
        expected = dense_counts(config, cube)
        for name in names:
            np.testing.assert_array_equal(summary[name], expected[name], err_msg=name)
    for name in PER_PATH:
        np.testing.assert_array_equal(summary[name], kernel_cube[name], err_msg=name)


@needs_cxx
def test_every_sketch_of_the_summary_kernel_counts_every_path():
    config = firms_config()
    n = 3000
    summary = host.HostBackend(config).summarize(2, 0, n)
    for name in count_names(config):
        if name.endswith("_sketch"):
            assert (summary[name].sum(axis=-1) == n).all(), name
        else:
            assert (summary[name] <= n).all() and summary[name].any(), name
