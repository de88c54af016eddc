"""Binary profiles (Pelco-D, Pelco-P, Samsung MDC, NEC) against frames from the published documents.

Each encode case names where its bytes come from.  Where a document prints a complete frame
the test uses it verbatim; where it only prints a table, the frame was put together by hand
from that table (said so in the comment), never from the profile's own output.
"""

from __future__ import annotations

import pytest

from drivers.profile import find_profile
from drivers.protocol.engine import ControllerProtocol, Reply, Unrecognised

ENCODE_CASES = [
    # Pelco-D, OEM command tables (PTZOptics PT20X-ZCAM Part 6, Minrray UV950A p.54) and the
    # worked frames of the fantasywow/Pelco-D README: zoom in / zoom out.
    ("pelco-d", "zoom_tele", {}, "FF 01 00 20 00 00 21"),
    ("pelco-d", "zoom_wide", {}, "FF 01 00 40 00 00 41"),
    # Same sources: the stop frame that ends every motion.
    ("pelco-d", "stop", {}, "FF 01 00 00 00 00 01"),
    # Same sources: focus far (cmd2 b7) and focus near (cmd1 b0).
    ("pelco-d", "focus_far", {}, "FF 01 00 80 00 00 81"),
    ("pelco-d", "focus_near", {}, "FF 01 01 00 00 00 02"),
    # Same README: set / go to / clear preset 001.
    ("pelco-d", "preset_set", {"n": 1}, "FF 01 00 03 00 01 05"),
    ("pelco-d", "preset_recall", {"n": 1}, "FF 01 00 07 00 01 09"),
    ("pelco-d", "preset_clear", {"n": 1}, "FF 01 00 05 00 01 07"),
    # Pelco C466M-E §5.2: sense bit + camera on/off bit = on; on/off bit alone = off (by hand).
    ("pelco-d", "power_on", {}, "FF 01 88 00 00 00 89"),
    ("pelco-d", "power_off", {}, "FF 01 08 00 00 00 09"),
    # OEM query table (Avipas AV-2020 p.30): query pan / tilt / zoom position (by hand).
    ("pelco-d", "get_pan", {}, "FF 01 00 51 00 00 52"),
    ("pelco-d", "get_tilt", {"address": 3}, "FF 03 00 53 00 00 56"),
    ("pelco-d", "get_zoom", {}, "FF 01 00 55 00 00 56"),
    # Pelco C466M-E §5.3 data bits, check byte = XOR of bytes 1-7 (no complete frame is
    # printed there; built by hand): stop, camera on, tilt up, go to preset 1, camera 2.
    ("pelco-p", "stop", {}, "A0 00 00 00 00 00 AF 0F"),
    ("pelco-p", "power_on", {}, "A0 00 50 00 00 00 AF 5F"),
    ("pelco-p", "move", {"direction": "up", "pan_speed": 0x20, "tilt_speed": 0x20}, "A0 00 00 08 20 20 AF 07"),
    ("pelco-p", "preset_recall", {"n": 1}, "A0 00 00 07 00 01 AF 09"),
    ("pelco-p", "stop", {"address": 2}, "A0 01 00 00 00 00 AF 0E"),
    # Active Silicon Harrier manual p.30: focus far = data1 01, focus near = data1 02 (by hand).
    ("pelco-p", "focus_far", {}, "A0 00 01 00 00 00 AF 0E"),
    ("pelco-p", "focus_near", {}, "A0 00 02 00 00 00 AF 0D"),
    # Samsung manual MDC example as quoted on RemoteCentral (RS-232 forum, 2010): power on /
    # off for every display (ID FE), checksum 11+FE+01+01 = 0x111 -> 11.
    ("samsung-mdc", "power_on_all", {}, "AA 11 FE 01 01 11"),
    ("samsung-mdc", "power_off_all", {}, "AA 11 FE 01 00 10"),
    # Samsung MD40B manual p.43 layouts (set volume, get volume), built by hand for ID 1.
    ("samsung-mdc", "set_volume", {"level": 50}, "AA 12 01 01 32 46"),
    ("samsung-mdc", "get_volume", {}, "AA 12 01 00 13"),
    # Samsung VM55B-U manual p.34: set input source HDMI1 (0x21), built by hand for ID 1.
    ("samsung-mdc", "set_input", {"source": "hdmi1"}, "AA 14 01 01 21 37"),
    ("samsung-mdc", "power_on", {"address": 2}, "AA 11 02 01 01 15"),
    # NEC P702 user manual p.32 "Control command diagram", printed frames for monitor ID 1.
    ("nec-lfd", "power_on", {}, "01 30 41 30 41 30 43 02 43 32 30 33 44 36 30 30 30 31 03 73 0D"),
    ("nec-lfd", "power_off", {}, "01 30 41 30 41 30 43 02 43 32 30 33 44 36 30 30 30 34 03 76 0D"),
    ("nec-lfd", "set_input", {"source": "displayport"}, "01 30 41 30 45 30 41 02 30 30 36 30 30 30 30 46 03 04 0D"),
    ("nec-lfd", "set_input", {"source": "dvi"}, "01 30 41 30 45 30 41 02 30 30 36 30 30 30 30 33 03 71 0D"),
    ("nec-lfd", "set_input", {"source": "vga"}, "01 30 41 30 45 30 41 02 30 30 36 30 30 30 30 31 03 73 0D"),
    ("nec-lfd", "set_input", {"source": "hdmi1"}, "01 30 41 30 45 30 41 02 30 30 36 30 30 30 31 31 03 72 0D"),
    ("nec-lfd", "set_input", {"source": "dvd_hd"}, "01 30 41 30 45 30 41 02 30 30 36 30 30 30 30 43 03 01 0D"),
    ("nec-lfd", "set_input", {"source": "option"}, "01 30 41 30 45 30 41 02 30 30 36 30 30 30 30 44 03 06 0D"),
    ("nec-lfd", "mute_on", {}, "01 30 41 30 45 30 41 02 30 30 38 44 30 30 30 31 03 09 0D"),
    ("nec-lfd", "mute_off", {}, "01 30 41 30 45 30 41 02 30 30 38 44 30 30 30 32 03 0A 0D"),
    # NEC External Control manual §4.3 "Check code": the worked BCC example (set OP 0010h to
    # 0064h, BCC 77h).
    ("nec-lfd", "set_brightness", {"level": 100}, "01 30 41 30 45 30 41 02 30 30 31 30 30 30 36 34 03 77 0D"),
    # NEC E657Q External Controls p.21 step 3 (set backlight 0050h); BCC computed by hand.
    ("nec-lfd", "set_brightness", {"level": 80}, "01 30 41 30 45 30 41 02 30 30 31 30 30 30 35 30 03 70 0D"),
    # NEC External Control manual §7.1: get power status "01D6" (BCC by hand).
    ("nec-lfd", "get_power", {}, "01 30 41 30 41 30 36 02 30 31 44 36 03 74 0D"),
    # Monitor ID 2 is 'B' (42h); NEC §4.1 (frame and BCC by hand).
    ("nec-lfd", "get_power", {"address": 2}, "01 30 42 30 41 30 36 02 30 31 44 36 03 77 0D"),
]


