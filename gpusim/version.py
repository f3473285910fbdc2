"""gpusim's version, as installed (or 0+unknown in a checkout that is not installed)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gpusim")
except PackageNotFoundError:  # running from a checkout that is not installed
    __version__ = "0+unknown"
