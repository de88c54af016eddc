"""The recording service: `record.start` / `record.stop`, the recordings index, the disk guard, retention.

The `streaming.recorder.Recorder` encodes in a thread of its own; starting it (which may probe a
crashed segment) and stopping it (which remuxes the final MP4 and checksums it) run in worker
threads too, so nothing blocks the event loop.  Every recording is a row in agent.db, written on
start and on stop; a row still ``recording`` when the agent starts was cut off by a crash: it
becomes ``interrupted``, and the next `record.start` for the same lesson continues it in the same
directory as a new segment, but only while that lesson is still on (`Finisher.over`): last
week's recording of the same weekly lesson is finished, never appended to.  An agent stopping
mid-lesson only *halts* the recorder (the open segment is closed, no remux: that fits the stop
grace whatever the lesson's length) and leaves the row ``interrupted`` too; once its lesson is
over, `agent.recording.finish` finishes it.  In resource mode each source is also recorded on
its own (`agent.recording.resource`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.alarms import Alarms
from agent.commands.table import Failed, Rejected
from agent.config.site import RecordingConfig
from agent.lesson.pictures import recordable
from agent.recording.disk import check_space, delete_expired, uploaded
from agent.recording.finish import (
    RESOURCE,
    Finisher,
    LessonOn,
    salvage,
    stop_and_finish,
    timetable_lesson_on,
)
from agent.recording.owned import OwnedWork, in_thread
from agent.recording.picture import director_for, layout_sources
from agent.recording.programme import Picture, Programmes, encoder_settings
from agent.recording.resource import ResourceSet, end_resources
from agent.store import AgentStore, RecordingRow, RecordingState
from contract import to_iso

if TYPE_CHECKING:
    from agent.config.broadcast import BroadcastConfig
    from streaming.programme import ProgrammeEncoder
    from streaming.recorder import Recorder
    from streaming.source import Source

log = logging.getLogger(__name__)

__all__ = ["RecordingService", "timetable_lesson_on"]

WATCH_S = 1.0
FINALISE_EVERY_S = 30.0
RETENTION_EVERY_S = 3600.0
PICTURE_REFS = "remote:N, remote:N/SOURCE or lesson:AGENT/SOURCE"  # what `record.start sources` may also name


@dataclass
class _Active:
    """The recording in progress."""

    row: RecordingRow
    recorder: Recorder
    encoder: ProgrammeEncoder  # the programme's, perhaps shared with a broadcast of the same picture
    resources: ResourceSet | None = None  # resource mode: each source in a file of its own
    since: float = field(default_factory=time.monotonic)


class RecordingService:
    """Owns the one recording a room makes at a time, and the recordings index in agent.db."""

    def __init__(
        self,
        config: RecordingConfig | None,
        sources: Mapping[str, Source],
        store: AgentStore,
        alarms: Alarms,
        lesson_on: LessonOn = lambda row: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        may_delete: Callable[[RecordingRow], bool] = uploaded,  # retention: is it everywhere it goes?
        programmes: Programmes | None = None,
        broadcast: BroadcastConfig | None = None,
    ) -> None:
        """A recording left ``recording`` by a crash is marked ``interrupted`` here, once per process.

        `lesson_on` says whether an interrupted recording's lesson is still on (see
        `timetable_lesson_on`); when it does not know, the lesson counts as over
        ``planned_minutes`` after the recording started.  `programmes` are the room's encoders,
        shared with its broadcasts; `broadcast` (``[broadcast]``) sets the encoder of a
        recording that could share one (`encoder_settings`).
        """
        self.config = config
        self.sources = sources
        self.store = store
        self.alarms = alarms
        self.clock = clock
        self.may_delete = may_delete
        self._active: _Active | None = None
        self._lock = asyncio.Lock()
        self._work = OwnedWork("recording")  # start and stop: completed even when their caller stops waiting
        self.finisher = Finisher(config, store, alarms, self._lock, lesson_on, clock) if config else None
        self.director = director_for(config)
        self.programmes = programmes or Programmes(sources, self.director)
        self.broadcast = broadcast
        interrupted = store.recordings_interrupted()
        if interrupted:
            log.warning("%d recording(s) cut off by a crash; record.start the same lesson continues", interrupted)

    async def run(self) -> None:
        """Watch the recorder for failure and apply retention, until cancelled (then finish cleanly)."""
        next_retention = next_finalise = 0.0
        try:
            while True:
                await self._watch()
                if self.finisher is not None and time.monotonic() >= next_finalise:
                    await self.finisher.finish_over()
                    next_finalise = time.monotonic() + FINALISE_EVERY_S
                if time.monotonic() >= next_retention:
                    await self.apply_retention()
                    next_retention = time.monotonic() + RETENTION_EVERY_S
                await asyncio.sleep(WATCH_S)
        finally:
            await self._work.see_through()  # a start or stop under way completes first, so a recording is halted
            if self._active is not None:
                log.info("agent stopping while recording %s: halting it (resumable)", self._active.row.id)
                await self._halt()

    async def start(
        self, lesson: str = "", teacher: str = "", layout: str = "", sources: Sequence[str] = ()
    ) -> dict[str, Any]:
        """Start recording (or continue an interrupted recording of the same lesson).

        `sources` replaces ``[recording] sources`` for this recording (room sources or lesson picture
        references, in role order); a wrong one is rejected by name before anything starts.  Once
        begun it completes, even if the caller stops waiting: the recorder and the row never disagree.
        """
        return await self._work.run("start", self._start(lesson, teacher, layout, tuple(sources)))

    async def _start(self, lesson: str, teacher: str, layout: str, sources: tuple[str, ...]) -> dict[str, Any]:
        async with self._lock:
            config = self._config()
            if self._active is not None:
                row = self._active.row
                why = f"already recording {row.lesson or row.id!r} since {row.started}; record.stop first"
                raise Rejected(why, code="recording_already", params=_named(row))
            layout = layout or config.layout
            roles = self._roles(config, layout, sources)
            resume = self._resumable(lesson)
            path = Path(resume.path) if resume else self._new_dir(config, lesson)
            recorder, resources = await self._start_recorders(config, layout, roles, path)
            encoder = recorder.encoder
            row = replace(
                resume or RecordingRow(path.name, started=to_iso(self.clock())),
                lesson=lesson, teacher=teacher or (resume.teacher if resume else ""), sources=roles,
                layout=layout, path=str(path), state=RecordingState.RECORDING, ended="", error="",
            )  # fmt: skip
            self.store.recording_put(row)
            for extra in resources.rows(row) if resources else ():
                self.store.recording_put(extra)
            self._active = _Active(row, recorder, encoder, resources)
            self.alarms.clear("recording_failed")
            log.info("recording %s %s in %s: %s", "continues" if resume else "started", row.id, path, roles)
            return {"id": row.id, "lesson": lesson, "path": str(path), "resumed": resume is not None}

    def _roles(self, config: RecordingConfig, layout: str, sources: tuple[str, ...]) -> tuple[str, ...]:
        """The recording's sources in role order: `sources` (each checked) or the configured ones."""
        if not sources:
            return layout_sources(config, layout)
        for name in sources:
            if not recordable(self.sources, name):  # a room source or a lesson picture reference
                raise Rejected(f"sources: got {name!r}, expected one of {', '.join(self.sources)} or {PICTURE_REFS}")
        pictures = [name for name in sources if name not in tuple(self.sources)]
        if config.resource_mode and pictures:  # a lesson picture comes and goes: no file of its own to keep
            raise Rejected(f"sources: {', '.join(pictures)}: resource mode records only the room's own sources")
        if layout == "directed" and self.director is not None:
            missing = [rule.show for rule in self.director.rules if rule.show not in sources]
            if missing:
                raise Rejected(f"sources: the director's rules show {', '.join(missing)}, which sources leaves out")
        return sources

    async def _start_recorders(
        self, config: RecordingConfig, layout: str, roles: tuple[str, ...], path: Path
    ) -> tuple[Recorder, ResourceSet | None]:
        """The composed picture's recorder and, in resource mode, each source's, all started."""
        own = {n: self.sources[n] for n in roles} if config.resource_mode else {}
        await check_space(config, path, len(own), self.alarms)
        encoder = await in_thread(lambda: self._encoder(config, layout, roles, path))
        try:
            recorder = self._recorder(config, path, encoder)
            resources = ResourceSet(config, own, path) if own else None
            try:
                await in_thread(recorder.start)
            except Exception as exc:
                raise Failed(f"cannot start recording in {path}: {exc}") from exc
            try:
                if resources is not None:
                    await in_thread(resources.start)
            except Exception as exc:
                await in_thread(recorder.halt)
                raise Failed(f"cannot start resource mode recording in {path}: {exc}") from exc
        except BaseException:
            await in_thread(lambda: self.programmes.release(encoder, "recording"))
            raise
        return recorder, resources

    async def stop(self) -> dict[str, Any]:
        """Stop, write the final MP4 and its checksum, and mark the recording finished (even if the caller goes)."""
        return await self._work.run("stop", self._stop())

    async def _stop(self) -> dict[str, Any]:
        async with self._lock:
            if self._active is None:
                raise Rejected("not recording", code="recording_none")
            if self._active.recorder.wait(0):  # it failed just now, before `run` noticed
                raise Failed(await self._fail())
            return await self._end()

    def override(self, source: str | None) -> dict[str, Any]:
        """Show `source` as the ``directed`` layout's main picture; None hands it back to the rules."""
        if self.director is None:
            raise Rejected("directing is not configured: add [director] to the site config", code="director_none")
        if source is not None and source not in self.director_sources():
            raise Rejected(f"source: got {source!r}, expected one of {', '.join(self.director_sources())}")
        self.director.override(source)
        log.info("director: %s", f"manual override, showing {source}" if source else "automatic")
        return {"automatic": source is None, "source": source or ""}

    def director_sources(self) -> tuple[str, ...]:
        """The sources the director may show: the directed recording's own, else the configured ones."""
        if self._active is not None and self._active.row.layout == "directed":
            return self._active.row.sources
        return layout_sources(self.config, "directed") if self.config is not None else ()

    def telemetry(self) -> dict[str, object]:
        """``recording: {active, lesson, seconds, frames}`` (and ``director``, ``resources`` where they apply).

        ``director`` is what the directed layout shows and why; ``resources`` the frames per source,
        ``resource_gaps`` how often each camera's own file was interrupted by an outage.
        """
        active = self._active
        if active is None:
            return {"active": False, "lesson": "", "seconds": 0.0, "frames": 0}
        seconds = round(time.monotonic() - active.since, 1)
        out: dict[str, object] = {
            "active": True, "lesson": active.row.lesson, "seconds": seconds, "frames": active.recorder.frames,
            "encoder": active.encoder.name,
        }  # fmt: skip
        if active.row.layout == "directed" and self.director is not None:
            out["director"] = self.director.telemetry()
        if active.resources is not None:
            out["resources"] = active.resources.frames
            out["resource_gaps"] = active.resources.gaps
        return out

    async def apply_retention(self) -> int:
        """Delete delivered recordings (rows and files) older than ``retention_days``; how many."""
        return await delete_expired(self.config, self.store, self.may_delete) if self.config is not None else 0

    def _config(self) -> RecordingConfig:
        if self.config is None:
            why = "recording is not configured: add [sources] and [recording] to the site config"
            raise Rejected(why, code="recording_not_configured")
        return self.config

    def _resumable(self, lesson: str) -> RecordingRow | None:
        """An interrupted recording of `lesson` from this very lesson; an older one is left to the finisher."""
        if not lesson or self.finisher is None:
            return None
        rows = self.store.recordings_in(RecordingState.INTERRUPTED)
        for row in (r for r in rows if r.lesson == lesson and r.layout != RESOURCE and Path(r.path).is_dir()):
            if not self.finisher.over(row):
                return row
            log.info("recording %s (from %s) is from an earlier %r: not continued", row.id, row.started, lesson)
        return None

    def _new_dir(self, config: RecordingConfig, lesson: str) -> Path:
        slug = re.sub(r"[^\w-]+", "_", lesson).strip("_")[:60] or "recording"
        base = config.dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}"
        path, n = base, 1
        while path.exists() or self.store.recording(path.name) is not None:
            n += 1
            path = base.with_name(f"{base.name}-{n}")
        return path

    def _encoder(self, config: RecordingConfig, layout: str, roles: tuple[str, ...], path: Path) -> ProgrammeEncoder:
        """The programme's encoder (blocking): a running one of the same picture (a broadcast's), else a new one."""
        settings = encoder_settings(config, self.broadcast, for_broadcast=False)
        picture = Picture(layout, roles, config.corner, config.audio, settings)
        return self.programmes.acquire(picture, "recording", f"recorder[{path.name}]")

    def _recorder(self, config: RecordingConfig, path: Path, encoder: ProgrammeEncoder) -> Recorder:
        from streaming.recorder import Recorder, RecordingError

        try:
            return Recorder(path, config.size, config.fps, encoder=encoder, fragment_s=config.fragment_s,
                            segment_s=config.segment_s)  # fmt: skip
        except RecordingError as exc:
            raise Failed(str(exc)) from exc

    async def _release(self, active: _Active) -> None:
        """Let go of the programme's encoder (the last user stops it) once the recorder is done with it."""
        await in_thread(lambda: self.programmes.release(active.encoder, "recording"))

    async def _watch(self) -> None:
        """A recorder that ended by itself has failed (disk, encoder, a source): end that recording, carry on."""
        active = self._active
        if active is not None and active.recorder.wait(0) and not self._lock.locked():
            await self._work.run("fail", self._fail_if_active(active))  # seen through even if `run` is cancelled

    async def _fail_if_active(self, active: _Active) -> None:
        async with self._lock:
            if self._active is active:
                await self._fail()

    async def _fail(self) -> str:
        """End a recording whose recorder failed: what it wrote is finished (else the row ``failed``); the alarm.

        Never raises for the failure itself: one recording's disk or encoder must not take the
        service down, so the next ``record.start`` works.  Returns the alarm's message.
        """
        assert self._active is not None
        active, self._active = self._active, None
        kept, why = await in_thread(lambda: salvage(active.recorder))
        await self._release(active)
        row = replace(active.row, ended=to_iso(self.clock()))
        if isinstance(kept, str):
            row = replace(row, state=RecordingState.FAILED, error=f"{why}; nothing could be kept: {kept}")
            outcome = f"nothing could be kept ({kept})"
        else:
            recording, size, digest = kept
            row = replace(row, state=RecordingState.FINISHED, size=size, sha256=digest, error=why)
            outcome = f"the {recording.frames} frames recorded until then are kept in {recording.final}"
        self.store.recording_put(row)
        message = f"recording {row.id} stopped by itself: {why}; {outcome}"
        self.alarms.raise_("recording_failed", "critical", message, params={"recording": row.id, "lesson": row.lesson})
        if active.resources is not None:
            await end_resources(active.resources, row, self.store, self.alarms)
        return message

    async def _halt(self) -> None:
        """Stop the recorder without the remux: the row stays ``interrupted`` (resumable, finished later)."""
        assert self._active is not None
        active, self._active = self._active, None
        row = active.row
        try:
            segments = await in_thread(active.recorder.halt)
        except Exception as exc:
            row = replace(row, state=RecordingState.FAILED, ended=to_iso(self.clock()), error=str(exc))
            self.alarms.raise_("recording_failed", "critical", f"recording {row.id} failed: {exc}", params=_named(row))
        else:
            row = replace(row, state=RecordingState.INTERRUPTED, error="")
            log.info("recording %s halted after %d segment(s); it continues or is finished later", row.id, segments)
        finally:
            await self._release(active)
            self.store.recording_put(row)
        if active.resources is not None:
            errors = await in_thread(active.resources.halt)
            for extra in active.resources.rows(row):
                error = errors.get(extra.sources[0], "")
                self.store.recording_put(
                    replace(extra, state=RecordingState.FAILED if error else row.state, error=error)
                )

    async def _end(self) -> dict[str, Any]:
        """Stop the recorder (in a thread), write the final file's size and checksum, update the row."""
        assert self._active is not None
        active, self._active = self._active, None
        row = active.row
        released = lambda: self.programmes.release(active.encoder, "recording")  # noqa: E731
        try:
            recording, size, digest = await in_thread(lambda: stop_and_finish(active.recorder, released))
        except Exception as exc:
            await self._release(active)
            row = replace(row, state=RecordingState.FAILED, ended=to_iso(self.clock()), error=str(exc))
            self.store.recording_put(row)
            self.alarms.raise_("recording_failed", "critical", f"recording {row.id} failed: {exc}", params=_named(row))
            if active.resources is not None:
                await end_resources(active.resources, row, self.store, self.alarms)
            raise Failed(f"recording {row.id} failed: {exc}") from exc
        row = replace(row, state=RecordingState.FINISHED, ended=to_iso(self.clock()), size=size, sha256=digest)
        self.store.recording_put(row)
        log.info("recording %s finished: %s, %d frames", row.id, recording.final, recording.frames)
        resources = await end_resources(active.resources, row, self.store, self.alarms) if active.resources else {}
        return {
            "id": row.id, "lesson": row.lesson, "state": "finished", "file": str(recording.final),
            "duration_s": round(recording.duration_s, 3), "frames": recording.frames, "segments": recording.segments,
            "size": size, "sha256": digest, **({"resources": resources} if active.resources else {}),
        }  # fmt: skip


def _named(row: RecordingRow) -> dict[str, object]:
    """``recording_failed``'s params: which recording, of which lesson."""
    return {"recording": row.id, "lesson": row.lesson}
