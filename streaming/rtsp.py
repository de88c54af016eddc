"""RTSP IP cameras through PyAV: decoded pictures for composition, or raw packets for recording.

`RtspSource` decodes the camera's video to BGR in its reader thread (and its sound into an
`AudioFeed`, when one is attached as `audio`), keeps only the newest picture and reconnects with
backoff when the camera or the network drops (see `streaming.reconnect`).  `RtspPassthrough` hands
out the demuxed, still-encoded packets, so a recorder that needs no composition can mux the
camera's own H.264 (and AAC) without re-encoding: `RtspRecorder` does, into the recorder's
fragmented MP4 segments.

Both use RTSP over TCP (UDP loses packets on busy school networks and through NAT) and a
socket timeout, so a camera that stops sending is noticed after `timeout_s`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import cast
from urllib.parse import urlsplit, urlunsplit

import av
import av.error
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.packet import Packet
from av.stream import Stream
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from drivers.backoff import Backoff
from streaming.audio import AudioFeed
from streaming.reconnect import Outage, ReconnectingSource, SourceUnavailable
from streaming.segments import Index, Recording, RecordingError, Segment, finalise, probe
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


class RtspRecorder:
    """Records a camera's own H.264 (and AAC) into fragmented MP4 segments: no decoding, no encoding.

    The same segments, `index.json` and final remux as `streaming.recorder.Recorder` (whose
    `start` / `wait` / `halt` / `stop` it mirrors), for "resource mode": each camera of the room
    in a file of its own beside the composed picture.  A segment rolls over at the first
    keyframe after `segment_s`; when the camera drops, the open segment is closed and the
    recording continues, after a backoff, in a new one.  Each such outage is a gap: kept in
    `outages()` and in the index's ``gaps`` (the final MP4 plays the segments back to back, so
    the index is what says where the camera's picture is missing).
    """

    def __init__(
        self,
        out_dir: Path | str,
        url: str,
        *,
        fragment_s: float = 2.0,
        segment_s: float = 600.0,
        timeout_s: float = 5.0,
        backoff: Backoff | None = None,
        final: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Nothing connects until `start`; `final` is the MP4 `stop` writes (default in `out_dir`)."""
        self.out_dir = Path(out_dir)
        self.url = url
        self.fragment_s, self.segment_s, self.timeout_s = fragment_s, segment_s, timeout_s
        self.backoff = backoff or Backoff(base=0.5, cap=10.0)
        self.final = final
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._index: Index | None = None
        self.frames = 0
        self.error = ""  # the camera's last failure, for telemetry
        self._last: tuple[float, float] | None = None  # (wall, monotonic) of the last video packet
        self._down: tuple[float, float, str] | None = None  # the same and why, once the camera has dropped

    def outages(self) -> list[Outage]:
        """The camera's gaps in this recording, including those before a resume (from the index)."""
        index = self._index
        return [Outage(**gap) for gap in index.gaps] if index is not None else []

    def start(self) -> None:
        """Create the directory, pick up a crashed recording's index, start the copying thread."""
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._index = Index.load_or_new(self.out_dir, 0.0, (0, 0))
            self._index.save(self.out_dir)
        except OSError as exc:
            raise RecordingError(f"{self.out_dir}: {exc}") from exc
        self._thread = threading.Thread(target=self._run, name=f"recorder[{self.out_dir.name}].copy", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Whether the thread ended by itself (never, short of a bug: a lost camera is retried)."""
        return self._thread is not None and not self._thread.is_alive() and not self._stop.is_set()

    def halt(self) -> int:
        """Stop copying and close the open segment; the final remux is left for later. Segments so far."""
        return len(self._join().segments)

    def stop(self) -> Recording:
        """Stop copying, close the segment, write index.json and the final MP4."""
        return finalise(self.out_dir, self._join(), final=self.final)

    def _join(self) -> Index:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._index is None:
            raise RecordingError(f"{self.out_dir}: recorder was never started")
        return self._index

    def _run(self) -> None:
        assert self._index is not None
        while not self._stop.is_set():
            try:
                with RtspPassthrough(self.url, timeout_s=self.timeout_s) as camera:
                    self._copy(camera, self._index)
                self.error, why = "", "the camera ended the stream"
            except (SourceUnavailable, RecordingError, av.error.FFmpegError, OSError) as exc:
                self.error = why = str(exc)
                log.warning("resource recording %s: %s", self.out_dir.name, exc)
                self._stop.wait(self.backoff.next_delay())
            if self._down is None and self._last is not None and not self._stop.is_set():
                self._down = (*self._last, why)  # the gap lasts until the camera sends again

    def _copy(self, camera: RtspPassthrough, index: Index) -> None:
        """Copy packets into segments until stopped or the camera drops (the open segment is closed)."""
        rate = camera.video.average_rate
        index.fps, index.size = float(rate or 0), (camera.video.width, camera.video.height)
        writer: _PacketWriter | None = None
        try:
            for packet in _whole(camera.packets()):
                if self._stop.is_set():
                    break
                video = packet.stream is camera.video
                roll = writer is None or (video and packet.is_keyframe and writer.age_s(packet) >= self.segment_s)
                if roll:
                    if writer is not None:
                        self._close(writer, index)
                    if not video:
                        continue  # a segment begins with a video keyframe
                    writer = self._open(camera, index, packet)
                assert writer is not None
                if writer.write(packet) and video:
                    self.frames += 1
                    self.backoff.reset()
                    self._last = (self._clock(), time.monotonic())
        finally:
            if writer is not None:
                self._close(writer, index)

    def _open(self, camera: RtspPassthrough, index: Index, first: Packet) -> _PacketWriter:
        name = index.next_file(self.out_dir)
        if self._down is not None:  # pictures again after an outage: the gap goes into the index
            (wall, mono, why), self._down = self._down, None
            gap = Outage(wall, self._clock(), time.monotonic() - mono, why)
            index.gaps.append(gap.to_dict())
            self.error = ""  # the camera is back
            log.info("resource recording %s: the camera is back after %.1f s", self.out_dir.name, gap.seconds)
        index.segments.append(Segment(name, self._clock()))
        index.save(self.out_dir)
        return _PacketWriter(self.out_dir / name, camera, first, self.fragment_s)

    def _close(self, writer: _PacketWriter, index: Index) -> None:
        writer.close()
        segment = index.segments[-1]
        frames, duration = probe(self.out_dir / segment.file)
        index.segments[-1] = replace(segment, state="closed", frames=frames, duration_s=duration)
        index.save(self.out_dir)


def _whole(packets: Iterator[Packet]) -> Iterator[Packet]:
    """The packets, each video one only once the next has arrived: the last before a drop may be torn.

    A camera that loses power mid-packet leaves FFmpeg a truncated access unit (6 bytes of a
    600-byte picture, measured), which would not decode in the final MP4; so the newest video
    packet is held back and left out when the stream ends (one frame, at a drop or a stop).
    """
    held: Packet | None = None
    for packet in packets:
        if packet.stream.type != "video":
            yield packet
            continue
        if held is not None:
            yield held
        held = packet


class _PacketWriter:
    """One fragmented MP4 segment fed with a camera's packets, their timestamps moved to start at 0."""

    def __init__(self, path: Path, camera: RtspPassthrough, first: Packet, fragment_s: float) -> None:
        options = {
            "movflags": "frag_keyframe+empty_moov+default_base_moof",
            "frag_duration": str(int(fragment_s * 1_000_000)),  # a camera's GOP may be longer than a fragment
            "flush_packets": "1",  # each fragment on disk as soon as it is complete (see SegmentWriter)
        }
        self.container = av.open(str(path), "w", format="mp4", options=options)
        self.outputs: dict[int, Stream] = {camera.video.index: self.container.add_stream_from_template(camera.video)}
        if camera.audio is not None:
            self.outputs[camera.audio.index] = self.container.add_stream_from_template(camera.audio)
        assert first.dts is not None and first.time_base is not None
        self.start = first.dts * first.time_base  # seconds: every stream shifts by the same amount
        self.last_dts: dict[int, int] = {}

    def age_s(self, packet: Packet) -> float:
        """Seconds of media in this segment up to `packet`."""
        assert packet.dts is not None and packet.time_base is not None
        return float(packet.dts * packet.time_base - self.start)

    def write(self, packet: Packet) -> bool:
        """Mux one packet; False if it is left out (before the segment's start, or not increasing)."""
        target = self.outputs.get(packet.stream.index)
        if target is None or packet.dts is None or packet.time_base is None:
            return False
        shift = round(self.start / packet.time_base)
        dts = packet.dts - shift
        if dts < 0 or dts <= self.last_dts.get(target.index, -1):
            return False
        self.last_dts[target.index] = dts
        packet.pts = (packet.pts if packet.pts is not None else packet.dts) - shift
        packet.dts = dts
        packet.stream = target
        self.container.mux(packet)
        return True

    def close(self) -> None:
        """Write the last fragment."""
        self.container.close()
