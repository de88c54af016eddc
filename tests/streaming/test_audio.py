"""Real sound in recordings: `AudioFeed`, and a camera's microphone recorded from a real RTSP server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np
import numpy.typing as npt

from drivers.backoff import Backoff
from streaming.audio import AudioFeed
from streaming.recorder import Recorder
from streaming.rtsp import RtspSource

if TYPE_CHECKING:
    from conftest import RtspTestServer


def tone_frame(start: int, samples: int = 1024, rate: int = 44100, frequency: float = 440.0) -> av.AudioFrame:
    """A stereo s16 frame of a sine tone (the kind of thing an AAC decoder does not produce, to resample)."""
    t = np.arange(start, start + samples) / rate
    wave = (0.5 * 32767 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)
    packed = np.repeat(wave[None, :], 2, axis=0).T.reshape(1, -1)  # s16 is packed: L R L R ...
    frame = av.AudioFrame.from_ndarray(packed, format="s16", layout="stereo")
    frame.sample_rate, frame.pts = rate, start
    return frame


def dominant_hz(samples: npt.NDArray[np.float32], rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def test_the_feed_resamples_and_pads_with_silence_when_frames_stop() -> None:
    feed = AudioFeed(48000, 1)
    for i in range(44):  # about a second of 44.1 kHz stereo s16
        feed.push(tone_frame(i * 1024))
    first = feed.read(24000)
    assert first.shape == (1, 24000) and first.dtype == np.float32
    assert 0.3 < float(np.abs(first).max()) < 0.8  # stereo downmixed to mono
    assert abs(dominant_hz(first[0], 48000) - 440) < 5
    rest = feed.read(48000)  # the source stopped: what is left, then silence
    assert float(np.abs(rest[:, :20000]).max()) > 0.3
    assert not rest[:, -20000:].any()
    assert feed.padded >= 20000
    assert not feed.read(1000).any()  # nothing arrives: silence, never a wait


def test_the_feed_is_bounded() -> None:
    feed = AudioFeed(48000, 2, max_s=0.5)
    for i in range(200):
        feed.push(tone_frame(i * 1024))
    assert feed.buffered == 24000
    assert feed.dropped > 0
    assert feed.read(24000).shape == (2, 24000)


def test_a_recording_carries_the_cameras_sound(rtsp_server: RtspTestServer, tmp_path: Path) -> None:
    camera = RtspSource("teacher", rtsp_server.url, timeout_s=3, backoff=Backoff(base=0.1, cap=0.5))
    feed = AudioFeed(48000, 1)
    camera.audio = feed
    camera.start()
    try:
        deadline = time.monotonic() + 15
        while feed.received < 4800 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert feed.received >= 4800, camera.error
        feed.clear()  # start in step with the picture
        black = np.zeros((240, 320, 3), np.uint8)

        def picture() -> npt.NDArray[np.uint8]:
            frame = camera.latest()
            return black if frame is None else frame.image

        recorder = Recorder(
            tmp_path / "rec", (320, 240), 20, picture=picture,
            fragment_s=1.0, segment_s=60.0, audio=feed, duration_s=6.0,
        )  # fmt: skip
        recorder.start()
        assert recorder.wait(30)
        recording = recorder.stop()
    finally:
        camera.stop()
    with av.open(str(recording.final)) as container:
        video_s = float(container.streams.video[0].duration * container.streams.video[0].time_base)
        audio = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])
        rate = container.streams.audio[0].sample_rate
    assert abs(len(audio) / rate - video_s) < 0.3, (len(audio) / rate, video_s)
    assert abs(video_s - 6.0) < 0.5
    middle = audio[rate : len(audio) - rate]  # away from the encoder's start and the edges
    assert float(np.sqrt(np.mean(middle**2))) > 0.01  # not silence
    assert abs(dominant_hz(middle, rate) - 440) < 10
