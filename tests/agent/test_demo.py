"""The README's demo command: simulated panel (TCP) and camera (pty) driven end to end."""

from __future__ import annotations

import re
import subprocess
import sys


def test_demo_drives_panel_and_camera() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agent.cli", "demo", "--pause", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert re.search(r"simulated panel .* at tcp://127\.0\.0\.1:\d+", out)
    assert re.search(r"ok +panel +get_volume .*\{\"volume\": 30\}", out)
    assert re.search(r"no +panel +set_volume +level=150 .*out of range 0\.\.100", out)
    recalled = out.split("preset_recall", 1)[1]
    assert re.search(r"get_position .*\{\"pan\": -600, \"tilt\": 150\}", recalled)
    assert re.search(r"no +camera +home .*not_executable", out)
    assert re.search(r"camera link: \d+ bytes of noise skipped, online=True", out)
