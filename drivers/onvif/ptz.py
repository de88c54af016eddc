"""The camera vocabulary in ONVIF PTZ terms, and PTZ answers read back into it (sans-IO).

Positions are ints in thousandths of ONVIF's generic spaces, so that they compare with the other
cameras' state and go back into ``goto`` unchanged: pan and tilt -1000..1000 (left/down negative),
zoom 0..1000 (wide to tele).  Speeds are the vocabulary's: pan and tilt 1..24, zoom 0..7, each a
fraction of the camera's fastest (ONVIF's generic velocity and speed spaces run to 1): zoom speed
0 is an eighth of it, 7 all of it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SCALE = 1000
SPEED_MAX = 24
ZOOM_SPEED_MAX = 7
# The most presets we read from one GetPresets answer (cameras keep up to 256 or so).
MAX_PRESETS = 1024
MAX_NAME = 64

DIRECTIONS: Mapping[str, tuple[int, int]] = {
    "up": (0, 1),
    "down": (0, -1),
    "left": (-1, 0),
    "right": (1, 0),
    "upleft": (-1, 1),
    "upright": (1, 1),
    "downleft": (-1, -1),
    "downright": (1, -1),
}


# How long a GetPresets answer is trusted (the camera's own web page may change presets meanwhile;
# a recall of a token that is gone reads them again at once).
PRESETS_KEPT_S = 60.0


@dataclass(frozen=True, slots=True)
class Preset:
    """One preset the camera keeps: its token (the camera's) and name."""

    token: str
    name: str


@dataclass(frozen=True, slots=True)
class PresetCache:
    """The presets as GetPresets listed them, and when (monotonic seconds)."""

    presets: tuple[Preset, ...]
    read_at: float

    def valid(self, now: float) -> bool:
        """Whether the list is recent enough to act on."""
        return 0 <= now - self.read_at < PRESETS_KEPT_S


def move_velocity(direction: str, pan_speed: int, tilt_speed: int) -> dict[str, Any]:
    """ContinuousMove's ``Velocity`` for a pan/tilt move (zoom left as it is)."""
    dx, dy = DIRECTIONS[direction]
    return {"PanTilt": {"x": dx * _fraction(pan_speed, SPEED_MAX), "y": dy * _fraction(tilt_speed, SPEED_MAX)}}


def zoom_velocity(tele: bool, speed: int) -> dict[str, Any]:
    """ContinuousMove's ``Velocity`` for a zoom (pan and tilt left as they are)."""
    return {"Zoom": {"x": (1 if tele else -1) * _fraction(speed + 1, ZOOM_SPEED_MAX + 1)}}


def pan_tilt(pan: int, tilt: int) -> dict[str, Any]:
    """A ``Position`` (or ``Translation``) for pan and tilt given in thousandths."""
    return {"PanTilt": {"x": pan / SCALE, "y": tilt / SCALE}}


def speed(pan_speed: int, tilt_speed: int) -> dict[str, Any]:
    """A ``Speed`` for AbsoluteMove / RelativeMove."""
    return {"PanTilt": {"x": _fraction(pan_speed, SPEED_MAX), "y": _fraction(tilt_speed, SPEED_MAX)}}


def zoom_position(position: int) -> dict[str, Any]:
    """A ``Position`` with only a zoom, given in thousandths."""
    return {"Zoom": {"x": position / SCALE}}


def read_status(answer: object) -> dict[str, object]:
    """GetStatus' answer as state fields: pan, tilt, zoom (when the camera reports them) and moving."""
    data = answer if isinstance(answer, Mapping) else {}
    position = _table(data, "Position")
    moves = _table(data, "MoveStatus")
    out: dict[str, object] = {}
    for key, axis, name in (("pan", "PanTilt", "x"), ("tilt", "PanTilt", "y"), ("zoom", "Zoom", "x")):
        value = _number(_table(position, axis).get(name))
        if value is not None:
            out[key] = round(value * SCALE)
    out["moving"] = any(str(moves.get(axis, "")).upper() == "MOVING" for axis in ("PanTilt", "Zoom"))
    return out


def read_presets(answer: object) -> tuple[Preset, ...]:
    """GetPresets' answer: every preset with a usable token."""
    items = answer if isinstance(answer, list) else []
    out = []
    for item in items[:MAX_PRESETS]:
        if not isinstance(item, Mapping):
            continue
        token, name = item.get("token"), item.get("Name")
        if isinstance(token, str) and 0 < len(token) <= MAX_NAME:
            out.append(Preset(token, name[:MAX_NAME] if isinstance(name, str) else ""))
    return tuple(out)


def preset_for(presets: tuple[Preset, ...], n: int) -> Preset | None:
    """The preset that stands for number `n`: named ``n`` (as we save them), else with token ``n``.

    A preset named with another number is that number's, whatever its token: saved as preset 2 into
    the camera's slot "1", it is never recalled as preset 1.
    """
    wanted = str(n)
    by_name = next((p for p in presets if p.name.strip() == wanted), None)
    return by_name or next((p for p in presets if p.token == wanted and not p.name.strip().isdigit()), None)


def _fraction(value: int, top: int) -> float:
    return round(max(0, min(value, top)) / top, 4)


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def _number(value: object) -> float | None:
    """A finite number within the generic spaces (a little slack for rounding); None otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and -1.5 <= number <= 1.5 else None
