"""The kernels compile the way CuPy will compile them on the device: every kernel variant
of the base and market-only configs (and the generic build) through NVRTC, from the pip
wheel (nvidia-cuda-nvrtc-cu12, in the dev extra), with exactly cupy.RawModule's options.
No GPU needed; skipped where no NVRTC library is found.
"""

from __future__ import annotations

import pytest
from conftest import CONFIGS

from gpusim import load_config
from gpusim.backends import cuda, kernel_io, toolchain
from gpusim.backends.packing import pack

NVRTC = toolchain.nvrtc_library()
needs_nvrtc = pytest.mark.skipif(NVRTC is None, reason="no NVRTC library (pip install "
                                 "nvidia-cuda-nvrtc-cu12)")
CASES = {"base": [], "market-only": ["firms=[]"]}


@needs_nvrtc
@pytest.mark.parametrize("kernel", cuda.KERNELS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_variant_compiles_through_nvrtc_as_cupy_compiles_it(case, kernel):
    config = load_config(CONFIGS / "base.yaml", CASES[case])
    source = cuda.kernel_source(kernel_io.variant_prelude(pack(config), kernel))
    ok, log = toolchain.nvrtc_compile(NVRTC, source, toolchain.nvrtc_options())
    assert ok, log
    assert "warning" not in log.lower(), log


@needs_nvrtc
def test_the_generic_build_compiles_through_nvrtc():
    ok, log = toolchain.nvrtc_compile(NVRTC, cuda.kernel_source(), toolchain.nvrtc_options())
    assert ok, log


@needs_nvrtc
def test_nvrtc_reports_a_broken_kernel():
    """The check can fail: a source error comes back with NVRTC's message."""
    ok, log = toolchain.nvrtc_compile(NVRTC, cuda.kernel_source("#define GPUSIM_SHAPED 1\n"),
                                 toolchain.nvrtc_options())
    assert not ok and "GPUSIM_N_FIRMS" in log


def test_nvrtc_options_are_cupys_and_ours():
    options = toolchain.nvrtc_options()
    assert options[:3] == ("-ftz=true", "--device-as-default-execution-space", "-arch=sm_90")
    assert "--fmad=false" in options and any(o.startswith("-I") for o in options)
