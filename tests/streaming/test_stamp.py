"""The burned-in stamp survives real H.264 at 720p and 360p; damaged or absent stamps read as None."""

from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from streaming import stamp
from streaming.synthetic import SyntheticSource


def h264_round_trip(images: list[np.ndarray], bitrate: int) -> list[np.ndarray]:
    """Encode BGR pictures with libx264 (as the live encoder does) and decode them again."""
    height, width = images[0].shape[:2]
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base, encoder.bit_rate = Fraction(1, 30), bitrate
    encoder.options = {"preset": "veryfast", "tune": "zerolatency"}
    decoder = av.CodecContext.create("h264", "r")
    out: list[np.ndarray] = []
    for pts, image in enumerate(images):
        frame = av.VideoFrame.from_ndarray(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
        frame.pts = pts
        for packet in encoder.encode(frame):
            out += [f.to_ndarray(format="bgr24") for f in decoder.decode(packet)]
    for packet in encoder.encode(None):
        out += [f.to_ndarray(format="bgr24") for f in decoder.decode(packet)]
    return out


@pytest.mark.parametrize(("size", "bitrate"), [((1280, 720), 1_500_000), ((640, 360), 400_000)])
def test_stamp_survives_h264(size: tuple[int, int], bitrate: int) -> None:
    wall = 1_795_000_000_123  # ms since the epoch: more than 32 bits, read back modulo 2**32
    source = SyntheticSource("teacher", size, 30, clock=lambda: wall / 1000)
    images = [source.draw(index) for index in range(5_000_000, 5_000_040)]
    decoded = h264_round_trip(images, bitrate)
    assert len(decoded) == len(images)
    read = [stamp.read(image) for image in decoded]
    assert read == [(index % 2**24, wall % 2**32) for index in range(5_000_000, 5_000_040)]


def test_read_after_scaling_to_half_size() -> None:
    image = np.full((720, 1280, 3), 128, np.uint8)
    stamp.burn(image, 4321, 987654321)
    half = cv2.resize(image, (640, 360), interpolation=cv2.INTER_AREA)
    assert stamp.read(half) == (4321, 987654321)


def test_no_stamp_or_damaged_stamp_reads_none() -> None:
    plain = np.full((360, 640, 3), 200, np.uint8)
    assert stamp.read(plain) is None
    stamp.burn(plain, 17, 42)
    assert stamp.read(plain) == (17, 42)
    cell = stamp.cell_size(360)
    plain[0:cell, 20 * cell : 21 * cell] = 255 - plain[0:cell, 20 * cell : 21 * cell]  # flip one payload bit
    assert stamp.read(plain) is None


def test_too_small_picture_is_refused_with_the_size() -> None:
    with pytest.raises(ValueError, match="too small"):
        stamp.burn(np.zeros((90, 100, 3), np.uint8), 1, 1)
    assert stamp.read(np.zeros((90, 100, 3), np.uint8)) is None
    small = SyntheticSource("tiny", (64, 48), 30)  # too small for the stamp: still draws its pattern
    assert small.draw(3).shape == (48, 64, 3)


def test_solid_colour_frames_carry_no_stamp() -> None:
    source = SyntheticSource("slides", (640, 360), 30, color=(200, 120, 40))
    assert stamp.read(source.draw(5)) is None
    assert stamp.read(SyntheticSource("cam", (640, 360), 30).draw(5)) is not None


def test_age_across_the_32_bit_wrap() -> None:
    assert stamp.age_ms(2**32 - 10, 2**32 + 25) == 35
