"""Recording files on disk: fragmented MP4 segments, their index, and the final remux.

A segment is a fragmented MP4 (`empty_moov`, one fragment per keyframe): after `kill -9` or a
power cut everything but the open fragment is playable.  A crash in the middle of writing a
fragment leaves a torn ``moof``/``mdat`` at the end; everything here reads a segment only up to
its last complete fragment (`complete_end`), so the torn packets never reach the final file.
`index.json` lists the segments; it is rewritten (atomically) whenever a segment opens or
closes, so a recording resumed after a crash knows what it had.  The final MP4 is a stream
copy of every segment into one faststart file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import av
import av.error
from av.container import InputContainer

from streaming.errors import StreamingError

log = logging.getLogger(__name__)

INDEX_NAME = "index.json"
FINAL_NAME = "recording.mp4"
_SEGMENT_RE = re.compile(r"^segment-(\d{4,})\.mp4$")


class RecordingError(StreamingError):
    """Recording failed (disk, encoder, unreadable segments): the message names the file."""


@dataclass(frozen=True, slots=True)
class Recording:
    """What a finished recording left on disk."""

    out_dir: Path
    final: Path
    index: Path
    frames: int
    duration_s: float
    segments: int
    skipped: int  # output frame slots the recorder could not fill in time
    ended: float = 0.0  # wall-clock end of the last segment's media


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment file as the index records it."""

    file: str
    started: float  # wall-clock (time.time()) of its first frame
    state: str = "open"  # open -> closed on a clean roll/stop; open -> recovered after a crash
    frames: int = 0
    duration_s: float = 0.0
    bytes: int = 0
    sha256: str = ""

    @property
    def ended(self) -> float:
        """Wall-clock end: start plus the media duration actually in the file."""
        return self.started + self.duration_s

    def to_dict(self) -> dict[str, Any]:
        """For index.json."""
        return {**asdict(self), "ended": round(self.ended, 3)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Segment:
        """The inverse of `to_dict`."""
        return cls(**{k: v for k, v in data.items() if k != "ended"})


@dataclass(slots=True)
class Index:
    """The recording's index: its settings, its segments and (once finished) the final file."""

    fps: float
    size: tuple[int, int]
    segments: list[Segment] = field(default_factory=list)
    final: dict[str, Any] | None = None
    state: str = "recording"
    gaps: list[dict[str, Any]] = field(default_factory=list)  # a camera's outages (`streaming.reconnect.Outage`)

    def to_dict(self) -> dict[str, Any]:
        """For index.json."""
        return {
            "version": 1,
            "state": self.state,
            "fps": self.fps,
            "size": list(self.size),
            "segments": [s.to_dict() for s in self.segments],
            "final": self.final,
            "gaps": self.gaps,
        }

    def save(self, out_dir: Path) -> None:
        """Write index.json atomically (a crash leaves the old or the new one, never half)."""
        tmp = out_dir / (INDEX_NAME + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        os.replace(tmp, out_dir / INDEX_NAME)

    @classmethod
    def load(cls, out_dir: Path) -> Index:
        """An existing recording's index with its own fps and size; crashed segments are recovered."""
        path = out_dir / INDEX_NAME
        try:
            data = json.loads(path.read_text())
            fps, size = float(data["fps"]), (int(data["size"][0]), int(data["size"][1]))
        except (OSError, ValueError, TypeError, KeyError, IndexError) as exc:
            raise RecordingError(f"{path}: unreadable index ({exc})") from exc
        return cls.load_or_new(out_dir, fps, size)

    @classmethod
    def load_or_new(cls, out_dir: Path, fps: float, size: tuple[int, int]) -> Index:
        """The existing index (crashed segments probed and marked recovered), else a new one."""
        path = out_dir / INDEX_NAME
        index = cls(fps, size)
        if path.exists():
            try:
                data = json.loads(path.read_text())
                index.segments = [Segment.from_dict(s) for s in data.get("segments", [])]
                index.gaps = list(data.get("gaps", []))
            except (ValueError, TypeError) as exc:
                raise RecordingError(f"{path}: unreadable index ({exc})") from exc
        known = {s.file for s in index.segments}
        for extra in sorted(p.name for p in out_dir.iterdir() if _SEGMENT_RE.match(p.name) and p.name not in known):
            index.segments.append(Segment(extra, (out_dir / extra).stat().st_mtime))  # crashed before indexing
        index.segments = [recover(out_dir, s) if s.state == "open" else s for s in index.segments]
        index.final = None
        index.state = "recording"
        return index

    def next_file(self, out_dir: Path) -> str:
        """A segment name after every existing one: a resumed recording never overwrites."""
        numbers = [int(m.group(1)) for p in out_dir.iterdir() if (m := _SEGMENT_RE.match(p.name))]
        numbers += [int(m.group(1)) for s in self.segments if (m := _SEGMENT_RE.match(s.file))]
        return f"segment-{max(numbers, default=0) + 1:04d}.mp4"


def finalise(
    out_dir: Path,
    index: Index | None = None,
    skipped: int = 0,
    cancel: threading.Event | None = None,
    final: Path | None = None,
) -> Recording:
    """Checksum the segments, remux them into the final faststart MP4, mark the index finished.

    Without `index`, the one on disk is used: a recording halted (or cut off by a crash) is
    finished later this way, without encoding anything.  Setting `cancel` abandons the remux
    (RecordingError; nothing changes on disk), so an agent that stops is never held up by it.
    `final` is the MP4 to write (default ``recording.mp4`` beside the segments).
    """
    index = index or Index.load(out_dir)
    index.segments = [
        replace(s, bytes=(out_dir / s.file).stat().st_size, sha256=sha256(out_dir / s.file))
        for s in index.segments
        if (out_dir / s.file).exists()
    ]
    playable = [out_dir / s.file for s in index.segments if s.frames > 0]
    if not playable:
        raise RecordingError(f"{out_dir}: no frames were recorded")
    final = final or out_dir / FINAL_NAME
    frames, duration = remux(playable, final, cancel)
    index.final = {
        "file": os.path.relpath(final, out_dir),
        "frames": frames,
        "duration_s": round(duration, 3),
        "bytes": final.stat().st_size,
        "sha256": sha256(final),
    }
    index.state = "finished"
    index.save(out_dir)
    ended = max((s.ended for s in index.segments), default=0.0)
    return Recording(out_dir, final, out_dir / INDEX_NAME, frames, duration, len(index.segments), skipped, ended)


def recover(out_dir: Path, segment: Segment) -> Segment:
    """A segment left open by a crash: count what survived."""
    frames, duration = probe(out_dir / segment.file)
    log.warning("recovered %s after a crash: %d frames, %.2f s", segment.file, frames, duration)
    return replace(segment, state="recovered", frames=frames, duration_s=duration)


def probe(path: Path) -> tuple[int, float]:
    """(video frames, seconds) in an MP4, reading packets until the end or the first damage."""
    frames, first, end = 0, None, Fraction(0)
    try:
        with open_complete(path) as container:
            if not container.streams.video:
                return 0, 0.0
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                if packet.pts is None or packet.time_base is None:
                    continue
                frames += 1
                pts = packet.pts * packet.time_base
                first = pts if first is None else min(first, pts)
                end = max(end, pts + (packet.duration or 0) * packet.time_base)
    except (av.error.FFmpegError, OSError) as exc:
        log.warning("%s: stopped reading at frame %d: %s", path, frames, exc)
    return frames, float(end - first) if first is not None else 0.0


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks by hashlib."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def remux(sources: list[Path], dest: Path, cancel: threading.Event | None = None) -> tuple[int, float]:
    """Stream-copy the segments, back to back, into one faststart MP4; returns (frames, seconds).

    No re-encoding: packets keep their bytes, only their timestamps move by the duration of the
    segments before them.  A damaged tail (a crashed segment) ends that segment early.  `cancel`
    set: RecordingError, and `dest` is left as it was.
    """
    tmp = dest.with_name(dest.name + ".part")
    offset, frames = Fraction(0), 0
    last_dts: dict[int, int] = {}
    try:
        with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as out:
            outputs: dict[str, Any] = {}
            for path in sources:
                seg_frames, seg_start, seg_end = _copy_segment(path, out, outputs, offset, last_dts, cancel)
                frames += seg_frames
                offset += seg_end - seg_start
    except (av.error.FFmpegError, _Cancelled) as exc:
        tmp.unlink(missing_ok=True)
        what = "cancelled" if isinstance(exc, _Cancelled) else "failed"
        raise RecordingError(f"{dest}: remux {what}: {exc}") from exc
    os.replace(tmp, dest)
    return frames, float(offset)


class _Cancelled(StreamingError):
    """The remux was asked to stop."""


def _copy_segment(
    path: Path,
    out: Any,
    outputs: dict[str, Any],
    offset: Fraction,
    last_dts: dict[int, int],
    cancel: threading.Event | None = None,
) -> tuple[int, Fraction, Fraction]:
    """Copy one segment's packets into `out` so that its video starts at `offset` seconds.

    Returns (video frames, video start, video end) in the segment's own time.
    """
    start = _video_start(path)
    frames, end = 0, start
    with open_complete(path) as container:
        streams = [*container.streams.video[:1], *container.streams.audio[:1]]
        for stream in streams:
            if stream.type in outputs:
                continue
            if last_dts:  # the output's header is written: no new stream can join
                log.warning("%s: a %s stream appears mid-recording; left out", path, stream.type)
                continue
            outputs[stream.type] = out.add_stream_from_template(stream)
        streams = [s for s in streams if s.type in outputs]
        try:
            for packet in container.demux(streams):
                if cancel is not None and cancel.is_set():
                    raise _Cancelled(f"at {path.name}")
                if packet.dts is None or packet.pts is None or packet.time_base is None:
                    continue
                kind = packet.stream.type
                shift = round((offset - start) / packet.time_base)
                target = outputs[kind]
                dts = packet.dts + shift
                if dts <= last_dts.get(target.index, -(2**62)):
                    continue  # audio priming overlapping the previous segment's tail
                last_dts[target.index] = dts
                if kind == "video":
                    frames += 1
                    end = max(end, (packet.pts + (packet.duration or 0)) * packet.time_base)
                packet.pts += shift
                packet.dts = dts
                packet.stream = target
                out.mux(packet)
        except av.error.FFmpegError as exc:
            log.warning("%s: damaged after %d frames (%s); the rest is left out", path, frames, exc)
    return frames, start, end


def _video_start(path: Path) -> Fraction:
    """The first video timestamp in seconds (the muxer shifts video by the audio priming)."""
    try:
        with open_complete(path) as container:
            for packet in container.demux(container.streams.video[:1]):
                if packet.pts is not None and packet.time_base is not None:
                    return packet.pts * packet.time_base
    except av.error.FFmpegError:
        pass
    return Fraction(0)


@contextlib.contextmanager
def open_complete(path: Path) -> Iterator[InputContainer]:
    """Open an MP4 for reading, seeing only its complete boxes (a torn last fragment is invisible)."""
    end = complete_end(path)
    if end == path.stat().st_size:
        with av.open(str(path)) as container:
            yield container
        return
    log.warning("%s: a torn fragment after byte %d (a crash while writing); read up to it", path, end)
    with path.open("rb") as raw, av.open(_Prefix(raw, end), "r", format="mp4") as container:
        yield container


class _Prefix:
    """The first `limit` bytes of a file, as the file-like object PyAV reads through."""

    def __init__(self, raw: IO[bytes], limit: int) -> None:
        self.raw, self.limit = raw, limit

    def read(self, size: int = -1) -> bytes:
        left = max(0, self.limit - self.raw.tell())
        return self.raw.read(left if size < 0 else min(size, left))

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_END:
            return self.raw.seek(self.limit + offset)
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()


def complete_end(path: Path) -> int:
    """How many leading bytes of an MP4 are whole boxes, ending with a complete ``moof`` + ``mdat`` pair.

    A crash while a fragment is being written leaves its ``moof`` without (all of) its ``mdat``:
    FFmpeg would hand out the torn packet, which does not decode.
    """
    found = boxes(path)
    end = 0
    for i, (kind, offset, size) in enumerate(found):
        if kind == "moof" and (i + 1 == len(found) or found[i + 1][0] != "mdat"):
            break
        end = offset + size
    return end


def fragments(path: Path) -> int:
    """How many complete `moof` boxes a fragmented MP4 holds (top-level scan)."""
    return sum(1 for kind, _, _ in boxes(path) if kind == "moof")


def boxes(path: Path) -> list[tuple[str, int, int]]:
    """The top-level MP4 boxes as (type, offset, size); stops at a truncated box."""
    found = []
    total = path.stat().st_size
    with path.open("rb") as f:
        offset = 0
        while offset + 8 <= total:
            f.seek(offset)
            header = f.read(16)
            size, kind = int.from_bytes(header[:4], "big"), header[4:8].decode("latin-1")
            if size == 1:
                size = int.from_bytes(header[8:16], "big")
            elif size == 0:
                size = total - offset
            if size < 8 or offset + size > total:
                break
            found.append((kind, offset, size))
            offset += size
    return found
