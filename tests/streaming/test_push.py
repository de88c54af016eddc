"""The push on its own: SRT through libsrt to a real SRT listener (ffmpeg's), the queue, the push process's pipe."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import pytest
from conftest import PASSPHRASE, listener, srt_missing, udp_port, wait_until
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.backoff import Backoff
from streaming.compose import Compositor, Layout
from streaming.muxing import AudioCodec, Codecs, Encoded, VideoCodec
from streaming.programme import EncoderSettings, ProgrammeEncoder
from streaming.push import Push
from streaming.pusher import frame, read_packet
from streaming.synthetic import SyntheticSource, ToneSource
from streaming.target import parse_target

SIZE = (480, 270)
STREAM_ID = "#!::r=live/s3cr3t-stream-7731,m=publish"


def started_by(root: int) -> dict[int, bytes]:
    """pid -> /proc/PID/cmdline (NULs as spaces) of every living process descended from `root`."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:  # "pid (comm) state ppid ...": comm may hold spaces and parentheses
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue  # it ended meanwhile
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    lines = {}
    for pid in found:
        try:
            lines[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
    return lines


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
def test_srt_goes_out_with_its_secrets_on_no_command_line_and_arrives_decodable(
    tmp_path: Path, programme: ProgrammeEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port, received, log = udp_port(), tmp_path / "received.ts", tmp_path / "listener.log"
    platform = listener(port, received, log)
    target = parse_target(f"srt://127.0.0.1:{port}?streamid={STREAM_ID}&passphrase={PASSPHRASE}&latency=200000")
    assert programme.codecs is not None
    push = Push("srt-platform", target, programme.codecs, request_keyframe=programme.request_keyframe, connect_s=15)
    programme.attach(push)
    push.start()
    try:
        assert push.wait_first(30), push.stats()
        ours = {pid: line for pid, line in started_by(os.getpid()).items() if pid != platform.pid}
        platform.wait(timeout=60)  # it takes 4 s of the stream, then leaves
    finally:
        platform.kill()
        programme.detach(push)
        push.stop()
    # Every process the push started is there to look at, and not one shows a secret to the PC's other users.
    assert any(b"streaming.pusher" in line for line in ours.values()), ours
    for secret in (STREAM_ID, PASSPHRASE):
        assert not [line for line in ours.values() if secret.encode() in line], secret
    listened = log.read_text("utf-8", "replace")
    assert platform.returncode == 0, listened[-2000:]
    assert f"accept streamid [{STREAM_ID}]" in listened  # the platform got the streamid (and so the passphrase)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(received)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    streams = {s["codec_type"]: s for s in json.loads(probe.stdout)["streams"]}
    assert streams["video"]["codec_name"] == "h264" and (streams["video"]["width"], streams["video"]["height"]) == SIZE
    assert streams["audio"]["codec_name"] == "aac"
    with av.open(str(received)) as container:  # decodable, not only probed: pictures come out of it
        pictures = [f for f in container.decode(video=0) if (f.width, f.height) == SIZE]
    assert len(pictures) >= 25  # a second or more of the 4 s kept
    assert push.stats()["url"] == f"srt://127.0.0.1:{port}?streamid=***&passphrase=***&latency=200000"
    assert STREAM_ID not in caplog.text and PASSPHRASE not in caplog.text


@pytest.mark.skipif(bool(srt_missing()), reason=srt_missing() or "-")
def test_a_wrong_passphrase_is_said_plainly_and_the_push_keeps_retrying(
    tmp_path: Path, programme: ProgrammeEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port, received, log = udp_port(), tmp_path / "received.ts", tmp_path / "listener.log"
    platform = listener(port, received, log)
    wrong = "not-the-platforms-passphrase"
    target = parse_target(f"srt://127.0.0.1:{port}?streamid={STREAM_ID}&passphrase={wrong}")
    assert programme.codecs is not None
    push = Push("srt-platform", target, programme.codecs, request_keyframe=programme.request_keyframe,
                connect_s=15, backoff=Backoff(base=0.1, cap=0.3))  # fmt: skip
    programme.attach(push)
    push.start()
    try:
        assert not push.wait_first(30)
        assert "wrong passphrase" in push.error and f"srt://127.0.0.1:{port}" in push.error, push.error
        assert wait_until(lambda: push.attempts >= 3, 60), push.stats()  # refused again and again, never given up
        assert push.running and push.stats()["state"] in ("retrying", "connecting")
        assert "wrong passphrase" in push.error
    finally:
        platform.kill()
        programme.detach(push)
        push.stop()
    assert not received.exists() or received.stat().st_size == 0  # nothing got through
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert wrong not in caplog.text and STREAM_ID not in caplog.text
    assert wrong not in str(push.stats()) and STREAM_ID not in str(push.stats())


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
