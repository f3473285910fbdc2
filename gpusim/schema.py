"""The config's JSON Schema, for editors (`gpusim schema`) and for checking configs.

pydantic gives the schema of a whole config (`Config`). A config that `extends:` another
is an overlay: any part of the config, merged key by key into its parent (lists are
replaced whole), so it validates as a *partial* config: the same properties, nothing
required in a mapping, but every list item (a firm, a contract, a schedule step) complete,
because a list in an overlay replaces the parent's list. The emitted schema holds both and
picks by the presence of `extends` (JSON Schema 2020-12 `if`/`then`/`else`).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from gpusim.config import Config
from gpusim.version import __version__

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "urn:gpusim:config-schema"
"""The schema's `$id`: a name, not a download address (configs point their editor at the
shipped copy, `configs/gpusim.schema.json`, by a relative path)."""
PARTIAL = "Partial"


def config_schema() -> dict[str, Any]:
    """The JSON Schema of a config file: a full config, or an overlay with `extends:`."""
    full = Config.model_json_schema()
    defs = full.pop("$defs")
    defs["Config"] = full
    for name in list(defs):
        defs[PARTIAL + name] = _partial(defs[name])
    defs[PARTIAL + "Config"]["properties"]["extends"] = {
        "type": "string", "description": "the config file this one overlays (relative path)"}
    return {
        "$schema": DIALECT,
        "$id": f"{SCHEMA_ID}:{__version__}",
        "title": "Config",
        "description": "A gpusim scenario config. " + full.get("description", ""),
        "type": "object",
        # the partial properties, which both branches imply, for editors' completion
        "properties": defs[PARTIAL + "Config"]["properties"],
        "$defs": defs,
        "if": {"type": "object", "required": ["extends"]},
        "then": {"$ref": f"#/$defs/{PARTIAL}Config"},
        "else": {"$ref": "#/$defs/Config"},
    }


def _partial(schema: dict[str, Any]) -> dict[str, Any]:
    """A mapping's schema with nothing required and its nested mappings partial too;
    list items keep the full schema (an overlay's list replaces the parent's whole)."""
    out = copy.deepcopy(schema)
    out.pop("required", None)
    for prop in out.get("properties", {}).values():
        _partial_refs(prop)
    return out


def _partial_refs(node: Any) -> None:
    """Point the $refs of a property (not inside `items`) at the partial definitions."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            node["$ref"] = "#/$defs/" + PARTIAL + ref.removeprefix("#/$defs/")
        for key, value in node.items():
            if key != "items":
                _partial_refs(value)
    elif isinstance(node, list):
        for value in node:
            _partial_refs(value)


def schema_text() -> str:
    """The schema as `gpusim schema` prints it (and configs/gpusim.schema.json holds it)."""
    return json.dumps(config_schema(), indent=2, ensure_ascii=False) + "\n"
