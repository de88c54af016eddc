"""The recorder: a thread that encodes the composed picture into crash-safe MP4 segments.

Every 1/fps seconds it takes one picture (BGR, from the compositor), converts it to YUV 4:2:0
once (OpenCV: about 6x cheaper than handing BGR to PyAV's swscale), and encodes H.264 with
libx264 (veryfast, zerolatency, a keyframe at every fragment boundary) plus AAC from an optional
audio source, into fragmented MP4 segments (see `streaming.segments`).  A new segment starts
every `segment_s`; a clean stop writes `index.json` and the final faststart MP4 (a remux).
`halt` stops without the remux (an agent shutting down within its grace): the open segment is
closed complete, the index stays ``recording``, and `streaming.segments.finalise` finishes it
later (or a new `Recorder` on the same directory continues it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import av.error
import cv2
import numpy as np
import numpy.typing as npt

from streaming.segments import Index, Recording, RecordingError, Segment, finalise, probe
from streaming.source import Image

log = logging.getLogger(__name__)

__all__ = ["AudioSource", "Recorder", "Recording", "RecordingError", "SegmentWriter"]


class AudioSource(Protocol):
    """What the recorder needs from a microphone or a tone: exactly the samples it asks for."""

    sample_rate: int
    channels: int

    def read(self, samples: int) -> npt.NDArray[np.float32]:
        """The next `samples` samples as float32 planes (channels x samples)."""
        ...


class SegmentWriter:
    """One fragmented MP4 file with its own H.264 (and AAC) encoder: PyAV lives here."""

    def __init__(self, path: Path, size: tuple[int, int], fps: Fraction, fragment_s: float, audio: AudioSource | None):
        """Open the file and set up the encoders (libx264 veryfast/zerolatency, a keyframe per fragment)."""
        gop = max(1, round(fragment_s * fps))
        options = {
            "movflags": "frag_keyframe+empty_moov+default_base_moof",
            "frag_duration": str(int(fragment_s * 1_000_000)),
            # For a regular file FFmpeg keeps written fragments in its 32 KB I/O buffer: a low
            # bitrate recording killed at 8 s had nothing but its ftyp on disk.  Flush instead.
            "flush_packets": "1",
        }
        self.container = av.open(str(path), "w", format="mp4", options=options)
        video = self.container.add_stream(
            "libx264",
            rate=fps,
            options={
                "preset": "veryfast",
                "tune": "zerolatency",
                "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0",
            },
        )
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        video.codec_context.color_range = 1  # MPEG (limited): what OpenCV's BGR->I420 produces
        video.codec_context.colorspace = 6  # SMPTE 170M (BT.601), OpenCV's matrix
        self.video = video
        self.time_base = Fraction(1) / fps
        self.audio = audio
        self.audio_stream = None
        self.samples = 0
        if audio is not None:
            stream = self.container.add_stream("aac", rate=audio.sample_rate)
            stream.layout = "mono" if audio.channels == 1 else "stereo"
            self.audio_stream = stream
        self.frames = 0

    def write(self, yuv: Image, pts: int) -> None:
        """Encode one I420 picture at `pts` (in frames since the segment began), then audio up to it."""
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts, frame.time_base = pts, self.time_base
        self.container.mux(self.video.encode(frame))
        self.frames += 1
        if self.audio is not None and self.audio_stream is not None:
            due = int((pts + 1) * self.time_base * self.audio.sample_rate)
            self._audio_until(due)

    def _audio_until(self, due: int) -> None:
        assert self.audio is not None and self.audio_stream is not None
        size = self.audio_stream.codec_context.frame_size or 1024
        layout = "mono" if self.audio.channels == 1 else "stereo"
        while self.samples + size <= due:
            frame = av.AudioFrame.from_ndarray(self.audio.read(size), format="fltp", layout=layout)
            frame.sample_rate = self.audio.sample_rate
            frame.pts, frame.time_base = self.samples, Fraction(1, self.audio.sample_rate)
            self.samples += size
            self.container.mux(self.audio_stream.encode(frame))

    def close(self) -> None:
        """Flush the encoders and write the last fragment."""
        try:
            self.container.mux(self.video.encode(None))
            if self.audio_stream is not None:
                self.container.mux(self.audio_stream.encode(None))
        finally:
            self.container.close()


class Recorder:
    """Records `picture()` at `fps` into `out_dir` until `stop()` (or `duration_s`, if given)."""

    def __init__(
        self,
        out_dir: Path | str,
        size: tuple[int, int],
        fps: float,
        *,
        picture: Callable[[], Image],
        fragment_s: float = 2.0,
        segment_s: float = 600.0,
        audio: AudioSource | None = None,
        duration_s: float | None = None,
        clock: Callable[[], float] = time.time,
        final: Path | None = None,
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
        self.audio = audio
        self.duration_s = duration_s
        self.final = final
        self._picture = picture
        self._clock = clock
        self._yuv: Image = np.empty((size[1] * 3 // 2, size[0]), np.uint8)
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._index: Index | None = None
        self._error: BaseException | None = None
        self.frames = 0
        self.skipped = 0

    def start(self) -> None:
        """Create the directory, pick up a crashed recording's index, start the encoding thread."""
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._index = Index.load_or_new(self.out_dir, float(self.fps), self.size)
            self._index.save(self.out_dir)
        except OSError as exc:
            raise RecordingError(f"{self.out_dir}: {exc}") from exc
        self._thread = threading.Thread(target=self._run, name=f"recorder[{self.out_dir.name}].encode", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the recording ends by itself (`duration_s`) or fails; True if it did."""
        return self._done.wait(timeout)

    def stop(self) -> Recording:
        """Stop encoding, close the segment, write index.json and the final faststart MP4."""
        return self._finish(self._join())

    def halt(self) -> int:
        """Stop encoding and close the open segment (complete and indexed), but leave the remux for later.

        Returns how many segments the recording has; fast whatever the lesson's length.
        """
        return len(self._join().segments)

    def _join(self) -> Index:
        """Stop the encoding thread (which closes its segment); the index, or why the recording failed."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise RecordingError(f"{self.out_dir}: recording failed: {self._error}") from self._error
        if self._index is None:
            raise RecordingError(f"{self.out_dir}: recorder was never started")
        return self._index

    def _run(self) -> None:
        assert self._index is not None
        index = self._index
        period = 1 / float(self.fps)
        seg_frames = max(1, round(self.segment_s * self.fps))
        limit = None if self.duration_s is None else round(self.duration_s * self.fps)
        writer: SegmentWriter | None = None
        start = time.monotonic()
        slot = seg_start = 0
        try:
            while not self._stop.is_set() and (limit is None or slot < limit):
                if writer is None or slot - seg_start >= seg_frames:
                    if writer is not None:
                        self._close(writer, index)
                    writer, seg_start = self._open(index), slot
                cv2.cvtColor(self._picture(), cv2.COLOR_BGR2YUV_I420, dst=self._yuv)
                writer.write(self._yuv, slot - seg_start)
                self.frames += 1
                slot += 1
                late = time.monotonic() - (start + slot * period)
                if late > period:  # the machine could not keep up: leave a gap, keep real time
                    missed = int(late / period)
                    slot, self.skipped = slot + missed, self.skipped + missed
                    if limit is not None:
                        slot = min(slot, limit)
                self._stop.wait(max(0.0, start + slot * period - time.monotonic()))
        except Exception as exc:  # the disk, the encoder or a source: whatever ends the recording is its reason
            log.error("recorder %s failed: %s", self.out_dir, exc)
            self._error = exc
        finally:
            if writer is not None:
                self._close_quietly(writer, index)
            self._done.set()

    def _open(self, index: Index) -> SegmentWriter:
        name = index.next_file(self.out_dir)
        index.segments.append(Segment(name, self._clock()))
        index.save(self.out_dir)
        return SegmentWriter(self.out_dir / name, self.size, self.fps, self.fragment_s, self.audio)

    def _close(self, writer: SegmentWriter, index: Index) -> None:
        writer.close()
        segment = index.segments[-1]
        frames, duration = probe(self.out_dir / segment.file)
        index.segments[-1] = replace(segment, state="closed", frames=frames, duration_s=duration)
        index.save(self.out_dir)

    def _close_quietly(self, writer: SegmentWriter, index: Index) -> None:
        try:
            self._close(writer, index)
        except (av.error.FFmpegError, OSError) as exc:
            self._error = self._error or exc

    def _finish(self, index: Index) -> Recording:
        """Checksums, the remuxed final file, and the index marked finished."""
        return finalise(self.out_dir, index, self.skipped, final=self.final)
