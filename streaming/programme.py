"""The programme: one composed picture and its sound, encoded once, its packets handed to every output.

A `ProgrammeEncoder` runs one thread: every 1/fps seconds it takes the picture (BGR, e.g.
`Compositor.render`), converts it to YUV 4:2:0 once (OpenCV: about 6x cheaper than handing BGR
to PyAV's swscale), encodes H.264 with libx264 (veryfast, zerolatency, a keyframe every
`keyframe_s`), then the sound up to that instant with AAC, and hands each packet
(`streaming.muxing.Encoded`) to every attached `Output`: the recording's segments, a live push
to a platform.  A recording and a broadcast of the same picture so cost one encoder, not two.
Outputs come and go while it runs; a new one gets a keyframe at once.  An output's `put` runs on
the encoder thread, so it must not wait on the network (a push queues; the recorder writes a
local file, as it always did).  When the machine cannot keep up, frame slots are skipped
(`skipped`): real time is kept, never caught up in a burst.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

import av
import av.error
import cv2
import numpy as np
import numpy.typing as npt
from av.audio.codeccontext import AudioCodecContext
from av.codec.context import CodecContext, Flags
from av.video.codeccontext import VideoCodecContext

from streaming.errors import StreamingError
from streaming.muxing import AudioCodec, Codecs, Encoded, VideoCodec
from streaming.source import Image

log = logging.getLogger(__name__)

__all__ = ["PROFILES", "AudioSource", "EncoderSettings", "Output", "ProgrammeEncoder", "ProgrammeError"]

PROFILES = ("baseline", "main", "high")


class ProgrammeError(StreamingError):
    """The programme's encoder cannot be set up or failed (the message names the setting or the cause)."""


class AudioSource(Protocol):
    """What the encoder needs from a microphone or a tone: exactly the samples it asks for."""

    sample_rate: int
    channels: int

    def read(self, samples: int) -> npt.NDArray[np.float32]:
        """The next `samples` samples as float32 planes (channels x samples)."""
        ...


class Output(Protocol):
    """Where the programme's packets go (a recorder's segments, a live push)."""

    name: str

    def put(self, packet: Encoded) -> None:
        """Take one packet (on the encoder thread: return quickly)."""
        ...

    def end(self, error: str) -> None:
        """The encoder stopped: "" when asked to, else why it failed.  Called once, after the last `put`."""
        ...


@dataclass(frozen=True, slots=True)
class EncoderSettings:
    """How the programme is encoded: picture size and rate, keyframe interval, bitrates, H.264 profile.

    `bitrate` 0 keeps a constant quality (CRF 23, a recording's default); a bitrate caps the
    stream there (VBV, one second of buffer), as live platforms ask.
    """

    size: tuple[int, int]
    fps: float
    keyframe_s: float = 2.0
    bitrate: int = 0
    profile: str = "high"
    audio_bitrate: int = 128_000

    def __post_init__(self) -> None:
        """Every setting checked at construction: a bad one never reaches libx264."""
        width, height = self.size
        if width % 2 or height % 2 or width < 16 or height < 16:
            raise ProgrammeError(f"encoder size {width}x{height}: expected even numbers >= 16")
        if not 0 < self.fps <= 120:
            raise ProgrammeError(f"encoder fps {self.fps}: expected more than 0, at most 120")
        if not 0 < self.keyframe_s <= 20:
            raise ProgrammeError(f"encoder keyframe_s {self.keyframe_s}: expected more than 0, at most 20")
        if self.bitrate != 0 and not 50_000 <= self.bitrate <= 50_000_000:
            raise ProgrammeError(f"encoder bitrate {self.bitrate}: expected 0 (constant quality) or 50k..50M")
        if self.profile not in PROFILES:
            raise ProgrammeError(f"encoder profile {self.profile!r}: expected one of {', '.join(PROFILES)}")
        if not 16_000 <= self.audio_bitrate <= 512_000:
            raise ProgrammeError(f"encoder audio_bitrate {self.audio_bitrate}: expected 16000..512000")

    @property
    def rate(self) -> Fraction:
        """The frame rate as a fraction (29.97 is 30000/1001)."""
        return Fraction(self.fps).limit_denominator(1001)

    def to_dict(self) -> dict[str, object]:
        """For status and telemetry."""
        return {
            "size": f"{self.size[0]}x{self.size[1]}", "fps": self.fps, "keyframe_s": self.keyframe_s,
            "bitrate": self.bitrate, "profile": self.profile, "audio_bitrate": self.audio_bitrate,
        }  # fmt: skip


