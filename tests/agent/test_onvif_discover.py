"""``classroom-agent discover --probe HOST:PORT`` against the simulated camera: lines that paste into a config."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import tomllib
from pathlib import Path

from agent.config.site import parse_config
from drivers.driver import open_driver
from drivers.sim.onvif import OnvifCamera, OnvifServer

REPO = Path(__file__).resolve().parents[2]


async def discover(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent.cli", "discover", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_discover_prints_the_camera_and_the_config_lines_to_paste(tmp_path: Path) -> None:
    camera = OnvifCamera(
        user="admin", password="p@ss word", name="HIKVISION", model="DS-2DE4A425IW-DE", make="Hikvision",
        firmware="V5.6.3", serial="DS2DE4A425-0042", rtsp="rtsp://127.0.0.1:8554/main", rtsp_sub="rtsp://127.0.0.1:8554/sub",
    )  # fmt: skip
    async with OnvifServer(camera, host="127.0.0.1", port=0, discovery_port=0, report=lambda line: None) as server:
        probe = f"127.0.0.1:{server.discovery_port}"
        code, out, err = await discover(
            "--probe", probe, "--timeout", "1", "--user", "admin", "--password", "p@ss word"
        )
        assert code == 0, err
        assert f"camera1: 127.0.0.1:{server.port}  Hikvision DS-2DE4A425IW-DE" in out
        assert "firmware V5.6.3, serial DS2DE4A425-0042" in out
        assert "main  main 1920x1080 H264  rtsp://127.0.0.1:8554/main" in out
        assert "sub   sub 640x360 H264  rtsp://127.0.0.1:8554/sub" in out
        assert "p@ss word" not in out  # only URL-encoded, inside the address to paste

        pasted = tomllib.loads(out)
        assert pasted["devices"] == [
            {"id": "camera1", "profile": "onvif", "address": f"onvif://admin:p%40ss%20word@127.0.0.1:{server.port}"}
        ]
        assert pasted["sources"] == {"camera1": "onvif:camera1"}
        config = parse_config({"agent_id": "a", "site": "s", "room": "r", **pasted}, base=tmp_path)
        (device,) = config.devices
        driver = open_driver(device.profile, device.address, device_id=device.id)
        try:
            assert (await driver.call("get_info")).fields["model"] == "DS-2DE4A425IW-DE"  # the pasted address works
        finally:
            await driver.close()

        # Without credentials: what discovery alone tells, and placeholders to fill in.
        code, out, _ = await discover("--probe", probe, "--timeout", "1")
        assert code == 0 and "HIKVISION DS-2DE4A425IW-DE" in out and "give --user and --password" in out
        assert f'address = "onvif://USER:PASSWORD@127.0.0.1:{server.port}"' in out

        # The password from the environment, and a wrong one: the camera is listed, the refusal said.
        code, out, _ = await discover(
            "--probe", probe, "--timeout", "1", "--user", "admin", env={"CLASSROOM_ONVIF_PASSWORD": "nope"}
        )
        assert code == 0 and "could not ask the camera" in out and "user name or password" in out


async def test_discover_with_nobody_answering_says_so_and_fails() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, out, _ = await discover("--probe", f"127.0.0.1:{port}", "--timeout", "0.5")
    assert code == 1 and f"no ONVIF device answered on 127.0.0.1:{port} within 0.5 s" in out


async def test_discover_refuses_bad_arguments() -> None:
    for args, problem in (
        (("--probe", "nowhere"), "--probe 'nowhere': expected HOST:PORT"),
        (("--timeout", "0"), "--timeout 0: expected 0 < S <= 60"),
        (("--user", "admin"), "--user and --password"),
    ):
        code, _, err = await discover(*args)
        assert code == 2 and problem in err, err
