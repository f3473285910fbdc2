"""The scenario configs shipped with gpusim, found by name from anywhere.

The configs live in the repository's top-level `configs/` folder and install inside the
package as `gpusim/configs` (pyproject.toml maps one onto the other, as for the kernels),
so `gpusim run base ...` works from any directory, from a checkout or from a wheel. A
config argument that names an existing file is that file; otherwise a bare name
(`base`, `token_boom`, `base.yaml`) is looked up among the shipped scenarios.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from gpusim.errors import InputError

SCHEMA_FILE = "gpusim.schema.json"
"""The config's JSON Schema, shipped next to the configs (their editor modeline names it)."""
LINE = 100
"""Characters of a scenario's description that `gpusim configs` shows."""


def configs_dir() -> Path:
    """The folder of the shipped configs: `gpusim/configs` in an installed wheel, else the
    checkout's `configs/` (an editable install or a source tree)."""
    installed = Path(__file__).resolve().parent / "configs"
    if (installed / "base.yaml").is_file():
        return installed
    return Path(__file__).resolve().parents[1] / "configs"


def scenario_names() -> list[str]:
    """The shipped scenarios' names (file names without `.yaml`), base first."""
    names = sorted(p.stem for p in configs_dir().glob("*.yaml"))
    return sorted(names, key=lambda n: n != "base")


def scenario_path(config: str | Path) -> Path:
    """The file a config argument means: an existing file or anything with a folder in it
    as given, else the shipped scenario of that name; InputError naming the argument and
    the choices otherwise."""
    path = Path(config)
    text = str(config)
    if path.is_file() or "/" in text or "\\" in text:
        return path  # a path: reading it says whether it exists
    shipped = configs_dir() / (text if text.endswith((".yaml", ".yml")) else f"{text}.yaml")
    if shipped.is_file():
        return shipped
    raise InputError(
        f"config {text!r} is neither a file nor a shipped scenario; expected a YAML path or "
        f"one of {', '.join(scenario_names())} (see 'gpusim configs')")


@dataclass(frozen=True)
class Scenario:
    """A shipped scenario: its name, file, what it extends and its one-line description."""

    name: str
    path: Path
    extends: str | None
    description: str


def scenarios() -> list[Scenario]:
    """Every shipped scenario with the first sentence of its `description:`."""
    return [_scenario(configs_dir() / f"{name}.yaml") for name in scenario_names()]


def _scenario(path: Path) -> Scenario:
    """Read name, extends and description from the YAML text (no validation needed)."""
    import yaml  # only `gpusim configs` needs it

    data = yaml.safe_load(path.read_text()) or {}
    description = " ".join(str(data.get("description", "")).split())
    first = re.split(r"(?<=\.)\s", description, maxsplit=1)[0].rstrip(".")
    if len(first) > LINE:
        first = first[:LINE].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return Scenario(path.stem, path, data.get("extends"), first)


def extends_chain(path: Path) -> list[Path]:
    """`path` and every file its `extends:` chain names, nearest first."""
    chain = [path]
    while (match := re.search(r"^extends:\s*['\"]?([^'\"\s#]+)", chain[-1].read_text(),
                              flags=re.M)):
        parent = chain[-1].parent / match.group(1)
        if parent in chain or not parent.is_file():
            break
        chain.append(parent)
    return chain


def copy_scenario(name: str, dest: Path) -> list[Path]:
    """Copy a shipped scenario, the configs it extends and the schema its modeline names
    into the folder `dest` (created if missing), refusing to replace any existing file.
    Returns the files written."""
    source = scenario_path(name)
    if dest.exists() and not dest.is_dir():
        raise InputError(f"copy destination {str(dest)!r} exists and is not a folder; "
                         "expected a folder to copy the scenario into")
    files = [*extends_chain(source), configs_dir() / SCHEMA_FILE]
    targets = [dest / f.name for f in files]
    existing = [str(t) for t in targets if t.exists() and t.name != SCHEMA_FILE]
    if existing:
        raise InputError(f"copy: {', '.join(existing)} already exist(s); refusing to "
                         "replace an edited config (remove it or choose another folder)")
    dest.mkdir(parents=True, exist_ok=True)
    for file, target in zip(files, targets, strict=True):
        target.write_text(file.read_text())
    return targets