def open_video(settings: EncoderSettings) -> VideoCodecContext:
    """libx264 as `settings` say, headers both up front (for MP4/FLV) and before every keyframe (for MPEG-TS)."""
    rate = settings.rate
    gop = max(1, round(settings.keyframe_s * rate))
    params = f"keyint={gop}:min-keyint={gop}:scenecut=0:repeat-headers=1"
    context = CodecContext.create("libx264", "w")
    assert isinstance(context, VideoCodecContext)
    context.width, context.height = settings.size
    context.pix_fmt = "yuv420p"
    context.time_base = 1 / rate
    context.framerate = rate
    context.flags |= Flags.global_header
    context.color_range = 1  # MPEG (limited): what OpenCV's BGR->I420 produces
    context.colorspace = 6  # SMPTE 170M (BT.601), OpenCV's matrix
    if settings.bitrate:
        kbps = settings.bitrate // 1000
        context.bit_rate = settings.bitrate
        params += f":vbv-maxrate={kbps}:vbv-bufsize={kbps}"
    context.options = {
        "preset": "veryfast",
        "tune": "zerolatency",
        "profile": settings.profile,
        "forced-idr": "1",  # a keyframe asked for (an output joining, a segment rolling) is an IDR
        "x264-params": params,
    }
    context.open()
    return context


def open_audio(source: AudioSource, bitrate: int) -> AudioCodecContext:
    """FFmpeg's AAC-LC at the source's rate and channels."""
    context = CodecContext.create("aac", "w")
    assert isinstance(context, AudioCodecContext)
    context.sample_rate = source.sample_rate
    context.layout = "mono" if source.channels == 1 else "stereo"
    context.format = "fltp"
    context.bit_rate = bitrate
    context.time_base = Fraction(1, source.sample_rate)
    context.flags |= Flags.global_header
    context.open()
    return context


