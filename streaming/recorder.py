"""The recorder: the programme's packets into crash-safe fragmented MP4 segments.

A `Recorder` is an output of a `streaming.programme.ProgrammeEncoder`: its own (the picture it
is given, encoded H.264 + AAC with a keyframe at every fragment boundary), or one it shares with
a live broadcast of the same picture, so that picture is encoded once.  The packets go into
fragmented MP4 segments (see `streaming.segments`) as they come, on the encoder's thread; a new
segment starts at the first keyframe after `segment_s` (asked for then), so each one plays on its
own.  A clean stop writes `index.json` and the final faststart MP4 (a remux).  `halt` stops
without the remux (an agent shutting down within its grace): the open segment is closed
complete, the index stays ``recording``, and `streaming.segments.finalise` finishes it later (or
a new `Recorder` on the same directory continues it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import av.error

from streaming.muxing import Codecs, Encoded, add_streams
from streaming.programme import AudioSource, EncoderSettings, ProgrammeEncoder, ProgrammeError
from streaming.segments import Index, Recording, RecordingError, Segment, finalise
from streaming.source import Image

log = logging.getLogger(__name__)

__all__ = ["AudioSource", "Recorder", "Recording", "RecordingError", "SegmentWriter"]

FIRST_FRAME_WAIT_S = 1.0


class SegmentWriter:
    """One fragmented MP4 file taking the programme's packets as they are (no encoder here)."""

    def __init__(self, path: Path, codecs: Codecs, fragment_s: float):
        """Open the file; its streams follow `codecs`.  The first video packet written must be a keyframe."""
        options = {
            "movflags": "frag_keyframe+empty_moov+default_base_moof",
            "frag_duration": str(int(fragment_s * 1_000_000)),
            # For a regular file FFmpeg keeps written fragments in its 32 KB I/O buffer: a low
            # bitrate recording killed at 8 s had nothing but its ftyp on disk.  Flush instead.
            "flush_packets": "1",
        }
        self.codecs = codecs
        self.container = av.open(str(path), "w", format="mp4", options=options)
        try:
            self.video, self.audio = add_streams(self.container, codecs)
        except BaseException:
            self.container.close()
            raise
        self.frames = 0
        self._origin: Fraction | None = None  # the programme time of the segment's first frame
        self._end = Fraction(0)

    def write(self, packet: Encoded) -> None:
        """Mux one packet, its time counted from the segment's first frame."""
        time_base = self.codecs.time_base(packet.kind)
        if self._origin is None:
            if packet.kind != "video":
                return  # sound from before the segment's first picture belongs to the one before
            self._origin = packet.pts * time_base
        shift = -round(self._origin / time_base)
        if packet.kind == "video":
            self.container.mux(packet.packet(self.video, time_base, shift))
            self.frames += 1
            self._end = max(self._end, (packet.pts + packet.duration) * time_base - self._origin)
        elif self.audio is not None:
            self.container.mux(packet.packet(self.audio, time_base, shift))

    @property
    def duration_s(self) -> float:
        """Seconds of pictures written (from the first frame to the end of the last)."""
        return float(self._end)

    def close(self) -> None:
        """Write the last fragment and close the file."""
        self.container.close()


