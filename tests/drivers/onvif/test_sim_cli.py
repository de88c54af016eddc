"""`classroom-agent simulate onvif` as a technician runs it: a real process, a real client."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest
from onvif_sim_client import Clients, DigestToken, call, camera_offset

REPO = Path(__file__).resolve().parents[3]


async def read_line(stream: asyncio.StreamReader) -> str:
    return (await asyncio.wait_for(stream.readline(), timeout=30)).decode().strip()


async def test_simulate_onvif_serves_until_sigterm_printing_each_request() -> None:
    argv = ["simulate", "onvif", "--at", "http://127.0.0.1:0", "--user", "teacher", "--password", "pw"]
    argv += ["--rtsp", "rtsp://127.0.0.1:8554/room", "--discovery-port", "0", "--clock-offset", "7200"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent.cli", *argv, cwd=REPO, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    try:
        first = await read_line(proc.stdout)
        assert first.startswith("simulating onvif (Classroom SimPTZ, user teacher) at http://127.0.0.1:")
        url = first.rsplit(" ", 1)[1]
        assert (await read_line(proc.stdout)).startswith("answering WS-Discovery Probes on udp://127.0.0.1:")

        clients = await asyncio.to_thread(Clients.load)
        device = clients.service("devicemgmt", url, None)
        sysdate = await call(device, "GetSystemDateAndTime")
        assert (sysdate.UTCDateTime.Time.Hour - sysdate.LocalDateTime.Time.Hour) % 24 == 16
        offset = camera_offset(sysdate)
        media = clients.service("media", url.replace("device", "media"), DigestToken("teacher", "pw", offset))
        uri = await call(media, "GetStreamUri", {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}, "main")
        assert uri.Uri == "rtsp://127.0.0.1:8554/room"
        assert await read_line(proc.stdout) == "onvif: device GetSystemDateAndTime -> ok"
        assert await read_line(proc.stdout) == "onvif: media GetStreamUri -> ok"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), timeout=30)
    assert code == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--at", "tcp://127.0.0.1:0"], "expected http://HOST:PORT"),
        (["--at", "http://127.0.0.1:0", "--drop-replies", "0.5"], "line faults do not apply"),
        (["--at", "http://127.0.0.1:0", "--rtsp", "http://not-rtsp"], "expected rtsp://"),
    ],
)
async def test_bad_arguments_exit_2_naming_the_problem(extra: list[str], message: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent.cli", "simulate", "onvif", *extra, cwd=REPO, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 2 and message in err.decode()
