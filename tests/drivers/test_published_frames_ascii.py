"""The ASCII display profiles against the example frames printed in the makers' documents.

Each expected byte string below was copied by hand from the document named in the comment
beside it (the page shows the frame in hex or as characters), never from our own encoder.
"""

from __future__ import annotations

import pytest

from drivers.profile import find_profile
from drivers.protocol.engine import Codec, ControllerProtocol, Reply, Unrecognised
from drivers.sim.model import Simulator

ENCODE_CASES = [
    # ViewSonic ViewBoard user guide, RS-232 Protocol, p. 113, Get-Function example 1:
    # "Get Brightness from TV-05", send 0x38 0x30 0x35 0x67 0x62 0x30 0x30 0x30 0x0D.
    ("viewsonic-ifp", "get_brightness", {"address": 5}, bytes.fromhex("38 30 35 67 62 30 30 30 0D")),
    # BenQ RP552H RS232 command list v02, p. 5: "Set Brightness as 76 for ID-02",
    # send packet 0x38 0x30 0x32 0x73 0x24 0x30 0x37 0x36 0x0D.
    ("benq-ifp", "set_brightness", {"address": 2, "brightness": 76}, bytes.fromhex("38 30 32 73 24 30 37 36 0D")),
    # The same RP552H example through the ViewSonic profile: one protocol family.
    ("viewsonic-ifp", "set_brightness", {"address": 2, "brightness": 76}, bytes.fromhex("38 30 32 73 24 30 37 36 0D")),
    # ViewSonic set-function table (CD3200 guide p. iv, same in the ViewBoard guide):
    # power '!' (21h), 001 = on, 000 = standby.
    ("viewsonic-ifp", "power_on", {}, b"801s!001\r"),
    # Input select '"' (22h) from the same table; the code 00A = Android is from the
    # project's protocol notes (ViewSonic ViewBoard), not re-read in a ViewSonic page.
    ("viewsonic-ifp", "set_input", {"source": "android"}, b'801s"00A\r'),
    # SMART Board 6000S guide (kb/171414) p. 77: ">set volume=65".
    ("smart-board", "set_volume", {"level": 65}, b"set volume=65\r"),
    # SMART Board 6000S guide p. 76: ">get volume".
    ("smart-board", "get_volume", {}, b"get volume\r"),
    # SMART Board 6000S guide p. 77, power state commands: "get powerstate", "set powerstate=on".
    ("smart-board", "get_power", {}, b"get powerstate\r"),
    ("smart-board", "power_on", {}, b"set powerstate=on\r"),
    # LG M4210LCBA manual p. A5, "To show the status of Power On/Off":
    # [k][a][ ][Set ID][ ][FF][Cr], set ID 01.
    ("lg-rs232", "get_power", {}, b"ka 01 ff\r"),
    # LG M4210LCBA manual p. A5, power: [k][a][ ][Set ID][ ][Data][Cr], data 1 = on.
    ("lg-rs232", "power_on", {}, b"ka 01 01\r"),
    # LG M4720C manual p. A7, volume mute: [k][e][ ][Set ID][ ][Data][Cr], 0 = mute on.
    ("lg-rs232", "mute_on", {}, b"ke 01 00\r"),
    # LG M4720C manual p. A7, volume control: data 00H-64H, 64H = step 100, set ID 0AH = 10.
    ("lg-rs232", "set_volume", {"address": 10, "level": 100}, b"kf 0a 64\r"),
    # MAXHUB IFP V6 third-party summary (ai4av.net): "3A 30 31 53 30 30 30 33 0d" power on.
    ("maxhub-ifp", "power_on", {}, bytes.fromhex("3A 30 31 53 30 30 30 33 0D")),
    # Same summary: "3A 30 31 53 30 30 30 32 0d" power off.
    ("maxhub-ifp", "power_off", {}, bytes.fromhex("3A 30 31 53 30 30 30 32 0D")),
    # Same summary: "3A 30 31 53 39 30 30 31 0d" mute on.
    ("maxhub-ifp", "mute_on", {}, bytes.fromhex("3A 30 31 53 39 30 30 31 0D")),
]


@pytest.mark.parametrize(("pid", "command", "args", "frame"), ENCODE_CASES)
def test_encodes_published_frame(pid: str, command: str, args: dict[str, object], frame: bytes) -> None:
    """The profile sends exactly the bytes the document prints."""
    assert Codec(find_profile(pid)).encode(command, args) == frame


