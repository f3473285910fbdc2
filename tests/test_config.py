"""Config loading: extends, overrides, validation messages."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from gpusim.config import Config, correlation_matrix, load_config
from gpusim.errors import InputError


def test_small_config_loads(small_yaml):
    config = load_config(small_yaml)
    assert config.market.price.initial == 2.0
    assert config.start == "2026-01" and config.horizon_months == 24


def test_extends_merges_and_lists_replace(small_yaml, tmp_path):
    child = tmp_path / "child.yaml"
    child.write_text(yaml.safe_dump({
        "extends": small_yaml.name,
        "name": "child",
        "market": {"price": {"initial": 2.5, "launches": []}},
    }))
    config = load_config(child)
    assert config.name == "child"
    assert config.market.price.initial == 2.5
    assert config.market.price.launches == []
    assert config.market.price.cap == 8.0  # inherited


def test_extends_cycle_is_an_error(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(InputError, match="cycle"):
        load_config(tmp_path / "a.yaml")


def test_set_overrides_nested_values_and_list_items(small_yaml):
    config = load_config(small_yaml, ["market.price.initial=2.2",
                                      "market.price.launches.0.log_impact=0.25",
                                      "switches.jumps=false"])
    assert config.market.price.initial == 2.2
    assert config.market.price.launches[0].log_impact == 0.25
    assert config.switches.jumps is False


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("market.prise.initial=2", r"market\.prise: unknown key; did you mean 'price'\?"),
        ("market.price.intial=2", r"did you mean 'initial'\?"),
        ("market.price.initial=-1", r"market\.price\.initial = -1: .*greater than 0"),
        ("start=2026-13", r"start = '2026-13': expected a month as 'YYYY-MM'"),
        ("start=2026/01", r"start = '2026/01'"),
        ("correlations.price-collateral=1.5", r"correlations\.price-collateral = 1\.5 is outside"),
        ("correlations.price-weather=0.1", r"'price-weather' is not a pair"),
        ("market.price.launches.0.month=2031-01", r"launches\.0\.month = '2031-01' is outside"),
        ("market.price.launches.0.month=2026-01", r"is the start month"),
        ("market.price.cap=0.5", r"cap \(0\.5\) must be at least floor"),
        ("market.regime.p_boom_to_bust=1.5", r"p_boom_to_bust = 1\.5: .*less than or equal to 1"),
        ("dtype=float16", r"dtype = 'float16'"),
        ("market.efficiency.trend_per_year=.nan", r"trend_per_year = nan"),
        ("market.price.cap=.inf", r"market\.price\.cap = inf"),
        ("market.capacity.retirement_per_year=13", r"retirement_per_year = 13"),
    ],
)
def test_bad_values_name_the_field(small_yaml, override, expected):
    with pytest.raises(InputError, match=expected):
        load_config(small_yaml, [override])


def test_invalid_correlation_matrix_names_smallest_eigenvalue():
    with pytest.raises(ValueError, match=r"smallest eigenvalue is -0\.\d+"):
        correlation_matrix({"demand-price": 0.9, "price-collateral": 0.9,
                            "demand-collateral": -0.9})


def test_missing_pairs_are_zero_and_order_free():
    c = correlation_matrix({"collateral-price": 0.4})
    assert c[2, 3] == c[3, 2] == 0.4
    assert np.count_nonzero(c - np.eye(6)) == 2


def test_missing_required_section(small_raw, tmp_path):
    del small_raw["market"]["rates"]
    path = tmp_path / "norates.yaml"
    path.write_text(yaml.safe_dump(small_raw))
    with pytest.raises(InputError, match=r"market\.rates: required but missing"):
        load_config(path)


def test_null_section_is_rejected(small_yaml):
    with pytest.raises(InputError, match=r"market\.rates = None: .*valid dictionary"):
        load_config(small_yaml, ["market.rates=null"])


def test_json_schema_has_units_in_descriptions():
    schema = json.dumps(Config.model_json_schema())
    assert "USD/H100-hour" in schema and "1/year" in schema


def test_every_leaf_parameter_has_a_description():
    def walk(model):
        for name, field in model.model_fields.items():
            inner = field.annotation
            if isinstance(inner, type) and hasattr(inner, "model_fields"):
                yield from walk(inner)
            else:
                yield model.__name__, name, field.description

    missing = [(m, f) for m, f, d in walk(Config) if not d]
    assert missing == []
