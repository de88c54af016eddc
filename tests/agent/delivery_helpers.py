"""What the delivery tests share: a finished recording in a real agent.db, the timetable it fell in, a runner."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.alarms import Alarms
from agent.config.delivery import DeliveryTarget
from agent.recording.delivery import Deliveries
from agent.recording.sidecar import Room
from agent.store import AgentStore
from agent.timetable.parse import parse_timetable
from drivers.backoff import Backoff

SIZE = 1_200_000 + 123
RID = "20250303-080000-数学_第3节"
ROOM = Room("east-school", "room-101", "初一(3)班")
STARTED, ENDED = "2025-03-03T00:00:05Z", "2025-03-03T00:44:50Z"  # Monday 08:00 at +08:00
TIMETABLE = parse_timetable(
    {
        "timezone": "+08:00",
        "lessons": [{"day": 1, "start": "08:00", "end": "08:45", "name": "数学", "teacher": "王老师"}],
    }
)
STEM = "room-101_20250303-080000-数学_第3节"  # the default file_name: {agent}_{recording}


def make_recording(folder: Path) -> tuple[AgentStore, bytes]:
    """A finished recording (its final MP4: random bytes will do) indexed in agent.db under `folder`."""
    content = os.urandom(SIZE)
    where = folder / "recordings" / RID
    where.mkdir(parents=True)
    (where / "recording.mp4").write_bytes(content)
    store = AgentStore(folder / "agent.db")
    row = {"id": RID, "lesson": "数学 第3节", "teacher": "", "started": STARTED, "ended": ENDED,
           "sources": ["teacher", "courseware"], "layout": "pip", "path": str(where), "size": SIZE,
           "sha256": sha(content), "state": "finished", "error": ""}  # fmt: skip
    store.recording_put(row)
    return store, content


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def deliveries(targets: tuple[DeliveryTarget, ...], store: AgentStore, alarms: Alarms | None = None) -> Deliveries:
    return Deliveries(
        targets,
        ROOM,
        store,
        alarms,
        timetable=lambda: TIMETABLE,
        backoff=lambda: Backoff(base=0.05, cap=0.3),
        idle_s=0.05,
        persist_s=0.05,
    )


async def until(condition: Callable[[], Any], timeout: float = 60.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def run_until(service: Deliveries, condition: Callable[[], Any], timeout: float = 60.0) -> None:
    """Run the deliveries until `condition`, then stop them as the agent stopping would (cancelled)."""
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(service.run(), name="delivery")
        try:
            await until(condition, timeout)
        finally:
            task.cancel()


def state(store: AgentStore, target: str) -> dict[str, Any]:
    return store.delivery(RID, target) or {}


def check_arrived(folder: Path, content: bytes, *, suffix: str = ".mp4") -> dict[str, Any]:
    """The recording, its .sha256 and its .json are in `folder`, whole and agreeing; the sidecar."""
    assert (folder / f"{STEM}{suffix}").read_bytes() == content
    assert (folder / f"{STEM}.sha256").read_text() == f"{sha(content)}  {STEM}{suffix}\n"  # sha256sum -c reads it
    metadata: dict[str, Any] = json.loads((folder / f"{STEM}.json").read_text(encoding="utf-8"))
    assert metadata["sha256"] == sha(content) and metadata["size"] == SIZE and metadata["file"] == f"{STEM}{suffix}"
    expected = {"site": "east-school", "room": "初一(3)班", "lesson": "数学 第3节", "subject": "数学",
                "teacher": "王老师", "start": STARTED, "end": ENDED}  # fmt: skip
    assert {k: metadata[k] for k in expected} == expected
    return metadata
