"""A camera's still made to fit a command reply: scaled and re-encoded; hostile JPEGs refused before decoding."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streaming.still import StillError, fit_jpeg, jpeg_size


def camera_jpeg(width: int, height: int, quality: int = 95) -> bytes:
    """Noise compresses badly: the hardest case for fitting into a budget."""
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


def test_a_full_hd_snapshot_fits_the_budget_at_most_640_wide() -> None:
    original = camera_jpeg(1920, 1080)
    assert len(original) > 1_000_000 and jpeg_size(original) == (1920, 1080)
    still = fit_jpeg(original, 45_000)
    assert len(still.jpeg) <= 45_000 and still.width <= 640
    assert abs(still.width / still.height - 16 / 9) < 0.02  # the picture keeps its shape
    decoded = cv2.imdecode(np.frombuffer(still.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape[:2] == (still.height, still.width)


def test_a_small_picture_is_not_enlarged() -> None:
    still = fit_jpeg(camera_jpeg(320, 180, 50), 45_000)
    assert (still.width, still.height) == (320, 180)


def sof(width: int, height: int) -> bytes:
    """SOI, then a baseline start-of-frame header announcing a picture of this size (no picture follows)."""
    return (
        b"\xff\xd8\xff\xc0\x00\x11\x08" + height.to_bytes(2, "big") + width.to_bytes(2, "big") + b"\x03" + b"\x00" * 9
    )


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"GIF89a....", "not a JPEG"),
        (sof(60000, 60000), "60000x60000 picture: at most 8192"),
        (sof(0, 10), "0x10 picture"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "without a frame header"),
        (b"\xff\xd8\x00\x00\x00\x00", "damaged"),
        (sof(640, 480), "does not decode"),
    ],
)
def test_hostile_pictures_are_refused(data: bytes, problem: str) -> None:
    with pytest.raises(StillError, match=problem):
        fit_jpeg(data, 45_000)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512).map(lambda tail: b"\xff\xd8" + tail) | st.binary(max_size=512))
def test_any_bytes_are_a_size_or_a_still_error(data: bytes) -> None:
    try:
        width, height = jpeg_size(data)
    except StillError:
        return
    assert 0 <= width <= 65535 and 0 <= height <= 65535
