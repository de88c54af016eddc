"""VISCA specifics: completions belong to their socket; VISCA over IP's sequence numbers."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time
import tty
from collections.abc import Callable

from drivers.device import Device
from drivers.profile import find_profile
from drivers.protocol.engine import Codec
from drivers.sim.model import Simulator
from drivers.sim.runner import Faults, SimServer
from drivers.transport import make_transport
from drivers.transport.udp import ViscaIpTransport

VISCA = find_profile("sony-visca")


class PtyCamera:
    """A scripted camera on a pty: answers each request with the bytes `script` gives."""

    def __init__(self, script: Callable[[bytes], list[bytes]]) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.script = script
        self.path = os.ttyname(self.slave)

    def __enter__(self) -> PtyCamera:
        asyncio.get_running_loop().add_reader(self.master, self._answer)
        return self

    def _answer(self) -> None:
        request = os.read(self.master, 64)
        for chunk in self.script(request):
            os.write(self.master, chunk)

    def __exit__(self, *exc: object) -> None:
        asyncio.get_running_loop().remove_reader(self.master)
        os.close(self.master)
        os.close(self.slave)


async def test_a_late_completion_of_an_earlier_command_does_not_end_this_one() -> None:
    # 90 52 FF: socket 2 finishing a move sent before; ours is acked on socket 1.
    def camera(request: bytes) -> list[bytes]:
        return [bytes.fromhex("90 52 FF 90 41 FF 90 52 FF 90 51 FF")]

    with PtyCamera(camera) as cam:
        async with Device(VISCA, make_transport(cam.path, VISCA)) as device:
            result = await device.call("zoom_stop")
    assert [(r.kind, r.fields["socket"]) for r in result.replies] == [("ack", 1), ("completion", 1)]
    assert device.health.garbage_bytes == 6  # both stray completions were set aside, not taken


async def test_visca_over_ip_recovers_a_lost_completion_by_resending() -> None:
    simulator, lines = Simulator(VISCA), []
    port = free_udp_port()
    # Reply 0 is the ack, reply 1 the completion: lose only the completion.
    faults = Faults(drop_index=frozenset({1}))
    async with (
        SimServer(simulator, f"udp://127.0.0.1:{port}", faults, report=lines.append) as sim,
        Device(VISCA, make_transport(sim.device_path, VISCA)) as device,
    ):
        result = await device.call("preset_clear", {"n": 2})
    assert [r.kind for r in result.replies] == ["ack", "completion"]
    assert list(simulator.handled) == ["preset_clear"]  # answered twice, run once
    assert any("again" in line for line in lines)


async def test_visca_over_ip_resets_the_sequence_and_ignores_stale_replies() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as cam:
        cam.bind(("127.0.0.1", 0))
        cam.setblocking(False)
        loop = asyncio.get_running_loop()
        transport = ViscaIpTransport("127.0.0.1", cam.getsockname()[1], reset_timeout=2)
        device = Device(VISCA, transport)
        opening = asyncio.ensure_future(device.open())
        reset, peer = await loop.sock_recvfrom(cam, 64)
        assert reset == bytes.fromhex("02 00 00 01 00 00 00 00 01")  # control RESET, sequence 0
        await loop.sock_sendto(cam, bytes.fromhex("02 01 00 01 00 00 00 00 01"), peer)
        await opening
        calling = asyncio.ensure_future(device.call("get_power"))
        request, _ = await loop.sock_recvfrom(cam, 64)
        kind, length, seq = struct.unpack(">HHI", request[:8])
        assert (kind, length, request[8:]) == (0x0110, 5, bytes.fromhex("81 09 04 00 FF"))
        stale = struct.pack(">HHI", 0x0111, 4, seq - 1) + bytes.fromhex("90 50 03 FF")
        fresh = struct.pack(">HHI", 0x0111, 4, seq) + bytes.fromhex("90 50 02 FF")
        await loop.sock_sendto(cam, stale, peer)
        await loop.sock_sendto(cam, fresh, peer)
        assert (await calling).fields == {"power": "on"}
        # The camera reports a sequence error: the next request is preceded by a RESET.
        await loop.sock_sendto(cam, bytes.fromhex("02 01 00 02 00 00 00 00 0F 01"), peer)
        await asyncio.sleep(0)
        calling = asyncio.ensure_future(device.call("get_power"))
        again, _ = await loop.sock_recvfrom(cam, 64)
        assert again == bytes.fromhex("02 00 00 01 00 00 00 00 01")
        calling.cancel()
        await device.close()


def test_positions_beyond_the_documented_range_are_reported_not_dropped() -> None:
    # A camera with a wider pan range than the EVI-D70's reports pan 0x0D00 (3328).
    request = Codec(VISCA).request("get_position", {})
    reply = Codec(VISCA).parse(request, bytes.fromhex("90 50 00 0D 00 00 00 00 00 00 FF"))
    assert reply is not None and reply.fields == {"pan": 3328, "tilt": 0}


async def test_requests_to_a_display_keep_the_profiles_gap() -> None:
    nec = find_profile("nec-lfd")  # NEC asks for at least 600 ms between packets
    arrivals: list[float] = []
    async with (
        SimServer(Simulator(nec), "pty", report=lambda _: arrivals.append(time.monotonic())) as sim,
        Device(nec, make_transport(sim.device_path, nec)) as device,
    ):
        await device.call("get_power")
        await device.call("get_volume")
    assert arrivals[1] - arrivals[0] >= 0.6 * 0.99  # a lower bound our own wait guarantees


async def test_a_slow_device_is_waited_for_within_the_deadline() -> None:
    async with (
        SimServer(Simulator(VISCA), "pty", Faults(delay_ms=300)) as sim,
        Device(VISCA, make_transport(sim.device_path, VISCA), retries=0) as device,
    ):
        started = time.monotonic()
        assert (await device.call("get_power")).fields == {"power": "on"}
    assert time.monotonic() - started >= 0.3 * 0.99


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
