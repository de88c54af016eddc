"""What ``info`` says about the room's school hours: the windows its timetable has lessons in.

Each window runs from a school day's first lesson start to its last lesson's end (``{"start",
"end"}``, contract timestamps).  ``info`` is retained, so the centre still has them once the PC has
gone quiet, and raises ``offline_in_hours`` when the room is not online inside one
(`central.hours`).  At most `MAX_HOURS` windows; a window that ends before it starts breaks the
contract (PayloadError naming the key).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contract.errors import PayloadError
from contract.timestamps import parse_iso
from contract.wire import get, timestamp

MAX_HOURS = 16

Window = tuple[str, str]  # (start, end) as contract timestamps


def hours_from(data: Mapping[str, Any]) -> tuple[Window, ...]:
    """``info.hours``: at most MAX_HOURS windows, each starting before it ends."""
    items = get(data, "hours", list, [])
    if len(items) > MAX_HOURS:
        raise PayloadError(f"hours: {len(items)} windows, expected at most {MAX_HOURS}")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise PayloadError(f"hours[{i}]: expected an object with start and end")
        try:
            start, end = timestamp(item, "start"), timestamp(item, "end")
        except PayloadError as exc:
            raise PayloadError(f"hours[{i}].{exc}") from None
        if parse_iso(end) <= parse_iso(start):
            raise PayloadError(f"hours[{i}]: ends at {end}, expected after its start {start}")
        out.append((start, end))
    return tuple(out)


def hours_dicts(windows: tuple[Window, ...]) -> list[dict[str, str]]:
    """The wire form of `windows`."""
    return [{"start": start, "end": end} for start, end in windows]
