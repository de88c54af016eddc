"""The byte-template language (build and match) and the Framer that cuts streams into frames."""

from __future__ import annotations

import pytest

from drivers.profile_model import FrameRule
from drivers.protocol.engine import Framer
from drivers.protocol.template import Checksum, EncodeError, Template, TemplateError


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def roundtrip(source: str, values: dict[str, object], frame: bytes) -> None:
    """`source` builds `frame` from `values` and matches `frame` back into `values`."""
    template = Template.parse(source)
    assert template.build(values) == frame
    assert template.match(frame, {}) == values


# ---- formats ---------------------------------------------------------------


def test_u8_and_u16_big_endian() -> None:
    roundtrip("AA {a} {b:u16} FF", {"a": 0x12, "b": 0x3456}, h("AA 12 34 56 FF"))


def test_nib_spreads_one_nibble_per_byte() -> None:
    roundtrip("{z:nib4} FF", {"z": 0x1A2B}, h("01 0A 02 0B FF"))


def test_nib_byte_above_0f_does_not_match() -> None:
    assert Template.parse("{z:nib2} FF").match(h("10 01 FF"), {}) is None


@pytest.mark.parametrize(
    ("value", "wire"),
    [(-100, "0F 0F 09 0C"), (-1, "0F 0F 0F 0F"), (-2448, "0F 06 07 00"), (1200, "00 04 0B 00"), (0, "00 00 00 00")],
)
def test_snib_is_twos_complement(value: int, wire: str) -> None:
    roundtrip("{pan:snib4}", {"pan": value}, h(wire))


def test_snib_reads_top_bit_as_sign() -> None:
    # 0x7FFF is the largest positive 4-nibble value, 0x8000 the most negative.
    t = Template.parse("{p:snib4}")
    assert t.match(h("07 0F 0F 0F"), {}) == {"p": 0x7FFF}
    assert t.match(h("08 00 00 00"), {}) == {"p": -0x8000}


def test_hex_writes_lower_and_HEX_upper_case() -> None:
    assert Template.parse('"x" {a:hex2} 0D').build({"a": 0xAB}) == b"xab\r"
    assert Template.parse('"x" {a:HEX2} 0D').build({"a": 0xAB}) == b"xAB\r"
    assert Template.parse("{a:hex4}").build({"a": 0x1F}) == b"001f"


@pytest.mark.parametrize("fmt", ["hex2", "HEX2"])
@pytest.mark.parametrize("wire", [b"xab\r", b"xAB\r", b"xAb\r"])
def test_hex_reads_either_case(fmt: str, wire: bytes) -> None:
    assert Template.parse(f'"x" {{a:{fmt}}} 0D').match(wire, {}) == {"a": 0xAB}


def test_hex_non_digit_does_not_match() -> None:
    assert Template.parse('"x" {a:hex2} 0D').match(b"xag\r", {}) is None


def test_dec_fixed_width_is_zero_padded() -> None:
    roundtrip('"v" {a:dec3} 0D', {"a": 7}, b"v007\r")


def test_chr_carries_fixed_ascii_code() -> None:
    roundtrip('"i" {src:chr3} 0D', {"src": "00A"}, b"i00A\r")


def test_variable_dec_reads_up_to_next_literal() -> None:
    t = Template.parse('"vol=" {v:dec} ">"')
    assert t.match(b"vol=7>", {}) == {"v": 7}
    assert t.match(b"vol=100>", {}) == {"v": 100}
    roundtrip('"vol=" {v:dec} ">"', {"v": -12}, b"vol=-12>")


def test_variable_text_runs_to_end_of_frame() -> None:
    roundtrip('"name:" {t:text}', {"t": "Room 101 panel"}, b"name:Room 101 panel")


def test_variable_text_stops_at_following_literal() -> None:
    t = Template.parse('"[" {a:text} "|" {b:text} "]"')
    assert t.match(b"[hdmi1|on]", {}) == {"a": "hdmi1", "b": "on"}


def test_variable_dec_with_non_digits_does_not_match() -> None:
    assert Template.parse('"vol=" {v:dec} ">"').match(b"vol=1a>", {}) is None


def test_literal_text_token_keeps_spaces() -> None:
    assert Template.parse('"ka " {id:hex2} " ff" 0D').build({"id": 1}) == b"ka 01 ff\r"


