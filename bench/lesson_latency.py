"""Glass-to-glass latency and sender CPU of a live lesson: encode once against one encoder per peer.

A 1280x720 30 fps test pattern (`SyntheticSource`, which burns its frame counter and the wall
clock into every picture) is sent to 1 and then 3 receivers over real WebRTC on loopback:

- ours: one `VideoEncoder` (libx264 veryfast, zerolatency, 2 Mbit/s) shared by every `Peer`;
  each peer only packetises the shared packets.
- baseline (anchor, same run): aiortc's default, a track yielding raw `av.VideoFrame`s, so every
  `RTCRtpSender` converts and encodes on its own (aiortc's H.264 encoder: x264 preset `medium`).

The sender runs in its own process (its CPU time is read with psutil), and so does each receiver
(a `streaming.rtc.Peer`, as a remote classroom's agent would). Latency is the wall clock when a receiver's decoder hands
over a picture minus the wall clock burned into it when it was drawn (both on this machine's clock).
Targets: with 3 receivers latency median <= 100 ms, p95 <= 150 ms; sender CPU(3)/CPU(1) <= 1.3.

With `--load`, only ours runs, without and then with two busy loops per core beside it (a PC also
running courseware): the encoder should degrade (its level is printed) instead of freezing.

Needs a loopback-only network namespace (WebRTC must not probe the LAN):

    unshare -n sh -c 'ip link set lo up && .venv/bin/python bench/lesson_latency.py [--seconds 20]'
    scripts/loopback-ns .venv/bin/python bench/lesson_latency.py --seconds 5     # quick run
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from multiprocessing.connection import Connection

import aioice.ice
import av
import psutil
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from streaming import stamp
from streaming.encoding import VideoEncoder
from streaming.ice import IceSettings
from streaming.remote import RemoteVideo
from streaming.rtc import Peer
from streaming.source import Source
from streaming.synthetic import SyntheticSource

SIZE = (1280, 720)
FPS = 30
BITRATE = 2_000_000
ICE = IceSettings(host_addresses=("127.0.0.1",))
MODES = ("ours", "baseline")


# --- the sender, in a process of its own ----------------------------------------------------


def sender_process(mode: str, receivers: int, conn: Connection) -> None:
    """Child process: send the pattern to `receivers` peers until the parent says stop."""
    asyncio.run(_send(mode, receivers, conn))


async def _send(mode: str, receivers: int, conn: Connection) -> None:

    source = SyntheticSource("teacher", size=SIZE, fps=FPS)
    source.start()
    try:
        if mode == "ours":
            await _send_ours(source, receivers, conn)
        else:
            await _send_baseline(source, receivers, conn)
    finally:
        source.stop()


async def _send_ours(source: Source, receivers: int, conn: Connection) -> None:

    encoder = VideoEncoder(source, size=SIZE, fps=FPS, bitrate=BITRATE)
    peers = [Peer(f"bench-tx{i}", ICE, send={"teacher": encoder}) for i in range(receivers)]
    try:
        conn.send([await peer.create_offer() for peer in peers])
        answers = await asyncio.to_thread(conn.recv)
        for peer, answer in zip(peers, answers, strict=True):
            await peer.accept_answer(answer)
        await asyncio.to_thread(conn.recv)  # "stop"
        conn.send(encoder.stats())
    finally:
        for peer in peers:
            await peer.close()


async def _send_baseline(source: Source, receivers: int, conn: Connection) -> None:
    # aioice never offers 127.0.0.1 by itself (../shared/TRAPS.md); this process has only loopback.
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    pcs = [RTCPeerConnection(RTCConfiguration(iceServers=[])) for _ in range(receivers)]
    h264 = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/H264"]
    offers = []
    for pc in pcs:
        transceiver = pc.addTransceiver(RawTrack(source), direction="sendonly")
        transceiver.setCodecPreferences(h264)
        await pc.setLocalDescription(await pc.createOffer())
        offers.append(pc.localDescription.sdp)
    try:
        conn.send(offers)
        answers = await asyncio.to_thread(conn.recv)
        for pc, answer in zip(pcs, answers, strict=True):
            await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        await asyncio.to_thread(conn.recv)  # "stop"
        conn.send({})
    finally:
        for pc in pcs:
            await pc.close()


class RawTrack(MediaStreamTrack):
    """aiortc's default kind of track: it yields raw frames, and its sender converts and encodes them."""

    kind = "video"

    def __init__(self, source: Source) -> None:
        super().__init__()
        self._id = "teacher"
        self.source = source
        self._index = 0
        self._start = time.monotonic()

    async def recv(self) -> av.VideoFrame:
        frame = None
        while frame is None or frame.index <= self._index:
            frame = await asyncio.to_thread(self.source.wait_newer, self._index, 1.0)
        self._index = frame.index
        video = av.VideoFrame.from_ndarray(frame.image, format="bgr24")
        video.pts = int(max(0.0, frame.captured - self._start) * 90000)
        video.time_base = Fraction(1, 90000)
        return video


