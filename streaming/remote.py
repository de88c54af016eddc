"""What a WebRTC peer receives, and its link's numbers: no aiortc here.

A `RemoteVideo` is a received video track as a `Source` (usable like a camera by the compositor,
the recorder, or a `VideoEncoder` that sends it on); a `RemoteAudio` buffers received sound in an
`AudioFeed` and measures its level.  `streaming.rtc.Peer` feeds both from its reader tasks.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import av
import cv2
import numpy as np

from streaming.audio import AudioFeed
from streaming.source import Frame, Image, Source, SourceHealth

__all__ = ["LinkTally", "PeerStats", "RemoteAudio", "RemoteVideo"]


class RemoteVideo(Source):
    """A received video track as a `Source`: the newest decoded picture, converted to BGR when asked."""

    def __init__(self, name: str) -> None:
        """Fed by its `Peer`; `start`/`stop` do nothing (the peer owns the reading)."""
        super().__init__(name)
        self._raw: tuple[av.VideoFrame, float, int] | None = None
        self._created = time.monotonic()
        self._longest_gap = 0.0
        self.connected = True

    def start(self) -> None:
        """Nothing to start: the peer's task pushes the frames."""

    def _run(self) -> None:
        """Unused: no reader thread."""

    def push(self, frame: av.VideoFrame) -> None:
        """Keep `frame` as the newest (from the event loop; the BGR conversion waits for a reader)."""
        now = time.monotonic()
        with self._lock:
            if self._raw is not None:
                self._longest_gap = max(self._longest_gap, now - self._raw[1])
            self._count += 1
            self._raw = (frame, now, self._count)
            self._rate.tick(now)
            self._new_frame.notify_all()

    def latest(self) -> Frame | None:
        """The newest picture as BGR, or None before the first."""
        with self._lock:
            raw, done = self._raw, self._frame
        if raw is None or (done is not None and done.index >= raw[2]):
            return done
        frame = Frame(_to_bgr(raw[0]), raw[1], raw[2])
        with self._lock:
            if self._frame is None or self._frame.index < frame.index:
                self._frame = frame
        return frame

    def wait_newer(self, index: int, timeout: float) -> Frame | None:
        """Block until a picture newer than `index` arrives (or `timeout`); returns the newest."""
        with self._new_frame:
            self._new_frame.wait_for(lambda: self._raw is not None and self._raw[2] > index, timeout)
        return self.latest()

    @property
    def frames(self) -> int:
        """Pictures received so far."""
        return self._count

    def frozen_for(self) -> float:
        """Seconds since the last picture arrived (since creation if none did)."""
        with self._lock:
            last = self._raw[1] if self._raw is not None else self._created
        return time.monotonic() - last

    @property
    def longest_stop(self) -> float:
        """The longest a received picture stood still between two pictures so far, in seconds (what viewers saw)."""
        with self._lock:
            return self._longest_gap

    def health(self) -> SourceHealth:
        """Connected, fps, age of the newest picture."""
        now = time.monotonic()
        with self._lock:
            raw, fps = self._raw, self._rate.fps(now)
        age = None if raw is None else now - raw[1]
        return SourceHealth(self.name, self.connected, fps, age, self.reconnects, self.error)


def _to_bgr(frame: av.VideoFrame) -> Image:
    """Decoded picture -> BGR; OpenCV's I420 conversion is several times cheaper than swscale's."""
    if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
        return np.asarray(cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2BGR_I420), np.uint8)
    return np.asarray(frame.to_ndarray(format="bgr24"), np.uint8)


class RemoteAudio:
    """A received audio track: its samples (48 kHz mono `AudioFeed`), frames arrived and the sound's level."""

    def __init__(self, name: str) -> None:
        """An empty feed."""
        self.name = name
        self.feed = AudioFeed(48000, 1)
        self.frames = 0
        self.level = 0.0  # RMS of the newest frame, 0 (silence) .. 1 (full scale)
        self._last = time.monotonic()

    def push(self, frame: av.AudioFrame) -> None:
        """Buffer one decoded frame."""
        self.frames += 1
        self._last = time.monotonic()
        self.level = _rms(frame)
        self.feed.push(frame)

    def frozen_for(self) -> float:
        """Seconds since the last frame arrived."""
        return time.monotonic() - self._last


def _rms(frame: av.AudioFrame) -> float:
    """Root mean square of a frame's samples, as a fraction of full scale (decoders give s16 or float)."""
    samples = frame.to_ndarray()
    scale = float(2 ** (8 * samples.dtype.itemsize - 1)) if samples.dtype.kind in "iu" else 1.0
    if not samples.size:
        return 0.0
    return float(np.sqrt(np.mean(np.square(samples.astype(np.float64) / scale))))


@dataclass(frozen=True)
class PeerStats:
    """One peer's link as telemetry and `lesson.status` show it."""

    peer_id: str
    state: str
    frames_sent: int
    frames_received: int
    rtt_ms: float | None
    loss: float
    bitrate_in_kbps: float
    bitrate_out_kbps: float
    fps_in: float

    def to_dict(self) -> dict[str, object]:
        """For JSON."""
        return asdict(self)


@dataclass
class LinkTally:
    """The numbers `Peer.stats` takes from one stats report (aiortc's entries, read by their fields)."""

    rtts: list[float] = field(default_factory=list)
    lost_in: int = 0
    received: int = 0
    lost_out: float = 0.0
    bytes_in: int = 0
    bytes_out: int = 0

    def add(self, report: Mapping[str, Any]) -> None:
        """Count one report's RTTs, losses and bytes."""
        for entry in report.values():
            if entry.type == "remote-inbound-rtp":  # what the remote says about what we send
                self.rtts.append(entry.roundTripTime)
                self.lost_out = max(self.lost_out, entry.fractionLost / 256)  # RTCP's 8-bit fraction
            elif entry.type == "inbound-rtp":
                self.lost_in += max(0, entry.packetsLost)
                self.received += entry.packetsReceived
            elif entry.type == "transport":
                self.bytes_in += entry.bytesReceived
                self.bytes_out += entry.bytesSent

    def loss(self) -> float:
        """The worse of the two directions, as a fraction of packets."""
        incoming = self.lost_in / (self.lost_in + self.received) if self.lost_in + self.received else 0.0
        return max(incoming, self.lost_out)
