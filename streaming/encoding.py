"""Encode each local source once, whatever the number of receivers (PyAV; no aiortc here).

A `VideoEncoder` runs one thread per source: every 1/fps seconds it takes the source's newest
picture (the last one again if the source is slow, black "no signal" if it has none), scales
and converts it to I420 once, and encodes H.264 with libx264 (veryfast, zerolatency, baseline,
no B-frames, an IDR every `gop_s`).  An `AudioEncoder` does the same for sound with Opus in
20 ms packets.  The packets go to every subscriber's `PacketQueue`; the WebRTC side
(`streaming.rtc`) only packetises them per peer.

Each queue holds a few packets.  When a subscriber falls behind, its queue drops what it holds
and then skips until the next keyframe (a P-frame after a gap would smear the picture) and
asks the encoder for one, so delay never builds up.  The thread runs only while it has
subscribers; a new subscriber starts at a keyframe it asks for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from fractions import Fraction

import av
import av.error
import cv2
import numpy as np
from av.audio.codeccontext import AudioCodecContext
from av.codec.context import CodecContext
from av.packet import Packet
from av.video.codeccontext import VideoCodecContext

from streaming.recorder import AudioSource
from streaming.source import Image, Source

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


class EncoderError(ValueError):
    """An encoder was set up with impossible settings (the message names the setting)."""


class QueueClosed(Exception):
    """The encoder let go of this queue (unsubscribed or shut down)."""


class PacketQueue:
    """A subscriber's few newest packets, filled by an encoder thread and read with `await get()`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, request_keyframe: Callable[[], None], maxsize: int = 4) -> None:
        """`request_keyframe` is called (from the loop) when the queue had to drop packets."""
        self._loop = loop
        self._request_keyframe = request_keyframe
        self._packets: deque[Packet] = deque()
        self._maxsize = maxsize
        self._ready = asyncio.Event()
        self._skipping = True  # a new subscriber waits for a keyframe
        self._closed = False
        self.delivered = 0
        self.dropped = 0

    def put_threadsafe(self, packet: Packet, keyframe: bool) -> None:
        """Hand a packet over from the encoder thread (a closed loop just drops it)."""
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is listening any more
            self._loop.call_soon_threadsafe(self._put, packet, keyframe)

    def _put(self, packet: Packet, keyframe: bool) -> None:
        if self._closed:
            return
        if keyframe:
            self._skipping = False
        elif self._skipping:
            self.dropped += 1
            return
        if len(self._packets) >= self._maxsize:
            self.dropped += len(self._packets)
            self._packets.clear()
            if not keyframe:  # what follows would refer to what was dropped
                self._skipping = True
                self.dropped += 1
                self._request_keyframe()
                return
        self._packets.append(packet)
        self._ready.set()

    def close(self) -> None:
        """Wake the reader with `QueueClosed` (thread-safe)."""
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._close)

    def _close(self) -> None:
        self._closed = True
        self._packets.clear()
        self._ready.set()

    async def get(self) -> Packet:
        """The oldest packet; raises `QueueClosed` once the encoder let go of the queue."""
        while not self._packets:
            if self._closed:
                raise QueueClosed("the encoder closed this queue")
            self._ready.clear()
            await self._ready.wait()
        self.delivered += 1
        return self._packets.popleft()


class _Meter:
    """Packets, bytes and keyframes, with a rate over the last two seconds."""

    def __init__(self) -> None:
        self.frames = 0
        self.keyframes = 0
        self._recent: deque[tuple[float, int]] = deque()

    def add(self, size: int, keyframe: bool) -> None:
        now = time.monotonic()
        self.frames += 1
        self.keyframes += keyframe
        self._recent.append((now, size))
        while self._recent and now - self._recent[0][0] > 2.0:
            self._recent.popleft()

    def rates(self) -> tuple[float, float]:
        """(packets per second, bits per second) over the window."""
        recent = list(self._recent)
        if len(recent) < 2 or recent[-1][0] <= recent[0][0]:
            return 0.0, 0.0
        span = recent[-1][0] - recent[0][0]
        return (len(recent) - 1) / span, 8 * sum(size for _, size in recent[1:]) / span