@pytest.mark.parametrize(("pid", "command", "args", "expected"), ENCODE_CASES)
def test_encodes_published_frame(pid: str, command: str, args: dict[str, object], expected: str) -> None:
    """The profile writes exactly the frame the document prints (or its table dictates)."""
    proto = ControllerProtocol(find_profile(pid))
    assert proto.send(command, args).frame == bytes.fromhex(expected)


def _replies(pid: str, command: str, reply_hex: str, args: dict[str, object] | None = None) -> list[dict[str, object]]:
    proto = ControllerProtocol(find_profile(pid))
    proto.send(command, args or {})
    events = proto.feed(bytes.fromhex(reply_hex))
    assert all(isinstance(e, Reply) for e in events), events
    return [e.to_dict() for e in events if isinstance(e, Reply)]


PARSE_CASES = [
    # Pelco-D query responses (OEM table: 00 59 / 00 5B / 00 5D, value high byte first; the
    # unit is hundredths of a degree).  90.00 degrees east:
    ("pelco-d", "get_pan", {}, "FF 01 00 59 23 28 A5", {"kind": "value", "pan": 9000}),
    # 350.00 degrees: tilt above level on a dome that counts 0-35999.
    ("pelco-d", "get_tilt", {}, "FF 01 00 5B 88 B8 9C", {"kind": "value", "tilt": 35000}),
    ("pelco-d", "get_zoom", {}, "FF 01 00 5D 12 34 A4", {"kind": "value", "zoom": 0x1234}),
    ("pelco-d", "get_pan", {"address": 3}, "FF 03 00 59 00 64 C0", {"kind": "value", "pan": 100}),
    # Samsung ACK (MD40B p.43 layout): power on, volume 50.
    ("samsung-mdc", "get_power", {}, "AA FF 01 03 41 11 01 56", {"kind": "value", "power": "on"}),
    ("samsung-mdc", "get_volume", {}, "AA FF 01 03 41 12 32 88", {"kind": "value", "volume": 50}),
    ("samsung-mdc", "get_input", {}, "AA FF 01 03 41 14 25 7D", {"kind": "value", "source": "displayport"}),
    # Samsung NAK ('N', r-CMD 12, ERR 01).
    ("samsung-mdc", "set_volume", {"level": 50}, "AA FF 01 03 4E 12 01 64", {"kind": "error", "cmd": 0x12, "error": 1}),
    # NEC §7.1 power status reply "0200D6000004" + current mode (BCC by hand).
    (
        "nec-lfd",
        "get_power",
        {},
        "01 30 30 41 42 31 32 02 30 32 30 30 44 36 30 30 30 30 30 34 30 30 30 32 03 77 0D",
        {"kind": "value", "power": "standby"},
    ),
    # NEC §7.2 power control reply: result 00, C203D6, mode 0001 (BCC by hand).
    (
        "nec-lfd",
        "power_on",
        {},
        "01 30 30 41 42 30 45 02 30 30 43 32 30 33 44 36 30 30 30 31 03 76 0D",
        {"kind": "value", "power": "on"},
    ),
    # NEC E657Q p.21 step 4: set-parameter reply, max 0064h, requested value 0050h.
    (
        "nec-lfd",
        "set_brightness",
        {"level": 80},
        "01 30 30 41 46 31 32 02 30 30 30 30 31 30 30 30 30 30 36 34 30 30 35 30 03 03 0D",
        {"kind": "value", "max_value": 100},
    ),
    # NEC §5.5.3: the NULL message printed as 01h-30h-30h-41h-42h-30h-34h-02h-42h-45h-03h-CHK-0Dh.
    ("nec-lfd", "set_input", {"source": "hdmi1"}, "01 30 30 41 42 30 34 02 42 45 03 01 0D", {"kind": "error"}),
    # NEC §5.2: result code 01 = unsupported operation (remaining fields zero).
    (
        "nec-lfd",
        "get_volume",
        {},
        "01 30 30 41 44 31 32 02 30 31 30 30 36 32 30 30 30 30 30 30 30 30 30 30 03 02 0D",
        {"kind": "error", "error": 1, "opcode": 0x62, "ptype": 0, "max_value": 0, "current": 0},
    ),
]


