"""Recording when things go wrong: a caller that stops waiting, a recorder that fails on its own.

Real encoders, a real agent.db, synthetic sources; the failures are real ones (a cancelled
awaiting caller, a recording directory removed mid-recording, a source that raises).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from test_recording import segment_fragments, until, write_config

from agent.alarms import Alarms
from agent.commands.record import add_record_commands
from agent.commands.table import CommandTable
from agent.config.media import UploadConfig
from agent.config.site import load_config
from agent.recording.service import RecordingService
from agent.recording.upload import Uploader
from agent.sources import make_source
from agent.store import AgentStore, RecordingRow, RecordingState
from agent.supervisor import Supervisor
from contract import Event, to_iso
from streaming.segments import FINAL_NAME, INDEX_NAME
from streaming.source import Frame, Source


class Room:
    """A recording service over a real agent.db and synthetic sources, with its command table and alarms."""

    def __init__(self, service: RecordingService, store: AgentStore, events: list[Event]) -> None:
        self.service, self.store, self.events = service, store, events
        self.table = CommandTable()
        add_record_commands(self.table, service)

    async def command(self, name: str, args: dict[str, Any] | None = None) -> Any:
        return await self.table.execute(name, args or {})

    def raised(self, type_: str) -> list[Event]:
        return [e for e in self.events if e.type == type_ and e.action == "raise"]


@asynccontextmanager
async def room(tmp_path: Path, extra: dict[str, Source] | None = None, **kw: Any) -> AsyncIterator[Room]:
    """`extra` sources join the synthetic teacher and students; `kw` replaces [recording] settings."""
    config = load_config(write_config(tmp_path, "mqtt://127.0.0.1:1"))
    assert config.recording is not None
    sources: dict[str, Source] = {n: make_source(f"synthetic:{n}", n, (320, 240), 10) for n in ("teacher", "students")}
    sources |= extra or {}
    store = AgentStore(config.db_path)
    events: list[Event] = []
    service = RecordingService(
        replace(config.recording, **kw), sources, store, Alarms(events.append), lesson_on=lambda row: True
    )
    for source in sources.values():
        source.start()
    try:
        yield Room(service, store, events)
    finally:
        for source in sources.values():
            source.stop()
        store.close()


def encoding(directory: Path) -> list[threading.Thread]:
    """The recorder threads encoding into `directory` (`streaming.recorder` names them after it)."""
    return [t for t in threading.enumerate() if t.name == f"recorder[{directory.name}].encode"]


async def test_a_cancelled_record_stop_still_finishes_the_recording_and_queues_its_upload(tmp_path: Path) -> None:
    async with room(tmp_path) as r:
        started = await r.command("record.start", {"lesson": "物理"})
        assert started.status == "succeeded", started
        directory = Path(started.result["path"])
        await until(lambda: segment_fragments(directory, "segment-0001.mp4") >= 2)

        caller = asyncio.create_task(r.command("record.stop"))
        while r.service.telemetry()["active"]:  # the stop has begun: the recorder is stopping, the remux follows
            await asyncio.sleep(0)
        caller.cancel()  # the caller stops waiting (a lost connection, a shutdown of the door it came through)
        with pytest.raises(asyncio.CancelledError):
            await caller

        again = await r.command("record.stop")  # queued behind the first stop, which carried on
        assert (again.status, again.error) == ("rejected", "not recording")
        row = r.store.recording(directory.name)
        assert row is not None and row.state == RecordingState.FINISHED, row
        final = directory / FINAL_NAME
        assert row.size == final.stat().st_size > 0 and row.sha256
        uploader = Uploader(UploadConfig("http://127.0.0.1:1", "token"), "room-9", r.store)
        assert uploader.telemetry()["pending"] == 1  # queued for upload as usual, no restart needed
        assert not encoding(directory)


async def test_a_cancelled_record_start_leaves_the_service_and_its_recorder_agreeing(tmp_path: Path) -> None:
    async with room(tmp_path) as r:
        # An interrupted recording of this lesson, whose index.json is a FIFO: the recorder, starting,
        # blocks reading it until the test writes it, so the caller is cancelled mid-start for sure.
        config = r.service.config
        assert config is not None
        directory = config.dir / "resumed"
        directory.mkdir(parents=True)
        os.mkfifo(directory / INDEX_NAME)
        started = to_iso(datetime.now(UTC))
        resumable = RecordingRow("resumed", "物理", started=started, path=str(directory), layout="pip")
        r.store.recording_put(replace(resumable, state=RecordingState.INTERRUPTED))

        caller = asyncio.create_task(r.command("record.start", {"lesson": "物理"}))
        index = await asyncio.to_thread(open, directory / INDEX_NAME, "w")  # returns once the recorder reads it
        caller.cancel()
        with index:
            index.write('{"segments": []}')
        with pytest.raises(asyncio.CancelledError):
            await caller

        stopped = await r.command("record.stop")  # queued behind the start, which carried on
        assert stopped.status == "succeeded", (stopped, encoding(directory))  # so it was recording, as it said
        assert stopped.result["id"] == "resumed" and not encoding(directory)
        row = r.store.recording("resumed")
        assert row is not None and row.state == RecordingState.FINISHED and (directory / FINAL_NAME).exists()


class Failing(Source):
    """A source whose frames raise once `fail` is set (a capture driver that breaks mid-lesson)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.fail = threading.Event()

    def _run(self) -> None:
        self.connected = True
        self._stop.wait()

    def latest(self) -> Frame | None:
        if self.fail.is_set():
            raise RuntimeError("capture driver crashed")
        return None