# ---- linear expressions ------------------------------------------------------


def test_linear_expression_builds_visca_header() -> None:
    t = Template.parse("{address*16+0x80} 41 FF")
    assert t.build({"address": 1}) == h("90 41 FF")
    assert t.build({"address": 7}) == h("F0 41 FF")


def test_linear_expression_is_inverted_when_matching() -> None:
    t = Template.parse("{address*16+0x80} 41 FF")
    assert t.match(h("A0 41 FF"), {}) == {"address": 2}


def test_code_not_reachable_by_expression_does_not_match() -> None:
    # 0x95 - 0x80 = 5 is not a multiple of 16: no address gives that header.
    assert Template.parse("{address*16+0x80} 41 FF").match(h("95 41 FF"), {}) is None


def test_negative_offset_expression() -> None:
    roundtrip("{n-1}", {"n": 1}, h("00"))


# ---- known values, captures, repeats -----------------------------------------


def test_known_value_must_match() -> None:
    t = Template.parse("{address*16+0x80} {socket+0x40} FF")
    assert t.match(h("90 41 FF"), {"address": 1}) == {"socket": 1}
    assert t.match(h("A0 41 FF"), {"address": 1}) is None


def test_known_values_are_not_returned_as_captures() -> None:
    t = Template.parse("{address} {power} FF")
    assert t.match(h("01 02 FF"), {"address": 1}) == {"power": 2}


def test_repeated_field_must_be_consistent() -> None:
    t = Template.parse("{a} {b} {a} FF")
    assert t.match(h("05 06 05 FF"), {}) == {"a": 5, "b": 6}
    assert t.match(h("05 06 07 FF"), {}) is None


def test_literal_mismatch_and_wrong_length_do_not_match() -> None:
    t = Template.parse("90 50 {p} FF")
    assert t.match(h("90 51 02 FF"), {}) is None
    assert t.match(h("90 50 02 02 FF"), {}) is None
    assert t.match(h("90 50 FF"), {}) is None


def test_fold_case_matches_literals_case_insensitively() -> None:
    t = Template.parse('"OK" {v:hex2} "x"')
    assert t.match(b"ok1fx", {}) is None
    assert t.match(b"ok1fx", {}, fold_case=True) == {"v": 0x1F}


# ---- checksums ----------------------------------------------------------------


def test_sum8_over_range_with_negative_end() -> None:
    # Samsung MDC style: sum of everything after the header byte, modulo 256.
    cs = Checksum("sum8", 1, -1)
    t = Template.parse("AA {cmd} {id} 01 {v} {checksum}")
    frame = t.build({"cmd": 0x12, "id": 0xFE, "v": 0x40}, cs)
    assert frame == h("AA 12 FE 01 40") + bytes([(0x12 + 0xFE + 0x01 + 0x40) & 0xFF])
    assert t.match(frame, {}, cs) == {"cmd": 0x12, "id": 0xFE, "v": 0x40}


def test_xor8_with_checksum_before_terminator() -> None:
    cs = Checksum("xor8", 0, -2)
    t = Template.parse("01 {a} {b} {checksum} 0D")
    frame = t.build({"a": 0x30, "b": 0x41}, cs)
    assert frame == h("01 30 41") + bytes([0x01 ^ 0x30 ^ 0x41]) + b"\r"
    assert t.match(frame, {}, cs) == {"a": 0x30, "b": 0x41}


@pytest.mark.parametrize("kind", ["sum8", "xor8"])
def test_corrupted_checksum_does_not_match(kind: str) -> None:
    cs = Checksum(kind, 1, -1)
    t = Template.parse("AA {a} {b} {checksum}")
    frame = bytearray(t.build({"a": 3, "b": 4}, cs))
    frame[-1] ^= 0x01
    assert t.match(bytes(frame), {}, cs) is None


def test_corrupted_payload_fails_checksum() -> None:
    cs = Checksum("sum8", 1, -1)
    t = Template.parse("AA {a} {b} {checksum}")
    frame = bytearray(t.build({"a": 3, "b": 4}, cs))
    frame[1] += 1
    assert t.match(bytes(frame), {}, cs) is None


