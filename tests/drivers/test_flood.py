"""Devices that talk too much: floods of noise over real TCP, a real pty and real UDP on loopback.

A fake camera pushing hundreds of MiB once took the agent to 1.15 GB and a 677 MB log. Here each
flood is tens of MiB; what must hold is that the buffers stay small, the log stays small, another
device keeps answering meanwhile, and the flooding device answers again once the flood stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.device import Device
from drivers.errors import DeviceError
from drivers.profile import find_profile
from drivers.profile_model import Profile
from drivers.protocol.engine import ControllerProtocol, Reply
from drivers.sim.model import Simulator
from drivers.sim.runner import Faults, SimServer
from drivers.transport import make_transport

MIB = 1024 * 1024
# What "bounded" means here: far below any flood these tests send.
SMALL_BUFFER = 1 * MIB
SMALL_LOG = 256 * 1024


@pytest.fixture
def visca() -> Profile:
    return find_profile("sony-visca")


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    """Everything the drivers log at INFO and above, as the agent's ``-v`` log would hold it."""
    path = tmp_path / "drivers.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("drivers")
    # The simulators' own report of each request they answer is the far end's log, not the agent's
    # (and, polled thousands of times, it would fill the log and pytest's capture by itself).
    simulators = logging.getLogger("drivers.sim")
    level, sim_level = logger.level, simulators.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    simulators.setLevel(logging.WARNING)
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        simulators.setLevel(sim_level)
        handler.close()


def device(profile: Profile, address: str, **kw: object) -> Device:
    return Device(profile, make_transport(address, profile), **kw)  # type: ignore[arg-type]


def test_a_reply_right_after_a_long_unterminated_run_is_still_read(visca: Profile) -> None:
    proto = ControllerProtocol(visca)
    proto.send("get_power", {})
    noise = bytes(range(0xFF)) * 4112  # ~1 MiB that never carries the FF terminator
    largest = visca.reply_frame.max_size
    for at in range(0, len(noise), 4096):
        piece = noise[at : at + 4096]
        if at + 4096 >= len(noise):
            piece += bytes.fromhex("90 50")  # the reply starts in the same read as the last noise
        proto.feed(piece)
        assert len(proto.framer.buffer) < largest  # never more than one frame's worth kept
    events = proto.feed(bytes.fromhex("02 FF"))
    replies = [e for e in events if isinstance(e, Reply)]
    assert [r.to_dict() for r in replies] == [{"kind": "value", "power": "on"}]


async def poll_while_flooding(sim: SimServer, flooder: Device, other: Device, other_command: str) -> int:
    """Call both devices until the flood has been sent; the largest buffer seen (bytes)."""
    largest = 0
    async with asyncio.timeout(240):  # a bound on a broken run, not a latency target
        while not sim.flood_done.is_set():
            with contextlib.suppress(DeviceError):
                await flooder.call("get_power")
            largest = max(largest, flooder.transport.buffered, flooder.buffered)
            async with asyncio.timeout(30):
                await other.call(other_command)  # the other device answers all along
            largest = max(largest, flooder.transport.buffered)  # unread while the other was asked
    return largest


async def test_a_camera_flooding_tcp_leaves_buffers_and_log_small_and_answers_afterwards(
    visca: Profile, log_file: Path
) -> None:
    mdc = find_profile("samsung-mdc")
    faults = Faults(flood_bytes=48 * MIB, rng=random.Random(11))
    async with (
        SimServer(Simulator(visca), "tcp://127.0.0.1:0", faults) as sim,
        device(visca, sim.device_path, retries=2) as camera,
        SimServer(Simulator(mdc), "pty") as panel_sim,
        device(mdc, panel_sim.device_path) as panel,
    ):
        largest = await poll_while_flooding(sim, camera, panel, "get_volume")
        assert (await camera.call("get_power")).fields == {"power": "on"}
    assert sim.flooded == 48 * MIB
    assert largest < SMALL_BUFFER
    assert camera.transport.dropped_bytes > 0  # what nobody asked for was let go
    assert log_file.stat().st_size < SMALL_LOG


async def test_a_camera_flooding_a_serial_line_with_endless_frames_answers_afterwards(
    visca: Profile, log_file: Path
) -> None:
    faults = Faults(flood_bytes=4 * MIB, flood_unframed=True, rng=random.Random(5))  # a pty is slow: 64x the buffer
    async with (
        SimServer(Simulator(visca), "pty", faults) as sim,
        device(visca, sim.device_path, retries=2) as camera,
        SimServer(Simulator(visca), "tcp://127.0.0.1:0") as other_sim,
        device(visca, other_sim.device_path) as other,
    ):
        largest = await poll_while_flooding(sim, camera, other, "get_zoom")
        assert (await camera.call("get_power")).fields == {"power": "on"}
    assert largest < SMALL_BUFFER
    assert log_file.stat().st_size < SMALL_LOG


async def test_a_visca_over_ip_camera_flooding_malformed_datagrams_answers_afterwards(
    visca: Profile, log_file: Path
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    faults = Faults(flood_bytes=8 * MIB, rng=random.Random(2))
    async with (
        SimServer(Simulator(visca), f"udp://127.0.0.1:{port}", faults) as sim,
        device(visca, sim.device_path, retries=2) as camera,
        SimServer(Simulator(visca), "pty") as other_sim,
        device(visca, other_sim.device_path) as other,
    ):
        largest = await poll_while_flooding(sim, camera, other, "get_zoom")
        assert (await camera.call("get_power")).fields == {"power": "on"}
    assert largest < SMALL_BUFFER
    assert log_file.stat().st_size < SMALL_LOG
