"""A camera's still picture made small enough to travel in a command reply (OpenCV; call it in a thread).

A camera's snapshot is a JPEG of its full picture (hundreds of KB at 1080p); a reply on the broker
carries at most 64 KiB.  `fit_jpeg` reads the picture's size from the JPEG header first (a hostile
camera could announce a picture that would take gigabytes to decode), then scales it down and
re-encodes it, lowering the quality and then the size until it fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np

from streaming.errors import StreamingError
from streaming.source import Image

# The largest picture decoded at all (8K UHD is 7680x4320).
MAX_SIDE = 8192
QUALITIES = (80, 65, 50, 35)
SMALLEST_WIDTH = 80
# JPEG start-of-frame markers (baseline, extended, progressive, lossless...; not DHT C4, JPG C8, DAC CC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class StillError(StreamingError):
    """The camera's picture is not a JPEG we will decode, or cannot be made small enough."""


@dataclass(frozen=True, slots=True)
class Still:
    """A JPEG and its size in pixels."""

    jpeg: bytes
    width: int
    height: int


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame header; StillError when `data` is not a JPEG."""
    if data[:2] != b"\xff\xd8":
        raise StillError("not a JPEG picture")
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise StillError("a damaged JPEG picture (no marker where one belongs)")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            i += 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in _SOF and i + 9 <= len(data):
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return width, height
        if length < 2:
            break
        i += 2 + length
    raise StillError("a JPEG picture without a frame header")


def fit_jpeg(data: bytes, max_bytes: int, max_width: int = 640) -> Still:
    """`data` (a JPEG) at most `max_width` wide, re-encoded into at most `max_bytes`; StillError otherwise."""
    width, height = jpeg_size(data)
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise StillError(f"a {width}x{height} picture: at most {MAX_SIDE} pixels a side are decoded")
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        raise StillError("the JPEG picture does not decode")
    image = cast(Image, decoded)  # IMREAD_COLOR: 8-bit BGR
    target = min(max_width, image.shape[1])
    while target >= SMALLEST_WIDTH:
        scaled = _scaled(image, target)
        for quality in QUALITIES:
            ok, encoded = cv2.imencode(".jpg", scaled, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if ok and len(encoded) <= max_bytes:
                return Still(encoded.tobytes(), int(scaled.shape[1]), int(scaled.shape[0]))
        target //= 2
    raise StillError(f"the picture does not fit in {max_bytes} bytes even at {SMALLEST_WIDTH} pixels wide")


def _scaled(image: Image, width: int) -> Image:
    if image.shape[1] == width:
        return image
    height = max(1, round(image.shape[0] * width / image.shape[1]))
    return cast(Image, cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA))