@pytest.mark.parametrize(("pid", "command", "args", "reply", "expected"), PARSE_CASES)
def test_parses_reply(pid: str, command: str, args: dict[str, object], reply: str, expected: dict[str, object]) -> None:
    """Values, positions, NAKs and error messages come out with the vocabulary's field names."""
    assert _replies(pid, command, reply, args) == [expected]


def test_samsung_ack_from_another_display_is_not_taken() -> None:
    """An ACK carrying display ID 2 does not answer a request sent to display 1."""
    proto = ControllerProtocol(find_profile("samsung-mdc"))
    proto.send("get_power", {})
    (event,) = proto.feed(bytes.fromhex("AA FF 02 03 41 11 01 57"))
    assert isinstance(event, Unrecognised)


def test_samsung_ack_with_bad_checksum_is_dropped() -> None:
    """A corrupted ACK is never read as a value."""
    proto = ControllerProtocol(find_profile("samsung-mdc"))
    proto.send("get_volume", {})
    events = proto.feed(bytes.fromhex("AA FF 01 03 41 12 32 89"))
    assert events and not any(isinstance(e, Reply) for e in events)


def test_nec_check_code_equal_to_cr_ends_no_frame() -> None:
    """A BCC of 0Dh (volume 72) is not mistaken for the delimiter, even split across reads."""
    proto = ControllerProtocol(find_profile("nec-lfd"))
    proto.send("get_volume", {})
    reply = bytes.fromhex("01 30 30 41 44 31 32 02 30 30 30 30 36 32 30 30 30 30 36 34 30 30 34 38 03 0D 0D")
    cut = len(reply) - 1  # the first read ends on the BCC, the CR comes later
    assert proto.feed(reply[:cut]) == []
    (event,) = proto.feed(reply[cut:])
    assert isinstance(event, Reply)
    assert event.to_dict() == {"kind": "value", "max_value": 100, "volume": 72}


