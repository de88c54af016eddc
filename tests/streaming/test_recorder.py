"""Recording with real encoders, checked with ffprobe and PyAV: fragments, segments, remux, kill -9."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest

from streaming.compose import Compositor, Layout
from streaming.recorder import Recorder, Recording
from streaming.segments import boxes, finalise, fragments
from streaming.synthetic import SyntheticSource, ToneSource

FFPROBE = shutil.which("ffprobe")
pytestmark = pytest.mark.skipif(FFPROBE is None, reason="ffprobe not installed (apt-get install ffmpeg)")

SIZE = (640, 360)
FPS = 30
FRAGMENT_S = 2.0
REPO = Path(__file__).resolve().parents[2]


def ffprobe(path: Path) -> dict[str, dict[str, Any]]:
    """codec_type -> that stream's fields (frames counted by decoding), plus "format"."""
    out = subprocess.run(
        [str(FFPROBE), "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    data = json.loads(out.stdout)
    found = {s["codec_type"]: s for s in data["streams"]}
    found["format"] = data["format"]
    return found


def video_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.video[0]) if p.size]


def decoded_frames(path: Path) -> int:
    """Decode every video frame; a damaged tail (the open fragment at a crash) ends the count."""
    count = 0
    with av.open(str(path)) as container:
        try:
            for _ in container.decode(video=0):
                count += 1
        except av.error.InvalidDataError:
            pass
    return count


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recording]:
    """6 s of two synthetic sources in picture-in-picture with a tone, in segments of 4 s."""
    out = tmp_path_factory.mktemp("rec")
    sources = [SyntheticSource("teacher", SIZE, FPS), SyntheticSource("slides", SIZE, FPS, color=(200, 120, 40))]
    compositor = Compositor(Layout("pip", ("slides", "teacher"), size=SIZE), sources)
    recorder = Recorder(
        out, SIZE, FPS, picture=compositor.render, fragment_s=FRAGMENT_S, segment_s=4.0, audio=ToneSource(),
        duration_s=6.0,
    )  # fmt: skip
    for source in sources:
        source.start()
    try:
        recorder.start()
        assert recorder.wait(60), "recorder did not finish 6 s within 60 s"
        yield recorder.stop()
    finally:
        for source in sources:
            source.stop()


def test_final_mp4_is_h264_aac_of_the_requested_length_and_rate(recording: Recording) -> None:
    probe = ffprobe(recording.final)
    assert probe["video"]["codec_name"] == "h264"
    assert (probe["video"]["width"], probe["video"]["height"]) == SIZE
    assert probe["video"]["r_frame_rate"] == f"{FPS}/1"
    assert probe["audio"]["codec_name"] == "aac"
    assert abs(float(probe["format"]["duration"]) - 6.0) <= FRAGMENT_S
    assert int(probe["video"]["nb_read_frames"]) == recording.frames >= 6 * FPS - recording.skipped


def test_segments_are_fragmented_and_roll_over(recording: Recording) -> None:
    segments = sorted(recording.out_dir.glob("segment-*.mp4"))
    assert [p.name for p in segments] == ["segment-0001.mp4", "segment-0002.mp4"]
    first = boxes(segments[0])
    assert [kind for kind, _, _ in first[:2]] == ["ftyp", "moov"]  # empty moov up front: playable at once
    assert fragments(segments[0]) >= 2  # 4 s in fragments of <= 2 s
    for path in segments:
        assert int(ffprobe(path)["video"]["nb_read_frames"]) > 0


def test_final_mp4_is_faststart_and_a_remux_not_a_reencode(recording: Recording) -> None:
    kinds = [kind for kind, _, _ in boxes(recording.final)]
    assert "moof" not in kinds
    assert kinds.index("moov") < kinds.index("mdat")
    segments = sorted(recording.out_dir.glob("segment-*.mp4"))
    # same compressed bytes, frame for frame: nothing was decoded or encoded again
    assert video_packets(recording.final) == [p for s in segments for p in video_packets(s)]
    final, first = ffprobe(recording.final)["video"], ffprobe(segments[0])["video"]
    for key in ("profile", "level", "pix_fmt", "width", "height", "has_b_frames"):
        assert final[key] == first[key]


