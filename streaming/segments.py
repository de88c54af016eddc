"""Recording files on disk: fragmented MP4 segments, their index, and the final remux.

A segment is a fragmented MP4 (`empty_moov`, one fragment per keyframe): after `kill -9` or a
power cut everything but the open fragment is playable.  `index.json` lists the segments; it is
rewritten (atomically) whenever a segment opens or closes, so a recording resumed after a crash
knows what it had.  The final MP4 is a stream copy of every segment into one faststart file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error

log = logging.getLogger(__name__)

INDEX_NAME = "index.json"
FINAL_NAME = "recording.mp4"
_SEGMENT_RE = re.compile(r"^segment-(\d{4,})\.mp4$")


class RecordingError(Exception):
    """Recording failed (disk, encoder, unreadable segments): the message names the file."""


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

    def to_dict(self) -> dict[str, Any]:
        """For index.json."""
        return {
            "version": 1,
            "state": self.state,
            "fps": self.fps,
            "size": list(self.size),
            "segments": [s.to_dict() for s in self.segments],
            "final": self.final,
        }

    def save(self, out_dir: Path) -> None:
        """Write index.json atomically (a crash leaves the old or the new one, never half)."""
        tmp = out_dir / (INDEX_NAME + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        os.replace(tmp, out_dir / INDEX_NAME)

    @classmethod
    def load_or_new(cls, out_dir: Path, fps: float, size: tuple[int, int]) -> Index:
        """The existing index (crashed segments probed and marked recovered), else a new one."""
        path = out_dir / INDEX_NAME
        index = cls(fps, size)
        if path.exists():
            try:
                data = json.loads(path.read_text())
                index.segments = [Segment.from_dict(s) for s in data.get("segments", [])]
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


def recover(out_dir: Path, segment: Segment) -> Segment:
    """A segment left open by a crash: count what survived."""
    frames, duration = probe(out_dir / segment.file)
    log.warning("recovered %s after a crash: %d frames, %.2f s", segment.file, frames, duration)
    return replace(segment, state="recovered", frames=frames, duration_s=duration)


def probe(path: Path) -> tuple[int, float]:
    """(video frames, seconds) in an MP4, reading packets until the end or the first damage."""
    frames, first, end = 0, None, Fraction(0)
    try:
        with av.open(str(path)) as container:
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


def remux(sources: list[Path], dest: Path) -> tuple[int, float]:
    """Stream-copy the segments, back to back, into one faststart MP4; returns (frames, seconds).

    No re-encoding: packets keep their bytes, only their timestamps move by the duration of the
    segments before them.  A damaged tail (a crashed segment) ends that segment early.
    """
    tmp = dest.with_name(dest.name + ".part")
    offset, frames = Fraction(0), 0
    last_dts: dict[int, int] = {}
    try:
        with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as out:
            outputs: dict[str, Any] = {}
            for path in sources:
                seg_frames, seg_start, seg_end = _copy_segment(path, out, outputs, offset, last_dts)
                frames += seg_frames
                offset += seg_end - seg_start
    except av.error.FFmpegError as exc:
        tmp.unlink(missing_ok=True)
        raise RecordingError(f"{dest}: remux failed: {exc}") from exc
    os.replace(tmp, dest)
    return frames, float(offset)


def _copy_segment(
    path: Path, out: Any, outputs: dict[str, Any], offset: Fraction, last_dts: dict[int, int]
) -> tuple[int, Fraction, Fraction]:
    """Copy one segment's packets into `out` so that its video starts at `offset` seconds.

    Returns (video frames, video start, video end) in the segment's own time.
    """
    start = _video_start(path)
    frames, end = 0, start
    with av.open(str(path)) as container:
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
        with av.open(str(path)) as container:
            for packet in container.demux(container.streams.video[:1]):
                if packet.pts is not None and packet.time_base is not None:
                    return packet.pts * packet.time_base
    except av.error.FFmpegError:
        pass
    return Fraction(0)


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
