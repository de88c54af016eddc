"""RTSP IP cameras through PyAV: decoded pictures for composition, or raw packets for recording.

`RtspSource` decodes the camera's video to BGR in its reader thread (and its sound into an
`AudioFeed`, when one is attached as `audio`), keeps only the newest picture and reconnects with
backoff when the camera or the network drops (see `streaming.reconnect`).  `RtspPassthrough` hands
out the demuxed, still-encoded packets, so a recorder that needs no composition can mux the
camera's own H.264 (and AAC) without re-encoding.

Both use RTSP over TCP (UDP loses packets on busy school networks and through NAT) and a
socket timeout, so a camera that stops sending is noticed after `timeout_s`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from types import TracebackType
from typing import cast
from urllib.parse import urlsplit, urlunsplit

import av
import av.error
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.packet import Packet
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from drivers.backoff import Backoff
from streaming.audio import AudioFeed
from streaming.reconnect import ReconnectingSource, SourceUnavailable
from streaming.source import Image

log = logging.getLogger(__name__)


def redact(url: str) -> str:
    """The URL without its password (camera URLs often carry user:password@), for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def open_rtsp(url: str, timeout_s: float) -> InputContainer:
    """Open the camera over TCP with socket and open/read timeouts; `SourceUnavailable` if it fails."""
    options = {"rtsp_transport": "tcp", "timeout": str(int(timeout_s * 1_000_000))}  # microseconds
    try:
        return av.open(url, options=options, timeout=(timeout_s, timeout_s))
    except (av.error.FFmpegError, OSError) as exc:
        raise SourceUnavailable(f"RTSP {redact(url)}: cannot open: {reason(exc)}") from exc


def reason(exc: BaseException) -> str:
    """FFmpeg's own words for an error (PyAV appends the URL, which may hold a password)."""
    if isinstance(exc, av.error.FFmpegError | OSError) and exc.strerror:
        return str(exc.strerror)
    return f"{type(exc).__name__}: {exc}"


class RtspSource(ReconnectingSource):
    """An RTSP camera decoded to BGR pictures, newest only, reconnecting with backoff."""

    def __init__(self, name: str, url: str, *, timeout_s: float = 5.0, backoff: Backoff | None = None) -> None:
        """Nothing connects until `start`."""
        super().__init__(name, f"RTSP {redact(url)}", backoff=backoff)
        self.url = url
        self.timeout_s = timeout_s
        self.audio: AudioFeed | None = None  # set it to have the camera's sound decoded into it

    def _read(self) -> None:
        container = open_rtsp(self.url, self.timeout_s)
        try:
            if not container.streams.video:
                raise SourceUnavailable(f"{self.where}: the stream has no video")
            video = container.streams.video[0]
            sound = container.streams.audio[0] if container.streams.audio else None
            for packet in container.demux([video] + ([sound] if sound is not None else [])):
                if self.stopping:
                    return
                if packet.stream is video:
                    for frame in packet.decode():
                        self._deliver(cast(Image, cast(VideoFrame, frame).to_ndarray(format="bgr24")))  # bgr24 is uint8
                elif (feed := self.audio) is not None:  # audio is demuxed anyway; decoded only when wanted
                    for sample in packet.decode():
                        feed.push(cast(AudioFrame, sample))
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceUnavailable(f"{self.where}: {reason(exc)}") from exc
        finally:
            container.close()


class RtspPassthrough:
    """The camera's encoded packets, for recording without decoding or re-encoding.

    No reconnection here: when the camera drops, `packets()` raises `SourceUnavailable` (or
    returns at the end of the stream) and the recorder closes its segment, opens a new
    `RtspPassthrough` and starts the next segment.  Usage::

        with RtspPassthrough(url) as camera:
            video = output.add_stream_from_template(camera.video)  # H.264 with its extradata (SPS/PPS)
            for packet in camera.packets():
                if packet.stream is camera.video:
                    packet.stream = video
                    output.mux(packet)
    """

    def __init__(self, url: str, *, timeout_s: float = 5.0) -> None:
        """Nothing connects until the `with` block (or `open`)."""
        self.url = url
        self.timeout_s = timeout_s
        self._container: InputContainer | None = None

    def open(self) -> None:
        """Connect; `SourceUnavailable` if the camera cannot be reached or has no video."""
        container = open_rtsp(self.url, self.timeout_s)
        if not container.streams.video:
            container.close()
            raise SourceUnavailable(f"RTSP {redact(self.url)}: the stream has no video")
        self._container = container

    def close(self) -> None:
        """Disconnect (idempotent)."""
        container, self._container = self._container, None
        if container is not None:
            container.close()

    def __enter__(self) -> RtspPassthrough:
        self.open()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    @property
    def container(self) -> InputContainer:
        """The open container; RuntimeError before `open`."""
        if self._container is None:
            raise RuntimeError("RtspPassthrough is not open")
        return self._container

    @property
    def video(self) -> VideoStream:
        """The camera's video stream: its codec context carries the extradata a muxer needs."""
        return self.container.streams.video[0]

    @property
    def audio(self) -> AudioStream | None:
        """The camera's audio stream (AAC on most cameras), or None."""
        streams = self.container.streams.audio
        return streams[0] if streams else None

    def packets(self) -> Iterator[Packet]:
        """Video and audio packets in arrival order, starting at the first video keyframe.

        Packets before the first keyframe cannot be decoded, so a recording must not start with
        them; FFmpeg's empty flush packets are left out.  `packet.stream` says which stream.
        """
        container = self.container
        streams = [self.video] + ([self.audio] if self.audio is not None else [])
        keyframe_seen = False
        try:
            for packet in container.demux(streams):
                if packet.dts is None:
                    continue
                keyframe_seen = keyframe_seen or (packet.stream.type == "video" and packet.is_keyframe)
                if keyframe_seen:
                    yield packet
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceUnavailable(f"RTSP {redact(self.url)}: {reason(exc)}") from exc
