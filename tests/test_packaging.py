"""An installed gpusim is complete: the wheel ships every subpackage, the kernels, the
shipped scenarios and their schema and the license; the sdist holds what its tests need
(tests, configs, kernels, docs, the notebook, the benchmarks); the docs the README and the
configs cite are in the repository."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from gpusim.backends import host

ROOT = Path(__file__).resolve().parents[1]
SDIST_FOLDERS = ("tests", "configs", "kernels", "docs", "examples", "benchmarks")
"""Folders the tests read, all of whose files the sdist must hold."""


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, list[str]]:
    """Build the sdist, then the wheel from it (python -m build's default), once."""
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"could not build here (no network for the build backend?): "
                    f"{proc.stderr[-400:]}")
    wheel = next(out.glob("*.whl"))
    with tarfile.open(next(out.glob("*.tar.gz"))) as sdist:
        names = [n.split("/", 1)[1] for n in sdist.getnames() if "/" in n]
    return {"wheel": zipfile.ZipFile(wheel).namelist(), "sdist": names, "path": wheel}


def _files(folder: str) -> list[str]:
    return sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / folder).rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
                  and ".zarr" not in p.as_posix() and ".ipynb_checkpoints" not in p.parts)


def test_wheel_ships_the_package_kernels_scenarios_and_license(dists):
    names = dists["wheel"]
    for package in (ROOT / "gpusim").rglob("__init__.py"):  # every subpackage ships
        assert package.relative_to(ROOT).as_posix() in names
    for source in ("gpusim.cu", "params.cuh", "engine.cuh", "market.cuh", "firms.cuh",
                   "philox.cuh", "common.cuh", "sketch.cuh", "native.cpp"):
        assert f"gpusim/kernels/{source}" in names
    if host.host_compiler() is not None:  # the native CPU backend, built at install
        assert [n for n in names if n.startswith("gpusim/_native") and n.endswith(".so")]
    for config in [*(p.name for p in (ROOT / "configs").glob("*.yaml")), "gpusim.schema.json"]:
        assert f"gpusim/configs/{config}" in names
    assert any(re.match(r"gpusim-[^/]+\.dist-info/licenses/LICENSE$", n) for n in names)


def test_the_installed_wheel_runs_a_shipped_scenario_by_name(dists, tmp_path):
    """The wheel's own files (not the checkout's) find and load a scenario by name from
    an unrelated folder; the dependencies come from this environment."""
    site = tmp_path / "site"
    zipfile.ZipFile(dists["path"]).extractall(site)
    code = ("import gpusim, gpusim.scenarios as s; c = gpusim.load_config('token_boom'); "
            "print(s.configs_dir(), c.name, len(s.scenario_names()))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, check=True, env={"PYTHONPATH": str(site), "PATH": ""})
    folder, name, count = proc.stdout.split()
    assert Path(folder) == site / "gpusim" / "configs"
    assert name == "token_boom" and int(count) == len(list((ROOT / "configs").glob("*.yaml")))


def test_sdist_holds_what_its_tests_need(dists):
    names = set(dists["sdist"])
    missing = [f for folder in SDIST_FOLDERS for f in _files(folder) if f not in names]
    assert missing == []
    assert {"LICENSE", "README.md", "pyproject.toml", ".ci/run"} <= names


def test_license_matches_the_declared_one():
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert 'license = "Apache-2.0"' in (ROOT / "pyproject.toml").read_text()


def test_documents_the_readme_cites_are_in_the_repository():
    readme = (ROOT / "README.md").read_text()
    cited = set(re.findall(r"`?((?:docs|configs|examples|benchmarks|kernels)/[\w./-]+\.\w+)",
                           readme))
    assert {"docs/model.md", "docs/facts.md"} <= cited
    assert [c for c in cited if not (ROOT / c.rstrip(".")).exists()] == []
    assert "../shared" not in readme


def test_config_citations_name_a_section_of_docs_facts():
    headings = [h.lower() for h in re.findall(r"^## (.+)$",
                                              (ROOT / "docs/facts.md").read_text(), re.M)]
    for path in (ROOT / "configs").glob("*.yaml"):
        text = path.read_text()
        assert "FACTS.md" not in text, f"{path.name}: cite docs/facts.md"
        comments = " ".join(line.split("#", 1)[1] for line in text.splitlines()
                            if "#" in line)
        for section in re.findall(r"docs/facts\.md, ([a-z][a-z ]*[a-z])", comments):
            assert any(h.startswith(section) for h in headings), (path.name, section)
