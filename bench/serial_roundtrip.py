"""get_power round trip through the full device stack vs a raw pyserial echo, same run.

Both responders run in their own process on their own pty pair:
  stack: Device(sony-visca) -> SerialTransport -> pty -> `classroom-agent simulate` (profile-driven)
  raw:   pyserial write(5 bytes) + read(5) -> pty -> a bare os.read/os.write echo loop
Prints both medians (and p95), the ratio and the difference; target: difference <= 1 ms.

    .venv/bin/python bench/serial_roundtrip.py [--n 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import threading
import time

import serial

from drivers.device import Device
from drivers.profile import find_profile
from drivers.transport import make_transport

ECHO = r"""
import os, sys, tty
master, slave = os.openpty()
tty.setraw(slave)
print(os.ttyname(slave), flush=True)
while True:
    data = os.read(master, 4096)
    os.write(master, data)
"""
REQUEST = bytes.fromhex("81 09 04 00 FF")


def start(cmd: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    # The simulator prints every exchange: keep its pipe drained or it blocks.
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return proc, line.split(" at ")[-1]


def raw(path: str, n: int) -> list[float]:
    port = serial.Serial(path, 9600, timeout=1)
    times = []
    for _ in range(n + 20):
        t0 = time.perf_counter()
        port.write(REQUEST)
        got = port.read(len(REQUEST))
        times.append(time.perf_counter() - t0)
        assert got == REQUEST, got
    port.close()
    return times[20:]


async def stack(path: str, n: int) -> list[float]:
    profile = find_profile("sony-visca")
    times = []
    async with Device(profile, make_transport(path, profile)) as device:
        for _ in range(n + 20):
            t0 = time.perf_counter()
            result = await device.call("get_power")
            times.append(time.perf_counter() - t0)
            assert result.fields == {"power": "on"}
    return times[20:]


def summary(name: str, times: list[float]) -> float:
    med = statistics.median(times) * 1000
    p95 = statistics.quantiles(times, n=20)[-1] * 1000
    print(f"{name:<32} median {med:7.3f} ms   p95 {p95:7.3f} ms   (n={len(times)})")
    return med


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    echo, echo_path = start([sys.executable, "-c", ECHO])
    sim, sim_path = start([sys.executable, "-m", "agent.cli", "simulate", "sony-visca", "--at", "pty"])
    try:
        # Interleave rounds so both sides see the same machine load.
        raw_t: list[float] = []
        stack_t: list[float] = []
        for _ in range(5):
            raw_t += raw(echo_path, args.n // 5)
            stack_t += asyncio.run(stack(sim_path, args.n // 5))
    finally:
        for proc in (echo, sim):
            proc.terminate()
            proc.wait(5)
    print(f"get_power round trip over a pty pair, {os.cpu_count()} cores")
    r = summary("raw pyserial + bare echo", raw_t)
    s = summary("device stack + simulator", stack_t)
    print(f"ratio stack/raw {s / r:.2f}x   stack adds {s - r:+.3f} ms median (target <= 1 ms)")


if __name__ == "__main__":
    main()
