"""PJLink: the login (sans-IO), and our driver against our simulator over real TCP on loopback."""

from __future__ import annotations

import asyncio

import pytest

from drivers.device import Device
from drivers.driver import open_driver, simulated
from drivers.errors import ArgumentError, AuthenticationFailed, DeviceRejected
from drivers.profile import find_profile
from drivers.profile_model import Profile
from drivers.protocol import pjlink
from drivers.sim.model import Simulator
from drivers.sim.runner import SimServer
from drivers.transport import make_transport

PASSWORD = "JBMIAProjectorLink"


@pytest.fixture
def profile() -> Profile:
    return find_profile("pjlink")


def projector(profile: Profile, address: str, password: str | None = PASSWORD) -> Device:
    query = f"?password={password}" if password is not None else ""
    return Device(profile, make_transport(address + query, profile), device_id="projector")


class Clock:
    """A clock the test moves: warm-up and lamp hours without waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_digest_is_the_specifications_example() -> None:
    # The PJLink specification's own example: random 498e4a67, password JBMIAProjectorLink.
    assert pjlink.digest("498e4a67", PASSWORD) == "5d8409bc1c3fa39749434aa3a5c38682"
    assert pjlink.login_prefix(b"PJLINK 1 498e4a67\r", PASSWORD) == b"5d8409bc1c3fa39749434aa3a5c38682"
    assert pjlink.login_prefix(b"PJLINK 0\r", None) == b""


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b"PJLINK ERRA\r", "refused"),
        (b"HELLO\r", "not a PJLink greeting"),
        (b"PJLINK 1\r", "not a PJLink greeting"),
        (b"PJLINK 1 498e4a67 extra\r", "not a PJLink greeting"),
        (b"PJLINK 2 498e4a67\r", "not a PJLink greeting"),
        (b"\xff\xfe\r", "not a PJLink greeting"),
    ],
)
def test_what_is_not_a_greeting_is_said(line: bytes, why: str) -> None:
    with pytest.raises(pjlink.LoginError, match=why):
        pjlink.Greeting.parse(line)


def test_a_projector_asking_for_a_password_without_one_is_a_clear_error() -> None:
    with pytest.raises(pjlink.LoginError, match=r"asks for a password: give it as tcp://HOST:4352\?password="):
        pjlink.login_prefix(b"PJLINK 1 498e4a67\r", None)


def test_server_login_strips_the_digest_and_refuses_a_wrong_one() -> None:
    good = pjlink.ServerLogin(PASSWORD, "498e4a67")
    assert good.greeting == b"PJLINK 1 498e4a67\r"
    # The digest may come in pieces; the command after it goes to the device, later ones untouched.
    assert good.feed(b"5d8409bc1c3fa397") == (b"", b"", False)
    assert good.feed(b"49434aa3a5c38682%1POWR ?\r") == (b"%1POWR ?\r", b"", False)
    assert good.feed(b"%1INPT ?\r") == (b"%1INPT ?\r", b"", False)
    bad = pjlink.ServerLogin(PASSWORD, "498e4a67")
    assert bad.feed(b"0" * 32 + b"%1POWR ?\r") == (b"", b"PJLINK ERRA\r", True)
    unsigned = pjlink.ServerLogin(PASSWORD, "498e4a67")
    assert unsigned.feed(b"%1POWR ?\r") == (b"", b"PJLINK ERRA\r", True)
    assert pjlink.ServerLogin(None, "x").greeting == b"PJLINK 0\r"


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("tcp://10.0.0.5?password=" + "x" * 33, "1 to 32 printable ASCII"),
        ("tcp://10.0.0.5?password=two%20words", "without spaces"),
        ("tcp://10.0.0.5?password=", "1 to 32"),
        ("tcp://10.0.0.5?pasword=secret", "unknown option 'pasword'"),
        ("/dev/ttyUSB0", "pjlink has no serial control"),
    ],
)
def test_bad_addresses_are_refused_without_showing_the_password(profile: Profile, address: str, message: str) -> None:
    with pytest.raises(ArgumentError, match=message) as err:
        make_transport(address, profile)
    assert "x" * 33 not in str(err.value) and "two words" not in str(err.value)


def test_the_default_port_is_4352_and_the_password_stays_out_of_the_name(profile: Profile) -> None:
    transport = make_transport("tcp://10.0.0.5?password=s3cret", profile)
    assert transport.name == "tcp://10.0.0.5:4352"  # what messages and logs call it


async def test_driver_logs_in_and_drives_the_projector(profile: Profile) -> None:
    sim = Simulator(profile)
    async with (
        SimServer(sim, "tcp://127.0.0.1:0", password=PASSWORD) as server,
        projector(profile, server.device_path) as device,
    ):
        assert (await device.call("get_power")).fields == {"power": "on"}
        await device.call("set_input", {"source": "video1"})
        assert (await device.call("get_input")).fields == {"source": "video1"}
        await device.call("mute_on")
        state = await device.poll()
    assert server.logins == 1  # one connection, the digest sent once
    assert state["power"] == "on" and state["source"] == "video1" and state["mute"] == "on"
    assert state["projector_name"] == "Classroom projector" and state["manufacturer"] == "classroom-agent"
    assert state["pjlink_class"] == 2 and state["inputs"] == "11 21 31 32 51"
    assert state["lamp_hours"] >= 1200 and state["fan_status"] == "ok"


async def test_a_wrong_password_is_a_clear_failure_and_the_projector_hangs_up(profile: Profile) -> None:
    async with SimServer(Simulator(profile), "tcp://127.0.0.1:0", password=PASSWORD) as server:
        device = projector(profile, server.device_path, password="wrong")
        try:
            with pytest.raises(AuthenticationFailed, match=r"PJLINK ERRA.*password") as err:
                await device.call("get_power")
            await asyncio.wait_for(server.hung_up.wait(), 5)
        finally:
            await device.close()
    assert "wrong" not in str(err.value)
    assert not device.health.online and "authentication failed" in device.health.last_error
    assert server.logins == 0


async def test_a_projector_with_a_password_refuses_a_driver_without_one(profile: Profile) -> None:
    async with SimServer(Simulator(profile), "tcp://127.0.0.1:0", password=PASSWORD) as server:
        device = projector(profile, server.device_path, password=None)
        try:
            with pytest.raises(AuthenticationFailed, match="asks for a password"):
                await device.call("get_power")
        finally:
            await device.close()


async def test_a_projector_without_a_password_needs_none(profile: Profile) -> None:
    async with (
        SimServer(Simulator(profile), "tcp://127.0.0.1:0") as server,
        projector(profile, server.device_path, password=None) as device,
    ):
        assert (await device.call("get_class")).fields == {"pjlink_class": 2}


async def test_error_replies_come_back_as_the_projectors_refusals(profile: Profile) -> None:
    sim = Simulator(profile)
    async with (
        SimServer(sim, "tcp://127.0.0.1:0", password=PASSWORD) as server,
        projector(profile, server.device_path) as device,
    ):
        with pytest.raises(DeviceRejected, match="out_of_parameter") as err:
            await device.call("set_input", {"source": "storage1"})  # a code this projector does not have
        assert err.value.last_bytes == b"%1INPT=ERR2\r"
        sim.set("failed", True)
        with pytest.raises(DeviceRejected) as err:
            await device.call("mute_on")
        assert err.value.code == "projector_failure"
        sim.set("failed", False)
        await device.call("power_off")
        with pytest.raises(DeviceRejected) as err:
            await device.call("set_input", {"source": "digital1"})
        assert err.value.code == "unavailable_time"
        assert device.health.online  # a refusal is an answer: the link is fine


async def test_warm_up_refuses_input_changes_until_the_lamp_is_on(profile: Profile) -> None:
    clock = Clock()
    sim = Simulator(profile, clock=clock, initial={"power": "off"})
    async with (
        SimServer(sim, "tcp://127.0.0.1:0", password=PASSWORD) as server,
        projector(profile, server.device_path) as device,
    ):
        await device.call("power_on")
        assert (await device.call("get_power")).fields == {"power": "warming"}
        with pytest.raises(DeviceRejected) as err:
            await device.call("set_input", {"source": "digital2"})
        assert err.value.code == "unavailable_time"
        clock.now += profile.sim.warmup_s
        assert (await device.call("get_power")).fields == {"power": "on"}
        await device.call("set_input", {"source": "digital2"})
        clock.now += 100  # lamp hours advance while the lamp is lit
        assert (await device.call("get_lamp")).fields["lamp_hours"] == 1200 + 100 + 5


async def test_the_driver_reconnects_and_logs_in_again_after_an_idle_hang_up(profile: Profile) -> None:
    async with (
        SimServer(Simulator(profile), "tcp://127.0.0.1:0", password=PASSWORD, idle_close_s=1.0) as server,
        projector(profile, server.device_path) as device,
    ):
        assert (await device.call("get_power")).fields == {"power": "on"}
        await asyncio.wait_for(server.hung_up.wait(), 10)
        assert server.idle_closed == 1
        # The next command goes through on a new connection, with a new random number and digest.
        assert (await device.call("get_input")).fields == {"source": "digital1"}
    assert server.logins == 2
    assert device.health.reconnects == 1


async def test_the_agents_sim_address_runs_a_projector_without_a_password(profile: Profile) -> None:
    async with simulated(profile) as address:
        device = open_driver(profile, address, device_id="projector")
        try:
            state = await device.poll()
        finally:
            await device.close()
    assert state["power"] == "on" and state["pjlink_class"] == 2


async def test_a_simulator_with_a_login_is_served_over_tcp_only(profile: Profile) -> None:
    with pytest.raises(ArgumentError, match="tcp:// only"):
        await SimServer(Simulator(profile), "pty").start()
    with pytest.raises(ArgumentError, match="takes no password"):
        SimServer(Simulator(find_profile("samsung-mdc")), "tcp://127.0.0.1:0", password="x")


async def test_a_command_the_projector_hangs_up_on_is_sent_again_on_a_new_connection(profile: Profile) -> None:
    # A projector that hangs up as the second command arrives (its 30 s had just run out): the
    # driver cannot have seen the hang-up before sending, so only the resend saves the command.
    connections: list[int] = []

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        writer.write(b"PJLINK 0\r")
        answered = 0
        try:
            while await reader.readuntil(b"\r"):
                if answered == 1 and len(connections) == 1:
                    break  # hang up without an answer
                writer.write(b"%1POWR=1\r")
                answered += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the driver closed at the end of the test
        writer.close()

    server = await asyncio.start_server(client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with projector(profile, f"tcp://127.0.0.1:{port}", password=None) as device:
            assert (await device.call("get_power")).fields == {"power": "on"}
            assert (await device.call("get_power")).fields == {"power": "on"}
        assert len(connections) == 2 and device.health.reconnects == 1
    finally:
        server.close()
