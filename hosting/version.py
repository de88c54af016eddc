"""The programs' version: the installed package's, else the source tree's own."""

from __future__ import annotations

from importlib import metadata

# The source version: pyproject.toml reads it from here (`[tool.setuptools.dynamic]`), so a
# checkout run without being installed reports the same version as the wheel built from it.
VERSION = "0.1.0"
DISTRIBUTION = "classroom-agent"  # one distribution carries both programs


def package_version() -> str:
    """The installed distribution's version; the source version when it is not installed."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return VERSION
