"""The device layer against the simulator over real ptys and real UDP on loopback."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import struct
from pathlib import Path

import pytest

from drivers.backoff import Backoff
from drivers.device import Device, Health
from drivers.errors import ArgumentError, DeviceRejected, DeviceTimeout, GarbageReceived, TransportError
from drivers.profile import find_profile
from drivers.profile_model import Profile
from drivers.sim.model import Simulator
from drivers.sim.runner import Faults, SimServer
from drivers.transport import make_transport


@pytest.fixture
def visca() -> Profile:
    return find_profile("sony-visca")


def fast(profile: Profile, device_path: str, **kw: object) -> Device:
    return Device(profile, make_transport(device_path, profile), **kw)  # type: ignore[arg-type]


async def test_commands_change_what_the_camera_reports(visca: Profile) -> None:
    async with SimServer(Simulator(visca), "pty") as sim, fast(visca, sim.device_path) as cam:
        assert (await cam.call("get_power")).fields == {"power": "on"}
        done = await cam.call("goto", {"pan": -600, "tilt": 150})
        assert [r.kind for r in done.replies] == ["ack", "completion"]
        assert (await cam.call("get_position")).fields == {"pan": -600, "tilt": 150}
        assert cam.health.online


async def test_poll_fills_the_state_technicians_see(visca: Profile) -> None:
    async with SimServer(Simulator(visca), "pty") as sim, fast(visca, sim.device_path) as cam:
        await cam.call("zoom_to", {"position": 0x1234})
        state = await cam.poll()
    assert state == {"power": "on", "zoom": 0x1234, "pan": 0, "tilt": 0}


async def test_silent_device_times_out_after_retries(visca: Profile) -> None:
    simulator = Simulator(visca)
    async with (
        SimServer(simulator, "pty", Faults(drop_replies=1.0)) as sim,
        fast(visca, sim.device_path, retries=2) as cam,
    ):
        with pytest.raises(DeviceTimeout, match="get_power: no reply") as err:
            await cam.call("get_power")
    assert list(simulator.handled) == ["get_power"] * 3
    assert sim.device_path in str(err.value)
    assert not cam.health.online


async def test_lost_reply_is_recovered_by_a_retry(visca: Profile) -> None:
    simulator = Simulator(visca)
    async with SimServer(simulator, "pty", Faults(drop_first=1)) as sim, fast(visca, sim.device_path) as cam:
        assert (await cam.call("get_zoom")).fields == {"zoom": 0}
    assert list(simulator.handled) == ["get_zoom", "get_zoom"]


async def test_device_error_reply_raises_rejected_and_link_stays_up(visca: Profile) -> None:
    async with SimServer(Simulator(visca), "pty") as sim, fast(visca, sim.device_path) as cam:
        await cam.call("power_off")
        with pytest.raises(DeviceRejected) as err:
            await cam.call("home")
        assert err.value.code == "not_executable"
        assert err.value.last_bytes == bytes.fromhex("90 61 41 FF")
        assert (await cam.call("get_power")).fields == {"power": "off"}


async def test_only_garbage_is_reported_as_garbage(visca: Profile) -> None:
    faults = Faults(garbage=1.0, drop_replies=1.0, rng=random.Random(7))
    async with (
        SimServer(Simulator(visca), "pty", faults) as sim,
        fast(visca, sim.device_path, retries=1) as cam,
    ):
        with pytest.raises(GarbageReceived, match="unreadable"):
            await cam.call("get_power")
        assert cam.health.garbage_bytes > 0


async def test_noise_on_the_line_is_skipped(visca: Profile) -> None:
    faults = Faults(garbage=1.0, rng=random.Random(3))
    async with SimServer(Simulator(visca), "pty", faults) as sim, fast(visca, sim.device_path) as cam:
        for _ in range(10):
            assert (await cam.call("get_power")).fields == {"power": "on"}
        assert cam.health.garbage_bytes > 0


async def test_bad_arguments_never_reach_the_device(visca: Profile) -> None:
    simulator = Simulator(visca)
    async with SimServer(simulator, "pty") as sim, fast(visca, sim.device_path) as cam:
        with pytest.raises(ArgumentError, match="pan=9999: out of range"):
            await cam.call("goto", {"pan": 9999, "tilt": 0})
        with pytest.raises(ArgumentError, match="unknown argument 'speed'"):
            await cam.call("home", {"speed": 3})
    assert not simulator.handled


async def test_unplugged_adapter_is_reopened_when_it_comes_back(visca: Profile, tmp_path: Path) -> None:
    link = tmp_path / "ttyUSB0"  # the stable name udev gives an adapter
    first = SimServer(Simulator(visca), "pty")
    link.symlink_to(await first.start())
    cam = fast(visca, str(link))
    await cam.open()
    try:
        await cam.call("goto", {"pan": 100, "tilt": 10})
        await first.close()  # unplugged
        with pytest.raises((TransportError, DeviceTimeout)):
            await cam.call("get_power")
        with pytest.raises(TransportError):
            await cam.call("get_power")  # still gone: a clear error, no hang
        async with SimServer(Simulator(visca), "pty") as second:  # plugged back in
            link.unlink()
            link.symlink_to(second.device_path)
            assert (await cam.call("get_power")).fields == {"power": "on"}
            assert cam.health.online
            assert cam.health.reconnects >= 1
    finally:
        await cam.close()


async def test_visca_over_ip_resends_a_lost_datagram_with_the_same_sequence(visca: Profile) -> None:
    simulator, lines = Simulator(visca), []
    port = free_udp_port()
    async with (
        SimServer(simulator, f"udp://127.0.0.1:{port}", Faults(drop_first=2), report=lines.append) as sim,
        fast(visca, sim.device_path) as cam,
    ):
        done = await cam.call("preset_set", {"n": 4})
        assert [r.kind for r in done.replies] == ["ack", "completion"]
    assert list(simulator.handled) == ["preset_set"]  # run once although sent twice
    assert any("again" in line for line in lines)
    assert 4 in simulator.state.presets


async def test_visca_over_ip_answers_inquiries_sent_as_commands(visca: Profile) -> None:
    port = free_udp_port()
    async with SimServer(Simulator(visca), f"udp://127.0.0.1:{port}"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2)
            s.connect(("127.0.0.1", port))
            s.send(bytes.fromhex("02 00 00 01 00 00 00 00 01"))  # RESET
            assert await asyncio.to_thread(s.recv, 64) == bytes.fromhex("02 01 00 01 00 00 00 00 01")
            s.send(bytes.fromhex("01 00 00 05 00 00 00 07 81 09 04 00 FF"))  # inquiry, typed as command
            reply = await asyncio.to_thread(s.recv, 64)
    kind, length, seq = struct.unpack(">HHI", reply[:8])
    assert (kind, length, seq, reply[8:]) == (0x0111, 4, 7, bytes.fromhex("90 50 02 FF"))


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_polling_reports_offline_then_online_again(visca: Profile, tmp_path: Path) -> None:
    link = tmp_path / "ttyUSB1"
    first = SimServer(Simulator(visca), "pty")
    link.symlink_to(await first.start())
    seen: list[tuple[bool, dict[str, object]]] = []
    changed = asyncio.Event()

    async def on_update(health: Health) -> None:
        if not seen or seen[-1][0] != health.online:
            seen.append((health.online, dict(health.state)))
            changed.set()

    cam = fast(visca, str(link), poll_interval=0.05, retries=0, backoff=Backoff(base=0.05, cap=0.2))
    async with asyncio.TaskGroup() as tg:
        poller = tg.create_task(cam.run(on_update), name="camera.poll")
        await wait_for(changed)
        assert seen[-1] == (True, {"power": "on", "zoom": 0, "pan": 0, "tilt": 0})
        await first.close()
        await wait_for(changed)
        assert seen[-1][0] is False
        assert cam.health.last_error
        async with SimServer(Simulator(visca, initial={"power": "off"}), "pty") as second:
            link.unlink()
            link.symlink_to(second.device_path)
            await wait_for(changed)
            assert seen[-1][0] is True
            assert cam.health.state["power"] == "off"
        poller.cancel()
    await cam.close()


async def wait_for(event: asyncio.Event) -> None:
    async with asyncio.timeout(10):
        await event.wait()
    event.clear()


async def test_simulator_serves_a_real_serial_port(visca: Profile) -> None:
    # `simulate --at /dev/ttyS1`: the simulator opens the port like a device's UART would.
    master, slave = os.openpty()
    try:
        async with SimServer(Simulator(visca), os.ttyname(slave)):
            os.write(master, bytes.fromhex("81 09 04 00 FF"))
            reply = b""
            async with asyncio.timeout(5):
                while not reply.endswith(b"\xff"):
                    reply += await asyncio.to_thread(os.read, master, 64)
    finally:
        os.close(master)
        os.close(slave)
    assert reply == bytes.fromhex("90 50 02 FF")


async def test_tcp_panel_reconnects_after_the_connection_drops() -> None:
    mdc = find_profile("samsung-mdc")
    first = SimServer(Simulator(mdc), "tcp://127.0.0.1:0")
    address = await first.start()
    panel = fast(mdc, address)
    await panel.open()
    try:
        assert (await panel.call("set_volume", {"level": 42})).fields == {"volume": 42}
        await first.close()  # the panel rebooted: its end of the connection is gone
        with pytest.raises((TransportError, DeviceTimeout)):
            await panel.call("get_volume")
        port = int(address.rsplit(":", 1)[1])
        async with SimServer(Simulator(mdc, initial={"volume": 7}), f"tcp://127.0.0.1:{port}"):
            assert (await panel.call("get_volume")).fields == {"volume": 7}
            assert panel.health.reconnects == 1
    finally:
        await panel.close()
