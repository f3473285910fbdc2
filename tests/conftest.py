"""Shared fixtures: the small scenario of helpers.py, as a config, a mapping or a file."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from helpers import SMALL, small_config

from gpusim.config import Config, apply_overrides

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


@pytest.fixture
def small_raw() -> dict:
    return apply_overrides(SMALL, [])


@pytest.fixture
def make_config() -> Callable[..., Config]:
    """`make_config("a.b=1", ...)`: the small scenario with overrides applied."""
    return small_config


@pytest.fixture
def small_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL, sort_keys=False))
    return path


# A local dask cluster serves its dashboard on a free port in the tests (never dask's
# usual 8787, which parallel tests, or another session on the machine, may hold).
os.environ["GPUSIM_DASHBOARD"] = ":0"