NOISE = [b"\x00\x13", b"\xaa\x13", b"\xaa\x00\x00\x01", b"\xff\x01\x00", b"\xaa\xaa\xff\xff\x03"]


@pytest.mark.parametrize("noise", NOISE)
def test_samsung_framer_resynchronises_after_garbage(noise: bytes) -> None:
    """Line noise (even a stray AA or FF) before an ACK is reported, then the ACK is read."""
    proto = ControllerProtocol(find_profile("samsung-mdc"))
    proto.send("get_volume", {})
    events = proto.feed(noise + bytes.fromhex("AA FF 01 03 41 12 1E 74"))
    assert all(isinstance(e, Unrecognised) for e in events[:-1])
    assert b"".join(e.frame for e in events[:-1] if isinstance(e, Unrecognised)) == noise
    assert isinstance(events[-1], Reply) and events[-1].to_dict() == {"kind": "value", "volume": 30}


@pytest.mark.parametrize("noise", NOISE)
def test_pelco_d_framer_resynchronises_after_garbage(noise: bytes) -> None:
    """Noise (even a stray FF sync byte) before a position reply does not lose the reply."""
    proto = ControllerProtocol(find_profile("pelco-d"))
    proto.send("get_pan", {})
    events = proto.feed(noise + bytes.fromhex("FF 01 00 59 23 28 A5"))
    assert all(isinstance(e, Unrecognised) for e in events[:-1])
    assert b"".join(e.frame for e in events[:-1] if isinstance(e, Unrecognised)) == noise
    assert isinstance(events[-1], Reply) and events[-1].to_dict() == {"kind": "value", "pan": 9000}


def test_pelco_d_reply_split_across_reads() -> None:
    """A position reply that arrives a byte at a time is read once it is complete."""
    proto = ControllerProtocol(find_profile("pelco-d"))
    proto.send("get_zoom", {})
    frame = bytes.fromhex("FF 01 00 5D 12 34 A4")
    events = [e for b in frame for e in proto.feed(bytes([b]))]
    assert [e.to_dict() for e in events if isinstance(e, Reply)] == [{"kind": "value", "zoom": 0x1234}]
    assert len(events) == 1


def test_samsung_simulator_nak_echoes_the_refused_command() -> None:
    # MDC: a NAK names the command it refuses (r-CMD); a set in standby refuses a mute (13).
    # Check byte: FF+01+03+4E+13+01 = 0x165 -> 65.
    from drivers.sim.model import Simulator

    sim = Simulator(find_profile("samsung-mdc"), clock=lambda: 0.0, initial={"power": "off"})
    request = bytes.fromhex("AA 13 01 01 01 16")
    assert sim.feed(request) == [bytes.fromhex("AA FF 01 03 4E 13 01 65")]
