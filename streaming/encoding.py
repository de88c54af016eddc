"""Encode each local source once, whatever the number of receivers (PyAV; no aiortc here).

A `VideoEncoder` runs one thread per source: every 1/fps seconds it takes the source's newest
picture (the last one again if the source is slow, black "no signal" if it has none), scales
and converts it to I420 once, and encodes H.264 with libx264 (veryfast, zerolatency, baseline,
no B-frames, an IDR every `gop_s`).  An `AudioEncoder` does the same for sound with Opus in
20 ms packets.  The packets go to every subscriber's `PacketQueue`; the WebRTC side
(`streaming.rtc`) only packetises them per peer.

How packets reach each subscriber (bounded queues, skipping to the next keyframe when one falls
behind, the thread running only while someone listens) is `streaming.fanout`.
"""

from __future__ import annotations

import logging
import threading
import time
from fractions import Fraction

import av
import cv2
import numpy as np
from av.audio.codeccontext import AudioCodecContext
from av.codec.context import CodecContext
from av.video.codeccontext import VideoCodecContext

from streaming.adapt import Adapter, AdaptRules, Level, Prefer
from streaming.errors import StreamingError
from streaming.fanout import PacketQueue, QueueClosed, SharedEncoder
from streaming.programme import AudioSource
from streaming.source import Frame, Image, Source

log = logging.getLogger(__name__)

__all__ = [
    "VIDEO_TIME_BASE",
    "AudioEncoder",
    "AudioSource",
    "EncoderError",
    "PacketQueue",
    "QueueClosed",
    "VideoEncoder",
]

VIDEO_TIME_BASE = Fraction(1, 90000)  # RTP's clock for video
AUDIO_RATE = 48000
AUDIO_FRAME = 960  # 20 ms at 48 kHz: WebRTC's usual Opus packet
# x264's rate buffer in seconds: a keyframe is at most about this long on a link at the target
# rate, so it queues at most that long (0.5 s gave 200-300 ms p95 spikes at each IDR here).
VBV_S = 0.25
# Encode a new picture no sooner than MIN_GAP frame periods after the last one (a faster source
# is thinned to `fps`), and repeat the last one after MAX_GAP periods without a new picture.
MIN_GAP = 0.75
MAX_GAP = 1.5
# A keyframe is forced at this many `gop_s` without one (at full rate x264's own, counted in frames, comes first).
KEY_SLACK = 1.1


class EncoderError(StreamingError, ValueError):
    """An encoder was set up with impossible settings (the message names the setting)."""


