"""Samsung MDC display ID 0xFE: every display on the daisy chain acts, none answers.

Samsung's MDC chapter (MD40B/PM49F manuals; 400MX-3 manual: "set the ID to 0xFE ... every
product follows the command but does not answer ACK") prints ``AA 11 FE 01 01 11`` as the
power-on for all displays.  So a set command to 0xFE must not wait for a reply, and a get to
0xFE can never be answered: it is refused before anything is sent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.device import Device
from drivers.errors import ArgumentError, ProfileError
from drivers.profile import find_profile, load_profile
from drivers.protocol.engine import Codec
from drivers.sim.model import Simulator
from drivers.sim.runner import SimServer
from drivers.transport import make_transport

MDC = find_profile("samsung-mdc")


@pytest.mark.parametrize(
    ("command", "args", "frame"),
    [
        # Printed in the MDC chapter: power on for every display, 11+FE+01+01 = 0x111 -> 11.
        ("power_on", {"address": 0xFE}, "AA 11 FE 01 01 11"),
        ("power_off", {"address": "0xFE"}, "AA 11 FE 01 00 10"),
        ("power_off", {"address": "254"}, "AA 11 FE 01 00 10"),
        # Built by hand from the same tables: volume 0x12 level 30, input 0x14 HDMI1 (0x21).
        ("set_volume", {"address": 0xFE, "level": 30}, "AA 12 FE 01 1E 2F"),
        ("set_input", {"address": 0xFE, "source": "hdmi1"}, "AA 14 FE 01 21 34"),
        ("mute_on", {"address": 0xFE}, "AA 13 FE 01 01 13"),
    ],
)
def test_set_commands_go_to_every_display_and_wait_for_nothing(
    command: str, args: dict[str, object], frame: str
) -> None:
    request = Codec(MDC).request(command, args)
    assert request.frame == bytes.fromhex(frame)
    assert request.broadcast and not request.expects_reply


def test_an_addressed_set_still_waits_for_its_ack() -> None:
    request = Codec(MDC).request("power_on", {"address": 1})
    assert not request.broadcast and request.expects_reply


@pytest.mark.parametrize("command", ["get_power", "get_volume", "get_mute", "get_input"])
def test_a_get_to_every_display_is_refused_with_the_reason(command: str) -> None:
    with pytest.raises(ArgumentError) as err:
        Codec(MDC).request(command, {"address": 0xFE})
    message = str(err.value)
    assert message.startswith(f"{command}: address=254 (0xFE) addresses every device at once and none answers")
    assert "broadcast commands: power_on, power_off, set_volume" in message


@pytest.mark.parametrize("address", [0xFF, 0x100, -1])
def test_other_ids_outside_the_range_are_still_refused(address: int) -> None:
    with pytest.raises(ArgumentError, match="out of range 0..253"):
        Codec(MDC).request("power_on", {"address": address})


def test_the_simulated_display_acts_on_a_broadcast_and_stays_silent() -> None:
    sim = Simulator(MDC)
    assert sim.feed(bytes.fromhex("AA 12 FE 01 1E 2F")) == []
    assert sim.state.volume == 30
    sim.feed(bytes.fromhex("AA 11 01 01 00 13"))  # display 1 to standby: it then refuses sets
    assert sim.feed(bytes.fromhex("AA 12 FE 01 28 39")) == []  # and still answers no broadcast
    assert sim.state.volume == 30


async def test_broadcast_over_a_real_pty_returns_at_once_and_the_display_acted() -> None:
    simulator = Simulator(MDC)
    async with (
        SimServer(simulator, "pty") as sim,
        Device(MDC, make_transport(sim.device_path, MDC), retries=0) as display,
    ):
        # The display never answers 0xFE: had the device layer waited, this would be a DeviceTimeout.
        sent = await display.call("set_volume", {"address": 0xFE, "level": 40})
        assert (sent.kind, sent.replies) == ("sent", ())
        assert (await display.call("get_volume", {"address": 1})).fields == {"volume": 40}
        off = await display.call("power_off", {"address": "0xFE"})
        assert off.kind == "sent"
        assert (await display.call("get_power")).fields == {"power": "off"}
        with pytest.raises(ArgumentError, match="get_power: address=254"):
            await display.call("get_power", {"address": 0xFE})
    # The refused get never reached the line.
    assert list(simulator.handled) == ["set_volume", "get_volume", "power_off", "get_power"]


# ---- the profile format ------------------------------------------------------------------------

FIXTURE = """
[profile]
id = "chain"
name = "Chain"
kind = "display"

[provenance]
document = "test fixture"
confidence = "primary"

[framing]
request = { end = "0D" }
reply = { end = "0D" }

[fields.address]
type = "int"
min = 1
max = 99
default = 1
broadcast = BROADCAST

[commands.power_on]
send = '"P" {address:dec2} 0D'
broadcast = MARKED
"""


def chain(tmp_path: Path, broadcast: str = "0", marked: str = "true") -> Path:
    path = tmp_path / "chain.toml"
    path.write_text(FIXTURE.replace("BROADCAST", broadcast).replace("MARKED", marked), encoding="utf-8")
    return path


def test_a_broadcast_value_must_lie_outside_the_fields_range(tmp_path: Path) -> None:
    assert Codec(load_profile(chain(tmp_path))).encode("power_on", {"address": 0}) == b"P00\r"
    with pytest.raises(ProfileError, match="fields.address.broadcast: expected an int field's code outside min..max"):
        load_profile(chain(tmp_path, broadcast="5"))


def test_a_broadcast_command_needs_a_field_with_a_broadcast_value(tmp_path: Path) -> None:
    text = chain(tmp_path).read_text(encoding="utf-8").replace("broadcast = 0\n", "")
    (tmp_path / "chain.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError, match="commands.power_on.broadcast: none of its fields has a broadcast value"):
        load_profile(tmp_path / "chain.toml")


def test_an_unmarked_command_refuses_the_broadcast_value(tmp_path: Path) -> None:
    profile = load_profile(chain(tmp_path, marked="false"))
    with pytest.raises(ArgumentError, match=r"broadcast commands: none\)"):
        Codec(profile).encode("power_on", {"address": 0})
