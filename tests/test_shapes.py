"""The kernel specialized to a run's shape (kernels/shapes.cuh) computes what the generic
build computes, bit for bit: host.cpp compiled with a config's shape defines (what cuda.py
prepends for the device) against the generic host build, cube and summary, both dtypes.
And, where nvcc is found, the specialized device kernels' registers, stack and spills.
"""

from __future__ import annotations

import ctypes
import subprocess

import numpy as np
import pytest
from conftest import CONFIGS
from helpers import firms_config, small_config
from test_kernels import needs_cxx, needs_nvcc

from gpusim import load_config
from gpusim.backends import cuda, host, kernel_io, toolchain
from gpusim.backends.header import kernel_dir
from gpusim.backends.packing import pack

SHAPES = {
    "base": lambda dtype: load_config(CONFIGS / "base.yaml", [f"dtype={dtype}"]),
    "firms": lambda dtype: firms_config(f"dtype={dtype}"),
    "market": lambda dtype: small_config(f"dtype={dtype}"),
}


def shaped_library(packed, tmp_path):
    """host.cpp built with `packed`'s shape defines."""
    compiler = host.host_compiler()
    prelude = tmp_path / "shape.h"
    prelude.write_text(kernel_io.shape_defines(packed))
    lib = tmp_path / "libshaped.so"
    subprocess.run([compiler, *host.HOST_FLAGS, "-include", str(prelude),
                    str(kernel_dir() / "host.cpp"), "-o", str(lib)], check=True)
    return ctypes.CDLL(str(lib))


def run_both(lib, packed, dtype, mode):
    """(generic, shaped) raw outputs of one block."""
    outs = []
    for library in (host.host_library(), lib):
        buffers = (kernel_io.cube_buffers(packed, 700, dtype, record_flows=True)
                   if mode == "cube" else kernel_io.summary_buffers(packed, 700, dtype))
        out = {k: np.zeros(shape, dt) for k, (shape, dt) in buffers.items()}
        make = kernel_io.cube_arguments if mode == "cube" else kernel_io.summary_arguments
        args = make(packed.arrays(), packed, 41, 300, 1000, out)
        suffix = "f64" if np.dtype(dtype) == np.float64 else "f32"
        entry = getattr(library, f"{host.HOST_NAMES['simulate_' + mode]}_{suffix}")
        entry(*(host.c_argument(a) for a in args))
        outs.append(out)
    return outs


@needs_cxx
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_shaped_build_equals_the_generic_build_bit_for_bit(shape, tmp_path):
    lib = None
    for dtype in ("float64", "float32"):
        packed = pack(SHAPES[shape](dtype))
        lib = lib or shaped_library(packed, tmp_path)  # the shape does not depend on dtype
        for mode in ("cube", "summary"):
            generic, shaped = run_both(lib, packed, dtype, mode)
            for key in generic:
                assert generic[key].tobytes() == shaped[key].tobytes(), (shape, dtype, mode, key)
            if mode == "summary":
                assert generic["market"].sum() > 0


def test_shape_defines_name_every_constant_shapes_cuh_reads():
    """shapes.cuh's specialized branch reads exactly the macros shape_defines writes."""
    text = (kernel_dir() / "shapes.cuh").read_text()
    shaped = text[text.index("#ifdef GPUSIM_SHAPED"):text.index("#else")]
    import re

    used = set(re.findall(r"\bGPUSIM_\w+", shaped)) - {"GPUSIM_SHAPED"}
    defined = set(re.findall(r"#define (GPUSIM_\w+)", kernel_io.shape_defines(
        pack(load_config(CONFIGS / "base.yaml")))))
    assert used <= defined, used - defined


@needs_nvcc
def test_base_summary_kernel_keeps_its_state_in_registers():
    """Shapes at compile time: the base config's float32 summary kernel, compiled with
    cuda.py's options and its shape, has no spills and a stack frame of at most 128 bytes
    (the generic build's is 2.4 KB)."""
    config = load_config(CONFIGS / "base.yaml", ["dtype=float32"])
    usage = toolchain.resource_usage(config, ["simulate_summary_f32"])
    [row] = usage
    assert row["registers"] is not None, row
    assert row["spill_bytes"] == 0, row
    assert row["stack_bytes"] <= 128, row


def test_info_kernels_json_without_a_compiler(monkeypatch, capsys):
    """`gpusim info --kernels CONFIG --json`: every variant by name, null figures where no
    nvcc is found."""
    import json

    from gpusim import cli

    monkeypatch.setattr(toolchain.shutil, "which", lambda name: None)
    monkeypatch.setattr(toolchain, "nvrtc_library", lambda: None)
    code = cli.main(["info", "--kernels", str(CONFIGS / "base.yaml"), "--json"])
    assert code in (0, None)
    report = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in report["variants"]] == list(cuda.KERNELS)
    for row in report["variants"]:
        assert row["registers"] is None and row["stack_bytes"] is None
        assert row["spill_bytes"] is None
    assert report["nvrtc"].startswith("not checked")


def test_ptxas_report_is_parsed_per_entry_function():
    text = """ptxas info    : Compiling entry function 'simulate_summary_f32' for 'sm_90'
ptxas info    : Function properties for simulate_summary_f32
    40 bytes stack frame, 8 bytes spill stores, 4 bytes spill loads
ptxas info    : Used 174 registers, used 0 barriers, 40 bytes cumulative stack size
ptxas info    : Function properties for __internal_trig_reduction_slowpathd
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
"""
    assert toolchain.parse_resource_usage(text) == {
        "simulate_summary_f32": {"stack_bytes": 40, "spill_bytes": 12, "registers": 174}}
    assert toolchain.occupancy(174) == 0.125 and toolchain.occupancy(64) == 0.5