class Recorder:
    """Records the programme into `out_dir` until `stop()` (or `duration_s`, with an encoder of its own).

    Give `picture` (and `audio`) for an encoder of its own, or `encoder`, a running
    `ProgrammeEncoder` shared with other outputs (its size and rate must be `size` and `fps`).
    """

    name = "recording"

    def __init__(
        self,
        out_dir: Path | str,
        size: tuple[int, int],
        fps: float,
        *,
        picture: Callable[[], Image] | None = None,
        fragment_s: float = 2.0,
        segment_s: float = 600.0,
        audio: AudioSource | None = None,
        duration_s: float | None = None,
        clock: Callable[[], float] = time.time,
        final: Path | None = None,
        encoder: ProgrammeEncoder | None = None,
    ) -> None:
        """`picture` returns the BGR output (e.g. `Compositor.render`); `size` is (width, height).

        `final` is where `stop` writes the final MP4 (default ``recording.mp4`` in `out_dir`).
        """
        if size[0] % 2 or size[1] % 2 or fps <= 0 or not 0 < fragment_s <= segment_s:
            raise RecordingError(f"recorder: bad size {size}, fps {fps} or fragment/segment {fragment_s}/{segment_s}")
        self.out_dir = Path(out_dir)
        self.size = size
        self.fps = Fraction(fps).limit_denominator(1001)
        self.fragment_s = fragment_s
        self.segment_s = segment_s
        self.final = final
        self._clock = clock
        self._owned = encoder is None
        if encoder is None:
            if picture is None:
                raise RecordingError("recorder: give a picture or an encoder")
            try:
                settings = EncoderSettings(size, fps, keyframe_s=fragment_s)
            except ProgrammeError as exc:
                raise RecordingError(f"recorder: {exc}") from exc
            name = f"recorder[{self.out_dir.name}]"
            encoder = ProgrammeEncoder(picture, settings, audio, name=name, duration_s=duration_s)
        elif encoder.settings.size != size or encoder.settings.rate != self.fps:
            sends = f"{encoder.settings.size} at {encoder.settings.fps} fps"
            raise RecordingError(f"recorder: the shared encoder sends {sends}, not {size} at {fps} fps")
        self.encoder = encoder
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._index: Index | None = None
        self._writer: SegmentWriter | None = None
        self._error: str | BaseException | None = None
        self._closed = False
        self._segment_start: Fraction | None = None
        self._skipped_before = 0
        self._first = threading.Event()  # the first picture is in a segment
        self.frames = 0

    @property
    def skipped(self) -> int:
        """Frame slots the encoder could not fill in time while this recorder took its packets."""
        return self.encoder.skipped - self._skipped_before

    def start(self) -> None:
        """Create the directory, pick up a crashed recording's index, take the encoder's packets."""
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._index = Index.load_or_new(self.out_dir, float(self.fps), self.size)
            self._index.save(self.out_dir)
        except OSError as exc:
            raise RecordingError(f"{self.out_dir}: {exc}") from exc
        self._skipped_before = self.encoder.skipped
        self.encoder.attach(self)
        if self._owned:
            try:
                self.encoder.start()
            except ProgrammeError as exc:
                self.encoder.detach(self)
                raise RecordingError(f"{self.out_dir}: {exc}") from exc

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the recording ends by itself (`duration_s`) or fails; True if it did."""
        return self._done.wait(timeout)

    def stop(self, detached: Callable[[], None] = lambda: None) -> Recording:
        """Stop taking packets, close the segment, write index.json and the final faststart MP4.

        `detached` runs once the encoder is no longer needed, before the remux (a shared encoder
        may then be stopped while the final file is written).
        """
        index = self._join()
        detached()
        return self._finish(index)

    def halt(self) -> int:
        """Stop taking packets and close the open segment (complete and indexed), but leave the remux for later.

        Returns how many segments the recording has; fast whatever the lesson's length.
        """
        return len(self._join().segments)

    def put(self, packet: Encoded) -> None:
        """One packet of the programme (on the encoder thread): into the open segment, or a new one."""
        with self._lock:
            if self._closed or self._index is None:
                return
            try:
                self._write(packet, self._index)
            except Exception as exc:  # the disk, mostly: whatever ends the recording is its reason
                log.error("recorder %s failed: %s", self.out_dir, exc)
                self._error = exc
                self._close_locked()

    def end(self, error: str) -> None:
        """The encoder stopped: close the segment; a failed encoder fails the recording."""
        with self._lock:
            if error and self._error is None:
                self._error = error
            self._close_locked()

    def _write(self, packet: Encoded, index: Index) -> None:
        if packet.kind == "video":
            at = packet.pts / self.encoder.settings.rate
            if self._writer is None or self._segment_start is None:
                if not packet.keyframe:
                    return  # a segment starts with a keyframe: it plays on its own
                self._writer, self._segment_start = self._open(index), at
            elif at - self._segment_start >= self.segment_s:
                if packet.keyframe:
                    self._close_segment(self._writer, index)
                    self._writer, self._segment_start = self._open(index), at
                else:
                    self.encoder.request_keyframe()
        if self._writer is None:
            return
        self._writer.write(packet)
        if packet.kind == "video":
            self.frames += 1
            self._first.set()

    def _join(self) -> Index:
        """Stop taking packets (closing the segment); the index, or why the recording failed."""
        if self._owned:
            self.encoder.stop()
        else:
            # A recording stopped as soon as it began still gets its first picture: the keyframe
            # asked for when it attached comes with the shared encoder's next frame.
            if self.encoder.running and not self._first.is_set():
                self._first.wait(max(FIRST_FRAME_WAIT_S, 3 / float(self.fps)))
            self.encoder.detach(self)
        self.end("")
        if self._error is not None:
            error = self._error
            raise RecordingError(f"{self.out_dir}: recording failed: {error}") from (
                error if isinstance(error, BaseException) else None
            )
        if self._index is None:
            raise RecordingError(f"{self.out_dir}: recorder was never started")
        return self._index

    def _open(self, index: Index) -> SegmentWriter:
        name = index.next_file(self.out_dir)
        index.segments.append(Segment(name, self._clock()))
        index.save(self.out_dir)
        assert self.encoder.codecs is not None
        return SegmentWriter(self.out_dir / name, self.encoder.codecs, self.fragment_s)

    def _close_segment(self, writer: SegmentWriter, index: Index) -> None:
        writer.close()
        segment = index.segments[-1]
        closed = replace(segment, state="closed", frames=writer.frames, duration_s=writer.duration_s)
        index.segments[-1] = closed
        index.save(self.out_dir)

    def _close_locked(self) -> None:
        """Close the open segment (once); a failure to do so fails the recording."""
        if self._closed:
            return
        self._closed = True
        self.encoder.detach(self)
        writer, self._writer = self._writer, None
        try:
            if writer is not None and self._index is not None:
                self._close_segment(writer, self._index)
        except (av.error.FFmpegError, OSError) as exc:
            self._error = self._error or exc
        finally:
            self._done.set()

    def _finish(self, index: Index) -> Recording:
        """Checksums, the remuxed final file, and the index marked finished."""
        return finalise(self.out_dir, index, self.skipped, final=self.final)
