"""What a simulated PTZ camera sees: a crop of a wide picture at its pan, tilt and zoom.

The wide picture stands for the room.  Pan and tilt (in the profile's own units, the simulator's
state) move the crop's centre; zoom (the profile's zoom position range) narrows it.  At the
widest zoom the camera sees `wide_view` of the room's width; at the longest, `max_zoom` times
less.  Turned beyond the wide picture's edges, the camera sees grey there: the picture keeps
moving as the camera does, as it would in a real room.

`PtzOptics.for_profile` derives the spans from the profile's field ranges, so any camera
profile's simulator drives a view: the centre of the range (0 where the range holds it) looks
at the middle of the room.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from drivers.profile_model import Profile
from streaming.source import Image
from streaming.tracking.geometry import Box

DEFAULT_PAN_SPAN = 2000.0  # pan units across the room's width (VISCA: about 150 degrees)


def field_ranges(profile: Profile) -> dict[str, tuple[int, int]]:
    """(min, max) of each integer field of a profile (what `PtzOptics.for_profile` takes)."""
    return {name: (int(f.min), int(f.max)) for name, f in profile.fields.items() if f.kind == "int"}


@dataclass(frozen=True, slots=True)
class Axis:
    """One axis of a camera: its range in the profile's units and where the room's middle is."""

    low: float
    high: float
    home: float

    @classmethod
    def of(cls, low: float, high: float) -> Axis:
        """The axis of a profile field's range; home is 0 when the range holds it inside, else the middle."""
        home = 0.0 if low < 0.0 < high else (low + high) / 2
        return cls(float(low), float(high), home)


@dataclass(frozen=True, slots=True)
class PtzOptics:
    """How pan / tilt / zoom units map onto a crop of the wide picture (see the module's docstring)."""

    pan: Axis
    tilt: Axis
    zoom: Axis
    pan_span: float = DEFAULT_PAN_SPAN  # pan units across the wide picture's width
    tilt_span: float = DEFAULT_PAN_SPAN * 9 / 16  # tilt units across its height
    wide_view: float = 0.75  # share of the room's width seen at the widest zoom
    max_zoom: float = 4.0  # magnification at the zoom range's far end

    def __post_init__(self) -> None:
        """Reject spans and views that would make no picture."""
        if self.pan_span <= 0 or self.tilt_span <= 0 or not 0 < self.wide_view <= 1 or self.max_zoom < 1:
            raise ValueError("optics: spans must be positive, wide_view in (0, 1], max_zoom at least 1")

    @classmethod
    def for_profile(cls, fields: Mapping[str, tuple[int, int]], aspect: float = 16 / 9, **kw: float) -> PtzOptics:
        """Optics for a profile whose ``pan``, ``tilt`` and ``zoom``/``position`` fields have these (min, max)."""
        pan = Axis.of(*fields.get("pan", (-2448, 2448)))
        tilt = Axis.of(*fields.get("tilt", (-400, 1200)))
        zoom_range = fields.get("position") or fields.get("zoom") or (0, 16384)
        zoom = Axis(float(zoom_range[0]), float(zoom_range[1]), float(zoom_range[0]))
        span = min(DEFAULT_PAN_SPAN, pan.high - pan.low)
        return cls(pan, tilt, zoom, pan_span=span, tilt_span=span / aspect, **kw)

    def magnification(self, zoom: float) -> float:
        """1 at the widest zoom, `max_zoom` at the longest."""
        share = (zoom - self.zoom.low) / max(1e-9, self.zoom.high - self.zoom.low)
        return 1.0 + (self.max_zoom - 1.0) * min(1.0, max(0.0, share))

    def crop(self, pan: float, tilt: float, zoom: float, wide: tuple[int, int], out: tuple[int, int]) -> Box:
        """The pixel box of the wide picture (size `wide`) the camera sees, at the output's aspect."""
        width, height = wide
        view_w = min(float(width), width * self.wide_view / self.magnification(zoom))
        view_h = view_w * out[1] / out[0]
        if view_h > height:
            view_h, view_w = float(height), height * out[0] / out[1]
        cx = width * (0.5 + (pan - self.pan.home) / self.pan_span)
        cy = height * (0.5 - (tilt - self.tilt.home) / self.tilt_span)
        return Box(cx - view_w / 2, cy - view_h / 2, view_w, view_h)

    def position_for(self, u: float, v: float, zoom: float = 0.0) -> tuple[float, float]:
        """The (pan, tilt) that centres normalised point (u, v) of the wide picture (presets, tests)."""
        del zoom  # the centre does not depend on the zoom
        return self.pan.home + (u - 0.5) * self.pan_span, self.tilt.home - (v - 0.5) * self.tilt_span


BEYOND = (128, 128, 128)  # what the camera sees past the wide picture's edges


def render_view(wide: Image, crop: Box, out: tuple[int, int]) -> Image:
    """The crop scaled to `out` (width, height), to the sub-pixel: what the camera sends."""
    scale = out[0] / crop.w
    if scale < 0.75:  # shrinking a lot: average first, as a lens and sensor do, instead of aliasing
        factor = max(1, int(1 / scale))
        wide = np.asarray(cv2.resize(wide, None, fx=1 / factor, fy=1 / factor, interpolation=cv2.INTER_AREA), np.uint8)
        crop, scale = crop.scaled(1 / factor, 1 / factor), scale * factor
    matrix = np.array([[scale, 0.0, -crop.x * scale], [0.0, out[1] / crop.h, -crop.y * out[1] / crop.h]])
    view = cv2.warpAffine(wide, matrix, out, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=BEYOND)
    return np.asarray(view, np.uint8)


def in_view(box: Box, crop: Box, wide: tuple[int, int]) -> Box:
    """A box normalised to the wide picture, normalised to the camera's view instead."""
    px = box.scaled(wide[0], wide[1])
    return Box((px.x - crop.x) / crop.w, (px.y - crop.y) / crop.h, px.w / crop.w, px.h / crop.h)
