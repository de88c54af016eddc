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


def test_rtsp_recorder_keeps_the_cameras_own_h264_and_aac_in_segments_and_a_final_mp4(
    rtsp_server: RtspTestServer, tmp_path: Path
) -> None:
    from streaming.rtsp import RtspPassthrough, RtspRecorder

    with RtspPassthrough(rtsp_server.url) as camera:
        served = bytes(camera.video.codec_context.extradata or b"")  # the camera's SPS/PPS, Annex B
    final = tmp_path / "teacher.mp4"
    recorder = RtspRecorder(tmp_path / "teacher", rtsp_server.url, fragment_s=1.0, segment_s=3.0, final=final)
    recorder.start()
    deadline = time.monotonic() + 60
    while len(list((tmp_path / "teacher").glob("segment-*.mp4"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)  # at least two segments complete
    recording = recorder.stop()
    assert recording.final == final and recording.segments >= 3

    info = probe(final)
    assert info["video"]["codec_name"] == "h264" and info["audio"]["codec_name"] == "aac"
    assert (info["video"]["width"], info["video"]["height"]) == rtsp_server.size
    assert int(info["video"]["nb_read_frames"]) == recording.frames > 0
    import av

    with av.open(str(final)) as container:
        avcc = bytes(container.streams.video[0].codec_context.extradata or b"")
    sps = avcc[8 : 8 + int.from_bytes(avcc[6:8], "big")]  # avcC: the first SPS after its 16-bit length
    assert sps and sps in served  # the camera's own encoder settings: nothing was re-encoded
    index = json.loads((tmp_path / "teacher" / "index.json").read_text())
    assert index["state"] == "finished" and index["final"]["file"] == "../teacher.mp4"
    assert all(s["state"] == "closed" and s["frames"] > 0 for s in index["segments"])
    for segment in index["segments"]:
        assert probe(tmp_path / "teacher" / segment["file"])["video"]["codec_name"] == "h264"


def audio_rms(path: Path) -> float:
    """Root mean square of every decoded audio sample (0 for silence)."""
    import av
    import numpy as np

    total, count = 0.0, 0
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            samples = frame.to_ndarray().astype(np.float64)
            total, count = total + float((samples**2).sum()), count + samples.size
    return (total / count) ** 0.5 if count else 0.0


def test_record_with_the_cameras_microphone(rtsp_server: RtspTestServer, tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "agent.cli", "record", rtsp_server.url, "--seconds", "4", "--out", str(tmp_path),
            "--size", "320x240", "--fps", "10", "--audio", "rtsp1"]  # fmt: skip
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    final = tmp_path / "recording.mp4"
    assert probe(final)["audio"]["codec_name"] == "aac"
    assert audio_rms(final) > 0.05  # the camera's sine wave, not the silent default


def test_record_audio_must_name_an_rtsp_source(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "agent.cli", "record", "synthetic:board", "--seconds", "1",
            "--out", str(tmp_path / "x"), "--audio", "board"]  # fmt: skip
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--audio: got 'board', expected silence, tone, none, mic" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "x").exists()
