"""Resource mode in the agent: the composed lesson plus each source in an MP4 of its own, from a real RTSP camera."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from rooms import site_toml

from agent.alarms import Alarms
from agent.config.site import load_config
from agent.recording.service import RecordingService
from agent.service import Agent
from agent.store import AgentStore
from central.mosquitto import LocalBroker
from streaming.segments import fragments

if TYPE_CHECKING:
    from conftest import RtspTestServer

FFPROBE = shutil.which("ffprobe")
pytestmark = pytest.mark.skipif(FFPROBE is None, reason="ffprobe not installed (apt-get install ffmpeg)")


def probe(path: Path) -> dict[str, Any]:
    """codec_type -> stream fields (frames counted by decoding); ffprobe's complaints under "errors"."""
    out = subprocess.run(
        [str(FFPROBE), "-v", "error", "-count_frames", "-show_streams", "-of", "json", str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return {**{s["codec_type"]: s for s in json.loads(out.stdout)["streams"]}, "errors": out.stderr}


def write_config(tmp: Path, broker: LocalBroker, camera: str) -> Path:
    return site_toml(
        tmp,
        broker.url,
        f"""[sources]
teacher = "{camera}"
board = "synthetic:board"
[recording]
dir = "{tmp / "recordings"}"
layout = "pip"
sources = ["board", "teacher"]
size = "640x360"
fps = 10
fragment_s = 1
bitrate_mbps = 1
planned_minutes = 5
disk_min_free_gb = 0
resource_mode = true
""",
        agent_id="room-3",
        site="s",
        room="r",
    )


async def test_resource_mode_records_each_source_beside_the_composed_picture(
    rtsp_server: RtspTestServer, tmp_path: Path, broker: LocalBroker
) -> None:
    agent = Agent(load_config(write_config(tmp_path, broker, rtsp_server.url)))
    task = asyncio.create_task(agent.run())
    try:
        started = await agent.table.execute("record.start", {"lesson": "物理", "teacher": "张老师"})
        assert started.status == "succeeded", started
        directory = Path(started.result["path"])
        segments = [directory / name / "segment-0001.mp4" for name in ("teacher", "board")]
        async with asyncio.timeout(60):
            while min(fragments(p) if p.exists() else 0 for p in segments) < 3:
                await asyncio.sleep(0.2)  # both sources have their own segments going
        stopped = await agent.table.execute("record.stop", {})
        assert stopped.status == "succeeded", stopped
        rows = {r["id"]: r for r in agent.store.recordings()}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    teacher, board = directory / "teacher.mp4", directory / "board.mp4"
    assert stopped.result["resources"] == {"board": str(board), "teacher": str(teacher)}
    composed = probe(directory / "recording.mp4")
    assert (composed["video"]["width"], composed["video"]["height"]) == (640, 360)

    camera = probe(teacher)  # the camera's own H.264 and AAC, at the size it serves
    assert camera["errors"] == "" and camera["video"]["codec_name"] == "h264"
    assert (camera["video"]["width"], camera["video"]["height"]) == rtsp_server.size
    assert camera["audio"]["codec_name"] == "aac" and int(camera["video"]["nb_read_frames"]) > 0
    drawn = probe(board)  # a synthetic source has to be encoded: at the recording's size
    assert drawn["errors"] == "" and (drawn["video"]["width"], drawn["video"]["height"]) == (640, 360)

    main = rows[directory.name]
    assert main["state"] == "finished" and main["layout"] == "pip"
    for name, path in (("teacher", teacher), ("board", board)):
        row = rows[f"{directory.name}.{name}"]
        assert (row["state"], row["lesson"], row["teacher"]) == ("finished", "物理", "张老师")
        assert row["layout"] == "resource"
        assert row["path"] == str(path) and row["sources"] == [name]
        assert (row["size"], row["sha256"]) == (path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest())


async def test_resource_mode_halts_with_the_agent_resumes_and_is_finished_after_the_lesson(
    rtsp_server: RtspTestServer, tmp_path: Path, broker: LocalBroker
) -> None:
    config = load_config(write_config(tmp_path, broker, rtsp_server.url))

    async def record_a_while(segment: str) -> Path:
        """Start (or continue) the lesson in a fresh agent, then stop the agent mid-lesson."""
        agent = Agent(config)
        task = asyncio.create_task(agent.run())
        try:
            started = await agent.table.execute("record.start", {"lesson": "物理"})
            assert started.status == "succeeded", started
            directory = Path(started.result["path"])
            files = [directory / name / segment for name in ("teacher", "board")]
            async with asyncio.timeout(60):
                while min(fragments(p) if p.exists() else 0 for p in files) < 2:
                    await asyncio.sleep(0.2)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return directory

    directory = await record_a_while("segment-0001.mp4")
    assert await record_a_while("segment-0002.mp4") == directory  # the same lesson continues, source files too
    store = AgentStore(config.db_path)
    try:
        assert {r["id"]: r["state"] for r in store.recordings()} == dict.fromkeys(
            [directory.name, f"{directory.name}.teacher", f"{directory.name}.board"], "interrupted"
        )
        finals = [directory / name for name in ("recording.mp4", "teacher.mp4", "board.mp4")]
        assert not any(p.exists() for p in finals)  # halted: nothing remuxed yet
        assert config.recording is not None
        later = datetime.now(UTC) + timedelta(hours=2)  # the lesson is long over
        service = RecordingService(config.recording, {}, store, Alarms(lambda event: None), clock=lambda: later)
        assert service.finisher is not None and await service.finisher.finish_over() == 3
        rows = {r["id"]: r for r in store.recordings()}
    finally:
        store.close()
    for name in ("teacher", "board"):
        row = rows[f"{directory.name}.{name}"]
        final = directory / f"{name}.mp4"
        assert row["state"] == "finished" and row["sha256"] == hashlib.sha256(final.read_bytes()).hexdigest()
        index = json.loads((directory / name / "index.json").read_text())
        assert [s["file"] for s in index["segments"]] == ["segment-0001.mp4", "segment-0002.mp4"]
        info = probe(final)
        assert info["errors"] == "" and int(info["video"]["nb_read_frames"]) == index["final"]["frames"]
    assert rows[directory.name]["state"] == "finished" and probe(directory / "recording.mp4")["errors"] == ""


def index_of(directory: Path) -> dict[str, Any]:
    """A recording's index.json, or {} while there is none."""
    path = directory / "index.json"
    return dict(json.loads(path.read_text())) if path.exists() else {}


async def test_a_camera_outage_is_a_gap_in_its_own_file_which_continues_after_it(
    rtsp_server: RtspTestServer, tmp_path: Path, broker: LocalBroker
) -> None:
    agent = Agent(load_config(write_config(tmp_path, broker, rtsp_server.url)))
    task = asyncio.create_task(agent.run())
    try:
        started = await agent.table.execute("record.start", {"lesson": "物理"})
        assert started.status == "succeeded", started
        directory = Path(started.result["path"])
        own = directory / "teacher"  # the camera's own file, copied packet for packet
        async with asyncio.timeout(60):
            while not (own / "segment-0001.mp4").exists() or fragments(own / "segment-0001.mp4") < 2:
                await asyncio.sleep(0.2)
            await asyncio.to_thread(rtsp_server.stop)  # the camera loses power...
            while [s["state"] for s in index_of(own).get("segments", [])] != ["closed"]:
                await asyncio.sleep(0.2)  # ...the recorder notices and closes its segment
            assert agent.recording.telemetry()["resource_gaps"] == {"teacher": 0}  # not a gap until it is over
            await asyncio.to_thread(rtsp_server.restart)  # ...and comes back
            while not (own / "segment-0002.mp4").exists() or fragments(own / "segment-0002.mp4") < 2:
                await asyncio.sleep(0.2)
        assert agent.recording.telemetry()["resource_gaps"] == {"teacher": 1}
        stopped = await agent.table.execute("record.stop", {})
        assert stopped.status == "succeeded", stopped
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    index = index_of(own)
    first, second = index["segments"]
    (gap,) = index["gaps"]
    assert first["state"] == second["state"] == "closed" and first["frames"] > 0 and second["frames"] > 0
    assert first["started"] <= gap["started"] < gap["ended"] <= second["started"]  # between the two segments
    assert gap["seconds"] > 0 and gap["error"]  # why the camera dropped out
    teacher = probe(directory / "teacher.mp4")  # one file across the outage, nothing torn in it
    assert teacher["errors"] == ""
    assert int(teacher["video"]["nb_read_frames"]) == index["final"]["frames"] == first["frames"] + second["frames"]
