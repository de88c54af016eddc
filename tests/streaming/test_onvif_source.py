"""An ``onvif:camera`` source: its RTSP URI asked of the camera (GetStreamUri) at start and after a reconnect.

The camera is the ONVIF simulator pointing at a real GStreamer RTSP server; the agent records from it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from rooms import site_toml

from agent.config.site import load_config
from agent.service import Agent
from central.mosquitto import LocalBroker, free_port
from drivers.sim.onvif import OnvifCamera, OnvifServer
from streaming.resolved import ResolvedRtspSource
from streaming.segments import fragments

if TYPE_CHECKING:
    from conftest import RtspTestServer

FFPROBE = shutil.which("ffprobe")
pytestmark = pytest.mark.skipif(FFPROBE is None, reason="ffprobe not installed (apt-get install ffmpeg)")


def write_config(tmp: Path, broker: LocalBroker, camera: str) -> Path:
    return site_toml(
        tmp,
        broker.url,
        f"""[[devices]]
id = "camera"
profile = "onvif"
address = "{camera}"
[sources]
teacher = "onvif:camera"
[recording]
dir = "{tmp / "recordings"}"
layout = "single"
sources = ["teacher"]
size = "320x240"
fps = 10
fragment_s = 1
bitrate_mbps = 1
planned_minutes = 5
disk_min_free_gb = 0
""",
        agent_id="room-5",
        site="s",
        room="r",
    )


async def until(check: object, seconds: float = 60.0) -> None:
    async with asyncio.timeout(seconds):  # a safety deadline, not a timing claim
        while not check():  # type: ignore[operator]
            await asyncio.sleep(0.1)


def video_of(path: Path) -> dict[str, object]:
    command = [str(FFPROBE), "-v", "error", "-select_streams", "v", "-count_frames", "-show_streams", "-of", "json"]
    out = subprocess.run([*command, str(path)], capture_output=True, text=True, check=True, timeout=60)
    streams: list[dict[str, object]] = json.loads(out.stdout)["streams"]
    return streams[0]


async def test_an_onvif_source_records_the_stream_its_camera_names_and_follows_it(
    rtsp_server: RtspTestServer, tmp_path: Path, broker: LocalBroker
) -> None:
    from conftest import RtspTestServer

    camera = OnvifCamera(user="admin", password="pw", rtsp=rtsp_server.url)
    second: RtspTestServer | None = None
    async with OnvifServer(camera, host="127.0.0.1", port=0, report=lambda line: None) as server:
        agent = Agent(load_config(write_config(tmp_path, broker, f"onvif://admin:pw@127.0.0.1:{server.port}")))
        task = asyncio.create_task(agent.run())
        try:
            source = agent.sources["teacher"].source
            assert isinstance(source, ResolvedRtspSource)
            await until(lambda: source.connected)
            assert source.url == rtsp_server.url.replace("rtsp://", "rtsp://admin:pw@")  # GetStreamUri + credentials
            assert [s.url for s in agent.info().sources] == ["onvif:camera"]  # what the centre sees: no password

            started = await agent.table.execute("record.start", {"lesson": "物理"})
            assert started.status == "succeeded", started
            directory = Path(started.result["path"])
            await until(lambda: fragments(p) >= 3 if (p := directory / "segment-0001.mp4").exists() else False)
            stopped = await agent.table.execute("record.stop", {})
            assert stopped.status == "succeeded", stopped
            video = video_of(directory / "recording.mp4")
            assert video["codec_name"] == "h264" and int(str(video["nb_read_frames"])) > 0

            # The camera now streams from elsewhere (it rebooted with another RTSP port), and the old
            # stream is gone: the source loses it, asks the camera again, and plays the new one.
            second = RtspTestServer(free_port())
            await asyncio.to_thread(second.start)
            camera.rtsp = second.url
            asked = source.resolved
            await asyncio.to_thread(rtsp_server.stop)
            await until(lambda: source.resolved > asked and source.connected)
            assert source.url == second.url.replace("rtsp://", "rtsp://admin:pw@")
            await until(lambda: not agent.alarms.open.get(("source_offline", "teacher")))
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            if second is not None:
                await asyncio.to_thread(second.stop)
