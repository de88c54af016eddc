"""Finishing recordings after the fact: a halted or crashed recording whose lesson is over is remuxed.

An agent that stops mid-lesson only halts its recorder (no remux: the stop grace is 15 s, a
lesson's remux takes longer), and a crash leaves segments behind.  Such a recording stays
``interrupted`` in agent.db, so the same lesson can continue it into a new segment.  Once its
lesson is over, `Finisher` writes its final MP4 (``finishing`` meanwhile, ``finished`` after,
ready for upload), and the per-source files of resource mode with it.  Whether a lesson is
over comes from the timetable (`timetable_lesson_on`); a lesson the timetable does not know
(a manual recording) counts as over ``planned_minutes`` after the recording started.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.alarms import Alarms
from agent.config.site import RecordingConfig
from agent.recording.owned import in_thread
from agent.store import AgentStore, RecordingRow, RecordingState
from contract import PayloadError, now_iso, parse_iso, to_iso

if TYPE_CHECKING:
    from agent.timetable.model import Timetable
    from streaming.recorder import Recorder
    from streaming.segments import Recording

log = logging.getLogger(__name__)


# A recording started this long before its lesson (a teacher pressing record early) belongs to it.
RESUME_MARGIN = timedelta(minutes=10)
RESOURCE = "resource"  # agent.recording.resource.LAYOUT: the layout column of a source's own file

# Whether a recording's lesson (an agent.db row as `RecordingRow.to_dict`) is on: True, over: False, unknown: None.
LessonOn = Callable[[Mapping[str, Any]], "bool | None"]


def timetable_lesson_on(timetable: Timetable, now: datetime, row: Mapping[str, Any]) -> bool | None:
    """Whether the timetable has the recording's lesson on now (True), over (False), or does not know it (None).

    On means: the lesson to record now has the same name and the recording began on the same day,
    no earlier than `RESUME_MARGIN` before the lesson's start.  Last week's recording of the same
    weekly lesson is over, so it is finished and never continued.
    """
    from agent.timetable.model import plan

    lesson = str(row.get("lesson", ""))
    want = plan(timetable, now).should_record
    if want is not None and want.lesson == lesson:
        try:
            started = parse_iso(str(row.get("started", ""))).astimezone(want.starts.tzinfo)
        except PayloadError:
            return False  # a row we cannot date is not this lesson's
        if started.date() == want.starts.date() and started >= want.starts - RESUME_MARGIN:
            return True
    return False if any(x.name == lesson for x in timetable.lessons) else None


class Finisher:
    """Finishes the interrupted recordings whose lesson is over (shares the recording service's lock)."""

    def __init__(
        self,
        config: RecordingConfig,
        store: AgentStore,
        alarms: Alarms,
        lock: asyncio.Lock,
        lesson_on: LessonOn,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`lock` is held while a row changes state, so ``record.start`` never resumes one being finished."""
        self.config = config
        self.store = store
        self.alarms = alarms
        self.lock = lock
        self.lesson_on = lesson_on
        self.clock = clock

    async def finish_over(self) -> int:
        """Finish (remux) every interrupted recording whose lesson is over; how many were finished."""
        done = 0
        rows = self.store.recordings_in(RecordingState.INTERRUPTED, RecordingState.FINISHING)
        for row in sorted(rows, key=lambda r: r.layout == RESOURCE):  # a source's file after its recording
            async with self.lock:
                fresh = self.store.recording(row.id)
                if fresh is None or not (fresh.state == RecordingState.FINISHING or self.over(fresh)):
                    continue
                row = replace(fresh, state=RecordingState.FINISHING)
                self.store.recording_put(row)  # no longer resumable: record.start begins a new recording
            done += await self._finish(row)
        return done

    def over(self, row: RecordingRow) -> bool:
        """Whether an interrupted recording's lesson is over (so it will not be continued)."""
        if row.state != RecordingState.INTERRUPTED:
            return False
        if row.layout == RESOURCE:  # a source's own file ends with the composed recording
            main = self.store.recording(row.id.rpartition(".")[0])
            return main is None or main.state not in (RecordingState.INTERRUPTED, RecordingState.RECORDING)
        verdict = self.lesson_on(row.to_dict())
        if verdict is not None:
            return not verdict
        try:
            started = parse_iso(row.started)
        except PayloadError:
            return True  # a row we cannot date cannot be resumed sensibly either
        return self.clock() >= started + timedelta(minutes=self.config.planned_minutes)

    async def _finish(self, row: RecordingRow) -> int:
        """Remux a halted recording into its final MP4 (abandoned, and left ``finishing``, if cancelled)."""
        from agent.recording.resource import finalise_row
        from streaming.segments import RecordingError, finalise, sha256

        cancel = threading.Event()

        def work() -> tuple[Any, int, str]:
            own = row.layout == RESOURCE  # a source's own file: its segments are beside it
            recording = finalise_row(row, cancel) if own else finalise(Path(row.path), cancel=cancel)
            return recording, recording.final.stat().st_size, sha256(recording.final)

        try:
            recording, size, digest = await in_thread(work, on_cancel=cancel.set)
        except (RecordingError, OSError) as exc:
            self.store.recording_put(
                replace(row, state=RecordingState.FAILED, ended=row.ended or now_iso(), error=f"finishing: {exc}")
            )
            message = f"recording {row.id} could not be finished: {exc}"
            self.alarms.raise_(
                "recording_failed", "critical", message, params={"recording": row.id, "lesson": row.lesson}
            )
            return 0
        ended = to_iso(datetime.fromtimestamp(recording.ended, UTC)) if recording.ended else now_iso()
        self.store.recording_put(
            replace(row, state=RecordingState.FINISHED, ended=ended, size=size, sha256=digest, error="")
        )
        log.info("recording %s finished after its lesson: %s, %d frames", row.id, recording.final, recording.frames)
        return 1


def stop_and_finish(recorder: Recorder, detached: Callable[[], None] = lambda: None) -> tuple[Recording, int, str]:
    """Stop and remux (blocking); the recording, the final file's size and SHA-256 (`Recorder.stop`'s `detached`)."""
    from streaming.segments import sha256

    recording = recorder.stop(detached)
    return recording, recording.final.stat().st_size, sha256(recording.final)


def salvage(recorder: Recorder) -> tuple[tuple[Recording, int, str] | str, str]:
    """Finish what a recorder that failed on its own wrote (blocking); what was kept (or why not), and why it failed.

    What was kept is the recording, its final file's size and SHA-256.  The segments on disk are
    remuxed as for a crashed recording; a torn last fragment stays out.
    """
    from streaming.segments import RecordingError, finalise, sha256

    try:
        recorder.halt()  # joins the dead thread; raises with the reason it died
        why = "the recorder stopped by itself"
    except RecordingError as exc:
        cause = exc.__cause__
        why = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)
    try:
        recording = finalise(recorder.out_dir, final=recorder.final)
        return (recording, recording.final.stat().st_size, sha256(recording.final)), why
    except (RecordingError, OSError) as exc:
        return str(exc), why
