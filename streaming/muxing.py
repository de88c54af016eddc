"""What crosses from the programme's one encoder to its muxers: encoded packets and the codecs' parameters.

`Encoded` is one packet as immutable bytes with its timestamps, so any number of muxers (the
recording's fragmented MP4, a live push's FLV or MPEG-TS), each in its own thread or process,
can take it without sharing an `av.Packet`.  `Codecs` says what those packets are (size, rate,
time bases, the H.264 and AAC headers); `add_streams` gives a muxer streams that take the
packets as they are.  The H.264 is Annex B with its SPS/PPS before every keyframe, and its
headers also in `Codecs`, so MP4 and FLV (which want them up front) and MPEG-TS (which wants
them in band) take the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

import av
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.video.stream import VideoStream

__all__ = ["AudioCodec", "Codecs", "Encoded", "VideoCodec", "add_streams"]

Kind = Literal["video", "audio"]


@dataclass(frozen=True, slots=True)
class VideoCodec:
    """The programme's H.264: picture size, frame rate, time base and headers (SPS/PPS, Annex B)."""

    width: int
    height: int
    fps: Fraction
    time_base: Fraction
    extradata: bytes
    profile: str


@dataclass(frozen=True, slots=True)
class AudioCodec:
    """The programme's AAC: sample rate, channels, time base and AudioSpecificConfig."""

    sample_rate: int
    channels: int
    time_base: Fraction
    extradata: bytes


@dataclass(frozen=True, slots=True)
class Codecs:
    """Everything a muxer needs to know about the programme's streams."""

    video: VideoCodec
    audio: AudioCodec | None

    def time_base(self, kind: Kind) -> Fraction:
        """The time base of `kind`'s packets."""
        if kind == "audio" and self.audio is not None:
            return self.audio.time_base
        return self.video.time_base

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (headers in hex, fractions as "num/den"): a push process gets it on its stdin."""
        video = self.video
        out: dict[str, Any] = {
            "video": {
                "width": video.width, "height": video.height, "fps": str(video.fps),
                "time_base": str(video.time_base), "extradata": video.extradata.hex(), "profile": video.profile,
            },
            "audio": None,
        }  # fmt: skip
        if self.audio is not None:
            audio = self.audio
            out["audio"] = {
                "sample_rate": audio.sample_rate, "channels": audio.channels,
                "time_base": str(audio.time_base), "extradata": audio.extradata.hex(),
            }  # fmt: skip
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Codecs:
        """The inverse of `to_dict`; KeyError, TypeError or ValueError when it is not one."""
        video = data["video"]
        size = (int(video["width"]), int(video["height"]))
        if not (16 <= size[0] <= 8192 and 16 <= size[1] <= 8192):
            raise ValueError(f"video size {size} out of range")
        codec = VideoCodec(
            size[0], size[1], Fraction(video["fps"]), Fraction(video["time_base"]),
            bytes.fromhex(video["extradata"]), str(video["profile"]),
        )  # fmt: skip
        sound = data.get("audio")
        audio = None
        if sound is not None:
            audio = AudioCodec(
                int(sound["sample_rate"]), int(sound["channels"]), Fraction(sound["time_base"]),
                bytes.fromhex(sound["extradata"]),
            )  # fmt: skip
        return cls(codec, audio)


@dataclass(frozen=True, slots=True)
class Encoded:
    """One encoded packet: its bytes and timestamps in `Codecs.time_base(kind)`."""

    kind: Kind
    data: bytes
    pts: int
    dts: int
    duration: int
    keyframe: bool

    def packet(self, stream: VideoStream | AudioStream, time_base: Fraction, shift: int = 0) -> av.Packet:
        """A fresh `av.Packet` for `stream`, its timestamps moved by `shift` (in `time_base`)."""
        packet = av.Packet(self.data)
        packet.pts, packet.dts = self.pts + shift, self.dts + shift
        packet.duration = self.duration
        packet.time_base = time_base
        packet.is_keyframe = self.keyframe
        packet.stream = stream
        return packet


def add_streams(container: OutputContainer, codecs: Codecs) -> tuple[VideoStream, AudioStream | None]:
    """Streams in `container` that take the programme's packets as they are: no muxer encodes anything.

    PyAV opens every output stream's codec context before it writes the header.  So each stream's
    context is opened here first, as a 16x16 encoder that never sees a frame (a full-size libx264
    would hold tens of MB per muxer), then given the programme's real size and headers, which
    are what the muxer writes into the file.
    """
    video = container.add_stream("libx264", rate=codecs.video.fps)
    context = video.codec_context
    context.width, context.height, context.pix_fmt = 16, 16, "yuv420p"
    context.time_base = codecs.video.time_base
    context.options = {"preset": "ultrafast"}
    context.open()
    context.width, context.height = codecs.video.width, codecs.video.height
    context.extradata = codecs.video.extradata
    video.time_base = codecs.video.time_base
    audio = None
    if codecs.audio is not None:
        audio = container.add_stream("aac", rate=codecs.audio.sample_rate)
        audio.codec_context.layout = "mono" if codecs.audio.channels == 1 else "stereo"
        audio.codec_context.time_base = codecs.audio.time_base
        audio.codec_context.open()
        audio.codec_context.extradata = codecs.audio.extradata
        audio.time_base = codecs.audio.time_base
    return video, audio