def test_index_lists_every_segment_with_its_checksum(recording: Recording) -> None:
    index = json.loads(recording.index.read_text())
    assert index["state"] == "finished"
    assert [s["file"] for s in index["segments"]] == ["segment-0001.mp4", "segment-0002.mp4"]
    for segment in index["segments"]:
        data = (recording.out_dir / segment["file"]).read_bytes()
        assert segment["sha256"] == hashlib.sha256(data).hexdigest()
        assert segment["bytes"] == len(data)
        assert segment["state"] == "closed"
        assert segment["ended"] > segment["started"]
    assert sum(s["frames"] for s in index["segments"]) == index["final"]["frames"] == recording.frames
    assert index["final"]["sha256"] == hashlib.sha256(recording.final.read_bytes()).hexdigest()


def run_cli(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "agent.cli", "record", *args]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_kill_9_loses_at_most_the_open_fragment_and_a_rerun_continues(tmp_path: Path) -> None:
    out = tmp_path / "lesson"
    first = out / "segment-0001.mp4"
    common = ["--layout", "pip", "--size", "640x360", "--fps", str(FPS), "--out", str(out)]
    process = run_cli("synthetic:teacher", "synthetic:slides", "--seconds", "30", *common)
    try:
        # a third fragment begun means two complete ones: at least 4 s recorded, about 5 s in
        wait_for(lambda: first.exists() and fragments(first) >= 3, 40, "two complete fragments")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == -signal.SIGKILL
    assert not (out / "recording.mp4").exists()

    survived = decoded_frames(first)
    assert survived >= 2 * FRAGMENT_S * FPS  # >= (5 s - one fragment) * fps
    probe = ffprobe(first)
    assert probe["video"]["codec_name"] == "h264" and int(probe["video"]["nb_read_frames"]) == survived
    crashed_bytes = first.read_bytes()

    rerun = run_cli("synthetic:teacher", "synthetic:slides", "--seconds", "3", *common)
    stdout, stderr = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, stderr
    assert "recording.mp4" in stdout
    assert first.read_bytes() == crashed_bytes  # the crashed segment is left as it was
    index = json.loads((out / "index.json").read_text())
    states = [(s["file"], s["state"]) for s in index["segments"]]
    assert states == [("segment-0001.mp4", "recovered"), ("segment-0002.mp4", "closed")]
    recovered = index["segments"][0]["frames"]  # the complete fragments: a torn one is left out whole
    assert survived - FRAGMENT_S * FPS <= recovered <= survived
    final_frames = int(ffprobe(out / "recording.mp4")["video"]["nb_read_frames"])
    assert final_frames == recovered + index["segments"][1]["frames"] == index["final"]["frames"]


def test_a_low_bitrate_recording_is_on_disk_fragment_by_fragment(tmp_path: Path) -> None:
    # A small picture makes fragments smaller than FFmpeg's I/O buffer: unless each fragment is
    # flushed, a kill -9 after 6 s left only the file's 28-byte header on disk.
    out = tmp_path / "lesson"
    first = out / "segment-0001.mp4"
    process = run_cli("synthetic", "--size", "320x180", "--fps", str(FPS), "--seconds", "30", "--out", str(out))
    try:
        wait_for(first.exists, 40, "the first segment")
        time.sleep(6)  # three fragments' worth of recording
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        process.kill()
        process.communicate()
    assert decoded_frames(first) >= FRAGMENT_S * FPS


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["synthetic", "--layout", "mosaic"], "layout 'mosaic'"),
        (["synthetic", "--layout", "pip"], "got 1 sources, expected 2 to 3"),
        (["synthetic", "--size", "big"], "--size 'big'"),
        (["ftp://camera"], "expected rtsp://"),
        (["synthetic", "--seconds", "0"], "must be positive"),
    ],
)
def test_bad_record_arguments_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    argv = [*args] if "--seconds" in args else [*args, "--seconds", "1"]
    process = run_cli(*argv, "--out", str(tmp_path / "x"))
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    assert len(stderr.strip().splitlines()) == 1 and message in stderr
    assert not (tmp_path / "x").exists()


