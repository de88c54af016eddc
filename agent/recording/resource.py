"""Resource mode: besides the composed picture, each source of a recording in an MP4 of its own.

A school's resource platform files a lesson as several videos (课堂实录: the composed lesson, the
teacher camera, the student camera, the courseware), so each source becomes
``<recording>/<source>.mp4``, with its fragmented segments and ``index.json`` in
``<recording>/<source>/`` (the same crash-safe machinery as the composed picture).  An RTSP camera
is copied packet for packet (`streaming.rtsp.RtspRecorder`: no decoding, no encoding); other
sources are encoded on their own.  Each file is a row of its own in agent.db (id
``<recording>.<source>``, layout ``resource``), so the uploader sends it like any recording; its
state follows the composed recording's (recording, interrupted, finished).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from agent.alarms import Alarms
from agent.config.site import RecordingConfig
from agent.recording.owned import in_thread
from agent.store import AgentStore, RecordingRow, RecordingState
from contract import now_iso

if TYPE_CHECKING:
    from streaming.rtsp import RtspRecorder
    from streaming.segments import Recording
    from streaming.source import Source

log = logging.getLogger(__name__)

LAYOUT = "resource"  # the layout column of a per-source row


class SourceRecorder(Protocol):
    """What resource mode needs from `Recorder` and `RtspRecorder`."""

    frames: int

    def start(self) -> None:
        """Begin (or continue) recording."""
        ...

    def halt(self) -> int:
        """Stop without the final remux."""
        ...

    def stop(self) -> Recording:
        """Stop and write the final MP4."""
        ...


class ResourceSet:
    """The per-source recorders of one recording (blocking methods: call them in a worker thread)."""

    def __init__(self, config: RecordingConfig, sources: Mapping[str, Source], path: Path) -> None:
        """One recorder per source in `sources`; nothing starts until `start`."""
        from streaming.rtsp import RtspRecorder, RtspSource

        self.path = path
        self.recorders: dict[str, SourceRecorder] = {}
        self.cameras: dict[str, RtspRecorder] = {}  # the cameras among them, whose gaps are counted
        for name, source in sources.items():
            out, final = path / name, path / f"{name}.mp4"
            if isinstance(source, RtspSource):
                self.recorders[name] = self.cameras[name] = RtspRecorder(
                    out, source.url, fragment_s=config.fragment_s, segment_s=config.segment_s, final=final
                )
            else:
                self.recorders[name] = _encoded(config, name, source, out, final)

    def start(self) -> None:
        """Start every recorder; one that cannot start stops those already started."""
        started: list[SourceRecorder] = []
        try:
            for recorder in self.recorders.values():
                recorder.start()
                started.append(recorder)
        except BaseException:
            for recorder in started:
                _quietly(recorder.halt)
            raise

    def rows(self, main: RecordingRow) -> list[RecordingRow]:
        """The agent.db rows of the per-source files, derived from the composed recording's row."""
        return [resource_row(main, name, self.path / f"{name}.mp4") for name in self.recorders]

    def halt(self) -> dict[str, str]:
        """Halt every recorder at once; source -> error ("" when it halted cleanly).

        In parallel: a camera that has just dropped may hold its recorder for its socket timeout,
        and the agent's stop grace is shared by every source.
        """
        with ThreadPoolExecutor(len(self.recorders) or 1, thread_name_prefix="resource-halt") as pool:
            errors = pool.map(lambda recorder: _quietly(recorder.halt), self.recorders.values())
            return dict(zip(self.recorders, errors, strict=True))

    def stop(self) -> dict[str, Recording | str]:
        """Stop every recorder and write its MP4; source -> the recording, or the error."""
        with ThreadPoolExecutor(len(self.recorders) or 1, thread_name_prefix="resource-stop") as pool:
            results = pool.map(self._stop_one, self.recorders.items())
            return dict(zip(self.recorders, results, strict=True))

    def _stop_one(self, item: tuple[str, SourceRecorder]) -> Recording | str:
        from streaming.segments import RecordingError

        name, recorder = item
        try:
            return recorder.stop()
        except (RecordingError, OSError) as exc:
            log.error("resource recording %s/%s failed: %s", self.path.name, name, exc)
            return str(exc)

    @property
    def frames(self) -> dict[str, int]:
        """Frames written per source."""
        return {name: recorder.frames for name, recorder in self.recorders.items()}

    @property
    def gaps(self) -> dict[str, int]:
        """How often each camera dropped out and came back during the recording (cameras only)."""
        return {name: len(camera.outages()) for name, camera in self.cameras.items()}


def resource_bytes(config: RecordingConfig) -> int:
    """Disk one source's own file needs to finish: its segments plus its final remux.

    A camera's own stream is copied at whatever bitrate the camera sends, so the recording's
    ``bitrate_mbps`` stands in for it (set it to the cameras' bitrate in resource mode).
    """
    return int(2 * config.bitrate_mbps * 1e6 / 8 * config.planned_minutes * 60)


def resource_row(main: RecordingRow, name: str, final: Path) -> RecordingRow:
    """A per-source file's row: the composed recording's lesson, teacher and state."""
    return replace(main, id=f"{main.id}.{name}", sources=(name,), layout=LAYOUT, path=str(final), size=0, sha256="")


def finalise_row(row: RecordingRow, cancel: threading.Event) -> Recording:
    """Remux a halted per-source recording into its MP4 (blocking); its segments are beside it."""
    from streaming.segments import finalise

    final = Path(row.path)
    return finalise(final.with_suffix(""), cancel=cancel, final=final)


def _encoded(config: RecordingConfig, name: str, source: Source, out: Path, final: Path) -> SourceRecorder:
    """A source that has to be encoded (a screen, a USB camera): its picture alone, no sound."""
    from streaming.compose import Compositor, Layout
    from streaming.recorder import Recorder

    compositor = Compositor(Layout("single", (name,), config.size), {name: source})
    return Recorder(
        out, config.size, config.fps, picture=compositor.render, fragment_s=config.fragment_s,
        segment_s=config.segment_s, final=final,
    )  # fmt: skip


def _quietly(halt: Any) -> str:
    """Run a recorder's `halt`; the error as text instead of raising (one source must not stop the rest)."""
    from streaming.segments import RecordingError

    try:
        halt()
    except (RecordingError, OSError) as exc:
        return str(exc)
    return ""


async def end_resources(
    resources: ResourceSet, main: RecordingRow, store: AgentStore, alarms: Alarms
) -> dict[str, str]:
    """Stop the per-source recorders (each writes its MP4) and update their rows; source -> file or error."""
    from streaming.segments import sha256

    results = await in_thread(resources.stop)
    out = {}
    for row in resources.rows(main):
        name = row.sources[0]
        result = results[name]
        if isinstance(result, str):
            row = replace(row, state=RecordingState.FAILED, ended=now_iso(), error=result)
            params = {"recording": row.id, "lesson": row.lesson}
            alarms.raise_("recording_failed", "critical", f"recording {row.id} failed: {result}", params=params)
            out[name] = result
        else:
            digest = await asyncio.to_thread(sha256, result.final)
            size = result.final.stat().st_size
            row = replace(row, state=RecordingState.FINISHED, ended=now_iso(), size=size, sha256=digest)
            out[name] = str(result.final)
        store.recording_put(row)
    return out