class _SharedEncoder:
    """Subscribers, the encoder thread's start/stop, keyframe requests and stats (for video and audio)."""

    kind = "media"

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._queues: list[PacketQueue] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._keyframe = threading.Event()
        self._meter = _Meter()
        self.error = ""

    def subscribe(self) -> PacketQueue:
        """A new queue of this source's packets (call from the event loop); starts the thread if idle."""
        queue = PacketQueue(asyncio.get_running_loop(), self.request_keyframe)
        with self._lock:
            self._queues.append(queue)
            self._stop.clear()  # cancels a stop still on its way (the last subscriber just left)
            starting = self._thread is None
            if starting:
                self._thread = threading.Thread(target=self._guarded_run, name=f"{self.kind}[{self.name}].encoder")
        self.request_keyframe()
        if starting and self._thread is not None:
            self._thread.start()
        return queue

    def unsubscribe(self, queue: PacketQueue) -> None:
        """Forget `queue` (idempotent); the thread stops after the last subscriber leaves."""
        with self._lock:
            if queue in self._queues:
                self._queues.remove(queue)
            last = not self._queues
            if last:
                self._stop.set()  # the thread notices within one frame; nothing blocks here
        queue.close()

    def close(self, timeout: float = 5.0) -> None:
        """Drop every subscriber and wait for the thread (for shutdown, not from the event loop)."""
        with self._lock:
            queues, self._queues = self._queues, []
            self._stop.set()
            thread = self._thread
        for queue in queues:
            queue.close()
        if thread is not None:
            thread.join(timeout)

    @property
    def running(self) -> bool:
        """True while the encoder thread is alive."""
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    @property
    def subscribers(self) -> int:
        """How many queues are subscribed."""
        with self._lock:
            return len(self._queues)

    def request_keyframe(self) -> None:
        """Make the next frame a keyframe; any number of requests before it give one."""
        self._keyframe.set()

    def stats(self) -> dict[str, object]:
        """frames_encoded, fps, bitrate_bps, keyframes, subscribers (for telemetry)."""
        fps, bps = self._meter.rates()
        return {
            "frames_encoded": self._meter.frames,
            "fps": round(fps, 1),
            "bitrate_bps": int(bps),
            "keyframes": self._meter.keyframes,
            "subscribers": self.subscribers,
            "error": self.error,
        }

    def _deliver(self, packet: Packet, keyframe: bool) -> None:
        self._meter.add(packet.size, keyframe)
        with self._lock:
            queues = list(self._queues)
        for queue in queues:
            queue.put_threadsafe(packet, keyframe)

    def _guarded_run(self) -> None:
        failed = False
        try:
            self._run()
        except (av.error.FFmpegError, ValueError, OSError) as exc:
            failed = True
            self.error = f"{self.kind} encoder {self.name!r}: {exc}"
            log.error("%s", self.error)
        finally:
            with self._lock:
                self._thread = None
                restart = bool(self._queues) and not self._stop.is_set() and not failed
            if restart:  # someone subscribed while this thread was on its way out
                self._restart()

    def _restart(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._guarded_run, name=f"{self.kind}[{self.name}].encoder")
            thread = self._thread
        thread.start()

    def _pace(self, start: float, index: int, period: float) -> int:
        """Sleep until frame `index + 1` is due; returns the next index (skipping slots when late)."""
        index += 1
        now = time.monotonic()
        if now - (start + index * period) > period:  # fell behind: skip, never burst
            index = int((now - start) / period) + 1
        self._stop.wait(max(0.0, start + index * period - time.monotonic()))
        return index

    def _run(self) -> None:
        raise NotImplementedError


class VideoEncoder(_SharedEncoder):
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
    ) -> None:
        """The caller starts and stops `source`; `size` is the (width, height) sent."""
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

    def _open(self) -> VideoCodecContext:
        gop = max(1, round(self.gop_s * self.fps))
        kbps = self.bitrate // 1000
        context = CodecContext.create("libx264", "w")
        assert isinstance(context, VideoCodecContext)
        context.width, context.height = self.size
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

    def _convert(self, image: Image) -> Image:
        """BGR at any size -> I420 at `size`, once per source picture."""
        width, height = self.size
        if image.shape[1] != width or image.shape[0] != height:
            shrink = image.shape[1] > width
            image = np.asarray(
                cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR),
                np.uint8,
            )
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), np.uint8)

    def _run(self) -> None:
        context = self._open()
        width, height = self.size
        black = self._convert(np.zeros((height, width, 3), np.uint8))
        converted: tuple[int, Image] | None = None  # (source frame index, I420) so a repeat costs nothing
        period = 1.0 / self.fps
        start = time.monotonic()
        index, last_pts = 0, -1
        while not self._stop.is_set():
            frame = self.source.latest()
            if frame is None:
                yuv = black
            elif converted is not None and converted[0] == frame.index:
                yuv = converted[1]
            else:
                yuv = self._convert(frame.image)
                converted = (frame.index, yuv)
            picture = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            last_pts = max(last_pts + 1, int((time.monotonic() - start) * VIDEO_TIME_BASE.denominator))
            picture.pts, picture.time_base = last_pts, VIDEO_TIME_BASE
            forced = self._keyframe.is_set()
            if forced:
                self._keyframe.clear()
            picture.pict_type = av.video.frame.PictureType.I if forced else av.video.frame.PictureType.NONE
            for packet in context.encode(picture):
                packet.time_base = VIDEO_TIME_BASE
                self._deliver(packet, bool(packet.is_keyframe))
            index = self._pace(start, index, period)


class AudioEncoder(_SharedEncoder):
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
            planes = self.source.read(AUDIO_FRAME)
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
