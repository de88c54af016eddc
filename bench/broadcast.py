"""What a live broadcast costs on top of the recording, and how late its viewers see the lesson.

Two synthetic 1280x720 25 fps cameras (`SyntheticSource`, which burns the wall clock into every
picture as a machine-readable stamp) composed picture-in-picture with a tone, encoded by the
programme's encoder (libx264 veryfast zerolatency, 2.5 Mbit/s, main profile, AAC) as the agent
does it, and pushed to a real nginx-rtmp on loopback started here (Debian's nginx +
libnginx-mod-rtmp, its own prefix and ports; HLS on).

- CPU, measured in the same run, rounds interleaved, medians:
  - anchor: the recording alone (fragmented MP4 segments);
  - ours: the recording and a broadcast of the same picture: one encoder, its packets also muxed
    to FLV in a push process (`streaming.pusher`) whose CPU counts too.  Goal: <= 1.15x the anchor.
  - for scale: recording and broadcast each with an encoder of its own (no encode-once).
  CPU is this process plus its push processes (psutil), in cores; nginx's own CPU is left out
  (it is the platform's side).
- Live delay: a reader (PyAV) plays the stream back from nginx over RTMP, as a viewer's player
  would, and for each decoded picture takes now minus the wall clock burned into it when the
  camera drew it: capture to composed, encoded, pushed, relayed by nginx and decoded.  Goal:
  <= 2 s through RTMP (a platform's own CDN and HLS latency aside).

    .venv/bin/python bench/broadcast.py [--seconds 12] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the nginx-rtmp the tests start, with its own config and ports

import av  # noqa: E402
import psutil  # noqa: E402
from nginx_rtmp import LocalNginx, missing  # noqa: E402

from streaming import stamp  # noqa: E402
from streaming.compose import Compositor, Layout  # noqa: E402
from streaming.programme import EncoderSettings, ProgrammeEncoder  # noqa: E402
from streaming.push import Push  # noqa: E402
from streaming.recorder import Recorder  # noqa: E402
from streaming.synthetic import SyntheticSource, ToneSource  # noqa: E402
from streaming.target import parse_target  # noqa: E402

SIZE, FPS = (1280, 720), 25
SETTINGS = EncoderSettings(SIZE, FPS, keyframe_s=2.0, bitrate=2_500_000, profile="main")
KEY = "bench-stream-key"
CONFIGS = ("recording", "recording+broadcast", "two encoders")


def cpu_seconds() -> dict[int, float]:
    """CPU seconds (user + system) of this process and each of its children but nginx, by pid."""
    found = {}
    me = psutil.Process()
    for process in (me, *me.children(recursive=True)):
        try:
            if process.name() == "nginx":  # the platform's side
                continue
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        found[process.pid] = times.user + times.system
    return found


def cores_used(seconds: float) -> float:
    """Cores used by this process and its children over the next `seconds` (pids alive throughout)."""
    before, start = cpu_seconds(), time.monotonic()
    time.sleep(seconds)
    after, wall = cpu_seconds(), time.monotonic() - start
    return sum(after[pid] - before[pid] for pid in after if pid in before) / wall


def programme(sources: list[SyntheticSource]) -> ProgrammeEncoder:
    compositor = Compositor(Layout("pip", ("teacher", "board"), size=SIZE), sources)
    return ProgrammeEncoder(compositor.render, SETTINGS, ToneSource(), name="bench")


def push_to(nginx: LocalNginx, encoder: ProgrammeEncoder) -> Push:
    assert encoder.codecs is not None
    push = Push("bench", parse_target(nginx.url(KEY)), encoder.codecs, request_keyframe=encoder.request_keyframe)
    encoder.attach(push)
    push.start()
    if not push.wait_first(20):
        raise SystemExit(f"bench: no push to nginx: {push.stats()['last_error']}")
    return push


def run(config: str, nginx: LocalNginx, out: Path, seconds: float) -> tuple[float, int]:
    """Cores used by `config` over `seconds` (after a warm-up), and frame slots skipped."""
    sources = [SyntheticSource("teacher", SIZE, FPS), SyntheticSource("board", SIZE, FPS)]
    with ExitStack() as stack:
        for source in sources:
            source.start()
            stack.callback(source.stop)
        encoder = programme(sources)
        encoder.start()
        stack.callback(encoder.stop)
        recorder = Recorder(out, SIZE, FPS, encoder=encoder, fragment_s=2.0)
        recorder.start()
        stack.callback(recorder.halt)  # no remux: it is not what is measured
        if config != "recording":
            broadcaster = encoder
            if config == "two encoders":
                broadcaster = programme(sources)
                broadcaster.start()
                stack.callback(broadcaster.stop)
            push = push_to(nginx, broadcaster)
            stack.callback(push.stop)
        time.sleep(3.0)  # warm-up: x264's first frames, the push's connection
        skipped = encoder.skipped
        used = cores_used(seconds)
        return used, encoder.skipped - skipped


def live_delay(nginx: LocalNginx, out: Path, seconds: float) -> list[int]:
    """Milliseconds from the camera's burned-in clock to the picture decoded from nginx's RTMP."""
    sources = [SyntheticSource("teacher", SIZE, FPS), SyntheticSource("board", SIZE, FPS)]
    ages: list[int] = []
    with ExitStack() as stack:
        for source in sources:
            source.start()
            stack.callback(source.stop)
        encoder = programme(sources)
        encoder.start()
        stack.callback(encoder.stop)
        recorder = Recorder(out, SIZE, FPS, encoder=encoder, fragment_s=2.0)
        recorder.start()
        stack.callback(recorder.halt)
        push = push_to(nginx, encoder)
        stack.callback(push.stop)
        time.sleep(1.0)
        read_back(nginx.url(KEY), seconds, ages.append)
    return ages


def read_back(url: str, seconds: float, age: Callable[[int], None]) -> None:
    """A viewer's player: decode from `url` for `seconds`, giving each stamped picture's age."""
    # container_options, not options: PyAV 16 crashes (SIGSEGV) opening FLV (RTMP too) with `options`.
    options = {"fflags": "nobuffer"}
    with av.open(url, container_options=options, timeout=15) as container:
        start = time.monotonic()
        for frame in container.decode(video=0):
            found = stamp.read(frame.to_ndarray(format="bgr24"))
            if found is not None:
                age(stamp.age_ms(found[1], int(time.time() * 1000)))
            if time.monotonic() - start > seconds:
                break


def percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=12.0, help="measured seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians are reported)")
    args = parser.parse_args()
    if missing():
        raise SystemExit(f"bench: {missing()}")
    used: dict[str, list[float]] = {c: [] for c in CONFIGS}
    skipped: dict[str, int] = dict.fromkeys(CONFIGS, 0)
    with tempfile.TemporaryDirectory() as tmp, LocalNginx(Path(tmp) / "nginx") as nginx:
        for i in range(args.rounds):
            for config in CONFIGS:
                cores, missed = run(config, nginx, Path(tmp) / f"rec-{i}-{config.replace(' ', '_')}", args.seconds)
                used[config].append(cores)
                skipped[config] += missed
        ages = live_delay(nginx, Path(tmp) / "rec-delay", max(10.0, args.seconds))
    median = {c: statistics.median(v) for c, v in used.items()}
    print(f"{SIZE[0]}x{SIZE[1]}@{FPS} pip of 2 synthetic cameras + tone -> H.264 main 2.5 Mbit/s + AAC; "
          f"{args.rounds} rounds x {args.seconds:g} s, medians; {os.cpu_count()} cores")  # fmt: skip
    for config in CONFIGS:
        rounds = ", ".join(f"{v:.2f}" for v in used[config])
        print(f"{config:22s} {median[config]:5.2f} cores  (rounds {rounds}; slots skipped {skipped[config]})")
    anchor = median["recording"]
    print(f"recording+broadcast / recording alone: {median['recording+broadcast'] / anchor:.2f}x (goal <= 1.15x); "
          f"two encoders / recording alone: {median['two encoders'] / anchor:.2f}x")  # fmt: skip
    if ages:
        middle, p95 = statistics.median(ages), percentile(ages, 0.95)
        print(f"live delay camera clock -> picture decoded from nginx RTMP: median {middle:.0f} ms, "
              f"p95 {p95:.0f} ms, max {max(ages)} ms over {len(ages)} pictures (goal <= 2000 ms)")  # fmt: skip
    else:
        print("live delay: no stamped picture was read back")


if __name__ == "__main__":
    main()
