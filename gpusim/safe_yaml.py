"""YAML read within limits that hostile input cannot get past (gpusim.config reads every
config file, and every --set value, through here).

PyYAML's safe loader (libyaml's parser where PyYAML was built with it, which bounds
nesting itself), plus: a size limit on files, UTF-8 text only, no NUL bytes, a depth limit,
a limit on the values a document stands for once its aliases are expanded (checked on the
composed nodes, before anything is built, so an alias bomb costs microseconds), duplicate
keys an error, and error messages that quote a bounded excerpt of the input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gpusim.errors import InputError

MAX_CONFIG_BYTES = 1 << 20
"""Largest config file read [bytes]: 1 MiB, 30× configs/base.yaml."""
MAX_YAML_DEPTH = 64
"""Deepest nesting of mappings and lists in a config (base.yaml nests 8 deep)."""
MAX_YAML_NODES = 200_000
"""Most values a config may hold once its aliases are expanded (base.yaml: 758); an
alias bomb of a few hundred bytes expands to billions and is refused before it is built."""
EXCERPT_CHARS = 80
"""Most characters of the offending input an error message quotes."""


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """`text` cut to at most `limit` characters, marking the cut."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


class _ConfigLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """PyYAML's safe loader (libyaml's fast parser where PyYAML has it, which bounds
    nesting itself), with duplicate keys an error."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                continue  # unhashable: the constructor itself refuses it
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found duplicate key {excerpt(repr(key), 40)}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: Any, sizes: dict[int, int], open_nodes: set[int], depth: int = 1
                   ) -> int:
    """Values `node` stands for with every alias expanded (memoized: linear time);
    raises ComposerError past MAX_YAML_DEPTH levels or for a self-referring alias."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes or depth > MAX_YAML_DEPTH:
        problem = (f"nesting deeper than {MAX_YAML_DEPTH} levels" if depth > MAX_YAML_DEPTH
                   else "an alias refers to its own anchor")
        raise yaml.composer.ComposerError(None, None, problem, node.start_mark)
    open_nodes.add(key)
    children = (node.value if isinstance(node, yaml.SequenceNode)
                else [n for pair in node.value for n in pair]
                if isinstance(node, yaml.MappingNode) else [])
    sizes[key] = 1 + sum(_expanded_size(child, sizes, open_nodes, depth + 1)
                         for child in children)
    open_nodes.discard(key)
    return sizes[key]


def parse_yaml(text: str) -> Any:
    """`text` as YAML (safe tags only), within MAX_YAML_DEPTH and MAX_YAML_NODES, with
    duplicate keys refused; raises yaml.YAMLError."""
    loader = _ConfigLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:  # the pure-Python composer nests by recursion
            raise yaml.YAMLError(f"nesting deeper than {MAX_YAML_DEPTH} levels") from None
        if node is None:
            return None
        if (size := _expanded_size(node, {}, set())) > MAX_YAML_NODES:
            raise yaml.composer.ComposerError(
                None, None, f"its aliases expand to {size:,} values, more than the "
                f"{MAX_YAML_NODES:,} a config may hold", node.start_mark)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def yaml_problem(err: yaml.YAMLError, text: str) -> str:
    """What is wrong and where, quoting at most EXCERPT_CHARS of the offending line."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or type(err).__name__
    if mark is None:
        return excerpt(str(err), 200)
    lines = text.splitlines() or [""]
    line = lines[min(mark.line, len(lines) - 1)]
    start = max(0, mark.column - EXCERPT_CHARS // 2)
    return (f"{excerpt(problem, 200)} at line {mark.line + 1}, column {mark.column + 1}: "
            f"{excerpt(line[start:])!r}")


def read_config_text(path: Path) -> str:
    """A config file's text: a regular file of at most MAX_CONFIG_BYTES of UTF-8 text."""
    if not path.is_file():
        raise InputError(f"config file {str(path)!r} does not exist or is not a regular file "
                         "(expected a YAML file)")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise InputError(f"config file {str(path)!r} cannot be read ({err.strerror})"
                         ) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise InputError(f"config file {str(path)!r} is larger than {MAX_CONFIG_BYTES:,} "
                         "bytes, the most a config may be; expected a YAML scenario config")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"config file {str(path)!r} is not UTF-8 text (byte {err.start} is "
                         f"{raw[err.start:err.start + 1]!r}); expected a YAML file") from None
    if "\x00" in text:
        raise InputError(f"config file {str(path)!r} holds binary data (a NUL byte at "
                         f"character {text.index(chr(0))}); expected a YAML text file")
    return text