def test_checksum_template_without_rule_cannot_build() -> None:
    with pytest.raises(EncodeError, match="no checksum rule"):
        Template.parse("AA {a} {checksum}").build({"a": 1})


# ---- parse errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "token"),
    [
        ("81 GG FF", "'GG'"),
        ("81 123 FF", "'123'"),
        ("81 {a:foo} FF", "'foo'"),
        ("{a:hex}", "'{a:hex}'"),
        ("{a:nib}", "'{a:nib}'"),
        ("{a:chr}", "'{a:chr}'"),
        ("{a:u82}", "'{a:u82}'"),
        ("{Address}", "'{Address}'"),
        ('"abc', "'\"abc'"),
    ],
)
def test_parse_error_names_offending_token(source: str, token: str) -> None:
    with pytest.raises(TemplateError) as err:
        Template.parse(source)
    assert token in str(err.value)


def test_width_missing_says_a_width_is_needed() -> None:
    with pytest.raises(TemplateError, match="needs a width"):
        Template.parse("{b:hex} FF")


@pytest.mark.parametrize("source", ['"v" {a:dec} {b} "x"', "{a:text} {checksum}"])
def test_variable_field_followed_by_field_is_rejected(source: str) -> None:
    with pytest.raises(TemplateError, match=r"\{a\}.*followed by a literal"):
        Template.parse(source)


def test_empty_template_is_rejected() -> None:
    with pytest.raises(TemplateError, match="empty"):
        Template.parse("   ")


# ---- values that do not fit ------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("{a}", 256),
        ("{a}", -1),
        ("{a:u16}", 0x10000),
        ("{a:nib2}", 0x100),
        ("{a:nib2}", -1),
        ("{a:snib2}", 128),
        ("{a:snib2}", -129),
        ("{a:hex2}", 0x100),
        ("{a:HEX2}", -1),
        ("{a:dec2}", 100),
        ("{a:chr3}", "ab"),
        ("{a:chr3}", "abcd"),
        ("{a*16+0x80}", 8),
    ],
)
def test_value_that_does_not_fit_raises_encode_error(source: str, value: object) -> None:
    with pytest.raises(EncodeError, match=r"^a="):
        Template.parse(source).build({"a": value})


@pytest.mark.parametrize(("source", "fmt"), [("{a}", "u8"), ("{a:u16}", "u16"), ("{a:nib2}", "nib2")])
def test_encode_error_names_format_as_written(source: str, fmt: str) -> None:
    with pytest.raises(EncodeError) as err:
        Template.parse(source).build({"a": 1 << 20})
    assert str(err.value).endswith(f"format {fmt}")


def test_missing_value_names_the_field() -> None:
    with pytest.raises(EncodeError, match=r"\{level\}"):
        Template.parse("AA {level} FF").build({})


# ---- Framer -------------------------------------------------------------------------


def feed_bytewise(framer: Framer, data: bytes) -> list[tuple[bytes, bool]]:
    out: list[tuple[bytes, bool]] = []
    for b in data:
        out += framer.feed(bytes([b]))
    return out


def test_end_terminated_frames_split_at_terminator() -> None:
    framer = Framer(FrameRule(end=b"\xff"))
    assert framer.feed(h("90 41 FF 90 51 FF 90")) == [(h("90 41 FF"), False), (h("90 51 FF"), False)]
    assert framer.feed(h("50 02 FF")) == [(h("90 50 02 FF"), False)]


def test_end_terminated_frames_one_byte_at_a_time() -> None:
    framer = Framer(FrameRule(end=b"\xff"))
    assert feed_bytewise(framer, h("90 41 FF 90 51 FF")) == [(h("90 41 FF"), False), (h("90 51 FF"), False)]


def test_multibyte_terminator_one_byte_at_a_time() -> None:
    framer = Framer(FrameRule(end=b"\r\n"))
    assert feed_bytewise(framer, b"OK\rX\r\nNG\r\n") == [(b"OK\rX\r\n", False), (b"NG\r\n", False)]


SUM = Checksum("sum8", 1, -1)


def sized(payload: str) -> bytes:
    body = h(payload)
    return b"\xaa" + body + bytes([sum(body) & 0xFF])


