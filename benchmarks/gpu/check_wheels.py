"""Is the set of carried wheels complete? Every Requires-Dist of every wheel in a folder
(default .whl/), for the lent machines' Python 3.12 on Linux x86-64 and without extras,
must be met by another carried wheel or by a package of the machines' image
(benchmarks/gpu/image.txt, from the device tool's KINDS.md); so must gpusim's own
dependencies (pyproject.toml). Prints what is missing and
exits 1 if anything is.

    python benchmarks/gpu/check_wheels.py [.whl]
"""

from __future__ import annotations

import re
import sys
import zipfile
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

HERE = Path(__file__).resolve().parent
TARGET = default_environment() | {"python_version": "3.12", "python_full_version": "3.12.3",
                                  "sys_platform": "linux", "platform_system": "Linux",
                                  "platform_machine": "x86_64", "implementation_name": "cpython",
                                  "extra": ""}


def image_packages() -> set[str]:
    text = (HERE / "image.txt").read_text()
    return {canonicalize_name(w) for w in re.findall(r"^([A-Za-z0-9_.\-]+)", text, re.M)}


def main() -> int:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else ".whl")
    carried: dict[str, Version] = {}
    requires: list[tuple[str, Requirement]] = []
    for wheel in sorted(folder.glob("*.whl")):
        name, version, _, _ = parse_wheel_filename(wheel.name)
        carried[canonicalize_name(name)] = version
        with zipfile.ZipFile(wheel) as z:
            meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
            for line in z.read(meta).decode().splitlines():
                if line.startswith("Requires-Dist:"):
                    requires.append((wheel.name, Requirement(line.split(":", 1)[1].strip())))
    import tomllib

    project = tomllib.loads((HERE.parents[1] / "pyproject.toml").read_text())["project"]
    requires += [("gpusim", Requirement(r)) for r in project["dependencies"]]
    image = image_packages()
    missing = []
    for wheel, req in requires:
        if req.marker is not None and not req.marker.evaluate(TARGET):
            continue
        name = canonicalize_name(req.name)
        if name in carried:
            if not req.specifier.contains(carried[name], prereleases=True):
                missing.append(f"{wheel}: needs {req}, carries {carried[name]}")
        elif name not in image:
            missing.append(f"{wheel}: needs {req}, neither carried nor in the image")
    for line in missing:
        print(line)
    print(f"{len(carried)} wheels, {len(requires)} requirements, {len(missing)} unmet")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