@asynccontextmanager
async def supervised(service: RecordingService, alarms: Alarms) -> AsyncIterator[None]:
    """The service under the agent's supervisor, as in the agent (a crash would restart it, with an alarm)."""
    supervisor = Supervisor(alarms, "room-9")
    supervisor.add("recording", service.run)
    task = asyncio.create_task(supervisor.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_recording_directory_removed_mid_recording_ends_that_recording_with_an_alarm_not_a_restart(
    tmp_path: Path,
) -> None:
    async with room(tmp_path, fragment_s=0.5, segment_s=1.0) as r, supervised(r.service, r.service.alarms):
        started = await r.command("record.start", {"lesson": "物理"})
        directory = Path(started.result["path"])
        await until(lambda: segment_fragments(directory, "segment-0001.mp4") >= 1)
        await asyncio.to_thread(shutil.rmtree, directory)  # the disk is gone: the next segment cannot be written

        failed = await until(lambda: r.raised("recording_failed"))
        assert directory.name in failed[0].message and "No such file or directory" in failed[0].message, failed
        row = r.store.recording(directory.name)
        assert row is not None and row.state == RecordingState.FAILED and "No such file" in row.error, row
        assert r.service.telemetry()["active"] is False and not encoding(directory)

        again = await r.command("record.start", {"lesson": "物理"})
        assert again.status == "succeeded", again
        await until(lambda: segment_fragments(Path(again.result["path"]), "segment-0001.mp4") >= 1)
        assert (await r.command("record.stop")).status == "succeeded"
        assert not r.raised("service_restarted"), r.raised("service_restarted")


async def test_a_source_that_raises_ends_the_recording_keeping_what_was_recorded(tmp_path: Path) -> None:
    board = Failing("board")
    async with (
        room(tmp_path, {"board": board}, fragment_s=0.5, segment_s=1.0) as r,
        supervised(r.service, r.service.alarms),
    ):
        started = await r.command("record.start", {"lesson": "物理", "sources": "teacher,board"})
        directory = Path(started.result["path"])
        await until(lambda: segment_fragments(directory, "segment-0002.mp4") >= 1)
        board.fail.set()

        failed = await until(lambda: r.raised("recording_failed"))
        assert "capture driver crashed" in failed[0].message and directory.name in failed[0].message, failed
        row = await until(lambda: (row := r.store.recording(directory.name)) and row.state != "recording" and row)
        final = directory / FINAL_NAME
        assert row.state == RecordingState.FINISHED and "capture driver crashed" in row.error, row
        assert row.size == final.stat().st_size > 0  # what was recorded until then is kept, and uploaded
        assert r.service.telemetry()["active"] is False and not encoding(directory)

        board.fail.clear()
        again = await r.command("record.start", {"lesson": "物理"})
        assert again.status == "succeeded", again
        assert (await r.command("record.stop")).status == "succeeded"
        assert not r.raised("service_restarted"), r.raised("service_restarted")
