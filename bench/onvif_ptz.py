"""camera.preset.recall through the full agent stack vs a bare onvif-zeep-async GotoPreset, same simulator, same run.

Both talk to one ONVIF camera simulator (`classroom-agent simulate onvif`, its own process, real HTTP
on loopback):
  stack: Agent (its MQTT link to a local Mosquitto, audit log in agent.db) -> command table
         -> DeviceService -> OnvifDriver -> onvif-zeep-async -> HTTP -> simulator
  bare:  ONVIFCamera(...).create_ptz_service().GotoPreset(...) -> HTTP -> simulator
Rounds are interleaved so that both see the same load; between two requests both wait 20 ms (not
timed), in which the agent's own poll loop reports the camera's new state, as it does after every
command.  Prints both medians (and p95) and the ratio; goal: stack <= 1.2 x bare.

    .venv/bin/python bench/onvif_ptz.py [--n 500]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from central.mosquitto import LocalBroker, free_port

USER, PASSWORD = "admin", "bench-pass"
PAUSE_S = 0.02
CONFIG = """
agent_id = "bench-room"
site = "bench"
room = "bench"
data_dir = "{data}"
[broker]
url = "{broker}"
[http]
port = {port}
[[devices]]
id = "camera"
profile = "onvif"
address = "onvif://{user}:{password}@127.0.0.1:{camera}"
poll_s = 5
"""


def start_simulator() -> tuple[subprocess.Popen[str], int]:
    command = [sys.executable, "-m", "agent.cli", "simulate", "onvif", "--at", "http://127.0.0.1:0"]
    command += ["--user", USER, "--password", PASSWORD]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()  # "simulating onvif (...) at http://127.0.0.1:PORT/onvif/device_service"
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # it prints every request: keep the pipe drained
    port = int(line.rsplit(":", 1)[1].split("/")[0])
    return proc, port


async def stack_rounds(agent: object, n: int) -> list[float]:
    from agent.service import Agent

    assert isinstance(agent, Agent)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        outcome = await agent.table.execute("camera.preset.recall", {"device": "camera", "preset": 1}, by="bench")
        times.append(time.perf_counter() - t0)
        assert outcome.status == "succeeded", outcome
        await asyncio.sleep(PAUSE_S)
    return times


async def bare_rounds(ptz: object, token: str, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        await ptz.GotoPreset({"ProfileToken": "main", "PresetToken": token})  # type: ignore[attr-defined]
        times.append(time.perf_counter() - t0)
        await asyncio.sleep(PAUSE_S)
    return times


async def run(n: int, camera_port: int, broker_url: str, data: Path) -> tuple[list[float], list[float]]:
    from onvif import ONVIFCamera

    from agent.config.site import load_config
    from agent.service import Agent

    config = data / "site.toml"
    config.write_text(
        CONFIG.format(data=data, broker=broker_url, port=free_port(), user=USER, password=PASSWORD, camera=camera_port)
    )
    agent = Agent(load_config(config))
    task = asyncio.create_task(agent.run())
    bare = ONVIFCamera("127.0.0.1", camera_port, USER, PASSWORD, no_cache=True, adjust_time=True)
    try:
        async with asyncio.timeout(30):
            await agent.link.wait_connected()
            saved = await agent.table.execute("camera.preset.save", {"device": "camera", "preset": 1}, by="bench")
            assert saved.status == "succeeded", saved
            await bare.update_xaddrs()
            ptz = await bare.create_ptz_service()
            (preset,) = await ptz.GetPresets({"ProfileToken": "main"})
        await stack_rounds(agent, 20)  # warm-up: connections, the presets the driver keeps
        await bare_rounds(ptz, preset.token, 20)
        stack: list[float] = []
        raw: list[float] = []
        for _ in range(5):
            raw += await bare_rounds(ptz, preset.token, n // 5)
            stack += await stack_rounds(agent, n // 5)
        return stack, raw
    finally:
        await bare.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def summary(name: str, times: list[float]) -> float:
    med = statistics.median(times) * 1000
    p95 = statistics.quantiles(times, n=20)[-1] * 1000
    print(f"{name:<44} median {med:7.3f} ms   p95 {p95:7.3f} ms   (n={len(times)})")
    return med


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=500)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    simulator, camera_port = start_simulator()
    try:
        with tempfile.TemporaryDirectory() as tmp, LocalBroker(Path(tmp) / "broker") as broker:
            stack, raw = asyncio.run(run(args.n, camera_port, broker.url, Path(tmp)))
    finally:
        simulator.terminate()
        simulator.wait(10)
    print(f"GotoPreset round trip to the ONVIF simulator over loopback HTTP, {os.cpu_count()} cores")
    r = summary("bare onvif-zeep-async GotoPreset", raw)
    s = summary("agent: camera.preset.recall (table..driver)", stack)
    verdict = "met" if s / r <= 1.2 else "not met"
    print(f"ratio stack/bare {s / r:.2f}x   stack adds {s - r:+.3f} ms median (goal <= 1.2x: {verdict})")


if __name__ == "__main__":
    main()
