"""Collecting configuration problems: every one at once, each with its key path."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


class Problems:
    """Every problem found in a config, as ``key.path: message``."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        """Record one problem."""
        self.items.append(f"{path}: {message}")

    def get(self, data: Mapping[str, Any], key: str, path: str, kind: type | tuple[type, ...], default: Any) -> Any:
        """`data[key]` if it is of `kind`, else `default` (and a problem when present but wrong)."""
        if key not in data:
            return default
        value = data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            self.add(f"{path}{key}", f"got {value!r}, expected {names}")
            return default
        return value

    def known(self, data: Mapping[str, Any], path: str, allowed: set[str]) -> None:
        """A problem for every key not in `allowed`."""
        for key in sorted(set(data) - allowed):
            self.add(f"{path}{key}", "unknown key")


def section(p: Problems, data: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A sub-table (empty, with a problem, when it is not a table)."""
    section = data.get(name, {})
    if not isinstance(section, dict):
        p.add(name, f"got {section!r}, expected a table [{name}]")
        return {}
    return section


def resolve_path(base: Path, text: str) -> Path:
    """A path from the config, relative to the folder of the config file."""
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


def positive(p: Problems, data: Mapping[str, Any], key: str, path: str, default: float) -> float:
    """A number > 0."""
    value = p.get(data, key, path, (int, float), default)
    if value <= 0:
        p.add(f"{path}{key}", f"got {value!r}, expected a positive number")
        return default
    return float(value)


def non_negative(p: Problems, data: Mapping[str, Any], key: str, default: float, path: str = "recording.") -> float:
    """A number >= 0."""
    value = p.get(data, key, path, (int, float), default)
    if value < 0:
        p.add(f"{path}{key}", f"got {value!r}, expected 0 or more")
        return default
    return float(value)