class ProgrammeEncoder:
    """Encodes `picture()` at `settings.fps` (and `audio`) once, for every attached `Output`, until stopped."""

    def __init__(
        self,
        picture: Callable[[], Image],
        settings: EncoderSettings,
        audio: AudioSource | None = None,
        *,
        name: str = "programme",
        duration_s: float | None = None,
    ) -> None:
        """`picture` returns the BGR output at `settings.size`; the thread is called ``{name}.encode``."""
        self.picture = picture
        self.settings = settings
        self.audio = audio
        self.name = name
        self.duration_s = duration_s
        self.codecs: Codecs | None = None  # known once started
        self.error = ""
        self.frames = 0
        self.skipped = 0
        self.keyframes = 0
        self._video: VideoCodecContext | None = None
        self._audio: AudioCodecContext | None = None
        self._outputs: list[Output] = []
        self._lock = threading.Lock()
        self._keyframe = threading.Event()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._samples = 0
        self._ended = False

    def start(self) -> None:
        """Open the codecs (ProgrammeError if they cannot be) and start encoding."""
        try:
            self._video = open_video(self.settings)
            self._audio = open_audio(self.audio, self.settings.audio_bitrate) if self.audio is not None else None
        except (av.error.FFmpegError, ValueError) as exc:
            raise ProgrammeError(f"{self.name}: cannot open the encoder: {exc}") from exc
        video = VideoCodec(
            *self.settings.size, self.settings.rate, Fraction(1) / self.settings.rate,
            self._video.extradata or b"", self.settings.profile,
        )  # fmt: skip
        audio = None
        if self._audio is not None and self.audio is not None:
            rate = self.audio.sample_rate
            audio = AudioCodec(rate, self.audio.channels, Fraction(1, rate), self._audio.extradata or b"")
        self.codecs = Codecs(video, audio)
        self._thread = threading.Thread(target=self._run, name=f"{self.name}.encode", daemon=True)
        self._thread.start()

    def attach(self, output: Output) -> None:
        """Send the packets to `output` too, from a keyframe asked for now (an ended encoder ends it at once)."""
        with self._lock:
            ended = self._ended
            if not ended and output not in self._outputs:
                self._outputs.append(output)
        if ended:
            output.end(self.error or f"{self.name} has stopped")
            return
        self.request_keyframe()

    def detach(self, output: Output) -> None:
        """Stop sending to `output` (idempotent; a `put` under way may still finish)."""
        with self._lock:
            if output in self._outputs:
                self._outputs.remove(output)

    @property
    def outputs(self) -> tuple[str, ...]:
        """The names of the attached outputs."""
        with self._lock:
            return tuple(o.name for o in self._outputs)

    def request_keyframe(self) -> None:
        """Make the next frame an IDR (any number of requests before it give one)."""
        self._keyframe.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop encoding; the outputs get the last packets and `end("")` before this returns."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the encoder ends by itself (`duration_s`) or fails; True if it did."""
        return self._done.wait(timeout)

    @property
    def running(self) -> bool:
        """True while the encoding thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def stats(self) -> dict[str, object]:
        """What the encoder did: its name, settings, frames, skipped slots, keyframes and outputs."""
        return {
            "name": self.name, **self.settings.to_dict(), "frames_encoded": self.frames, "skipped": self.skipped,
            "keyframes": self.keyframes, "outputs": list(self.outputs), "error": self.error,
        }  # fmt: skip

    def _run(self) -> None:
        period = 1 / float(self.settings.rate)
        limit = None if self.duration_s is None else round(self.duration_s * self.settings.rate)
        width, height = self.settings.size
        yuv: Image = np.empty((height * 3 // 2, width), np.uint8)
        start = time.monotonic()
        slot = 0
        try:
            while not self._stop.is_set() and (limit is None or slot < limit):
                cv2.cvtColor(self.picture(), cv2.COLOR_BGR2YUV_I420, dst=yuv)
                self._encode(yuv, slot)
                slot += 1
                late = time.monotonic() - (start + slot * period)
                if late > period:  # the machine could not keep up: leave a gap, keep real time
                    missed = int(late / period)
                    slot, self.skipped = slot + missed, self.skipped + missed
                    if limit is not None:
                        slot = min(slot, limit)
                self._stop.wait(max(0.0, start + slot * period - time.monotonic()))
            self._flush()
        except Exception as exc:  # a source, the encoder: whatever ends the programme is its outputs' reason
            self.error = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)
            log.error("%s failed: %s", self.name, self.error)
        finally:
            self._end()

    def _encode(self, yuv: Image, slot: int) -> None:
        assert self._video is not None
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts, frame.time_base = slot, self._video.time_base
        if self._keyframe.is_set():
            self._keyframe.clear()
            frame.pict_type = av.video.frame.PictureType.I
        for packet in self._video.encode(frame):
            self._deliver_video(packet)
        if self._audio is not None and self.audio is not None:
            due = int((slot + 1) * self._video.time_base * self.audio.sample_rate)
            self._audio_until(due)

    def _audio_until(self, due: int) -> None:
        assert self._audio is not None and self.audio is not None
        size = self._audio.frame_size or 1024
        layout = "mono" if self.audio.channels == 1 else "stereo"
        while self._samples + size <= due:
            frame = av.AudioFrame.from_ndarray(self.audio.read(size), format="fltp", layout=layout)
            frame.sample_rate = self.audio.sample_rate
            frame.pts, frame.time_base = self._samples, Fraction(1, self.audio.sample_rate)
            self._samples += size
            for packet in self._audio.encode(frame):
                self._deliver("audio", packet, True)

    def _deliver_video(self, packet: av.Packet) -> None:
        keyframe = bool(packet.is_keyframe)
        self.frames += 1
        self.keyframes += keyframe
        self._deliver("video", packet, keyframe)

    def _deliver(self, kind: str, packet: av.Packet, keyframe: bool) -> None:
        if packet.pts is None:
            return
        dts = packet.dts if packet.dts is not None else packet.pts
        encoded = Encoded("video" if kind == "video" else "audio", bytes(packet), packet.pts, dts,
                          packet.duration or 0, keyframe)  # fmt: skip
        with self._lock:
            outputs = list(self._outputs)
        for output in outputs:
            output.put(encoded)

    def _flush(self) -> None:
        """The packets still inside the encoders (libx264's zerolatency keeps none; AAC keeps one frame)."""
        if self._video is not None:
            for packet in self._video.encode(None):
                self._deliver_video(packet)
        if self._audio is not None:
            for packet in self._audio.encode(None):
                self._deliver("audio", packet, True)

    def _end(self) -> None:
        with self._lock:
            outputs, self._outputs = list(self._outputs), []
            self._ended = True  # an output attached from now on is ended at once
        for output in outputs:
            try:
                output.end(self.error)
            except Exception:  # one output's cleanup must not keep the others from theirs
                log.exception("%s: output %s failed to end", self.name, output.name)
        self._done.set()
