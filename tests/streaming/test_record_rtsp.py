"""`classroom-agent record` from a real RTSP camera (GStreamer's server on loopback), checked with ffprobe."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import RtspTestServer

FFPROBE = shutil.which("ffprobe")
pytestmark = pytest.mark.skipif(FFPROBE is None, reason="ffprobe not installed (apt-get install ffmpeg)")
REPO = Path(__file__).resolve().parents[2]


def probe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [str(FFPROBE), "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    data = json.loads(out.stdout)
    return {**{s["codec_type"]: s for s in data["streams"]}, "format": data["format"]}


def record(url: str, out: Path, seconds: float) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "agent.cli", "record", url, "--layout", "single", "--seconds", str(seconds),
            "--out", str(out), "--size", "640x360", "--fps", "25", "--audio", "tone"]  # fmt: skip
    return subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_ten_seconds_from_an_rtsp_camera(rtsp_server: RtspTestServer, tmp_path: Path) -> None:
    proc = record(rtsp_server.url, tmp_path, 10)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    assert "rtsp1: no gaps" in out
    info = probe(tmp_path / "recording.mp4")
    assert info["video"]["codec_name"] == "h264"
    assert (info["video"]["width"], info["video"]["height"]) == (640, 360)
    assert info["video"]["r_frame_rate"] == "25/1"
    assert abs(float(info["format"]["duration"]) - 10) <= 2.0  # within one fragment
    assert info["audio"]["codec_name"] == "aac"


def test_a_camera_that_drops_out_is_reconnected_and_the_gap_reported(
    rtsp_server: RtspTestServer, tmp_path: Path
) -> None:
    proc = record(rtsp_server.url, tmp_path, 14)
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob("segment-*.mp4")) and time.monotonic() < deadline:
        time.sleep(0.1)  # until the recording has started
    time.sleep(2)
    rtsp_server.stop()  # the camera vanishes for a few seconds...
    time.sleep(3)
    rtsp_server.restart()  # ...and comes back
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "rtsp1: 1 gap(s)" in out, out
    info = probe(tmp_path / "recording.mp4")
    # The recording kept its length through the outage (a "no signal" picture meanwhile).
    assert abs(float(info["format"]["duration"]) - 14) <= 2.0
    assert int(info["video"]["nb_read_frames"]) >= 12 * 25
