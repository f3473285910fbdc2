"""--overwrite removes only a gpusim store of ours, never through a symbolic link, and a
run killed while replacing or laying out a store leaves something --resume or --overwrite
accepts (real processes, SIGKILLed at a chosen step)."""

from __future__ import annotations

import json

import pytest
import xarray as xr
from reliability import gpusim, killed_at, small_file

from gpusim.cli import main
from gpusim.storage import is_ours

ARGS = ("--paths", "300", "--block-paths", "100", "--device", "cpu", "--quiet")


def _run(config, out, *extra: str) -> int:
    return main(["run", str(config), "--out", str(out), *ARGS, *extra])


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if ".gpusim-" in p.name)


@pytest.fixture
def store(tmp_path):
    """A finished store of seed 1 at tmp_path/x.zarr, and its config."""
    config, out = small_file(tmp_path), tmp_path / "x.zarr"
    assert _run(config, out, "--seed", "1") == 0
    return config, out


def test_a_symlink_is_never_followed(store, tmp_path, capsys):
    config, out = store
    link = tmp_path / "link.zarr"
    link.symlink_to(out, target_is_directory=True)
    for flag in ("--overwrite", "--resume"):
        assert _run(config, link, flag) == 2
        assert "symbolic link" in capsys.readouterr().err
    dangling = tmp_path / "dangling.zarr"
    dangling.symlink_to(tmp_path / "elsewhere")
    assert _run(config, dangling) == 2
    assert not (tmp_path / "elsewhere").exists()
    with xr.open_zarr(out) as ds:
        assert ds.attrs["seed"] == 1


def test_a_generic_zarr_folder_is_not_ours(tmp_path, capsys):
    config, out = small_file(tmp_path), tmp_path / "other.zarr"
    out.mkdir()
    (out / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "group",
                                               "attributes": {"title": "not gpusim"}}))
    (out / "data.bin").write_bytes(b"precious")
    assert not is_ours(out)
    assert _run(config, out, "--overwrite") == 2
    assert "not a zarr store written by gpusim" in capsys.readouterr().err
    assert _run(config, out, "--resume") == 2
    assert (out / "data.bin").read_bytes() == b"precious"


def test_overwrite_replaces_our_store_and_leaves_nothing_beside(store, tmp_path):
    config, out = store
    assert _run(config, out, "--overwrite", "--seed", "2") == 0
    with xr.open_zarr(out) as ds:
        assert ds.attrs["seed"] == 2
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(("module", "name", "call", "before", "left"), [
    # killed while deleting the old store, already renamed aside: the new one is in place
    ("storage", "rmtree", 1, True, "new"),
    # killed between renaming the old store aside and the new one into place: no store
    ("storage", "rename", 2, True, "none"),
    # killed while laying the new store out beside the target: the old store is untouched
    ("plan", "create_layout", 1, False, "old"),
])
def test_a_killed_overwrite_leaves_a_store_resume_or_overwrite_accepts(
        store, tmp_path, module, name, call, before, left):
    config, out = store
    rc = killed_at(module, name, call, before, "run", str(config), "--out", str(out),
                   *ARGS, "--overwrite", "--seed", "2")
    assert rc == -9
    assert _leftovers(tmp_path)  # the killed run's hidden folder is still there
    if left == "none":
        assert not out.exists()
        assert gpusim("run", str(config), "--out", str(out), *ARGS, "--resume",
                      "--seed", "2").returncode == 2  # says to start without --resume
        assert _run(config, out, "--seed", "2") == 0
    else:
        assert is_ours(out)
        assert _run(config, out, "--resume", "--seed", "2" if left == "new" else "1") == 0
        assert _run(config, out, "--overwrite", "--seed", "2") == 0
    with xr.open_zarr(out) as ds:
        assert ds.attrs["seed"] == 2 and "run_finished" in ds.attrs
    assert _leftovers(tmp_path) == []


def test_a_run_killed_while_laying_out_a_new_store_can_start_again(tmp_path):
    config, out = small_file(tmp_path), tmp_path / "fresh.zarr"
    rc = killed_at("plan", "create_layout", 1, False, "run", str(config), "--out", str(out),
                   *ARGS)
    assert rc == -9 and not out.exists()
    assert _run(config, out) == 0 and _leftovers(tmp_path) == []
