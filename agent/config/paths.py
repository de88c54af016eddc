"""Paths named in the site config: relative to the config file's own folder."""

from __future__ import annotations

from pathlib import Path


def resolve_path(base: Path, text: str) -> Path:
    """A path from the config, relative to the folder of the config file."""
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path
