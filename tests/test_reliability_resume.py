"""A refused resume names what differs: dotted config keys, old → new, in a few lines."""

from __future__ import annotations

from reliability import small_file

from gpusim.cli import main
from gpusim.store import MAX_DIFFERENCES, config_differences

ARGS = ("--paths", "200", "--block-paths", "100", "--device", "cpu", "--quiet")


def test_a_refused_resume_names_the_differing_fields(tmp_path, capsys):
    config, out = small_file(tmp_path), tmp_path / "x.zarr"
    assert main(["run", str(config), "--out", str(out), *ARGS]) == 0
    capsys.readouterr()
    assert main(["run", str(config), "--out", str(out), *ARGS, "--resume", "--seed", "3",
                 "--set", "market.price.initial=2.2",
                 "--set", "market.price.launches.0.log_impact=0.2"]) == 2
    err = capsys.readouterr().err
    assert "market.price.initial: 2.0 → 2.2" in err
    assert "market.price.launches.0.log_impact: 0.1 → 0.2" in err
    assert "seed: 0 → 3" in err
    assert len(err.splitlines()) <= MAX_DIFFERENCES + 3 and len(err) < 1200, err


def test_many_differences_are_cut_to_a_few_lines():
    old = "a: 1\nb: [1, 2, 3]\nc: {d: x}\n" + "".join(f"k{i}: {i}\n" for i in range(50))
    new = "a: 2\nb: [1, 5]\nc: {d: y, e: 1}\n" + "".join(f"k{i}: {-i}\n" for i in range(50))
    lines = config_differences(old, new)
    assert lines[:5] == ["a: 1 → 2", "b.1: 2 → 5", "b.2: 3 → '(none)'", "c.d: 'x' → 'y'",
                         "k1: 1 → -1"]
    assert lines[-1] == "c.e: '(none)' → 1"  # keys only the new config has come last
    assert not any(line.startswith("k0:") for line in lines)  # 0 == -0: no difference
    assert all(len(line) < 140 for line in config_differences("a: " + "x" * 9000,
                                                              "a: " + "y" * 9000))
