"""Loading hardware profiles: every problem named with file and key path; typed arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.errors import ArgumentError, ProfileError
from drivers.profile import find_profile, load_profile, profile_ids
from drivers.profile_model import FieldType, Profile
from drivers.protocol.engine import Codec
from drivers.protocol.visca_ip import COMMAND, INQUIRY, Datagram, payload_type

# A small valid profile: start+size framing with a sum8 checksum, an int, an enum.
MINI = """
[profile]
id = "mini"
name = "Mini"
kind = "camera"
error_replies = ["nak"]

[provenance]
document = "test fixture"
confidence = "primary"

[transport]
serial = { baud = 9600, parity = "N" }

[framing]
checksum = { type = "sum8", start = 1, end = -1 }
request = { start = "AA", size = 4 }
reply = { start = "AA", size = 4 }

[fields.address]
type = "int"
min = 1
max = 7
default = 1

[fields.level]
type = "int"
min = 0
max = 100

[fields.power]
type = "enum"
values = { on = 1, off = 0 }

[replies.ack]
kind = "ack"
match = "AA {address} 41 {checksum}"
examples = [{ bytes = "AA 01 41 42", args = { address = 1 }, fields = {} }]

[replies.nak]
kind = "error"
match = "AA {address} 4E {checksum}"

[replies.power_value]
kind = "value"
match = "AA {address} {power} {checksum}"
examples = [{ bytes = "AA 02 01 03", fields = { address = 2, power = "on" } }]

[commands.set_level]
send = "AA {address} {level} {checksum}"
replies = ["ack"]
examples = [{ args = { level = 16 }, bytes = "AA 01 10 11" }]