def test_start_and_size_framing_one_byte_at_a_time() -> None:
    framer = Framer(FrameRule(start=b"\xaa", size=4), SUM)
    stream = sized("01 02") + sized("03 04")
    assert feed_bytewise(framer, stream) == [(sized("01 02"), False), (sized("03 04"), False)]


def test_start_and_length_framing_one_byte_at_a_time() -> None:
    # Samsung MDC shape: AA cmd id len data... checksum; total = len + 5.
    rule = FrameRule(start=b"\xaa", length_offset=3, length_add=5)
    framer = Framer(rule, SUM)
    short, long = sized("FF 01 01 41"), sized("FF 01 03 41 12 34")
    assert feed_bytewise(framer, short + long) == [(short, False), (long, False)]


def test_garbage_before_start_byte_is_reported_as_garbage() -> None:
    framer = Framer(FrameRule(start=b"\xaa", size=4), SUM)
    assert framer.feed(h("00 13 37") + sized("01 02")) == [(h("00 13 37"), True), (sized("01 02"), False)]


def test_garbage_without_any_start_byte_is_flushed() -> None:
    framer = Framer(FrameRule(start=b"\xaa", size=4), SUM)
    assert framer.feed(h("01 02 03")) == [(h("01 02 03"), True)]


def test_bad_checksum_in_size_framing_resynchronises_on_next_start() -> None:
    framer = Framer(FrameRule(start=b"\xaa", size=4), SUM)
    # A lost byte: "AA 01 02" then a real frame; the first 4 bytes fail the checksum.
    good = sized("05 06")
    events = framer.feed(h("AA 01 02") + good)
    assert events[-1] == (good, False)
    assert all(garbage for _, garbage in events[:-1])
    assert b"".join(f for f, _ in events) == h("AA 01 02") + good


def test_bad_checksum_in_length_framing_resynchronises_on_next_start() -> None:
    rule = FrameRule(start=b"\xaa", length_offset=3, length_add=5)
    framer = Framer(rule, SUM)
    good = sized("FF 01 01 41")
    broken = bytearray(good)
    broken[-1] ^= 0xFF
    events = framer.feed(bytes(broken) + good)
    assert events[-1] == (good, False)
    assert all(garbage for _, garbage in events[:-1])


def test_length_beyond_max_size_is_garbage_and_resynchronises() -> None:
    rule = FrameRule(start=b"\xaa", length_offset=1, length_add=3, max_size=8)
    framer = Framer(rule, SUM)
    good = sized("01 05")  # AA 01 05 06: length 1 + 3 = 4 bytes
    events = framer.feed(h("AA 40") + good)
    assert events[-1] == (good, False)
    assert all(garbage for _, garbage in events[:-1])


def test_length_shorter_than_header_is_garbage_not_a_crash() -> None:
    # A length byte of 0 (line noise) with `total = frame[1] + 0` implies a frame shorter
    # than the bytes already read; the framer must skip the start byte and resynchronise.
    rule = FrameRule(start=b"\xaa", length_offset=1, length_add=0, max_size=16)
    framer = Framer(rule, SUM)
    good = h("AA 03 03")  # total 3 bytes, sum8 over [1:-1] = 03
    events = framer.feed(h("AA 00") + good)
    assert events[-1] == (good, False)
    assert all(garbage for _, garbage in events[:-1])


def test_unterminated_stream_beyond_max_size_is_garbage_then_recovers() -> None:
    framer = Framer(FrameRule(end=b"\xff", max_size=8))
    events = feed_bytewise(framer, bytes(20))
    assert events and all(garbage for _, garbage in events)
    assert len(framer.buffer) < 8  # never more than one frame's worth kept
    after = framer.feed(h("90 41 FF"))
    assert all(garbage for _, garbage in after[:-1])
    frame, garbage = after[-1]
    assert not garbage and frame.endswith(h("90 41 FF")) and len(frame) <= 8


def test_terminated_frame_longer_than_max_size_is_garbage_in_one_read() -> None:
    # max_size caps any frame, whether the bytes arrive in one read or one at a time.
    framer = Framer(FrameRule(end=b"\xff", max_size=8))
    events = framer.feed(bytes(12) + h("90 41 FF"))
    assert all(garbage for frame, garbage in events if len(frame) > 8), events
