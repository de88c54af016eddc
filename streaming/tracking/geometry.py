"""Boxes in normalised picture coordinates and the named zones a technician draws in the config.

Normalised coordinates run from 0 (left, top) to 1 (right, bottom) whatever the picture's size,
so a zone drawn on a snapshot of one resolution holds for every other.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

ZONE_KINDS = ("podium", "blackboard", "door")


@dataclass(frozen=True, slots=True)
class Box:
    """A rectangle: left, top, width, height (normalised, or pixels where a function says so)."""

    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        """The horizontal centre."""
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        """The vertical centre."""
        return self.y + self.h / 2

    @property
    def right(self) -> float:
        """The right edge."""
        return self.x + self.w

    @property
    def bottom(self) -> float:
        """The bottom edge."""
        return self.y + self.h

    @property
    def area(self) -> float:
        """Width times height (0 for an empty box)."""
        return max(0.0, self.w) * max(0.0, self.h)

    def contains(self, x: float, y: float) -> bool:
        """Whether the point lies inside (edges included)."""
        return self.x <= x <= self.right and self.y <= y <= self.bottom

    def overlap(self, other: Box) -> float:
        """Intersection over union, 0..1."""
        w = min(self.right, other.right) - max(self.x, other.x)
        h = min(self.bottom, other.bottom) - max(self.y, other.y)
        if w <= 0 or h <= 0:
            return 0.0
        inter = w * h
        return inter / (self.area + other.area - inter)

    def scaled(self, sx: float, sy: float) -> Box:
        """The box in another unit (normalised -> pixels: the picture's width and height)."""
        return Box(self.x * sx, self.y * sy, self.w * sx, self.h * sy)

    def clipped(self, width: float = 1.0, height: float = 1.0) -> Box:
        """The part inside ``0..width x 0..height`` (may be empty)."""
        x0, y0 = max(0.0, self.x), max(0.0, self.y)
        x1, y1 = min(width, self.right), min(height, self.bottom)
        return Box(x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0))

    def grown(self, factor: float) -> Box:
        """The box enlarged by `factor` about its centre."""
        w, h = self.w * factor, self.h * factor
        return Box(self.cx - w / 2, self.cy - h / 2, w, h)

    def finite(self) -> bool:
        """Whether every number is finite and the size is not negative."""
        values = (self.x, self.y, self.w, self.h)
        return all(math.isfinite(v) for v in values) and self.w >= 0 and self.h >= 0

    def to_list(self, digits: int = 3) -> list[float]:
        """``[x, y, w, h]`` rounded, for telemetry."""
        return [round(v, digits) for v in (self.x, self.y, self.w, self.h)]


def union(boxes: Iterable[Box]) -> Box | None:
    """The smallest box around all of `boxes` (None when there are none)."""
    items = list(boxes)
    if not items:
        return None
    x0, y0 = min(b.x for b in items), min(b.y for b in items)
    x1, y1 = max(b.right for b in items), max(b.bottom for b in items)
    return Box(x0, y0, x1 - x0, y1 - y0)


@dataclass(frozen=True, slots=True)
class Zone:
    """A named rectangle of the room's wide picture: ``podium``, ``blackboard`` or ``door``."""

    kind: str
    box: Box

    @classmethod
    def from_corners(cls, kind: str, corners: Sequence[float]) -> Zone:
        """From ``[x0, y0, x1, y1]`` (normalised; ValueError when out of 0..1 or inverted)."""
        if len(corners) != 4:
            raise ValueError(f"{kind}: got {len(corners)} numbers, expected [x0, y0, x1, y1]")
        x0, y0, x1, y1 = (float(c) for c in corners)
        if not all(math.isfinite(c) and 0.0 <= c <= 1.0 for c in (x0, y0, x1, y1)):
            raise ValueError(f"{kind}: got {list(corners)}, expected numbers from 0 to 1")
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"{kind}: got {list(corners)}, expected x0 < x1 and y0 < y1 (left, top, right, bottom)")
        return cls(kind, Box(x0, y0, x1 - x0, y1 - y0))


@dataclass(frozen=True, slots=True)
class Zones:
    """The zones of one picture; a kind may have several rectangles (two doors)."""

    zones: tuple[Zone, ...] = ()

    def of(self, kind: str) -> tuple[Zone, ...]:
        """The zones of one kind."""
        return tuple(z for z in self.zones if z.kind == kind)

    def at(self, x: float, y: float) -> tuple[str, ...]:
        """The kinds of zone the point lies in."""
        return tuple(dict.fromkeys(z.kind for z in self.zones if z.box.contains(x, y)))

    def inside(self, kind: str, x: float, y: float) -> bool:
        """Whether the point lies in a zone of `kind`; with no such zone, everywhere counts."""
        found = self.of(kind)
        return not found or any(z.box.contains(x, y) for z in found)
