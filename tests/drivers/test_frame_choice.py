"""An optional argument picks the frame: VISCA zoom, byte for byte against Sony's command list.

Sony's VISCA command list (SRG-300H, BRC-X400, EVI-D70 technical manuals, "CAM_Zoom") has
two forms of each zoom direction: Tele (Standard) ``8x 01 04 07 02 FF`` and Wide (Standard)
``8x 01 04 07 03 FF`` move at the camera's own speed; Tele (Variable) ``8x 01 04 07 2p FF`` and
Wide (Variable) ``8x 01 04 07 3p FF`` at speed p = 0 (slow) .. 7 (fast).  The frames below are
written from that table, never from the profile's own output.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.device import Device
from drivers.errors import ArgumentError, ProfileError
from drivers.profile import find_profile, load_profile
from drivers.profile_model import Profile
from drivers.protocol.engine import Codec
from drivers.sim.model import Simulator
from drivers.sim.runner import SimServer
from drivers.transport import make_transport

VISCA = find_profile("sony-visca")


@pytest.mark.parametrize(
    ("command", "args", "frame"),
    [
        ("zoom_tele", {}, "81 01 04 07 02 FF"),
        ("zoom_wide", {}, "81 01 04 07 03 FF"),
        ("zoom_tele", {"address": 3}, "83 01 04 07 02 FF"),
        ("zoom_wide", {"address": 7}, "87 01 04 07 03 FF"),
        *[("zoom_tele", {"speed": p}, f"81 01 04 07 2{p} FF") for p in range(8)],
        *[("zoom_wide", {"speed": p}, f"81 01 04 07 3{p} FF") for p in range(8)],
        ("zoom_tele", {"speed": "5", "address": 2}, "82 01 04 07 25 FF"),  # as the CLI passes it
        ("zoom_stop", {}, "81 01 04 07 00 FF"),
    ],
)
def test_zoom_sends_sonys_frame(command: str, args: dict[str, object], frame: str) -> None:
    assert Codec(VISCA).encode(command, args) == bytes.fromhex(frame)


@pytest.mark.parametrize("speed", [8, -1, "fast"])
def test_a_speed_outside_0_to_7_is_refused_not_sent_as_another_command(speed: object) -> None:
    # Speed 8 would make 2p = 28, which is no zoom command at all.
    with pytest.raises(ArgumentError, match="speed"):
        Codec(VISCA).encode("zoom_tele", {"speed": speed})


@pytest.mark.parametrize(
    ("frame", "command", "args"),
    [
        ("81 01 04 07 02 FF", "zoom_tele", {"address": 1}),
        ("81 01 04 07 03 FF", "zoom_wide", {"address": 1}),
        ("81 01 04 07 26 FF", "zoom_tele", {"address": 1, "speed": 6}),
        ("82 01 04 07 31 FF", "zoom_wide", {"address": 2, "speed": 1}),
    ],
)
def test_the_simulator_reads_both_forms(frame: str, command: str, args: dict[str, object]) -> None:
    assert Codec(VISCA).match_request(bytes.fromhex(frame)) == (command, args)


def test_the_simulated_camera_zooms_either_way() -> None:
    t = [0.0]
    sim = Simulator(VISCA, clock=lambda: t[0])
    assert sim.feed(bytes.fromhex("81 01 04 07 02 FF")) == [bytes.fromhex("90 41 FF"), bytes.fromhex("90 51 FF")]
    t[0] = 1.0
    sim.feed(bytes.fromhex("81 01 04 07 00 FF"))
    standard = sim.state.zoom
    sim.feed(bytes.fromhex("81 01 04 07 37 FF"))  # wide at full speed
    t[0] = 2.0
    sim.feed(bytes.fromhex("81 01 04 07 00 FF"))
    assert standard > 0
    assert sim.state.zoom < standard
    assert list(sim.handled) == ["zoom_tele", "zoom_stop", "zoom_wide", "zoom_stop"]


async def test_zoom_without_a_speed_goes_out_as_the_standard_command_on_a_pty() -> None:
    lines: list[str] = []
    async with (
        SimServer(Simulator(VISCA), "pty", report=lines.append) as sim,
        Device(VISCA, make_transport(sim.device_path, VISCA)) as camera,
    ):
        done = await camera.call("zoom_tele")
        await camera.call("zoom_wide", {"speed": 2})
    assert [r.kind for r in done.replies] == ["ack", "completion"]
    assert [line.split(" -> ")[0] for line in lines] == [
        "sony-visca: 81 01 04 07 02 ff",
        "sony-visca: 81 01 04 07 32 ff",
    ]


def test_profiles_show_marks_speed_as_optional() -> None:
    assert VISCA.command("zoom_tele").optional == frozenset({"speed"})
    assert VISCA.command("goto").optional == frozenset()


# ---- the profile format: send = [...] ----------------------------------------------------

BASE = """
[profile]
id = "two"
name = "Two frames"
kind = "camera"

[provenance]
document = "test fixture"
confidence = "primary"

[framing]
request = { end = "FF" }
reply = { end = "FF" }

[fields.speed]
type = "int"
min = 0
max = 7

[fields.level]
type = "int"
min = 0
max = 9
"""


def profile(tmp_path: Path, commands: str) -> Profile:
    path = tmp_path / "two.toml"
    path.write_text(BASE + commands, encoding="utf-8")
    return load_profile(path)


def test_the_first_frame_that_takes_every_given_argument_is_sent(tmp_path: Path) -> None:
    two = profile(
        tmp_path,
        '[commands.go]\nsend = ["01 FF", "02 {speed} FF", "03 {speed} {level} FF"]\n',
    )
    codec = Codec(two)
    assert codec.encode("go", {}) == bytes.fromhex("01 FF")
    assert codec.encode("go", {"speed": 4}) == bytes.fromhex("02 04 FF")
    assert codec.encode("go", {"speed": 4, "level": 9}) == bytes.fromhex("03 04 09 FF")
    with pytest.raises(ArgumentError, match="go: missing argument 'speed'"):
        codec.encode("go", {"level": 9})


def test_a_frame_that_could_never_be_sent_is_a_load_error(tmp_path: Path) -> None:
    # With a default speed, the first frame also serves "no speed given": the second never goes out.
    path = tmp_path / "two.toml"
    text = BASE.replace("max = 7\n", "max = 7\ndefault = 3\n", 1) + '[commands.go]\nsend = ["02 {speed} FF", "01 FF"]\n'
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError, match=r"commands\.go\.send\[1\]: never sent: commands\.go\.send\[0\]"):
        load_profile(path)


@pytest.mark.parametrize(
    ("send", "problem"),
    [
        ("[]", "commands.go.send: an empty list"),
        ('["01 FF", "0Z FF"]', "commands.go.send[1]: bad token '0Z'"),
        ('["01 FF", "02 {fast} FF"]', "field {fast} has no [fields.fast] definition"),
    ],
)
def test_bad_frame_lists_are_named(tmp_path: Path, send: str, problem: str) -> None:
    with pytest.raises(ProfileError) as err:
        profile(tmp_path, f"[commands.go]\nsend = {send}\n")
    assert problem in str(err.value)


def test_arguments_no_single_frame_takes_are_refused_by_name(tmp_path: Path) -> None:
    two = profile(tmp_path, '[commands.go]\nsend = ["01 {speed} FF", "02 {level} FF"]\n')
    assert Codec(two).encode("go", {"level": 3}) == bytes.fromhex("02 03 FF")
    with pytest.raises(ArgumentError, match="go: no frame takes level, speed together"):
        Codec(two).encode("go", {"speed": 1, "level": 3})
