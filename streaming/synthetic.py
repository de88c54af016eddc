"""Synthetic sources for the demo and the tests: a paced test pattern and a tone generator.

The picture scrolls colour bars and burns in the wall clock (HH:MM:SS.mmm) and the frame
counter, so a recording shows at a glance whether frames were dropped, repeated or delayed.
Above the text, the same two numbers go in as a machine-readable stamp (`streaming.stamp`), so
a receiver of a live stream can prove order, gaps and glass-to-glass latency.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import cv2
import numpy as np
import numpy.typing as npt

from streaming import stamp
from streaming.source import Image, Source

_BARS_BGR = (
    (235, 235, 235),
    (16, 235, 235),
    (235, 235, 16),
    (16, 235, 16),
    (235, 16, 235),
    (16, 16, 235),
    (235, 16, 16),
    (16, 16, 16),
)


class SyntheticSource(Source):
    """A test pattern paced to `fps`, with a burned-in wall clock and frame counter (text and `stamp`).

    With `color` (BGR) every frame is that solid colour and carries no text: tests use it to
    check where a compositor put each source's pixels.
    """

    def __init__(
        self,
        name: str,
        size: tuple[int, int] = (1280, 720),
        fps: float = 30.0,
        label: str = "",
        *,
        color: tuple[int, int, int] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`size` is (width, height); `clock` gives the wall time that is burned in."""
        super().__init__(name)
        if size[0] < 16 or size[1] < 16 or fps <= 0:
            raise ValueError(f"synthetic source {name!r}: bad size {size} or fps {fps}")
        self.size = size
        self.fps = fps
        self.label = label or name
        self.color = color
        self._clock = clock
        self._pattern = _bars(size) if color is None else None

    def _run(self) -> None:
        """Draw a frame every 1/fps seconds until stopping; resynchronise instead of bursting."""
        self.connected = True
        period = 1.0 / self.fps
        start = time.monotonic()
        index = 0
        try:
            while not self.stopping:
                self._publish(self.draw(index))
                index += 1
                due = start + index * period
                now = time.monotonic()
                if now - due > period:  # fell behind (loaded machine): skip, keep the pace
                    index = int((now - start) / period) + 1
                    due = start + index * period
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    break
        finally:
            self.connected = False

    def draw(self, index: int) -> Image:
        """The picture for frame `index` (a new array: consumers may keep it)."""
        width, height = self.size
        if self.color is not None or self._pattern is None:
            image = np.empty((height, width, 3), np.uint8)
            image[:] = self.color or (0, 0, 0)
            return image
        period = self._pattern.shape[1] - width
        offset = (index * max(2, width // 160)) % period
        image = np.ascontiguousarray(self._pattern[:, offset : offset + width])
        now = self._clock()
        clock_text = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
        scale = height / 360
        lines = (self.label, clock_text, f"#{index:06d}")
        line_h = int(34 * scale)
        top = stamp.strip_size(height)[1] if stamp.fits(self.size) else 0
        box = (int(300 * scale), top + line_h * len(lines) + int(12 * scale))
        cv2.rectangle(image, (0, 0), box, (0, 0, 0), -1)
        for row, text in enumerate(lines, start=1):
            origin = (int(10 * scale), top + row * line_h)
            cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), max(1, int(2 * scale)))
        if top:
            stamp.burn(image, index, int(now * 1000))
        return image


def _bars(size: tuple[int, int]) -> Image:
    """Eight colour bars, one period wider than the picture so a slice of it can scroll."""
    width, height = size
    bar_w = max(2, width // len(_BARS_BGR))
    one_period = np.repeat(np.array(_BARS_BGR, np.uint8), bar_w, axis=0)  # (8 * bar_w, 3)
    reps = -(-(width + len(one_period)) // len(one_period))
    row = np.tile(one_period, (reps, 1))[: width + len(one_period)]
    ramp = np.linspace(1.0, 0.55, height, dtype=np.float32)[:, None, None]  # shading shows vertical motion/scaling
    return (row[None, :, :].astype(np.float32) * ramp).astype(np.uint8)


class ToneSource:
    """A sine tone (or silence, with level 0) that hands out exactly the samples asked for."""

    def __init__(
        self, frequency: float = 440.0, *, level: float = 0.1, sample_rate: int = 48000, channels: int = 1
    ) -> None:
        """`level` is the peak amplitude (0..1)."""
        self.frequency = frequency
        self.level = level
        self.sample_rate = sample_rate
        self.channels = channels
        self._position = 0

    def read(self, samples: int) -> npt.NDArray[np.float32]:
        """The next `samples` samples as float32 planes (channels x samples)."""
        t = (np.arange(self._position, self._position + samples, dtype=np.float64)) / self.sample_rate
        self._position += samples
        wave = (self.level * np.sin(2 * np.pi * self.frequency * t)).astype(np.float32)
        return np.repeat(wave[None, :], self.channels, axis=0)
