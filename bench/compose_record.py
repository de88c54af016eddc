"""Compose three 1080p30 sources into picture-in-picture and encode H.264: ours against ffmpeg.

Inputs: three 1-second raw yuv420p clips (testsrc2, testsrc, smptehdbars) made by ffmpeg, looped.
Both sides read the same frames from memory/page cache, so no decoding is measured.

- ffmpeg: `-stream_loop -1 -f rawvideo` x3 -> `scale` + two `overlay`s -> libx264 veryfast zerolatency
  -> fragmented MP4.  CPU from getrusage(RUSAGE_CHILDREN).
- ours: the clips converted to BGR once up front (that is what a `Source` hands over), then per
  output frame: `Compositor.compose` + one BGR->I420 conversion + the programme's libx264
  (`streaming.programme.open_video`) + `SegmentWriter.write` (the encoder thread's loop,
  unpaced).  CPU from getrusage(RUSAGE_SELF).
- realtime: the real `Recorder` (paced at 30 fps) over three `Source`s replaying the clips at
  30 fps, to show it keeps real time (skipped frame slots would mean it cannot).

PyAV bundles its own FFmpeg/x264 (newer than Debian's ffmpeg CLI): the ratio compares two builds.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import av  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from streaming.compose import Compositor, Layout  # noqa: E402
from streaming.muxing import Codecs, Encoded, VideoCodec  # noqa: E402
from streaming.programme import EncoderSettings, open_video  # noqa: E402
from streaming.recorder import Recorder, SegmentWriter  # noqa: E402
from streaming.source import Frame, Image, Source  # noqa: E402

W, H, FPS = 1920, 1080, 30
PATTERNS = ("testsrc2", "testsrc", "smptehdbars")


def make_clips(tmp: Path) -> list[Path]:
    clips = []
    for name in PATTERNS:
        path = tmp / f"{name}.yuv"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"{name}=s={W}x{H}:r={FPS}", "-frames:v", str(FPS),
             "-pix_fmt", "yuv420p", "-f", "rawvideo", str(path)],
            check=True,
        )  # fmt: skip
        clips.append(path)
    return clips


def load_bgr(path: Path) -> list[Image]:
    raw = np.fromfile(path, np.uint8).reshape(-1, H * 3 // 2, W)
    return [np.asarray(cv2.cvtColor(f, cv2.COLOR_YUV2BGR_I420), np.uint8) for f in raw]


def cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def layout() -> Layout:
    return Layout("pip", ("main", "inset1", "inset2"), size=(W, H), corner="bottom-right", inset_scale=0.25)


def run_ffmpeg(clips: list[Path], frames: int, out: Path) -> tuple[float, float]:
    views = layout().views()
    inset = views[1]
    graph = (
        f"[1:v]scale={inset.width}:{inset.height}[a];[2:v]scale={inset.width}:{inset.height}[b];"
        f"[0:v][a]overlay={views[1].x}:{views[1].y}[t];[t][b]overlay={views[2].x}:{views[2].y}[v]"
    )
    inputs = []
    for clip in clips:
        inputs += ["-stream_loop", "-1", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{W}x{H}", "-r", str(FPS)]
        inputs += ["-i", str(clip)]
    gop = 2 * FPS
    command = [
        "ffmpeg", "-v", "error", "-nostats", "-y", *inputs, "-filter_complex", graph, "-map", "[v]",
        "-frames:v", str(frames), "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
        "-x264-params", f"keyint={gop}:min-keyint={gop}:scenecut=0",
        "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "2000000", str(out),
    ]  # fmt: skip
    c0, t0 = cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - t0, cpu(resource.RUSAGE_CHILDREN) - c0


def run_ours(sources: list[list[Image]], frames: int, out: Path) -> tuple[float, float]:
    compositor = Compositor(layout(), {})
    names = layout().sources
    yuv = np.empty((H * 3 // 2, W), np.uint8)
    c0, t0 = cpu(resource.RUSAGE_SELF), time.perf_counter()
    encoder = open_video(EncoderSettings((W, H), FPS, keyframe_s=2.0))
    codecs = Codecs(VideoCodec(W, H, Fraction(FPS), Fraction(1, FPS), encoder.extradata or b"", "high"), None)
    writer = SegmentWriter(out, codecs, 2.0)

    def mux(packets: list[av.Packet]) -> None:
        for p in packets:
            writer.write(Encoded("video", bytes(p), p.pts or 0, p.dts or 0, p.duration or 0, bool(p.is_keyframe)))

    for i in range(frames):
        now = time.monotonic()
        picture = compositor.compose(
            {n: Frame(clip[i % FPS], now, i) for n, clip in zip(names, sources, strict=True)}, now
        )
        cv2.cvtColor(picture, cv2.COLOR_BGR2YUV_I420, dst=yuv)
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = i
        mux(encoder.encode(frame))
    mux(encoder.encode(None))
    writer.close()
    return time.perf_counter() - t0, cpu(resource.RUSAGE_SELF) - c0


class ClipSource(Source):
    """Replays preloaded BGR frames at FPS, like a camera delivering decoded pictures."""

    def __init__(self, name: str, clip: list[Image]) -> None:
        super().__init__(name)
        self.clip = clip

    def _run(self) -> None:
        start, i = time.monotonic(), 0
        while not self._stop.wait(max(0.0, start + i / FPS - time.monotonic())):
            self._publish(self.clip[i % len(self.clip)])
            i += 1


def run_realtime(sources: list[list[Image]], seconds: float, out: Path) -> tuple[int, int, float]:
    feeds = [ClipSource(n, clip) for n, clip in zip(layout().sources, sources, strict=True)]
    compositor = Compositor(layout(), feeds)
    recorder = Recorder(out, (W, H), FPS, picture=compositor.render, duration_s=seconds)
    for feed in feeds:
        feed.start()
    c0 = cpu(resource.RUSAGE_SELF)
    recorder.start()
    recorder.wait()
    recording = recorder.stop()
    used = cpu(resource.RUSAGE_SELF) - c0
    for feed in feeds:
        feed.stop()
    return recording.frames, recording.skipped, used


def line(label: str, frames: int, wall: float, cpu_s: float) -> str:
    return f"{label:<34} {frames / wall:6.1f} fps   {cpu_s / frames * 1000:6.1f} ms CPU/frame   ({frames} frames)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="output length per run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians are reported)")
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        sys.exit("ffmpeg not found (apt-get install ffmpeg)")
    frames = int(args.seconds * FPS)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        clips = make_clips(tmp)
        sources = [load_bgr(c) for c in clips]
        results: dict[str, list[tuple[float, float]]] = {"ffmpeg": [], "ours": []}
        for r in range(args.rounds):
            results["ffmpeg"].append(run_ffmpeg(clips, frames, tmp / f"ffmpeg{r}.mp4"))
            results["ours"].append(run_ours(sources, frames, tmp / f"ours{r}.mp4"))
        rt_frames, rt_skipped, rt_cpu = run_realtime(sources, args.seconds, tmp / "realtime")
    ffmpeg_v = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    print(f"3 x {W}x{H}@{FPS} -> {W}x{H} pip (1 full + 2 insets 480x270) -> H.264 veryfast zerolatency, fMP4")
    print(f"{frames} frames per run, {args.rounds} interleaved rounds, medians; {_cores()} cores")
    print(f"anchor: {ffmpeg_v}; ours: PyAV's bundled FFmpeg/x264 (a different build)")
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in results.items()}
    print(line("ffmpeg overlay (Debian CLI)", frames, *med["ffmpeg"]))
    print(line("ours compose+convert+encode", frames, *med["ours"]))
    ratio = med["ffmpeg"][0] / med["ours"][0]
    cpu_ratio = med["ours"][1] / med["ffmpeg"][1]
    print(f"throughput ours/ffmpeg {ratio:.2f}x (target >= 0.8)   CPU per frame ours/ffmpeg {cpu_ratio:.2f}x")
    print(
        f"realtime Recorder at {FPS} fps for {args.seconds:.0f} s: {rt_frames} frames written, "
        f"{rt_skipped} slots skipped, {rt_cpu / max(1, rt_frames) * 1000:.1f} ms CPU/frame (incl. 3 sources, remux)"
    )


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    main()