class VideoEncoder(SharedEncoder):
    """One H.264 encoder for one `Source`, shared by every peer that sends it."""

    kind = "video"

    def __init__(
        self,
        source: Source,
        *,
        size: tuple[int, int] = (1280, 720),
        fps: float = 30.0,
        bitrate: int = 2_000_000,
        gop_s: float = 2.0,
        prefer: Prefer = "size",
        adapt: AdaptRules | None = None,
    ) -> None:
        """The caller starts and stops `source`; `size` is the (width, height) sent at full quality.

        When encoding cannot keep up (a busy PC), the encoder steps down (`streaming.adapt`):
        `prefer` is what goes first, "fps" for a screen or courseware, "size" for a camera.
        """
        if size[0] % 2 or size[1] % 2 or size[0] < 16 or size[1] < 16:
            raise EncoderError(f"video encoder {source.name!r}: size {size} must be even and at least 16x16")
        if not 0 < fps <= 120 or bitrate < 10_000 or gop_s <= 0:
            raise EncoderError(f"video encoder {source.name!r}: bad fps {fps}, bitrate {bitrate} or gop_s {gop_s}")
        super().__init__(source.name)
        self.source = source
        self.size = size
        self.fps = fps
        self.bitrate = bitrate
        self.gop_s = gop_s
        self.prefer = prefer
        self.adapt = adapt
        self.level: Level = Adapter(fps, size, prefer, adapt).level  # what is sent now (read by stats)

    def stats(self) -> dict[str, object]:
        """The shared stats and the level sent now: {"degraded": "fps", "fps": 15, "size": ..., "reason": ...}."""
        return {**super().stats(), "level": self.level.to_dict()}

    def _open(self, size: tuple[int, int]) -> VideoCodecContext:
        gop = max(1, round(self.gop_s * self.fps))
        kbps = self.bitrate // 1000
        context = CodecContext.create("libx264", "w")
        assert isinstance(context, VideoCodecContext)
        context.width, context.height = size
        context.pix_fmt = "yuv420p"
        context.time_base = VIDEO_TIME_BASE
        context.framerate = Fraction(self.fps).limit_denominator(1001)
        context.bit_rate = self.bitrate
        context.color_range = 1  # MPEG (limited): what OpenCV's BGR->I420 produces
        context.colorspace = 6  # SMPTE 170M (BT.601), OpenCV's matrix
        context.options = {
            "preset": "veryfast",
            "tune": "zerolatency",
            "profile": "baseline",  # what every browser decodes; no B-frames either
            "forced-idr": "1",  # a requested keyframe is an IDR: a receiver can start decoding there
            # SPS/PPS before every IDR: a receiver that joins late can start at any keyframe.
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:repeat-headers=1"
            f":vbv-maxrate={kbps}:vbv-bufsize={max(1, int(kbps * VBV_S))}",
        }
        context.open()
        return context

    def _convert(self, image: Image, size: tuple[int, int]) -> Image:
        """BGR at any size -> I420 at `size`, once per source picture."""
        width, height = size
        if image.shape[1] != width or image.shape[0] != height:
            shrink = image.shape[1] > width
            image = np.asarray(
                cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR),
                np.uint8,
            )
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), np.uint8)

    def _run(self) -> None:
        adapter = Adapter(self.fps, self.size, self.prefer, self.adapt)  # a restarted thread starts at full quality
        self.level = adapter.level
        context = self._open(self.level.size)
        converted: tuple[int, Image] | None = None  # (source frame index, I420) so a repeat costs nothing
        start = time.monotonic()
        last_pts = -1
        previous: float | None = None
        last_key = float("-inf")
        frame = self.source.latest()
        while not self._stop.is_set():
            taken = time.monotonic()
            yuv, converted = self._picture(frame, converted)
            picture = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            last_pts = max(last_pts + 1, int((time.monotonic() - start) * VIDEO_TIME_BASE.denominator))
            picture.pts, picture.time_base = last_pts, VIDEO_TIME_BASE
            # x264 counts its keyframe interval in frames: at a degraded frame rate (or a CPU that cannot
            # keep up) that is seconds more, so the interval is kept in seconds here too.
            forced = self._keyframe.is_set() or taken - last_key >= self.gop_s * KEY_SLACK
            if forced:
                self._keyframe.clear()
            picture.pict_type = av.video.frame.PictureType.I if forced else av.video.frame.PictureType.NONE
            for packet in context.encode(picture):
                packet.time_base = VIDEO_TIME_BASE
                if packet.is_keyframe:
                    last_key = taken
                self._deliver(packet, bool(packet.is_keyframe))
            done = time.monotonic()
            change = adapter.frame(done, done - taken, None if previous is None else taken - previous)
            previous = taken
            if change is not None:
                context, converted = self._apply(change, context), None
            frame = self._next_frame(frame, taken, 1.0 / self.level.fps)

    def _picture(
        self, frame: Frame | None, converted: tuple[int, Image] | None
    ) -> tuple[Image, tuple[int, Image] | None]:
        """The I420 picture to encode at the current size: black without a frame, the last one again on a repeat."""
        size = self.level.size
        if frame is None:
            return self._convert(np.zeros((size[1], size[0], 3), np.uint8), size), converted
        if converted is not None and converted[0] == frame.index:
            return converted[1], converted
        yuv = self._convert(frame.image, size)
        return yuv, (frame.index, yuv)

    def _apply(self, level: Level, context: VideoCodecContext) -> VideoCodecContext:
        """Send at `level` from the next frame: fewer frames is only a longer wait; a new size a new codec."""
        resized = level.size != self.level.size
        log.info("video encoder %r: now %s (%s)", self.name, level.to_dict(), level.reason or "back to full quality")
        self.level = level
        if not resized:
            return context
        # A new codec at the new size starts with an IDR carrying the new SPS: receivers reconfigure there.
        return self._open(level.size)

    def _next_frame(self, shown: Frame | None, taken: float, period: float) -> Frame | None:
        """Wait for the source's next picture and take it as soon as it comes (at most `fps`).

        Encoding on arrival, not on a clock of our own, keeps up to a frame period (33 ms at 30
        fps) out of the glass-to-glass delay.  A source slower than `fps` (or silent) has its last
        picture repeated after 1.5 periods, so receivers keep a steady stream.
        """
        if self._stop.wait(max(0.0, taken + period * MIN_GAP - time.monotonic())):
            return shown
        shown_index = -1 if shown is None else shown.index
        timeout = max(0.0, taken + period * MAX_GAP - time.monotonic())
        return self.source.wait_newer(shown_index, timeout)


