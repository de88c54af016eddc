"""Every payload is hostile until checked: size, depth, numbers and strings bounded; only PayloadError escapes."""

from __future__ import annotations

import json

import pytest
from readers import READERS

from contract import (
    PayloadError,
    decode,
    encode,
    now_iso,
    parse_iso,
)
from contract.limits import BY_KIND, COMMAND, LARGEST, MAX_DEPTH, PAYLOAD, RTC, for_kind
from contract.rtc import RtcMessage

TELEMETRY = {"schema": 1, "ts": "2026-11-22T08:00:00Z", "cpu_percent": 1.5, "memory_percent": 2.0}
TELEMETRY |= {"disk_free_bytes": 10, "disk_percent": 3.0}


def with_value(text: str) -> bytes:
    """A telemetry payload whose ``cpu_percent`` is `text`, written as is (not by json)."""
    return b'{"schema":1,"ts":"2026-11-22T08:00:00Z","cpu_percent":' + text.encode() + b',"memory_percent":1}'


HOSTILE = {
    "deep list": b"[" * 1000,
    "deep object": b'{"schema":1,"x":' + b'{"a":' * 1000 + b"1" + b"}" * 1001,
    "deep inside a valid payload": json.dumps({**TELEMETRY, "x": 0})
    .encode()
    .replace(b"0}", b"[" * 999 + b"]" * 999 + b"}"),
    "400-digit number": with_value("9" * 400),
    "5000-digit number": with_value("9" * 5000),
    "2**70 session": b'{"schema":1,"state":"online","session":%d,"since":"2026-11-22T08:00:00Z"}' % 2**70,
    "NaN": with_value("NaN"),
    "Infinity": with_value("-Infinity"),
    "1e999": with_value("1e999"),
    "a 400-digit float": with_value("9" * 400 + ".5"),
    "not UTF-8": b'{"schema":1,"x":"\xff\xfe"}',
    "a lone surrogate": b'{"schema":1,"x":"\\ud800"}',
    "oversized": json.dumps({**TELEMETRY, "pad": "x" * (LARGEST + 1)}).encode(),
    "a list": b"[1,2,3]",
    "a number": b"12",
    "empty": b"",
    "schema 2": b'{"schema":2}',
    "schema as a huge int": b'{"schema":%s}' % (b"1" * 300),
}


@pytest.mark.parametrize("kind", sorted(READERS))
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_payload_raises_only_payload_error_on_every_topic(kind: str, name: str) -> None:
    with pytest.raises(PayloadError):
        READERS[kind](decode(HOSTILE[name], for_kind(kind)))


def test_each_limit_names_the_problem() -> None:
    cases = {
        HOSTILE["deep list"]: f"deeper than {MAX_DEPTH}",
        HOSTILE["400-digit number"]: "400 digits: outside int64",
        HOSTILE["2**70 session"]: "outside int64",
        HOSTILE["NaN"]: "NaN",
        HOSTILE["1e999"]: "not a finite float",
        HOSTILE["oversized"]: f"over the limit of {PAYLOAD.size} bytes",
        HOSTILE["not UTF-8"]: "not UTF-8",
    }
    for payload, named in cases.items():
        with pytest.raises(PayloadError, match=named):
            decode(payload)


def test_the_limits_are_the_edges_exactly() -> None:
    deepest = b'{"schema":1,"x":' + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1) + b"}"
    assert decode(deepest)["schema"] == 1
    with pytest.raises(PayloadError, match="deeper"):
        decode(deepest.replace(b"[", b"[[", 1).replace(b"]", b"]]", 1))
    assert decode(b'{"schema":1,"n":%d,"m":%d}' % (2**63 - 1, -(2**63)))["n"] == 2**63 - 1
    with pytest.raises(PayloadError, match="int64"):
        decode(b'{"schema":1,"n":%d}' % 2**63)
    brackets_in_strings = json.dumps({"schema": 1, "note": "[" * 5000 + "{" * 5000}).encode()
    assert decode(brackets_in_strings)["note"].startswith("[[[")


def test_strings_are_bounded_per_topic_but_an_sdp_may_fill_the_rtc_limit() -> None:
    long_string = "v=0\r\n" + "a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n" * 4000  # ~180 KB
    offer = RtcMessage("offer", "L1", now_iso(), mode="zhuandi", sdp=long_string)
    assert RtcMessage.from_dict(decode(encode(offer.to_dict()), RTC)) == offer
    with pytest.raises(PayloadError, match="over the limit"):
        decode(encode({**TELEMETRY, "message": "x" * (PAYLOAD.string + 1)}), PAYLOAD)
    watch = {"id": "c1", "args": {"offer": "o" * 40_000}, "expires": now_iso()}
    assert decode(encode(watch), COMMAND)["args"]["offer"] == "o" * 40_000
    assert BY_KIND["telemetry"].size == 64 * 1024 and BY_KIND["rtc"].size == 256 * 1024 == LARGEST


def test_json_the_programs_write_has_no_nan_or_infinity() -> None:
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(PayloadError, match="cannot encode"):
            encode({**TELEMETRY, "cpu_percent": bad})


def test_a_timestamp_out_of_datetime_s_range_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match="timestamp"):
        parse_iso("9999-12-31T23:59:59-23:59")
