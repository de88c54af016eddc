"""Recording when things go wrong: a caller that stops waiting.

Real encoders, a real agent.db, synthetic sources; the failures are real ones (a cancelled
awaiting caller).
"""

from __future__ import annotations

import asyncio
import os
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
from contract import Event, to_iso
from streaming.segments import FINAL_NAME, INDEX_NAME
from streaming.source import Source


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