REPLY_CASES = [
    # ViewBoard guide p. 113, example 1: reply 0x38 0x30 0x35 0x72 0x62 0x30 0x36 0x37 0x0D
    # (brightness 67 from TV-05).
    (
        "viewsonic-ifp",
        "get_brightness",
        {"address": 5},
        bytes.fromhex("38 30 35 72 62 30 36 37 0D"),
        {"kind": "value", "brightness": 67},
    ),
    # ViewBoard guide p. 113, example 2: a get the model does not support is answered
    # 0x34 0x30 0x35 0x2D 0x0D.
    ("viewsonic-ifp", "get_brightness", {"address": 5}, bytes.fromhex("34 30 35 2D 0D"), {"kind": "error"}),
    # BenQ RP552H p. 5: "Set Brightness as 76 for ID-02 ... valid", return 0x34 0x30 0x32 0x2B 0x0D.
    ("benq-ifp", "set_brightness", {"address": 2, "brightness": 76}, bytes.fromhex("34 30 32 2B 0D"), {"kind": "ack"}),
    # BenQ RP552H p. 5: "... invalid", return 0x34 0x30 0x32 0x2D 0x0D.
    (
        "benq-ifp",
        "set_brightness",
        {"address": 2, "brightness": 76},
        bytes.fromhex("34 30 32 2D 0D"),
        {"kind": "error"},
    ),
    # SMART 6000S guide p. 76: ">get volume" answered "volume=55" then the prompt.
    ("smart-board", "get_volume", {}, b"\r\nvolume=55\r\n>", {"kind": "value", "volume": 55}),
    # SMART 6000S guide p. 76: "set volume=-50" answered "invalid cmd: setvolume=-50".
    (
        "smart-board",
        "set_volume",
        {"level": 50},
        b"\r\ninvalid cmd: setvolume=-50\r\n>",
        {"kind": "error", "detail": ": setvolume=-50"},
    ),
    # SMART 6000S guide p. 77: "powerstate=standby" is a documented answer; the guide says
    # commands are not case-sensitive (p. 76) and the profile reads answers the same way.
    ("smart-board", "get_power", {}, b"\r\nPowerState=Standby\r\n>", {"kind": "value", "power": "off"}),
    # LG M4210LCBA p. A4, OK acknowledgement [Command2][ ][Set ID][ ][OK][Data][x].
    ("lg-rs232", "get_power", {}, b"a 01 OK01x", {"kind": "value", "power": "on"}),
    # LG M4720C p. A7: ke data 0 = Volume Mute On.
    ("lg-rs232", "get_mute", {}, b"e 01 OK00x", {"kind": "value", "mute": "on"}),
    # LG AU810PB p. 10, error acknowledgement (Command2)( )(Set ID)( )(NG)(Data)(x),
    # data 00 = illegal code.
    (
        "lg-rs232",
        "set_volume",
        {"level": 30},
        b"f 01 NG00x",
        {"kind": "error", "cmd": "volume", "error": "illegal_code"},
    ),
]


@pytest.mark.parametrize(("pid", "command", "args", "reply", "expect"), REPLY_CASES)
def test_parses_published_reply(
    pid: str, command: str, args: dict[str, object], reply: bytes, expect: dict[str, object]
) -> None:
    """A reply as the document prints it parses to the fields it means, errors included."""
    proto = ControllerProtocol(find_profile(pid))
    proto.send(command, args)
    events = proto.feed(reply)
    assert [e.to_dict() for e in events if isinstance(e, Reply)] == [expect]
    assert not [e for e in events if isinstance(e, Unrecognised)]


def test_smart_boot_junk_before_a_reply_is_reported_and_the_reply_still_read() -> None:
    """SMART panels print junk while booting; it must not hide the answer that follows."""
    proto = ControllerProtocol(find_profile("smart-board"))
    proto.send("get_power", {})
    junk = b"\x00\xfe\x1b[0mU-Boot 2017.09 booting\r\n"
    events = proto.feed(junk + b"\r\npowerstate=on\r\n>")
    assert len(events) == 2
    assert isinstance(events[0], Unrecognised) and events[0].frame == junk
    assert isinstance(events[1], Reply) and events[1].to_dict() == {"kind": "value", "power": "on"}


def test_line_noise_before_an_lg_reply_split_across_reads() -> None:
    """Noise glued to the front of a reply arriving in pieces is reported, the reply read."""
    proto = ControllerProtocol(find_profile("lg-rs232"))
    proto.send("get_volume", {})
    assert proto.feed(b"\xff\x00f 01 O") == []
    events = proto.feed(b"K1ex")
    assert [type(e) for e in events] == [Unrecognised, Reply]
    assert events[0].frame == b"\xff\x00"
    assert isinstance(events[1], Reply) and events[1].to_dict() == {"kind": "value", "volume": 30}


@pytest.mark.parametrize(
    ("pid", "garbled", "answer"),
    [
        # LG: NG with data 00 "illegal code" (AU810PB p. 10); the simulator cannot echo the
        # command letter of a frame it could not read, and uses "a".
        ("lg-rs232", b"kz 01 01\r", b"a 01 NG00x"),
        # ViewSonic/BenQ: "-" is the invalid command reply (ViewBoard guide p. 112).
        ("viewsonic-ifp", b"801gZ000\r", b"401-\r"),
        ("benq-ifp", b"801s!009\r", b"401-\r"),
        # SMART: "invalid cmd" followed by the prompt (6000S guide p. 76).
        ("smart-board", b"set volume=-50\r", b"\r\ninvalid cmd: ?\r\n>"),
    ],
)
def test_simulator_answers_a_garbled_request_with_the_device_error(pid: str, garbled: bytes, answer: bytes) -> None:
    """A request the simulated display cannot read gets the display's own error answer."""
    profile = find_profile(pid)
    sim = Simulator(profile, clock=lambda: 0.0)
    out = sim.feed(garbled)
    assert out == [answer]
    proto = ControllerProtocol(profile)
    assert [e.to_dict() for e in proto.feed(answer) if isinstance(e, Reply)][0]["kind"] == "error"


def test_maxhub_profile_is_marked_unconfirmed() -> None:
    """Codes from a third-party summary must say so, so nobody mistakes them for the maker's."""
    assert find_profile("maxhub-ifp").provenance.confidence == "unconfirmed"