def test_the_cli_does_not_import_the_media_stack_until_record_runs() -> None:
    code = "import sys, agent.cli; agent.cli._parser(); print(sorted({'av', 'cv2', 'numpy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def decode_errors(path: Path) -> tuple[int, int]:
    """(frames decoded, packets that failed to decode), going through every packet to the end."""
    frames = errors = 0
    with av.open(str(path)) as container:
        for packet in container.demux(container.streams.video[0]):
            try:
                frames += len(packet.decode())
            except av.error.InvalidDataError:
                errors += 1
    return frames, errors


def test_a_fragment_torn_by_a_crash_mid_write_stays_out_of_the_final_mp4(tmp_path: Path) -> None:
    source = SyntheticSource("teacher", (320, 240), 10)
    compositor = Compositor(Layout("single", ("teacher",), size=(320, 240)), [source])
    source.start()
    try:
        recorder = Recorder(
            tmp_path / "whole", (320, 240), 10, picture=compositor.render, fragment_s=0.5, duration_s=3.0,
            audio=ToneSource(),
        )  # fmt: skip
        recorder.start()
        assert recorder.wait(60)
        recorder.halt()
    finally:
        source.stop()
    # What a kill -9 in the middle of writing the last fragment leaves: its moof, half its mdat,
    # and an index that still calls the segment open.
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    segment = crashed / "segment-0001.mp4"
    shutil.copy(tmp_path / "whole" / "segment-0001.mp4", segment)
    _, offset, size = [box for box in boxes(segment) if box[0] == "mdat"][-1]
    os.truncate(segment, offset + size // 2)
    index = json.loads((tmp_path / "whole" / "index.json").read_text())
    index["segments"][0]["state"] = "open"
    (crashed / "index.json").write_text(json.dumps(index))
    whole_frames, _ = decode_errors(tmp_path / "whole" / "segment-0001.mp4")
    torn_frames, torn_errors = decode_errors(segment)
    assert torn_errors >= 1  # FFmpeg hands out the torn packet, which does not decode

    recording = finalise(crashed)
    frames, errors = decode_errors(recording.final)
    assert errors == 0 and frames == recording.frames
    assert whole_frames - 5 <= frames < whole_frames  # everything but the torn fragment (0.5 s at 10 fps)
    checked = subprocess.run(
        [str(FFPROBE), "-v", "error", "-count_packets", "-count_frames", "-show_streams", "-of", "json",
         str(recording.final)], capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert checked.stderr == ""  # no corrupt packet, no decode error
    video = next(s for s in json.loads(checked.stdout)["streams"] if s["codec_type"] == "video")
    assert int(video["nb_read_frames"]) == int(video["nb_read_packets"]) == frames
    assert segment.stat().st_size == offset + size // 2  # the crashed segment itself is left as it was


def test_a_cancelled_remux_leaves_no_final_file(recording: Recording, tmp_path: Path) -> None:
    import threading

    from streaming.segments import RecordingError, remux

    cancel = threading.Event()
    cancel.set()  # an agent stopping while it finishes a lesson
    dest = tmp_path / "recording.mp4"
    with pytest.raises(RecordingError, match="remux cancelled"):
        remux(sorted(recording.out_dir.glob("segment-*.mp4")), dest, cancel)
    assert list(tmp_path.iterdir()) == []  # neither the final file nor its .part
