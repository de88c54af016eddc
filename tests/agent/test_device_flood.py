"""A running agent whose camera floods its TCP control port: the agent stays small, quiet and answering.

The finding (issue 11): a fake VISCA camera sending 220 MiB in 23 s took the agent to 1.15 GB RSS,
a 677 MB log with a 431 MB line, and a local API that stopped answering.
"""

from __future__ import annotations

import random
from pathlib import Path

import psutil
from rooms import Room, cli, running, until
from test_service import write_config

from central.mosquitto import LocalBroker, free_port
from drivers.profile import find_profile
from drivers.sim.model import Simulator
from drivers.sim.runner import Faults, SimServer

MIB = 1024 * 1024
FLOOD = 96 * MIB
# Generous bounds: an idle agent is well under both; the finding was 1.15 GB and 677 MB.
RSS_GROWTH_BOUND = 200 * MIB
LOG_BOUND = 1 * MIB


async def test_a_camera_flooding_its_tcp_port_leaves_the_agent_answering(tmp_path: Path, broker: LocalBroker) -> None:
    # The camera answers its first polls, then floods: the agent is up and the camera online first.
    faults = Faults(flood_bytes=FLOOD, flood_after=4, rng=random.Random(11))
    port = free_port()
    async with SimServer(Simulator(find_profile("sony-visca")), "tcp://127.0.0.1:0", faults) as camera:
        room = Room(write_config(tmp_path, broker, camera.device_path, http_port=port), port, tmp_path / "agent.log")
        with running([room]):
            await until(room.status, "the agent's local API answering")
            assert room.proc is not None
            agent = psutil.Process(room.proc.pid)
            start = peak = agent.memory_info().rss
            level = 0
            while not camera.flood_done.is_set():
                level = (level + 7) % 100
                # Each call goes through the local API; Room.get and cli carry their own deadlines.
                assert "devices" in await until(room.status, "the local API answering during the flood")
                reply = await until(lambda: cli(room, "panel.volume", "device=panel", f"level={level}"))  # noqa: B023
                assert reply["status"] == "succeeded", reply  # the other device keeps working
                peak = max(peak, agent.memory_info().rss)
            assert camera.flooded == FLOOD
            stopped = await until(
                lambda: cli(room, "camera.stop", "device=camera")["status"] == "succeeded",
                "the camera answering once the flood is over",
            )
            assert stopped
            peak = max(peak, agent.memory_info().rss)
    log_size = (tmp_path / "agent.log").stat().st_size
    assert log_size < LOG_BOUND, f"log of {log_size} bytes"
    assert peak - start < RSS_GROWTH_BOUND, f"RSS grew from {start} to {peak} bytes"
