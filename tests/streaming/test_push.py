"""The push on its own: SRT through Debian's ffmpeg to a real SRT listener, the queue, the push process's pipe."""

from __future__ import annotations

import io
import json
import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streaming.compose import Compositor, Layout
from streaming.muxing import AudioCodec, Codecs, Encoded, VideoCodec
from streaming.programme import EncoderSettings, ProgrammeEncoder
from streaming.push import Push
from streaming.pusher import frame, read_packet
from streaming.synthetic import SyntheticSource, ToneSource
from streaming.target import parse_target

SIZE = (480, 270)
STREAM_ID = "live/s3cr3t-stream-7731"
PASSPHRASE = "classroom-passphrase-42"


def srt_missing() -> str:
    """Why the SRT test cannot run here ("" when it can)."""
    if shutil.which("ffmpeg") is None:
        return "ffmpeg not installed (apt-get install ffmpeg)"
    protocols = subprocess.run(["ffmpeg", "-hide_banner", "-protocols"], capture_output=True, text=True, timeout=30)
    return "" if "\n  srt\n" in protocols.stdout else "this ffmpeg has no SRT (Debian's has libsrt)"


def udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def programme() -> Iterator[ProgrammeEncoder]:
    source = SyntheticSource("teacher", SIZE, 25)
    compositor = Compositor(Layout("single", ("teacher",), size=SIZE), [source])
    encoder = ProgrammeEncoder(compositor.render, EncoderSettings(SIZE, 25, bitrate=600_000), ToneSource(), name="t")
    source.start()
    encoder.start()
    try:
        yield encoder
    finally:
        encoder.stop()
        source.stop()


@pytest.mark.skipif(bool(srt_missing()), reason=srt_missing() or "-")
def test_srt_goes_out_as_mpeg_ts_through_ffmpeg_to_a_real_srt_listener(
    tmp_path: Path, programme: ProgrammeEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port, received = udp_port(), tmp_path / "received.ts"
    listener = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-y", "-i", f"srt://127.0.0.1:{port}?mode=listener&passphrase={PASSPHRASE}",
         "-t", "4", "-c", "copy", str(received)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    target = parse_target(f"srt://127.0.0.1:{port}?streamid={STREAM_ID}&passphrase={PASSPHRASE}")
    assert programme.codecs is not None
    push = Push("srt-platform", target, programme.codecs, request_keyframe=programme.request_keyframe, connect_s=15)
    programme.attach(push)
    push.start()
    try:
        assert push.wait_first(30), push.stats()
        _, stderr = listener.communicate(timeout=60)  # it takes 4 s of the stream, then leaves
    finally:
        listener.kill()
        programme.detach(push)
        push.stop()
    assert listener.returncode == 0, stderr
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(received)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    streams = {s["codec_type"]: s for s in json.loads(probe.stdout)["streams"]}
    assert streams["video"]["codec_name"] == "h264" and (streams["video"]["width"], streams["video"]["height"]) == SIZE
    assert streams["audio"]["codec_name"] == "aac"
    assert push.stats()["url"] == f"srt://127.0.0.1:{port}?streamid=***&passphrase=***"
    assert STREAM_ID not in caplog.text and PASSPHRASE not in caplog.text


def codecs() -> Codecs:
    audio = AudioCodec(48000, 1, Fraction(1, 48000), b"\x11\x88")
    return Codecs(VideoCodec(320, 240, Fraction(25), Fraction(1, 25), b"\x00\x00\x00\x01gd", "main"), audio)


def video(pts: int, keyframe: bool) -> Encoded:
    return Encoded("video", b"\x00" * 100, pts, pts, 1, keyframe)


def test_a_full_queue_costs_frames_not_the_encoder_and_resumes_at_a_keyframe() -> None:
    asked: list[float] = []
    push = Push("slow", parse_target("rtmp://127.0.0.1:1/live/some-key"), codecs(), queue_s=1.0,
                request_keyframe=lambda: asked.append(time.monotonic()))  # fmt: skip
    push.put(video(0, False))  # nothing before the first keyframe: a player could not start there
    assert push.dropped == 1
    started = time.monotonic()
    for pts in range(26):  # the platform takes nothing: more than a second queues up
        push.put(video(pts + 1, pts % 50 == 0))
    assert time.monotonic() - started < 1.0  # put never waited
    assert push.dropped == 1 + 26 and asked  # the queue was dropped whole, a keyframe asked for
    push.put(video(30, False))
    assert push.dropped == 28  # still skipping: a P-frame after a gap would smear the picture
    push.put(video(31, True))
    assert push.dropped == 28  # taken again from the keyframe on
    push.stop()


def test_the_push_pipe_carries_packets_unchanged() -> None:
    sent = [video(1, True), Encoded("audio", b"\x21\x10", -1024, -1024, 1024, True), video(2, False)]
    pipe = io.BytesIO(b"".join(frame(p) for p in sent))
    assert [read_packet(pipe) for _ in sent] == sent
    assert read_packet(pipe) is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_a_damaged_pipe_is_a_clear_error_never_a_crash(data: bytes) -> None:
    pipe = io.BytesIO(data)
    try:
        while read_packet(pipe) is not None:
            pass
    except ValueError as exc:
        assert "packet" in str(exc)