# --- the receivers, in this process -----------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """One run: latencies (ms) over the measured window and the sender's CPU."""

    mode: str
    receivers: int
    latencies: list[float]
    frames: list[int]
    cpu_percent: float
    sender: dict[str, object]


def arrival_age_ms(video: RemoteVideo, last: int) -> tuple[int, float | None]:
    """Wait for a picture newer than `last`; (its index, wall ms from drawing to decoding)."""
    frame = video.wait_newer(last, 0.5)
    if frame is None or frame.index <= last:
        return last, None
    stamped = stamp.read(frame.image)
    if stamped is None:
        return frame.index, None
    decoded_ms = (time.time() - (time.monotonic() - frame.captured)) * 1000
    return frame.index, float(stamp.age_ms(stamped[1], int(decoded_ms)))


def receiver_process(index: int, conn: Connection) -> None:
    """Child process: one remote classroom (answers the offer, measures ages while told to)."""
    asyncio.run(_receive(index, conn))


async def _receive(index: int, conn: Connection) -> None:
    peer = Peer(f"bench-rx{index}", ICE, receive_video=1)
    try:
        conn.send(await peer.accept_offer(await asyncio.to_thread(conn.recv)))
        async with asyncio.timeout(30):
            while not any(video.frames for video in peer.incoming.values()):
                await asyncio.sleep(0.1)
        video = next(iter(peer.incoming.values()))
        conn.send("receiving")
        await asyncio.to_thread(conn.recv)  # "measure"
        ages: list[float] = []
        frames_before, last = video.frames, 0
        waiting = asyncio.create_task(asyncio.to_thread(conn.recv), name=f"bench.rx[{index}].stop")
        while not waiting.done():
            last, age = await asyncio.to_thread(arrival_age_ms, video, last)
            if age is not None:
                ages.append(age)
        conn.send((ages, video.frames - frames_before))
    finally:
        await peer.close()


