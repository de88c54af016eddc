"""An idle agent's footprint: CPU and RSS of `classroom-agent run` with 2 simulated devices.

Anchor, measured in the same run: a bare Python process holding one idle aiomqtt connection
to the same broker (the floor of any Python agent that reports over MQTT).
Target: the agent uses < 2 % of one core and < 120 MB RSS.

    .venv/bin/python bench/agent_footprint.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from central.mosquitto import LocalBroker, free_port

ANCHOR = """
import asyncio, sys
from contract.mqtt import BrokerAddress, make_client
async def main():
    async with make_client(BrokerAddress.parse(sys.argv[1]), "anchor"):
        print("ready", flush=True)
        await asyncio.sleep(3600)
asyncio.run(main())
"""

CONFIG = """
agent_id = "bench-room"
site = "bench"
room = "bench"
data_dir = "{data}"
[broker]
url = "{url}"
[intervals]
telemetry_s = 10
[http]
port = {port}
[[devices]]
id = "panel"
profile = "samsung-mdc"
address = "sim"
[[devices]]
id = "camera"
profile = "sony-visca"
address = "sim"
"""


def measure(proc: subprocess.Popen[bytes], seconds: float) -> tuple[float, float]:
    """CPU % of one core over `seconds`, and RSS in MB at the end (children included)."""
    p = psutil.Process(proc.pid)
    before = p.cpu_times()
    t0 = time.monotonic()
    time.sleep(seconds)
    after = p.cpu_times()
    cpu = (after.user + after.system - before.user - before.system) / (time.monotonic() - t0) * 100
    return cpu, p.memory_info().rss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, LocalBroker(Path(tmp) / "broker") as broker:
        config = Path(tmp) / "site.toml"
        config.write_text(CONFIG.format(data=Path(tmp) / "var", url=broker.url, port=free_port()))
        agent = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--config", str(config)])
        anchor = subprocess.Popen([sys.executable, "-c", ANCHOR, broker.url], stdout=subprocess.PIPE)
        try:
            assert anchor.stdout is not None and anchor.stdout.readline().strip() == b"ready"
            time.sleep(5)  # let both settle (imports, first polls)
            agent_cpu, agent_rss = measure(agent, args.seconds)
            anchor_cpu, anchor_rss = measure(anchor, min(args.seconds, 20))
        finally:
            for proc in (agent, anchor):
                proc.terminate()
                proc.wait(30)
    print(f"idle for {args.seconds:g} s, 2 simulated devices polled every 5 s, telemetry every 10 s")
    print(f"{'classroom-agent run':<36} CPU {agent_cpu:5.2f} % of a core   RSS {agent_rss:6.1f} MB")
    anchor_cpu = max(anchor_cpu, 0.0)
    print(f"{'anchor: bare idle aiomqtt client':<36} CPU {anchor_cpu:5.2f} % of a core   RSS {anchor_rss:6.1f} MB")
    print(f"ratio agent/anchor: CPU {agent_cpu / max(anchor_cpu, 0.01):.1f}x, RSS {agent_rss / anchor_rss:.2f}x"
          f"   (target: < 2 % and < 120 MB)")


if __name__ == "__main__":
    main()
