"""Hostile YAML is refused quickly, in bounded memory, with a bounded excerpt: alias bombs,
deep nesting, non-UTF-8 text, binary data, oversized files and duplicate keys."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest
import yaml
from helpers import SMALL

from gpusim.cli import main
from gpusim.config import load_config
from gpusim.errors import InputError
from gpusim.safe_yaml import (
    EXCERPT_CHARS,
    MAX_CONFIG_BYTES,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    parse_yaml,
)

SECONDS, PEAK_BYTES = 2.0, 32 << 20
"""Each refusal within 2 s (on a loaded 2-core machine) and 32 MiB of Python memory."""


def _bomb(levels: int = 9, width: int = 9) -> str:
    """The 'billion laughs': each level lists the previous one `width` times."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def _deep_block(levels: int) -> str:
    return "".join(" " * i + f"k{i}:\n" for i in range(levels)) + " " * levels + "x: 1\n"


CASES = {
    "alias bomb": (_bomb().encode(), "aliases expand to"),
    "deep flow nesting": (b"market: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nesting"),
    "deep block nesting": (_deep_block(1000).encode(), "nesting"),
    "deeper than the limit": (_deep_block(MAX_YAML_DEPTH + 1).encode(), "nesting deeper than"),
    "self-referring alias": (b"a: &a [1, *a]\n", "refers to its own anchor"),
    "latin-1 text": ("name: café\n".encode("latin-1"), "not UTF-8 text"),
    "binary garbage": (bytes(range(256)) * 64, "not UTF-8 text"),
    "NUL bytes": (b"name: a\x00b\n", "binary data"),
    "oversized": (b"# " + b"x" * MAX_CONFIG_BYTES + b"\n", f"{MAX_CONFIG_BYTES:,} bytes"),
    "duplicate key": (b"name: a\nhorizon_months: 24\nname: b\n", "duplicate key 'name'"),
    "nested duplicate key": (yaml.safe_dump(SMALL).replace(
        "p_boom_to_bust: 0.05", "p_boom_to_bust: 0.05\n    p_boom_to_bust: 0.5").encode(),
        "duplicate key 'p_boom_to_bust'"),
    "a long bad line": (b"name: [" + b"x" * 500_000 + b"\n", "line 2"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_yaml_is_refused_quickly_in_bounded_memory(tmp_path, capsys, case):
    data, expected = CASES[case]
    path = tmp_path / "hostile.yaml"
    path.write_bytes(data)
    tracemalloc.start()
    began = time.perf_counter()
    try:
        with pytest.raises(InputError) as err:
            load_config(path)
        elapsed = time.perf_counter() - began
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(err.value)
    assert expected in message
    assert elapsed < SECONDS and peak < PEAK_BYTES, (elapsed, peak)
    assert len(message) < len(str(path)) + 2 * EXCERPT_CHARS + 250, message
    assert main(["validate", str(path)]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and captured.err.startswith("gpusim: config file")


def test_the_limits_leave_room_for_real_configs(tmp_path):
    """Anchors, aliases and merge keys within the limits still load as before."""
    text = yaml.safe_dump(SMALL, sort_keys=False).replace(
        "  regime:\n    p_boom_to_bust: 0.05\n", "  regime: &regime\n    p_boom_to_bust: 0.05\n")
    path = tmp_path / "anchored.yaml"
    path.write_text(text)
    assert "&regime" in text
    assert load_config(path).market.regime.p_boom_to_bust == 0.05
    assert parse_yaml("base: &b {a: 1, b: 2}\nuse: {<<: *b, b: 3}\n")["use"] == {"a": 1, "b": 3}
    assert parse_yaml("a: &a [1, 2]\nb: [*a, *a]\n")["b"] == [[1, 2], [1, 2]]
    assert parse_yaml(_deep_block(MAX_YAML_DEPTH - 2)) is not None
    base = (Path(__file__).parents[1] / "configs" / "base.yaml").read_text()
    assert len(base.encode()) * 20 < MAX_CONFIG_BYTES
    assert base.count(":") * 50 < MAX_YAML_NODES  # a value per key, with room to spare
