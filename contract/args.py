"""Command arguments as both programs' command lines take them: ``NAME=VALUE`` words.

``classroom-agent call`` and ``classroom-central send`` read the same words the same way, so a
technician's script works through either door.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from contract.errors import PayloadError


def parse_value(text: str) -> Any:
    """``true`` -> True, ``30`` -> 30, ``"x"`` -> "x"; anything that is not JSON stays text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_assignments(items: Sequence[str]) -> dict[str, str]:
    """``["level=30", "source=hdmi1"]`` -> ``{"level": "30", "source": "hdmi1"}`` (text); PayloadError on bad items."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise PayloadError(f"argument {item!r}: expected NAME=VALUE")
        out[name] = value
    return out


def parse_args_list(items: Sequence[str]) -> dict[str, Any]:
    """``["on=true", "source=hdmi1"]`` -> ``{"on": True, "source": "hdmi1"}``; PayloadError on bad items."""
    return {name: parse_value(text) for name, text in parse_assignments(items).items()}
