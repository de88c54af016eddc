"""The panels found in Chinese classrooms: 鸿合 Hitevision and 海信 Hisense WR, against their makers' frames.

Encode cases are the frames printed in the makers' manuals (Hitevision User's Manual
"Serial Port Control" p.47; Hisense 65WR6CE p.26 / 65WR60AE p.15 "Serial Protocol"), or, where
marked, the secondary sources the profiles name.  The device layer runs against the profile-driven
simulator over a real pty.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from drivers.device import Device
from drivers.errors import ArgumentError, ProfileError
from drivers.profile import find_profile, load_profile_text
from drivers.protocol.engine import Codec, ControllerProtocol, Reply, Unrecognised
from drivers.sim.model import Simulator
from drivers.sim.runner import SimServer
from drivers.transport import make_transport

HITEVISION = find_profile("hitevision-ifp")
HISENSE = find_profile("hisense-wr")

ENCODE = [
    # Hitevision manual p.47, printed as they are (lower-case "ff" there).
    (HITEVISION, "power_on", {}, "7F 08 99 A2 B3 C4 02 ff 01 00 CF"),
    (HITEVISION, "power_off", {}, "7F 08 99 A2 B3 C4 02 ff 01 01 CF"),
    (HITEVISION, "mute_toggle", {}, "7F 08 99 A2 B3 C4 02 ff 01 02 CF"),
    (HITEVISION, "set_input", {"source": "hdmi1"}, "7F 08 99 A2 B3 C4 02 ff 01 0A CF"),
    (HITEVISION, "set_input", {"source": "hdmi2"}, "7F 08 99 A2 B3 C4 02 ff 01 0B CF"),
    (HITEVISION, "set_input", {"source": "ops"}, "7F 08 99 A2 B3 C4 02 ff 01 0C CF"),
    (HITEVISION, "set_input", {"source": "pc1"}, "7F 08 99 A2 B3 C4 02 ff 01 0D CF"),
    (HITEVISION, "set_input", {"source": "pc2"}, "7F 08 99 A2 B3 C4 02 ff 01 0E CF"),
    (HITEVISION, "set_input", {"source": "YPbPr"}, "7F 08 99 A2 B3 C4 02 ff 01 10 CF"),
    # Secondary: the serial service's "7F 08 99 A2 B3 C4 02 FF 05 XX CF, XX 0-100" (100 = 64).
    (HITEVISION, "set_volume", {"level": 100}, "7F 08 99 A2 B3 C4 02 FF 05 64 CF"),
    (HITEVISION, "set_volume", {"level": 0}, "7F 08 99 A2 B3 C4 02 FF 05 00 CF"),
    # Hisense WR table, ID 01.
    (HISENSE, "power_on", {}, "DD FF 01 04 A1 00 00 00 BB CC"),
    (HISENSE, "power_off", {}, "DD FF 01 04 A1 01 00 00 BB CC"),
    (HISENSE, "set_volume", {"level": 0x2A}, "DD FF 01 04 A1 07 00 2A BB CC"),
    (HISENSE, "set_brightness", {"level": 0x46}, "DD FF 01 04 A1 08 00 46 BB CC"),
]


@pytest.mark.parametrize(("profile", "command", "args", "frame"), ENCODE)
def test_encodes_the_printed_frame(profile: object, command: str, args: dict[str, object], frame: str) -> None:
    assert Codec(profile).encode(command, args) == bytes.fromhex(frame)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("profile", "command", "reply", "expected"),
    [
        # Return codes of Hitevision's serial service: the request's group and code, then 01.
        (HITEVISION, "power_on", "7F 09 99 A2 B3 C4 02 FF 01 00 01 CF", {"kind": "ack"}),
        (HITEVISION, "set_volume", "7F 09 99 A2 B3 C4 02 FF 05 64 01 CF", {"kind": "value", "volume": 100}),
        # Hisense WR table: the device's answers.
        (HISENSE, "power_on", "AB AB 01 04 A1 00 00 00 CD CD", {"kind": "value", "power": "on"}),
        (HISENSE, "power_off", "AB AB 01 04 A1 01 00 00 CD CD", {"kind": "value", "power": "off"}),
        (HISENSE, "set_volume", "AB AB 01 04 A1 07 00 2A CD CD", {"kind": "value", "volume": 42}),
    ],
)
def test_reads_the_documented_answer(profile: object, command: str, reply: str, expected: dict[str, object]) -> None:
    proto = ControllerProtocol(profile)  # type: ignore[arg-type]
    proto.send(command, {"level": 100} if command == "set_volume" else {})
    events = proto.feed(bytes.fromhex(reply))
    assert [e.to_dict() for e in events if isinstance(e, Reply)] == [expected]


@pytest.mark.parametrize(
    ("profile", "command", "args", "reply"),
    [
        (HITEVISION, "set_input", {"source": "hdmi1"}, "7F 09 99 A2 B3 C4 02 FF 01 0B 01 CF"),  # HD 2's answer
        (HISENSE, "power_off", {"address": 1}, "AB AB 02 04 A1 01 00 00 CD CD"),  # panel 02's answer
    ],
)
def test_an_answer_to_another_request_is_not_taken_for_ours(
    profile: object, command: str, args: dict[str, object], reply: str
) -> None:
    proto = ControllerProtocol(profile)  # type: ignore[arg-type]
    proto.send(command, args)
    events = proto.feed(bytes.fromhex(reply))
    assert len(events) == 1 and isinstance(events[0], Unrecognised)


def test_hisense_answers_come_out_of_noise_on_the_line() -> None:
    proto = ControllerProtocol(HISENSE)
    proto.send("power_off", {})
    events = proto.feed(bytes.fromhex("00 AB 13 AB AB 01 04 A1 01 00 00 CD CD"))
    assert [e.to_dict() for e in events if isinstance(e, Reply)] == [{"kind": "value", "power": "off"}]


@pytest.mark.parametrize(
    ("profile", "command", "args", "problem"),
    [
        (HITEVISION, "set_volume", {"level": 101}, "level=101: out of range 0..100"),
        (HITEVISION, "set_input", {"source": "hdmi3"}, "expected one of hdmi1, hdmi2, ops, pc1, pc2, ypbpr"),
        (HITEVISION, "mute_on", {}, "has no command 'mute_on'"),
        (HISENSE, "get_power", {}, "has no command 'get_power'"),
        (HISENSE, "power_on", {"address": 0}, "address=0: out of range 1..255"),
    ],
)
def test_bad_or_unsourced_commands_are_refused_before_sending(
    profile: object, command: str, args: dict[str, object], problem: str
) -> None:
    with pytest.raises(ArgumentError, match=problem):
        Codec(profile).encode(command, args)  # type: ignore[arg-type]


def test_profiles_name_what_their_sources_leave_out() -> None:
    assert HITEVISION.provenance.unsourced == ("get_power", "get_volume", "mute_on", "mute_off")
    assert set(HISENSE.provenance.unsourced) == {"get_power", "get_volume", "set_input", "mute_on", "mute_off"}
    for profile in (HITEVISION, HISENSE):
        assert not set(profile.provenance.unsourced) & set(profile.commands)


async def test_hitevision_panel_on_a_pty() -> None:
    simulator = Simulator(HITEVISION)
    async with (
        SimServer(simulator, "pty") as sim,
        Device(HITEVISION, make_transport(sim.device_path, HITEVISION)) as panel,
    ):
        assert (await panel.call("set_input", {"source": "ops"})).kind == "ack"
        assert (await panel.call("set_volume", {"level": 35})).fields == {"volume": 35}
        brightness = await panel.call("set_brightness", {"level": 60})  # no answer is documented
        assert (brightness.kind, brightness.replies) == ("sent", ())
        assert (await panel.call("power_off")).kind == "ack"
    assert (simulator.state.source, simulator.state.volume, simulator.state.power) == ("ops", 35, "off")


async def test_hisense_panel_on_a_pty() -> None:
    simulator = Simulator(HISENSE)
    async with (
        SimServer(simulator, "pty") as sim,
        Device(HISENSE, make_transport(sim.device_path, HISENSE), retries=0) as panel,
    ):
        assert (await panel.call("power_off")).fields == {"power": "off"}
        assert (await panel.call("power_on")).fields == {"power": "on"}
        assert (await panel.call("set_volume", {"level": 55})).fields == {"volume": 55}
        assert panel.health.state == {"power": "on", "volume": 55}


@pytest.mark.parametrize(
    ("unsourced", "problem"),
    [
        ('["get_power", "power_on"]', "provenance.unsourced[1]: 'power_on' is a command of this profile"),
        ("[3]", "provenance.unsourced[0]: got 3, expected a command name"),
    ],
)
def test_unsourced_may_name_only_commands_the_profile_leaves_out(unsourced: str, problem: str) -> None:
    text = Path(HITEVISION.path).read_text(encoding="utf-8")
    text = text.replace('unsourced = ["get_power", "get_volume", "mute_on", "mute_off"]', f"unsourced = {unsourced}")
    with pytest.raises(ProfileError, match=re.escape(problem)):
        load_profile_text(text, "hitevision-ifp.toml")
