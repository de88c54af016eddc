"""Real sound for the recorder: decoded audio frames in, exactly the samples asked for out.

An `AudioFeed` is what a camera's reader thread (`RtspSource.audio`) or a microphone
(`MicrophoneSource.audio`) pushes decoded `av.AudioFrame`s into; the recorder's encoding thread
`read`s from it like from a `ToneSource`.  Frames are resampled to the recorder's rate and layout
(float planar), at most `max_s` seconds are buffered (the oldest samples are dropped), and a
source that is late or gone is padded with silence, so the video never waits for the audio.
"""

from __future__ import annotations

import threading
from collections import deque

import av
import numpy as np
import numpy.typing as npt
from av.audio.frame import AudioFrame

__all__ = ["AudioFeed"]


class AudioFeed:
    """A bounded, thread-safe buffer of resampled audio with the recorder's `read(n)` interface."""

    def __init__(self, sample_rate: int = 48000, channels: int = 1, *, max_s: float = 1.0) -> None:
        """`channels` is 1 (mono) or 2 (stereo); `max_s` bounds the buffer (and so the audio's lag)."""
        if channels not in (1, 2) or sample_rate <= 0 or max_s <= 0:
            raise ValueError(f"audio feed: bad rate {sample_rate}, channels {channels} or max_s {max_s}")
        self.sample_rate = sample_rate
        self.channels = channels
        self.max_samples = max(1, int(max_s * sample_rate))
        self._layout = "mono" if channels == 1 else "stereo"
        self._resampler: av.AudioResampler | None = None
        self._input: tuple[str, str, int] | None = None  # format, layout, rate the resampler was built for
        self._chunks: deque[npt.NDArray[np.float32]] = deque()
        self._buffered = 0
        self._lock = threading.Lock()
        self.received = 0  # samples pushed (after resampling)
        self.padded = 0  # silent samples handed out because nothing had arrived
        self.dropped = 0  # samples dropped because the buffer was full

    @property
    def buffered(self) -> int:
        """Samples waiting to be read."""
        return self._buffered

    def push(self, frame: AudioFrame) -> None:
        """Resample one decoded frame and buffer it (called from the source's reader thread)."""
        shape = (frame.format.name, frame.layout.name, frame.sample_rate)
        if self._resampler is None or shape != self._input:  # first frame, or the source reconnected differently
            self._resampler = av.AudioResampler(format="fltp", layout=self._layout, rate=self.sample_rate)
            self._input = shape
        for out in self._resampler.resample(frame):
            self._add(np.ascontiguousarray(out.to_ndarray(), dtype=np.float32).reshape(self.channels, -1))

    def push_samples(self, samples: npt.NDArray[np.float32]) -> None:
        """Buffer samples already at the feed's rate, as float32 planes (channels x samples)."""
        self._add(np.asarray(samples, dtype=np.float32).reshape(self.channels, -1))

    def _add(self, chunk: npt.NDArray[np.float32]) -> None:
        if not chunk.shape[1]:
            return
        with self._lock:
            self._chunks.append(chunk)
            self._buffered += chunk.shape[1]
            self.received += chunk.shape[1]
            while self._buffered > self.max_samples:
                excess = self._buffered - self.max_samples
                oldest = self._chunks[0]
                if oldest.shape[1] <= excess:
                    self._chunks.popleft()
                    self._buffered -= oldest.shape[1]
                    self.dropped += oldest.shape[1]
                else:
                    self._chunks[0] = oldest[:, excess:]
                    self._buffered -= excess
                    self.dropped += excess

    def read(self, samples: int) -> npt.NDArray[np.float32]:
        """The next `samples` samples as float32 planes (channels x samples), silence where none arrived."""
        out = np.zeros((self.channels, samples), np.float32)
        filled = 0
        with self._lock:
            while filled < samples and self._chunks:
                chunk = self._chunks[0]
                take = min(samples - filled, chunk.shape[1])
                out[:, filled : filled + take] = chunk[:, :take]
                filled += take
                if take == chunk.shape[1]:
                    self._chunks.popleft()
                else:
                    self._chunks[0] = chunk[:, take:]
                self._buffered -= take
            self.padded += samples - filled
        return out

    def clear(self) -> None:
        """Drop everything buffered."""
        with self._lock:
            self._chunks.clear()
            self._buffered = 0
