"""`import gpusim` registers the ds.gpusim accessor and stays about as cheap as xarray."""

from __future__ import annotations

import subprocess
import sys

import gpusim

HEAVY = ("pydantic", "zarr", "dask.array", "distributed", "matplotlib", "gpusim.plan")


def test_import_registers_the_accessor_and_loads_nothing_heavy():
    code = ("import sys, gpusim, xarray as xr; "
            "print(hasattr(xr.Dataset, 'gpusim'), "
            f"[m for m in {HEAVY!r} if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert proc.stdout.strip() == "True []"


def test_public_names_load_on_first_use():
    assert gpusim.load_config.__module__ == "gpusim.config"
    assert gpusim.simulate.__module__ == "gpusim.cube"
    assert gpusim.run.__module__ == "gpusim.plan"
    assert {"load_config", "run", "simulate", "Config", "scenario_path"} <= set(dir(gpusim))
    try:
        gpusim.no_such_name  # noqa: B018
    except AttributeError as err:
        assert "no_such_name" in str(err)
    else:
        raise AssertionError("gpusim.no_such_name should not exist")
