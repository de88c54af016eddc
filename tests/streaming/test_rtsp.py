"""RtspSource and RtspPassthrough against a real GStreamer RTSP server on loopback."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import av
import pytest
from conftest import wait_until

from drivers.backoff import Backoff
from streaming.reconnect import SourceUnavailable
from streaming.rtsp import RtspPassthrough, RtspSource

if TYPE_CHECKING:  # fixtures come through pytest; only their types are imported
    from conftest import RtspTestServer


@pytest.fixture
def camera(rtsp_server: RtspTestServer) -> Iterator[RtspSource]:
    source = RtspSource("teacher", rtsp_server.url, timeout_s=3, backoff=Backoff(base=0.1, cap=0.5))
    source.start()
    try:
        yield source
    finally:
        source.stop()


def frames_in(source: RtspSource, seconds: float) -> int:
    """How many frames arrive during `seconds`."""
    first = source.wait_newer(0, 15)
    assert first is not None, f"no frame within 15 s: {source.health()}"
    deadline = time.monotonic() + seconds
    newest = first
    while (left := deadline - time.monotonic()) > 0:
        newest = source.wait_newer(newest.index, left) or newest
    return newest.index - first.index


def test_frames_arrive_at_the_served_size_and_rate(rtsp_server: RtspTestServer, camera: RtspSource) -> None:
    count = frames_in(camera, 3.0)

    frame = camera.latest()
    assert frame is not None
    assert frame.size == rtsp_server.size
    assert frame.image.dtype.name == "uint8" and frame.image.shape[2] == 3
    assert count >= rtsp_server.fps * 3 * 0.5  # 20 fps served: at least half of it in 3 s
    health = camera.health()
    assert health.connected and health.error == ""
    assert health.fps >= rtsp_server.fps * 0.5
    assert health.last_frame_age_s is not None and health.last_frame_age_s < 1.0


def test_camera_killed_then_back_reconnects_and_reports_the_gap(
    rtsp_server: RtspTestServer, camera: RtspSource
) -> None:
    assert frames_in(camera, 0.5) > 0

    rtsp_server.stop()
    killed = time.monotonic()
    assert wait_until(lambda: not camera.health().connected, 10), camera.health()
    health = camera.health()
    assert rtsp_server.url in health.error
    last = camera.latest()
    assert last is not None
    assert camera.wait_newer(last.index, 1.0) is last  # frames stop
    down_for = camera.down_for()
    assert down_for is not None and down_for >= 1.0
    assert camera.outages() == []  # not over yet

    rtsp_server.restart()
    restarted = time.monotonic()
    assert camera.wait_newer(last.index, 20) is not last, camera.health()
    health = camera.health()
    assert health.connected and health.error == ""
    assert health.reconnects >= 1
    [outage] = camera.outages()
    assert outage.seconds >= restarted - killed  # from the last frame before the kill to the first after
    assert outage.ended - outage.started == pytest.approx(outage.seconds, abs=0.5)
    assert rtsp_server.url in outage.error
    assert camera.down_for() is None
    assert frames_in(camera, 1.0) >= rtsp_server.fps * 0.5


def test_stop_returns_promptly_while_the_camera_is_down(rtsp_server: RtspTestServer, camera: RtspSource) -> None:
    assert frames_in(camera, 0.2) >= 0
    rtsp_server.stop()
    assert wait_until(lambda: not camera.health().connected, 10)

    started = time.monotonic()
    camera.stop(timeout=10)
    assert time.monotonic() - started < 2.0
    assert not camera.health().connected


def test_unreachable_camera_reports_a_clear_error_and_keeps_retrying(unused_port: int) -> None:
    port = unused_port
    url = f"rtsp://admin:secret@127.0.0.1:{port}/main"
    source = RtspSource("students", url, timeout_s=2, backoff=Backoff(base=0.05, cap=0.2))
    source.start()
    try:
        assert wait_until(lambda: source.reconnects >= 3, 10), source.health()
        health = source.health()
        assert not health.connected
        assert f"rtsp://admin:***@127.0.0.1:{port}/main" in health.error
        assert "refused" in health.error.lower()
        assert "secret" not in health.error
        assert source.latest() is None
        assert source.outages() == []  # it never had frames, so there is no gap to report
    finally:
        source.stop()


def test_passthrough_muxes_the_cameras_h264_and_aac_without_reencoding(
    rtsp_server: RtspTestServer, tmp_path: Path
) -> None:
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe missing: apt-get install ffmpeg")
    out_path = tmp_path / "camera.mp4"
    with RtspPassthrough(rtsp_server.url, timeout_s=3) as camera, av.open(str(out_path), "w") as output:
        assert camera.audio is not None
        video = output.add_stream_from_template(camera.video)
        audio = output.add_stream_from_template(camera.audio)
        video_packets = 0
        for packet in camera.packets():
            if video_packets == 0:
                assert packet.stream is camera.video and packet.is_keyframe
            is_video = packet.stream is camera.video
            packet.stream = video if is_video else audio
            output.mux(packet)
            video_packets += is_video
            if video_packets >= rtsp_server.fps * 2:
                break

    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-of", "json", str(out_path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    streams = {s["codec_type"]: s for s in json.loads(probe.stdout)["streams"]}
    assert streams["video"]["codec_name"] == "h264"
    assert (streams["video"]["width"], streams["video"]["height"]) == rtsp_server.size
    assert int(streams["video"]["nb_read_frames"]) >= rtsp_server.fps * 2 - 1
    assert streams["audio"]["codec_name"] == "aac"


def test_passthrough_to_a_dead_camera_raises_source_unavailable(unused_port: int) -> None:
    url = f"rtsp://127.0.0.1:{unused_port}/main"
    with pytest.raises(SourceUnavailable, match=url):
        RtspPassthrough(url, timeout_s=2).open()