class AudioEncoder(SharedEncoder):
    """One Opus encoder (48 kHz, 20 ms packets) for one audio source, shared by every peer."""

    kind = "audio"

    def __init__(self, name: str, source: AudioSource, *, bitrate: int = 48_000) -> None:
        """`source` hands out exactly the samples asked for (`ToneSource`, `AudioFeed`) at 48 kHz."""
        if source.sample_rate != AUDIO_RATE or source.channels not in (1, 2):
            raise EncoderError(
                f"audio encoder {name!r}: source gives {source.sample_rate} Hz x {source.channels}, "
                f"expected {AUDIO_RATE} Hz mono or stereo"
            )
        if not 6_000 <= bitrate <= 510_000:
            raise EncoderError(f"audio encoder {name!r}: bitrate {bitrate} outside Opus's 6000..510000")
        super().__init__(name)
        self.source = source
        self.bitrate = bitrate
        self._layout = "mono" if source.channels == 1 else "stereo"
        self._muted = threading.Event()

    @property
    def muted(self) -> bool:
        """Whether silence is sent instead of the source (to every peer at once)."""
        return self._muted.is_set()

    def mute(self, on: bool) -> None:
        """Send silence (`on`) or the source again; takes effect within one 20 ms packet."""
        if on:
            self._muted.set()
        else:
            self._muted.clear()

    def stats(self) -> dict[str, object]:
        """The shared stats and whether the sound is muted."""
        return {**super().stats(), "muted": self.muted}

    def _open(self) -> AudioCodecContext:
        context = CodecContext.create("libopus", "w")
        assert isinstance(context, AudioCodecContext)
        context.sample_rate = AUDIO_RATE
        context.layout = self._layout
        context.format = "flt"
        context.bit_rate = self.bitrate
        context.time_base = Fraction(1, AUDIO_RATE)
        context.options = {"application": "lowdelay", "frame_duration": "20"}
        context.open()
        return context

    def _run(self) -> None:
        context = self._open()
        period = AUDIO_FRAME / AUDIO_RATE
        start = time.monotonic()
        index = 0
        position = 0
        first_pts: int | None = None
        while not self._stop.is_set():
            planes = self.source.read(AUDIO_FRAME)  # read even when muted: a microphone's backlog must not grow
            if self._muted.is_set():
                planes = np.zeros_like(planes)
            interleaved = np.ascontiguousarray(planes.T.reshape(1, -1), dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(interleaved, format="flt", layout=self._layout)
            frame.sample_rate = AUDIO_RATE
            frame.pts, frame.time_base = position, Fraction(1, AUDIO_RATE)
            position += AUDIO_FRAME
            for packet in context.encode(frame):
                if packet.pts is not None:
                    # libopus starts at minus its look-ahead: start the stream's clock at zero
                    first_pts = packet.pts if first_pts is None else first_pts
                    packet.pts -= first_pts
                    packet.dts = packet.pts
                packet.time_base = Fraction(1, AUDIO_RATE)
                self._deliver(packet, True)  # every Opus packet decodes on its own
            index = self._pace(start, index, period)
