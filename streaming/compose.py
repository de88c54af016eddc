"""Composition: several sources into one picture, in one preallocated BGR image.

Each source's newest frame is resized straight into a view (a numpy slice) of the output, so a
frame is copied once per output picture at most; a source that has no frame, or whose frame is
stale, shows a grey 无信号 ("no signal") tile with its name.  The output stays BGR: the recorder converts
it to YUV 4:2:0 once per picture (see docs/benchmarks.md for why not compose in YUV).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image as Picture
from PIL import ImageDraw, ImageFont

from streaming.errors import StreamingError
from streaming.source import Frame, Image, Source

NO_SIGNAL = "无信号"
# CJK fonts as Debian installs them, the first found draws the tile's words (scripts/system-deps: fonts-noto-cjk).
CJK_FONTS = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
)
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
# layout name -> (fewest, most) sources; the first source is the main picture where there is one
LAYOUTS: dict[str, tuple[int, int]] = {
    "single": (1, 1),
    "pip": (2, 3),
    "side_by_side": (2, 2),
    "grid": (1, 4),
    "courseware_teacher": (2, 2),
    "directed": (1, 6),  # one source full screen at a time, chosen by streaming.director
}


class LayoutError(StreamingError, ValueError):
    """A layout is invalid (name, size, sources, corner, scale): fix the request or the config."""


@dataclass(frozen=True, slots=True)
class View:
    """Where one source goes in the output: a rectangle in pixels (even, for 4:2:0)."""

    source: str
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Layout:
    """A named arrangement of sources in an output picture.

    `sources` are in role order: `pip` is (main, inset[, second inset beside the first]), `courseware_teacher` is
    (courseware, teacher), `side_by_side` is (left, right), `grid` fills rows left to right.
    `directed` shows one of its sources full screen: the compositor's `main` (see streaming.director).
    """

    name: str
    sources: tuple[str, ...]
    size: tuple[int, int] = (1920, 1080)
    corner: str = "bottom-right"
    inset_scale: float = 0.25

    def __post_init__(self) -> None:
        """Validate everything at construction: a bad layout never reaches the recorder."""
        if self.name not in LAYOUTS:
            raise LayoutError(f"layout {self.name!r}: expected one of {', '.join(LAYOUTS)}")
        fewest, most = LAYOUTS[self.name]
        if not fewest <= len(self.sources) <= most:
            want = str(fewest) if fewest == most else f"{fewest} to {most}"
            raise LayoutError(f"layout {self.name!r}: got {len(self.sources)} sources, expected {want}")
        if len(set(self.sources)) != len(self.sources):
            raise LayoutError(f"layout {self.name!r}: a source appears twice in {list(self.sources)}")
        width, height = self.size
        if width < 64 or height < 64 or width % 2 or height % 2:
            raise LayoutError(f"layout size {width}x{height}: expected even numbers >= 64")
        if self.corner not in CORNERS:
            raise LayoutError(f"layout corner {self.corner!r}: expected one of {', '.join(CORNERS)}")
        if not 0.05 <= self.inset_scale <= 0.5:
            raise LayoutError(f"layout inset_scale {self.inset_scale}: expected 0.05 to 0.5")

    def views(self) -> tuple[View, ...]:
        """The rectangles, in drawing order (insets last, so they are on top)."""
        width, height = self.size
        names = self.sources
        if self.name == "single":
            return (View(names[0], 0, 0, width, height),)
        if self.name == "directed":  # every source full screen; the compositor draws only `main`
            return tuple(View(name, 0, 0, width, height) for name in names)
        if self.name in ("pip", "courseware_teacher"):
            return (View(names[0], 0, 0, width, height), *(self._inset(n, i) for i, n in enumerate(names[1:])))
        if self.name == "side_by_side":  # letterboxed halves keep the output's aspect ratio
            half_w, half_h = _even(width / 2), _even(height / 2)
            top = _even((height - half_h) / 2)
            return (View(names[0], 0, top, half_w, half_h), View(names[1], half_w, top, width - half_w, half_h))
        half_w, half_h = _even(width / 2), _even(height / 2)
        cells = ((0, 0), (half_w, 0), (0, half_h), (half_w, half_h))
        return tuple(
            View(name, x, y, half_w if x == 0 else width - half_w, half_h if y == 0 else height - half_h)
            for name, (x, y) in zip(names, cells, strict=False)
        )

    def _inset(self, name: str, slot: int) -> View:
        """Inset `slot` (0 in the corner, 1 beside it towards the centre)."""
        width, height = self.size
        w, h = _even(width * self.inset_scale), _even(height * self.inset_scale)
        margin = _even(height * 0.03)
        step = slot * (w + margin)
        x = margin + step if self.corner.endswith("left") else width - w - margin - step
        y = margin if self.corner.startswith("top") else height - h - margin
        return View(name, x, y, w, h)

    def to_dict(self) -> dict[str, Any]:
        """For config files and commands."""
        return {
            "name": self.name,
            "sources": list(self.sources),
            "size": list(self.size),
            "corner": self.corner,
            "inset_scale": self.inset_scale,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Layout:
        """The inverse of `to_dict`; unknown keys are an error."""
        unknown = set(data) - {"name", "sources", "size", "corner", "inset_scale"}
        if unknown:
            raise LayoutError(f"layout: unknown keys {sorted(unknown)}")
        try:
            size = data.get("size", (1920, 1080))
            return cls(
                name=str(data["name"]),
                sources=tuple(str(s) for s in data["sources"]),
                size=(int(size[0]), int(size[1])),
                corner=str(data.get("corner", "bottom-right")),
                inset_scale=float(data.get("inset_scale", 0.25)),
            )
        except LayoutError:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise LayoutError(f"layout: bad or missing value ({exc!r})") from exc


def _even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


class Compositor:
    """Fills one preallocated BGR picture from the newest frame of each source in a layout.

    The returned image is reused by the next call: encode or copy it before composing again.
    """

    def __init__(self, layout: Layout, sources: Mapping[str, Source] | Sequence[Source], *, stale_s: float = 3.0):
        """`sources` by name (or a sequence, named by `Source.name`); names missing here show "no signal"."""
        self.layout = layout
        self.sources = dict(sources) if isinstance(sources, Mapping) else {s.name: s for s in sources}
        self.stale_s = stale_s
        width, height = layout.size
        self.output: Image = np.zeros((height, width, 3), np.uint8)
        self._views = [(v, self.output[v.y : v.y + v.height, v.x : v.x + v.width]) for v in layout.views()]
        self._no_signal = {v.source: _no_signal_tile(v) for v in layout.views()}
        self._halves: dict[tuple[str, int, int], Image] = {}  # scratch for cascaded downscaling
        self.missing: tuple[str, ...] = ()
        self.main = layout.sources[0]  # the one source the `directed` layout shows

    def render(self, now: float | None = None) -> Image:
        """Compose the sources' newest frames (the recorder calls this once per output frame)."""
        source_frames = {name: source.latest() for name, source in self.sources.items()}
        return self.compose(source_frames, now)

    def compose(self, frames: Mapping[str, Frame | None], now: float | None = None) -> Image:
        """Compose the given frames; a source absent, None or older than `stale_s` shows "no signal"."""
        now = time.monotonic() if now is None else now
        missing = []
        for view, target in self._views:
            if self.layout.name == "directed" and view.source != self.main:
                continue
            frame = frames.get(view.source)
            if frame is None or now - frame.captured > self.stale_s:
                np.copyto(target, self._no_signal[view.source])
                missing.append(view.source)
            else:
                self._fit(view.source, frame.image, target)
        self.missing = tuple(missing)
        return self.output

    def _fit(self, name: str, image: Image, target: Image) -> None:
        """Resize `image` into `target` (a view of the output) without an intermediate full copy.

        Large downscales halve with INTER_LINEAR first (each halving is an exact 2x2 box
        filter): about as smooth as INTER_AREA, at a quarter of its cost for a 1080p inset.
        """
        height, width = target.shape[:2]
        if image.shape[:2] == (height, width):
            np.copyto(target, image)
            return
        while image.shape[1] >= 2 * width and image.shape[0] >= 2 * height:
            half_w, half_h = image.shape[1] // 2, image.shape[0] // 2
            scratch = self._halves.get((name, half_w, half_h))
            if scratch is None:
                scratch = self._halves[(name, half_w, half_h)] = np.empty((half_h, half_w, 3), np.uint8)
            cv2.resize(image, (half_w, half_h), dst=scratch, interpolation=cv2.INTER_LINEAR)
            image = scratch
        cv2.resize(image, (width, height), dst=target, interpolation=cv2.INTER_LINEAR)


