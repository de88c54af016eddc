"""FTP delivery throughput: the agent's FtpTransport against `curl -T` to the same FTP server, same run.

One pyftpdlib server (tests/ftp_fixture.py, its own process, loopback) receives the same file from
both, rounds interleaved so both see the same load.  Ours also sends the .sha256 and .json sidecars
and renames the .part file (the small fixed cost a platform's drop needs); curl only stores the file.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from ftp_fixture import FtpServer  # noqa: E402

from agent.config.delivery import DeliveryTarget  # noqa: E402
from agent.recording.ftp import FtpTransport  # noqa: E402
from agent.recording.sidecar import Room, make_job  # noqa: E402
from agent.recording.transfer import Progress  # noqa: E402
from agent.store import RecordingRow  # noqa: E402
from agent.timetable.model import Timetable  # noqa: E402


async def ours(server: FtpServer, file: Path, digest: str, n: int) -> float:
    target = DeliveryTarget("bench", f"ftp://127.0.0.1:{server.port}/ours/", server.user, server.password)
    row = RecordingRow(f"bench-{n}", lesson="bench", started="2026-01-05T00:00:00Z", ended="2026-01-05T00:45:00Z")
    job = make_job(target, Room("bench", "a1", "bench"), row, (file, file.stat().st_size, digest), Timetable())
    start = time.perf_counter()
    await FtpTransport(target).deliver(job, Progress(size=job.size))
    return time.perf_counter() - start


def curl(server: FtpServer, file: Path, n: int) -> float:
    url = f"ftp://127.0.0.1:{server.port}/curl/bench-{n}.mp4"
    start = time.perf_counter()
    subprocess.run(
        ["curl", "-sS", "--ftp-create-dirs", "-u", f"{server.user}:{server.password}", "-T", str(file), url],
        check=True,
        timeout=600,
    )
    return time.perf_counter() - start


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=256, help="file size (MiB)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "recording.mp4"
        file.write_bytes(os.urandom(args.mib * 2**20))
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        with FtpServer(Path(tmp)) as server:
            server.start()
            times: dict[str, list[float]] = {"curl": [], "ours": []}
            for n in range(args.rounds):
                times["curl"].append(curl(server, file, n))
                times["ours"].append(await ours(server, file, digest, n))
            size = file.stat().st_size
            for got in (server.root / "curl" / f"bench-{n}.mp4", server.root / "ours" / f"a1_bench-{n}.mp4"):
                assert got.stat().st_size == size, got  # both arrived whole
    mib = args.mib
    print(f"FTP upload of {mib} MiB to pyftpdlib on loopback, {args.rounds} rounds interleaved, 2 cores")
    for name in ("curl", "ours"):
        median = statistics.median(times[name])
        label = "anchor: curl -T" if name == "curl" else "FtpTransport (+ sidecars, rename)"
        print(f"{label:<36} median {median:6.2f} s   {mib / median:7.1f} MiB/s")
    ratio = statistics.median(times["ours"]) / statistics.median(times["curl"])
    print(f"ratio ours/curl (time) {ratio:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
