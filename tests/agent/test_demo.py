"""The README's demo command: devices driven directly, then the centre commanding two rooms."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def test_demo_drives_devices_then_the_fleet(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent.cli",
            "demo",
            "--pause",
            "0",
            "--duration",
            "0",
            "--http",
            "127.0.0.1:0",
            "--data",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # Devices, straight through their profiles.
    assert re.search(r"simulated panel .* at tcp://127\.0\.0\.1:\d+", out)
    assert re.search(r"ok +panel +get_volume .*\{\"volume\": 30\}", out)
    assert re.search(r"no +panel +set_volume +level=150 .*out of range 0\.\.100", out)
    recalled = out.split("preset_recall", 1)[1]
    assert re.search(r"get_position .*\{\"pan\": -600, \"tilt\": 150\}", recalled)
    assert re.search(r"no +camera +home .*not_executable", out)
    assert re.search(r"camera link: \d+ bytes of noise skipped, online=True", out)
    # The fleet: an embedded broker, the dashboard with a login, commands over MQTT.
    assert re.search(r"dashboard: http://127\.0\.0\.1:\d+/ +login: demo / \S+", out)
    assert re.search(r"succeeded room-101 +panel\.volume .*\"volume\": 25", out)
    assert re.search(r"rejected +room-102 +panel\.volume .*out of range", out)
    fleet = out.split("the fleet as the centre sees it:", 1)[1]
    assert re.search(r"room-101 .* online .*panel online \{'power': 'on', 'volume': 25[,}]", fleet)  # then its input
    assert re.search(r"room-102 .* online", fleet)
    assert (tmp_path / "fleet.db").is_file()
    # The live lesson: room-102 teaches room-101 over WebRTC, and pictures flow both ways.
    lesson = out.split("a 专递课堂:", 1)[1]
    assert re.search(r"succeeded room-102 +lesson\.start", lesson)
    assert re.search(r"room-101: connected, frames sent [1-9]\d* / received [1-9]\d*", lesson)
    assert re.search(r"classroom page room-101: http://127\.0\.0\.1:\d+/", lesson)
