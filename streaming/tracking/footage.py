"""Real footage as a scene: a video file read frame by frame, with where one walker really is.

Debian's ``opencv-doc`` package ships ``vtest.avi`` (768x576, 10 fps, 795 frames: people walking
across a campus square, seen from above), which the tests and the benchmark use as real
footage.  `VTEST_WALKS` are two people's walks in it, one box every half second: produced by
background subtraction on the fixed camera's frames and checked by eye against every fifth frame
(the glitches the subtraction made where a sign post hides a walker were corrected by hand).
Between two keyframes the box is interpolated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from streaming.source import Image
from streaming.tracking.geometry import Box

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
VTEST_SIZE = (768, 576)

Keyframe = tuple[int, int, int, int]  # frame, centre x, centre y, height (pixels)


@dataclass(frozen=True, slots=True)
class Walk:
    """One walker: keyframes (frame, centre x, centre y, height) in the video's pixels."""

    name: str
    keyframes: tuple[Keyframe, ...]

    @property
    def first(self) -> int:
        """The first annotated frame."""
        return self.keyframes[0][0]

    @property
    def last(self) -> int:
        """The last annotated frame."""
        return self.keyframes[-1][0]


VTEST_WALKS = (
    Walk(
        "dark jacket, right and back",
        (
            (175, 487, 255, 99), (180, 517, 263, 96), (185, 543, 269, 97), (190, 571, 284, 102),
            (195, 602, 300, 107), (200, 633, 317, 113), (205, 665, 333, 119), (210, 674, 348, 120),
            (215, 651, 359, 120), (220, 606, 352, 120), (225, 559, 344, 120), (230, 526, 326, 118),
            (235, 489, 308, 115), (240, 465, 300, 112), (245, 440, 286, 107), (250, 400, 278, 102),
            (255, 375, 265, 97), (260, 345, 255, 97), (265, 322, 250, 95), (270, 299, 237, 92),
            (275, 285, 225, 90), (280, 279, 220, 86), (285, 272, 210, 85), (290, 273, 204, 85),
            (295, 286, 198, 86),
        ),
    ),
    Walk(
        "black jacket and jeans, to the left",
        (
            (503, 572, 282, 109), (508, 562, 277, 108), (513, 541, 271, 107), (518, 517, 259, 105),
            (523, 495, 247, 103), (528, 479, 240, 100), (533, 468, 230, 97), (538, 455, 222, 95),
            (543, 447, 215, 94), (548, 436, 210, 92), (553, 412, 200, 88), (558, 400, 198, 85),
            (563, 383, 192, 85), (568, 362, 185, 85), (573, 338, 186, 83), (578, 311, 181, 81),
            (583, 281, 182, 79), (588, 254, 178, 77), (593, 228, 179, 76), (598, 208, 179, 76),
            (603, 186, 179, 75), (608, 165, 174, 75), (613, 150, 175, 75), (618, 135, 177, 75),
            (623, 127, 175, 75),
        ),
    ),
)  # fmt: skip


def interpolate(keyframes: Sequence[Keyframe], frame: float) -> tuple[float, float, float] | None:
    """(centre x, centre y, height) at `frame`, linear between keyframes (None outside them)."""
    for (f0, x0, y0, h0), (f1, x1, y1, h1) in zip(keyframes, keyframes[1:], strict=False):
        if f0 <= frame <= f1:
            share = (frame - f0) / (f1 - f0)
            return x0 + (x1 - x0) * share, y0 + (y1 - y0) * share, h0 + (h1 - h0) * share
    return None


class FootageScene:
    """A video file as a scene from frame `first` on, with the truth of one `walk` (or none)."""

    def __init__(self, path: Path, walk: Walk | None = None, *, fps: float = 10.0) -> None:
        """Opens the file; ValueError when it cannot be read."""
        self.path = path
        self.walk = walk
        self.fps = fps
        self._capture = cv2.VideoCapture(str(path))
        if not self._capture.isOpened():
            raise ValueError(f"{path}: cannot open the video")
        width = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        frames = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.size = (width, height)
        self.first = walk.first if walk is not None else 0
        last = walk.last if walk is not None else frames - 1
        self.duration = (last - self.first) / fps
        self._index = -1
        self._frame: Image = np.zeros((height, width, 3), np.uint8)

    def close(self) -> None:
        """Let go of the file."""
        self._capture.release()

    def _read(self, index: int) -> Image:
        if index < self._index or index > self._index + 50:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            self._index = index - 1
        while self._index < index:
            ok, frame = self._capture.read()
            if not ok:
                break  # past the end: keep the last picture
            self._frame = np.asarray(frame, np.uint8)
            self._index += 1
        return self._frame

    def render(self, t: float) -> Image:
        """The video's frame at `t` seconds after the walk's first frame (a copy)."""
        return self._read(self.first + int(round(t * self.fps))).copy()

    def truth(self, t: float) -> Box | None:
        """The walker's box, normalised (None outside the walk)."""
        if self.walk is None:
            return None
        found = interpolate(self.walk.keyframes, self.first + t * self.fps)
        if found is None:
            return None
        cx, cy, h = found
        w = 0.4 * h
        width, height = self.size
        return Box((cx - w / 2) / width, (cy - h / 2) / height, w / width, h / height)
