"""Reading an operation's arguments as the WSDL types them; bad ones are ONVIF faults.

Elements are matched by qualified name (the WSDLs use elementFormDefault="qualified"), so a
client that puts an argument in the wrong namespace hears about it instead of being guessed at.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from drivers.sim.onvif.soap import TT, SoapFault, sender

MAX_TOKEN = 64  # tt:ReferenceToken and tt:Name are xs:string of at most 64 characters
_DURATION = re.compile(r"^P(?!$)(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def invalid_args(why: str) -> SoapFault:
    """Generic fault: a missing argument, too many, or one of the wrong type."""
    return sender("InvalidArgs", reason=f"Invalid Args: {why}")


def child(parent: ET.Element, namespace: str, name: str) -> ET.Element | None:
    """The child {namespace}name, if present."""
    return parent.find(f"{{{namespace}}}{name}")


def text(parent: ET.Element, namespace: str, name: str, *, required: bool = True, limit: int = MAX_TOKEN) -> str | None:
    """The text of child {namespace}name (stripped, at most `limit` characters)."""
    node = child(parent, namespace, name)
    if node is None:
        if required:
            raise invalid_args(f"missing argument {name}")
        return None
    value = (node.text or "").strip()
    if len(value) > limit:
        raise sender("InvalidArgVal", reason=f"Argument Value Invalid: {name} longer than {limit} characters")
    return value


def token(parent: ET.Element, namespace: str, name: str) -> str:
    """A required tt:ReferenceToken argument."""
    value = text(parent, namespace, name)
    assert value is not None
    return value


def boolean(parent: ET.Element, namespace: str, name: str, default: bool) -> bool:
    """An optional xs:boolean argument."""
    value = text(parent, namespace, name, required=False)
    if value is None:
        return default
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise invalid_args(f"{name} {value[:20]!r} is not an xs:boolean")


def duration_s(lexical: str, name: str) -> float:
    """An xs:duration in days, hours, minutes and seconds (years and months have no fixed length)."""
    match = _DURATION.match(lexical.strip())
    if not match:
        raise invalid_args(f"{name} {lexical[:30]!r} is not an xs:duration of days, hours, minutes, seconds")
    days, hours, minutes, seconds = (float(part) if part else 0.0 for part in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


@dataclass(frozen=True)
class Vector:
    """A tt:Vector2D (x, y) or tt:Vector1D (x only) with its optional space URI."""

    x: float
    y: float | None
    space: str | None


def _float(node: ET.Element, attr: str, fault: str) -> float:
    raw = node.get(attr)
    if raw is None:
        raise sender("MissingAttr", reason=f"Required Attribute not present: {attr}")
    try:
        value = float(raw)
    except ValueError as exc:
        raise invalid_args(f"{attr} {raw[:20]!r} is not an xs:float") from exc
    if not math.isfinite(value):
        raise sender("InvalidArgVal", fault, reason=f"Argument Value Invalid: {attr} is not finite")
    return value


def vectors(parent: ET.Element | None, fault: str) -> tuple[Vector | None, Vector | None]:
    """The tt:PanTilt and tt:Zoom children of a tt:PTZVector or tt:PTZSpeed (None where absent).

    `fault` is the operation's subcode for a value out of bounds (InvalidVelocity, ...).
    """
    if parent is None:
        return None, None
    pan_tilt = child(parent, TT, "PanTilt")
    zoom = child(parent, TT, "Zoom")
    pt = None
    if pan_tilt is not None:
        pt = Vector(_float(pan_tilt, "x", fault), _float(pan_tilt, "y", fault), pan_tilt.get("space"))
    z = Vector(_float(zoom, "x", fault), None, zoom.get("space")) if zoom is not None else None
    return pt, z