def _no_signal_tile(view: View) -> Image:
    """A grey tile with the source's name and 无信号 (the recording is a Chinese classroom's), once per layout."""
    tile = np.full((view.height, view.width, 3), 48, np.uint8)
    font = cjk_font()
    if font is None:  # no CJK font installed (scripts/system-deps installs one): the words OpenCV can draw
        return _hershey_tile(tile, view)
    image = Picture.fromarray(tile)  # grey: the same in RGB and BGR
    draw = ImageDraw.Draw(image)
    size = max(12, view.height // 6)
    for text, row, scale in ((view.source, 0.36, 0.8), (NO_SIGNAL, 0.56, 1.0)):
        face = ImageFont.truetype(str(font), int(size * scale))
        left, top, right, bottom = draw.textbbox((0, 0), text, font=face)
        origin = ((view.width - (right - left)) // 2 - left, int(view.height * row) - top)
        draw.text(origin, text, font=face, fill=(200, 200, 200))
    return np.asarray(image).copy()


def cjk_font() -> Path | None:
    """The first CJK font Debian installs here (fonts-noto-cjk, fonts-wqy-*), or None."""
    return next((path for path in CJK_FONTS if path.is_file()), None)


def _hershey_tile(tile: Image, view: View) -> Image:
    scale = max(0.4, view.height / 360)
    thickness = max(1, int(2 * scale))
    for text, row in ((view.source, 0.42), ("no signal", 0.62)):
        (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        origin = (max(0, (view.width - tw) // 2), int(view.height * row))
        cv2.putText(tile, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (200, 200, 200), thickness)
    return tile
