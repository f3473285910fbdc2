"""The command line's argument types: counts within bounds, seeds, the config as given,
and an argparse parser whose errors are bad input (exit 2)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path

from gpusim.errors import InputError
from gpusim.safe_yaml import excerpt


def config_source(path: Path, overrides: Sequence[str]) -> str:
    """The config as given: the file's text (and what it extends) plus the overrides."""
    parts = [f"# {path}\n{path.read_text()}"]
    text = parts[0]
    seen = {path.resolve()}
    while (match := re.search(r"^extends:\s*['\"]?([^'\"\s#]+)", text, flags=re.M)):
        parent = (path.parent / match.group(1)).resolve()
        if parent in seen or not parent.is_file():
            break
        seen.add(parent)
        text = parent.read_text()
        parts.append(f"# {parent.name}\n{text}")
        path = parent
    if overrides:
        parts.append("# --set " + " --set ".join(overrides))
    return "\n".join(parts)


class Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments as InputError (exit 2, one paragraph)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{message} (see '{self.prog} --help')")


def count_up_to(limit: int, what: str) -> Callable[[str], int]:
    """An argparse type for a count in [1, limit]: '10000', '10_000' or '1e4'. The text is
    read exactly (no float), so '1e400' or 10**12 is refused without allocating."""

    def count(text: str) -> int:
        expected = (f"expected a whole number from 1 to {limit:,} ({what}), got "
                    f"{excerpt(text)!r}")
        try:
            value = Decimal(text.strip().replace("_", ""))
        except InvalidOperation:
            raise argparse.ArgumentTypeError(expected) from None
        if not value.is_finite() or not 1 <= value <= limit or value != value.to_integral():
            raise argparse.ArgumentTypeError(expected)
        return int(value)

    return count


def seed(text: str) -> int:
    """A seed: an integer in [0, 2**64)."""
    expected = f"expected an integer in [0, 2**64), got {text!r}"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(expected) from None
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(expected)
    return value


def dashboard_option(parser: argparse._ActionsContainer) -> None:
    """`--dashboard [ADDRESS]`: serve the dask dashboard of a cluster started here (not
    served unless asked: serving it takes CPU from the workers)."""
    parser.add_argument("--dashboard", nargs="?", const="", default=None, metavar="ADDRESS",
                        help="serve the dask dashboard of --workers/--cuda-workers' cluster, "
                             "at ADDRESS (default $GPUSIM_DASHBOARD, else :8787); not "
                             "served unless asked")


CONFIG_HELP = "a scenario: a YAML file, or a shipped scenario's name (see 'gpusim configs')"