async def run(mode: str, receivers: int, seconds: float, warmup: float, hogs: int = 0) -> Result:
    """A sender process and `receivers` receiver processes; the measured window starts after `warmup`.

    `hogs` busy loops run from the warmup to the end (the sender adapts during the warmup).
    """
    spawn = multiprocessing.get_context("spawn")
    to_sender, sender_end = spawn.Pipe()
    sender = spawn.Process(target=sender_process, args=(mode, receivers, sender_end))
    links = [spawn.Pipe() for _ in range(receivers)]
    rx = [spawn.Process(target=receiver_process, args=(n, end)) for n, (_, end) in enumerate(links)]
    processes = [sender, *rx]
    for process in processes:
        process.start()
    busy: list[subprocess.Popen[bytes]] = []
    try:
        offers = await asyncio.to_thread(to_sender.recv)
        for (link, _), offer in zip(links, offers, strict=True):
            link.send(offer)
        to_sender.send([await asyncio.to_thread(link.recv) for link, _ in links])
        for link, _ in links:
            assert await asyncio.to_thread(link.recv) == "receiving"
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(hogs)]
        await asyncio.sleep(warmup)
        cpu = psutil.Process(sender.pid)
        cpu_before, t0 = cpu.cpu_times(), time.monotonic()
        for link, _ in links:
            link.send("measure")
        await asyncio.sleep(seconds)
        cpu_after, elapsed = cpu.cpu_times(), time.monotonic() - t0
        for link, _ in links:
            link.send("stop")
        measured = [await asyncio.to_thread(link.recv) for link, _ in links]
        to_sender.send("stop")
        stats = await asyncio.to_thread(to_sender.recv)
    finally:
        for hog in busy:
            hog.kill()
            hog.wait()
        for process in processes:
            process.join(timeout=20)
            if process.is_alive():
                process.kill()
    used = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    ages = [age for per, _ in measured for age in per]
    return Result(
        f"{mode}+load" if hogs else mode,
        receivers,
        ages,
        [frames for _, frames in measured],
        100 * used / elapsed,
        stats,
    )


def percentile(values: list[float], fraction: float) -> float:
    """The value below which `fraction` of `values` fall (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))] if ordered else float("nan")


def report(results: list[Result], seconds: float) -> None:
    """Print one line per run, then the CPU ratios and the targets."""
    print(f"1280x720 {FPS} fps, {seconds:g} s measured per run, 2 cores, loopback")
    for r in results:
        fps = ", ".join(f"{f / seconds:.0f}" for f in r.frames)
        print(
            f"{r.mode:9s} {r.receivers} receiver(s): latency median {statistics.median(r.latencies):6.1f} ms"
            f"  p95 {percentile(r.latencies, 0.95):6.1f} ms  (n={len(r.latencies)})"
            f"  sender CPU {r.cpu_percent:5.1f} % of a core  fps at receivers {fps}"
            + (f"  encoder fps {r.sender['fps']}" if "fps" in r.sender else "")
            + (f"  level {r.sender['level']}" if "level" in r.sender else "")
        )
    by = {(r.mode, r.receivers): r for r in results}
    for mode in MODES:
        if (mode, 1) in by and (mode, 3) in by:
            print(f"{mode:9s} CPU(3)/CPU(1) = {by[mode, 3].cpu_percent / by[mode, 1].cpu_percent:.2f}")
    if ("ours", 3) in by:
        ours3 = by["ours", 3]
        print(
            f"targets (ours, 3 receivers): median {statistics.median(ours3.latencies):.1f} <= 100 ms, "
            f"p95 {percentile(ours3.latencies, 0.95):.1f} <= 150 ms; CPU(3)/CPU(1) <= 1.3"
        )


def main() -> None:
    """Run ours and the baseline with 1 and 3 receivers, interleaved, and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--receivers", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--load", action="store_true", help="ours without and with 2 busy loops per core")
    args = parser.parse_args()
    if set(psutil.net_if_addrs()) - {"lo"}:
        sys.exit("run inside a loopback-only namespace: unshare -n sh -c 'ip link set lo up && ...'")
    results = []
    load_before = os.getloadavg()[0]
    for receivers in args.receivers:
        runs = [("ours", 0), ("ours", 2 * (os.cpu_count() or 2))] if args.load else [(m, 0) for m in MODES]
        for mode, hogs in runs:
            result = asyncio.run(run(mode, receivers, args.seconds, args.warmup, hogs))
            print(f"  done: {mode} x{receivers}: {len(result.latencies)} samples", flush=True)
            results.append(result)
    report(results, args.seconds)
    # The machine is shared: a load above ~2 (2 cores) means others took CPU from the receivers too.
    print(f"load average (1 min) before {load_before:.1f}, after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
