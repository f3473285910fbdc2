"""`gpusim schema` is a JSON Schema editors can use: it validates every shipped config
(overlays with `extends:` as partial configs) and the configs point at it. The shipped
configs read the same under YAML 1.1 (PyYAML) and YAML 1.2 (ruamel.yaml) loaders."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import CONFIGS
from helpers import SMALL

from gpusim.cli import main
from gpusim.schema import DIALECT, schema_text

jsonschema = pytest.importorskip("jsonschema")
SCENARIOS = sorted(CONFIGS.glob("*.yaml"))
MODELINE = "# yaml-language-server: $schema=gpusim.schema.json"


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(schema_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_cli_prints_the_schema_with_its_dialect_and_id(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"] == DIALECT
    assert schema["$id"].startswith("urn:gpusim:config-schema:")


def test_the_shipped_schema_file_is_current():
    assert (CONFIGS / "gpusim.schema.json").read_text() == schema_text(), (
        "regenerate it: gpusim schema > configs/gpusim.schema.json")


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_every_shipped_config_validates(path, validator):
    data = yaml.safe_load(path.read_text())
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]
    assert errors == []
    assert path.read_text().splitlines()[0] == MODELINE


def test_an_overlay_is_a_partial_config_but_a_full_config_is_complete(validator):
    assert validator.is_valid({"extends": "base.yaml", "market": {"price": {"initial": 2.2}}})
    assert validator.is_valid(SMALL)
    assert not validator.is_valid({"name": "no market"})  # market is required
    assert not validator.is_valid({"extends": "base.yaml", "market": {"price": {"intial": 2}}})
    # a list in an overlay replaces the parent's, so its items must be complete
    assert not validator.is_valid({"extends": "base.yaml", "firms": [{"name": "x"}]})
    assert not validator.is_valid(dict(SMALL, horizon_months="many"))


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_configs_read_the_same_under_yaml_1_1_and_1_2(path):
    ruamel = pytest.importorskip("ruamel.yaml")
    yaml_1_2 = ruamel.YAML(typ="safe", pure=True)
    yaml_1_2.version = (1, 2)
    text = path.read_text()
    assert yaml.safe_load(text) == yaml_1_2.load(text)


def test_a_1_1_only_number_is_caught():
    """The check above fails on what PyYAML reads differently, e.g. 2.0e15 (a string)."""
    ruamel = pytest.importorskip("ruamel.yaml")
    text = "value: 2.0e15\n"
    assert yaml.safe_load(text) != ruamel.YAML(typ="safe", pure=True).load(text)
