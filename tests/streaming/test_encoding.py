"""Shared encoders with real libx264 / libopus and real decoders: pacing, keyframes, slow subscribers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from fractions import Fraction

import av
import numpy as np
import pytest

from streaming import stamp
from streaming.adapt import AdaptRules
from streaming.encoding import AudioEncoder, EncoderError, PacketQueue, QueueClosed, VideoEncoder
from streaming.source import Source
from streaming.synthetic import SyntheticSource, ToneSource


class Silent(Source):
    """A source that never delivers a picture (a camera that is not there)."""

    def _run(self) -> None:
        self._stop.wait()


@pytest.fixture
def camera() -> Iterator[SyntheticSource]:
    source = SyntheticSource("teacher", (1280, 720), 30)
    source.start()
    assert source.wait_newer(0, 5) is not None  # else the first pictures are "no signal" black
    yield source
    source.stop()


async def take(queue: PacketQueue, count: int) -> list[av.Packet]:
    async with asyncio.timeout(20):
        return [await queue.get() for _ in range(count)]


def decode(packets: list[av.Packet]) -> list[np.ndarray]:
    decoder = av.CodecContext.create("h264", "r")
    return [frame.to_ndarray(format="bgr24") for packet in packets for frame in decoder.decode(packet)]


async def until(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        await asyncio.sleep(0.02)


async def test_subscriber_starts_at_a_keyframe_scaled_and_stamped(camera: SyntheticSource) -> None:
    encoder = VideoEncoder(camera, size=(640, 360), fps=30, bitrate=600_000)
    queue = encoder.subscribe()
    try:
        packets = await take(queue, 20)
    finally:
        encoder.unsubscribe(queue)
    assert packets[0].is_keyframe and not any(p.is_keyframe for p in packets[1:])
    assert all(p.time_base == Fraction(1, 90000) for p in packets)
    assert all(b.pts > a.pts for a, b in zip(packets, packets[1:], strict=False))
    pictures = decode(packets)
    assert pictures[0].shape == (360, 640, 3)  # scaled from the camera's 1280x720
    counters = [read[0] for read in map(stamp.read, pictures) if read is not None]
    assert len(counters) == 20 and counters == sorted(counters)
    annexb = bytes(packets[0])
    assert annexb.startswith((b"\x00\x00\x00\x01", b"\x00\x00\x01"))  # Annex B with SPS/PPS in-band
    await until(lambda: not encoder.running, 5, "the thread to stop after the last subscriber")
    stats = encoder.stats()
    assert stats["subscribers"] == 0 and stats["frames_encoded"] >= 20 and stats["keyframes"] >= 1


async def test_no_signal_is_black_and_a_slow_source_is_repeated() -> None:
    absent = Silent("absent")
    encoder = VideoEncoder(absent, size=(320, 180), fps=30, bitrate=200_000)
    queue = encoder.subscribe()
    try:
        pictures = decode(await take(queue, 5))
    finally:
        encoder.close()
    assert pictures and all(picture.max() < 40 for picture in pictures)  # black, not garbage
    slow = SyntheticSource("slides", (320, 180), 5)
    slow.start()
    assert slow.wait_newer(0, 5) is not None
    encoder = VideoEncoder(slow, size=(320, 180), fps=30, bitrate=200_000)
    queue = encoder.subscribe()
    try:
        pictures = decode(await take(queue, 30))
    finally:
        encoder.close()
        slow.stop()
    counters = [read[0] for read in map(stamp.read, pictures) if read is not None]
    assert len(counters) == 30 and len(set(counters)) <= 10  # 30 frames sent from ~5 source frames


async def test_slow_subscriber_skips_to_a_keyframe_instead_of_lagging(camera: SyntheticSource) -> None:
    encoder = VideoEncoder(camera, size=(640, 360), fps=30, bitrate=600_000, gop_s=600)  # no periodic IDR
    slow = encoder.subscribe()
    try:
        await take(slow, 5)
        keyframes = int(encoder.stats()["keyframes"])  # type: ignore[call-overload]
        await asyncio.sleep(1.0)  # the subscriber reads nothing for ~30 frames: its queue overflows
        resumed = await take(slow, 10)
    finally:
        encoder.close()
    assert int(encoder.stats()["keyframes"]) > keyframes  # type: ignore[call-overload]  # the skip asked for one
    assert slow.dropped >= 20  # the backlog was dropped, not delivered late
    assert resumed[0].is_keyframe  # never a P-frame after a gap
    pictures = decode(resumed)
    counters = [read[0] for read in map(stamp.read, pictures) if read is not None]
    assert len(counters) == 10 and counters == sorted(counters)
    with pytest.raises(QueueClosed):
        await take(slow, 1)


async def test_keyframe_requests_coalesce(camera: SyntheticSource) -> None:
    encoder = VideoEncoder(camera, size=(320, 180), fps=30, bitrate=200_000, gop_s=600)
    queue = encoder.subscribe()
    try:
        await take(queue, 5)
        for _ in range(10):  # ten receivers lost a packet at once
            encoder.request_keyframe()
        packets = await take(queue, 15)
    finally:
        encoder.close()
    assert sum(p.is_keyframe for p in packets) == 1


async def test_a_lower_frame_rate_keeps_the_keyframe_interval_in_seconds(camera: SyntheticSource) -> None:
    # Every window calls for a step down; only frame rate may go (the size floor is the full height): 30 -> 10 fps.
    rules = AdaptRules(down_load=1e-6, min_fps=10, min_height=180)
    encoder = VideoEncoder(camera, size=(320, 180), fps=30, bitrate=200_000, gop_s=1.0, prefer="fps", adapt=rules)
    queue = encoder.subscribe()
    try:
        await until(lambda: encoder.level.fps == 10, 30, "down to 10 fps")
        packets = await take(queue, 60)  # 6 s at 10 fps; x264 alone would put its keyframes 3 s apart
    finally:
        encoder.close()
    keys = [float(p.pts * p.time_base) for p in packets if p.is_keyframe]
    gaps = [b - a for a, b in zip(keys, keys[1:], strict=False)]
    assert len(keys) >= 4 and max(gaps) < 2.0, keys


async def test_audio_is_opus_in_20ms_packets_of_the_tone() -> None:
    encoder = AudioEncoder("mic", ToneSource(1000, level=0.3))
    queue = encoder.subscribe()
    try:
        packets = await take(queue, 50)
    finally:
        encoder.close()
    assert [p.pts for p in packets[:3]] == [0, 960, 1920] and all(p.time_base == Fraction(1, 48000) for p in packets)
    decoder = av.CodecContext.create("opus", "r")
    samples = np.concatenate([f.to_ndarray().reshape(-1) for p in packets for f in decoder.decode(p)])
    spectrum = np.abs(np.fft.rfft(samples[4800:]))
    peak_hz = np.argmax(spectrum) * 48000 / len(samples[4800:])
    assert abs(peak_hz - 1000) < 10


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": (641, 360)}, "must be even"),
        ({"fps": 0}, "bad fps"),
        ({"bitrate": 5}, "bitrate"),
    ],
)
def test_bad_video_settings_name_the_setting(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(EncoderError, match=message):
        VideoEncoder(SyntheticSource("cam", (320, 180)), **kwargs)  # type: ignore[arg-type]


def test_bad_audio_source_rate_is_refused() -> None:
    with pytest.raises(EncoderError, match="44100 Hz"):
        AudioEncoder("mic", ToneSource(sample_rate=44100))