[commands.get_power]
send = "AA {address} 70 {checksum}"
replies = ["power_value"]
"""


def write(tmp_path: Path, text: str, name: str = "mini") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def edit(old: str, new: str) -> str:
    assert old in MINI, old
    return MINI.replace(old, new, 1)


def load_error(tmp_path: Path, text: str, name: str = "mini") -> str:
    path = write(tmp_path, text, name)
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    message = str(err.value)
    for line in message.splitlines():
        assert line.startswith(f"{path}: "), f"line does not name the file: {line!r}"
    return message


def test_fixture_profile_loads(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, MINI))
    assert Codec(profile).encode("set_level", {"level": 16}) == bytes.fromhex("AA 01 10 11")


@pytest.mark.parametrize(
    ("text", "key_path"),
    [
        (MINI + "\n[extras]\nx = 1\n", "extras: unknown key"),
        (edit('replies = ["ack"]\n', 'replies = ["ack"]\nretries = 3\n'), "commands.set_level.retries: unknown key"),
        (edit("max = 100\n", "max = 100\nmaximum = 5\n"), "fields.level.maximum: unknown key"),
        (edit('confidence = "primary"', 'confidence = "primary"\nauthor = "me"'), "provenance.author: unknown key"),
    ],
)
def test_unknown_key_is_named_with_its_path(tmp_path: Path, text: str, key_path: str) -> None:
    assert key_path in load_error(tmp_path, text)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('kind = "camera"', 'kind = "tv"', "profile.kind: got 'tv', expected one of camera | display | projector"),
        ('confidence = "primary"', 'confidence = "sure"', "provenance.confidence: got 'sure'"),
        ('kind = "ack"', 'kind = "okay"', "replies.ack.kind: got 'okay'"),
        ('parity = "N"', 'parity = "X"', "transport.serial.parity: got 'X', expected one of N | E | O"),
        ('type = "sum8"', 'type = "crc16"', "framing.checksum.type: got 'crc16'"),
        ('type = "enum"', 'type = "bool"', "fields.power.type: got 'bool'"),
        ('kind = "camera"', 'kind = "camera"\ndriver = "soap"', "profile.driver: got 'soap', expected one of engine"),
    ],
)
def test_bad_enum_value_is_named(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert expected in load_error(tmp_path, edit(old, new))


def test_regex_that_does_not_compile(tmp_path: Path) -> None:
    text = edit('match = "AA {address} 4E {checksum}"', "regex = '^NG(?P<address'")
    assert "replies.nak.regex: does not compile" in load_error(tmp_path, text)


def test_template_that_does_not_parse(tmp_path: Path) -> None:
    text = edit('send = "AA {address} {level} {checksum}"', 'send = "AA {address} {level:hexx} {checksum}"')
    message = load_error(tmp_path, text)
    assert "commands.set_level.send:" in message
    assert "{level:hexx}" in message


def test_reply_template_that_does_not_parse(tmp_path: Path) -> None:
    message = load_error(tmp_path, edit('"AA {address} 4E {checksum}"', '"AA {address} 4Z {checksum}"'))
    assert "replies.nak.match:" in message
    assert "'4Z'" in message


def test_field_without_definition(tmp_path: Path) -> None:
    text = edit('send = "AA {address} {level} {checksum}"', 'send = "AA {address} {volume} {checksum}"')
    assert "commands.set_level.send: field {volume} has no [fields.volume] definition" in load_error(tmp_path, text)


def test_command_example_that_encodes_differently_shows_both(tmp_path: Path) -> None:
    message = load_error(tmp_path, edit('bytes = "AA 01 10 11"', 'bytes = "AA 01 10 12"'))
    assert "commands.set_level.examples[0].bytes" in message
    assert "AA 01 10 11" in message  # what the profile encodes
    assert "AA 01 10 12" in message  # what the example says


def test_reply_example_that_does_not_match(tmp_path: Path) -> None:
    # A wrong checksum byte in the example: the reply's own rule rejects it.
    message = load_error(tmp_path, edit('bytes = "AA 01 41 42"', 'bytes = "AA 01 41 43"'))
    assert "replies.ack.examples[0]:" in message
    assert "does not match" in message


def test_reply_example_whose_fields_differ(tmp_path: Path) -> None:
    message = load_error(tmp_path, edit('power = "on" }', 'power = "off" }'))
    assert "replies.power_value.examples[0].fields" in message
    assert "'on'" in message and "'off'" in message


def test_id_must_equal_file_name(tmp_path: Path) -> None:
    message = load_error(tmp_path, MINI, name="other")
    assert "profile.id: got 'mini', expected the file name 'other'" in message


def test_framing_with_both_end_and_size(tmp_path: Path) -> None:
    text = edit('request = { start = "AA", size = 4 }', 'request = { start = "AA", size = 4, end = "FF" }')
    assert "framing.request: give exactly one of end, size, length" in load_error(tmp_path, text)


def test_size_framing_without_start_bytes(tmp_path: Path) -> None:
    text = edit('reply = { start = "AA", size = 4 }', "reply = { size = 4 }")
    assert "framing.reply.start:" in load_error(tmp_path, text)


def test_unknown_reply_name_in_command(tmp_path: Path) -> None:
    text = edit('replies = ["ack"]', 'replies = ["ack", "done"]')
    assert "commands.set_level.replies[1]: unknown reply 'done'" in load_error(tmp_path, text)


def test_bad_default_is_a_load_error(tmp_path: Path) -> None:
    text = edit("max = 7\ndefault = 1", "max = 7\ndefault = 9")
    assert "fields.address.default: address=9: out of range 1..7" in load_error(tmp_path, text)


def test_several_problems_are_all_reported_at_once(tmp_path: Path) -> None:
    text = (
        edit('kind = "camera"', 'kind = "tv"')
        .replace('confidence = "primary"', 'confidence = "sure"')
        .replace("max = 100\n", "max = 100\nmaximum = 5\n")
        .replace('parity = "N"', 'parity = "X"')
    )
    lines = load_error(tmp_path, text).splitlines()
    assert len(lines) == 4
    for key in ("profile.kind", "provenance.confidence", "fields.level.maximum", "transport.serial.parity"):
        assert any(f": {key}" in line for line in lines), key


def test_several_bad_examples_are_all_reported_at_once(tmp_path: Path) -> None:
    text = edit('bytes = "AA 01 10 11"', 'bytes = "AA 01 10 12"').replace(
        'bytes = "AA 01 41 42"', 'bytes = "AA 01 41 43"'
    )
    message = load_error(tmp_path, text)
    assert "commands.set_level.examples[0].bytes" in message
    assert "replies.ack.examples[0]" in message


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    assert "not valid TOML" in load_error(tmp_path, MINI + "\n[profile\n")


def test_checksum_token_without_checksum_rule_is_a_load_error(tmp_path: Path) -> None:
    # Without a rule every {checksum} reply silently never matches and every command fails
    # at run time; the profile must not load.
    text = edit('checksum = { type = "sum8", start = 1, end = -1 }\n', "")
    text = text.replace('examples = [{ args = { level = 16 }, bytes = "AA 01 10 11" }]\n', "")
    text = text.replace('examples = [{ bytes = "AA 01 41 42", args = { address = 1 }, fields = {} }]\n', "")
    text = text.replace('examples = [{ bytes = "AA 02 01 03", fields = { address = 2, power = "on" } }]\n', "")
    assert "{checksum}" in load_error(tmp_path, text)


# ---- shipped profiles ------------------------------------------------------------


def test_shipped_profiles_are_found() -> None:
    assert "sony-visca" in profile_ids()


@pytest.mark.parametrize("pid", profile_ids())
def test_every_shipped_profile_loads(pid: str) -> None:
    profile = find_profile(pid)
    assert profile.id == pid
    assert profile.commands


def test_find_profile_unknown_id_lists_known_ones() -> None:
    with pytest.raises(ArgumentError, match="unknown profile 'nope'.*sony-visca"):
        find_profile("nope")


def test_find_profile_accepts_a_path(tmp_path: Path) -> None:
    assert find_profile(str(write(tmp_path, MINI))).id == "mini"


# ---- FieldType.coerce ----------------------------------------------------------------

LEVEL = FieldType("level", "int", min=-10, max=100)
SOURCE = FieldType("source", "enum", values={"hdmi1": 0x21, "HDMI2": 0x23, "dp": "00A"})


@pytest.mark.parametrize(("given", "code"), [(16, 16), ("16", 16), ("0x10", 16), ("-5", -5), (" 7", 7)])
def test_int_coerce_accepts_cli_text(given: object, code: int) -> None:
    assert LEVEL.coerce(given) == code


@pytest.mark.parametrize(("given", "code"), [("05", 5), ("010", 10), ("007", 7)])
def test_int_coerce_reads_leading_zeros_as_decimal(given: str, code: int) -> None:
    # Technicians type preset=05 or set ID 01 as the manuals print them.
    assert LEVEL.coerce(given) == code


@pytest.mark.parametrize("given", [101, "-11", "0x65"])
def test_int_coerce_out_of_range_names_the_range(given: object) -> None:
    with pytest.raises(ArgumentError, match=r"level=-?\d+: out of range -10\.\.100"):
        LEVEL.coerce(given)


@pytest.mark.parametrize("given", ["loud", "", "1.5", 1.5, None])
def test_int_coerce_rejects_non_numbers(given: object) -> None:
    with pytest.raises(ArgumentError, match="expected an integer"):
        LEVEL.coerce(given)


@pytest.mark.parametrize("given", [True, False])
def test_int_coerce_rejects_bool(given: bool) -> None:
    with pytest.raises(ArgumentError, match="expected an integer"):
        LEVEL.coerce(given)


@pytest.mark.parametrize(("given", "code"), [("hdmi1", 0x21), ("HDMI1", 0x21), ("hdmi2", 0x23), ("DP", "00A")])
def test_enum_coerce_is_case_insensitive(given: str, code: object) -> None:
    assert SOURCE.coerce(given) == code


def test_enum_coerce_unknown_name_lists_choices() -> None:
    with pytest.raises(ArgumentError, match="source='vga': expected one of hdmi1, HDMI2, dp"):
        SOURCE.coerce("vga")


# ---- resolve_args ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def visca() -> Profile:
    return find_profile("sony-visca")


def test_resolve_args_fills_defaults(visca: Profile) -> None:
    resolved = visca.resolve_args(visca.command("goto"), {"pan": "-100", "tilt": 20})
    assert resolved == {"address": 1, "pan_speed": 8, "tilt_speed": 8, "pan": -100, "tilt": 20}


def test_resolve_args_returns_enum_names(visca: Profile) -> None:
    resolved = visca.resolve_args(visca.command("move"), {"direction": "UpLeft"})
    assert resolved["direction"] == "upleft"


def test_resolve_args_missing_argument(visca: Profile) -> None:
    with pytest.raises(ArgumentError, match="goto: missing argument 'tilt'"):
        visca.resolve_args(visca.command("goto"), {"pan": 0})


def test_resolve_args_unknown_argument_is_named(visca: Profile) -> None:
    with pytest.raises(ArgumentError, match="goto: unknown argument 'zoom'"):
        visca.resolve_args(visca.command("goto"), {"pan": 0, "tilt": 0, "zoom": 3})


def test_every_command_accepts_address(visca: Profile) -> None:
    codec = Codec(visca)
    # if_clear is a broadcast whose frame has no address; it still takes the argument.
    assert codec.encode("if_clear", {"address": 3}) == bytes.fromhex("88 01 00 01 FF")
    assert codec.encode("get_power", {"address": 3}) == bytes.fromhex("83 09 04 00 FF")


# ---- VISCA over IP ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "wire",
    [
        "01 10 00 05 00 00 00 01 81 09 04 00 FF",
        "01 00 00 06 FF FF FF FF 81 01 04 00 02 FF",
        "01 11 00 03 00 00 00 2A 90 41 FF",
        "02 00 00 01 00 00 00 00 01",
    ],
)
def test_datagram_round_trip(wire: str) -> None:
    data = bytes.fromhex(wire)
    assert bytes(Datagram.parse(data)) == data


def test_datagram_fields() -> None:
    d = Datagram.parse(bytes.fromhex("01 11 00 03 00 00 00 2A 90 51 FF"))
    assert (d.type, d.sequence, d.payload) == (0x0111, 42, bytes.fromhex("90 51 FF"))


@pytest.mark.parametrize(
    "wire",
    [
        "",
        "01 10 00 05 00 00 00",  # shorter than a header
        "01 10 00 00 00 00 00 01",  # header only, no payload
        "01 10 00 06 00 00 00 01 81 09 04 00 FF",  # length says 6, payload is 5
        "01 10 00 04 00 00 00 01 81 09 04 00 FF",  # length says 4, payload is 5
        "01 00 00 11 00 00 00 01" + " 00" * 17,  # longer than VISCA allows
    ],
)
def test_malformed_datagram_raises_value_error(wire: str) -> None:
    with pytest.raises(ValueError):
        Datagram.parse(bytes.fromhex(wire))


def test_payload_type_of_inquiry_and_command() -> None:
    assert payload_type(bytes.fromhex("81 09 04 00 FF")) == INQUIRY == 0x0110
    assert payload_type(bytes.fromhex("81 01 04 00 02 FF")) == COMMAND == 0x0100
