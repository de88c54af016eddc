"""Fuzzing every topic's decoder: random and mutated payloads raise only PayloadError; valid ones round-trip."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from readers import READERS

from contract import (
    Command,
    CommandReply,
    CommandStatus,
    DeviceInfo,
    DeviceState,
    Event,
    Info,
    Nic,
    PayloadError,
    SourceInfo,
    Status,
    Telemetry,
    decode,
    encode,
    to_iso,
)
from contract.limits import INT_MAX, INT_MIN, for_kind
from contract.rtc import LESSON_MODES, RtcMessage

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

text = st.text(max_size=20)
ints = st.integers(INT_MIN, INT_MAX)
floats = st.floats(allow_nan=False, allow_infinity=False)
stamps = st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)).map(to_iso)
leaves = st.none() | st.booleans() | ints | floats | text
# A network card's MAC (never a group address, never all zeros) and an IPv4 address a packet can go to.
macs = st.binary(min_size=6, max_size=6).filter(lambda b: not b[0] & 1 and any(b)).map(lambda b: b.hex(":"))
ipv4 = st.just("") | st.ip_addresses(v=4).filter(lambda a: not (a.is_unspecified or a.is_multicast)).map(str)
# A code (``arg_range``) and its params: scalars or short lists of strings.
codes = st.just("") | st.from_regex(r"[a-z][a-z0-9_.]{0,20}", fullmatch=True)
params = st.dictionaries(text, leaves | st.lists(text, max_size=3), max_size=4)
# School hours: a window that ends after it starts.
windows = st.tuples(stamps, st.integers(1, 10**6)).map(
    lambda w: (w[0], to_iso(datetime.fromisoformat(w[0].replace("Z", "+00:00")) + timedelta(seconds=w[1])))
)
json_values = st.recursive(
    leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4), max_leaves=12
)
# Values that break a bound or a field's type, for mutating a valid payload one key at a time.
hostile_values = st.sampled_from(
    [
        "[" * 1000,
        "9" * 400,
        str(2**70),
        "NaN",
        "-Infinity",
        "1e999",
        '"' + "x" * 70_000 + '"',
        '"\\ud800"',
        "{}",
        "null",
        '"2026-13-45T99:00:00Z"',
        '"9999-12-31T23:59:59-23:59"',
        "true",
        "-1",
    ]
)


def reads(kind: str, payload: bytes) -> None:
    """Decode `payload` as topic `kind` does; any exception but PayloadError fails the test."""
    with contextlib.suppress(PayloadError):
        READERS[kind](decode(payload, for_kind(kind)))


@FUZZ
@given(kind=st.sampled_from(sorted(READERS)), payload=st.binary(max_size=2048))
def test_random_bytes_raise_only_payload_error(kind: str, payload: bytes) -> None:
    reads(kind, payload)


@FUZZ
@given(kind=st.sampled_from(sorted(READERS)), value=json_values)
def test_random_json_objects_raise_only_payload_error(kind: str, value: Any) -> None:
    reads(kind, json.dumps({"schema": 1, **value} if isinstance(value, dict) else value).encode())


def valid(kind: str) -> st.SearchStrategy[Any]:
    """A valid typed payload of `kind`."""
    ids = st.text(min_size=1, max_size=12)
    plain = st.dictionaries(text.filter(lambda k: k not in KNOWN_KEYS), json_values, max_size=3)
    temps = st.dictionaries(text, floats, max_size=3)
    return {
        "status": st.builds(Status, st.sampled_from(["online", "offline", "lost"]), ints, stamps, text),
        "info": st.builds(
            Info,
            text,
            text,
            text,
            st.lists(
                st.builds(DeviceInfo, ids, text, text, text, st.lists(ids, max_size=3).map(tuple)), max_size=3
            ).map(tuple),
            floats,
            st.lists(st.builds(SourceInfo, ids, text, text, text), max_size=3).map(tuple),
            st.lists(st.builds(Nic, text, macs, ipv4, ipv4), max_size=3).map(tuple),
            st.lists(stamps, max_size=3).map(tuple),
            st.lists(windows, max_size=3).map(tuple),
        ),
        "state": st.builds(DeviceState, ids, st.booleans(), stamps, plain, text, codes),
        "telemetry": st.builds(Telemetry, stamps, floats, floats, ints, floats, temps, floats, plain),
        "event": st.builds(
            Event, text, st.sampled_from(["info", "warning", "critical"]), st.sampled_from(["raise", "clear"]), stamps
        ),
        "cmd": st.builds(Command, ids, st.just("agent.ping"), plain, stamps, text),
        "reply": st.builds(
            CommandReply, ids, st.sampled_from(list(CommandStatus)[:4]), json_values, text, text, codes, params
        ),
        "rtc": st.builds(
            RtcMessage,
            st.just("offer"),
            text,
            stamps,
            st.sampled_from(LESSON_MODES),
            sdp=st.text(min_size=1, max_size=200).filter(str.strip),
            seq=ints,
        ),
    }[kind]


KNOWN_KEYS = {"schema", "ts", "type", "severity", "action", "message", "device", "cpu_percent", "memory_percent"}
KNOWN_KEYS |= {"disk_free_bytes", "disk_percent", "temperatures", "uptime_s"}


def normal(kind: str, value: Any) -> Any:
    """What survives the wire: a reply carries `result` only on success, `error` only otherwise."""
    if kind == "reply":
        ok = value.status == CommandStatus.SUCCEEDED
        kept = not ok and value.code  # a failure's code and params travel; a success has none
        return CommandReply(
            value.id,
            value.status,
            value.result if ok else None,
            "" if ok else value.error,
            value.name,
            value.code if kept else "",
            value.params if kept else {},
        )
    return value


@FUZZ
@given(data=st.data(), kind=st.sampled_from(sorted(READERS)))
def test_a_valid_payload_round_trips(data: st.DataObject, kind: str) -> None:
    value = data.draw(valid(kind))
    back = READERS[kind](decode(encode(value.to_dict()), for_kind(kind)))
    assert back == normal(kind, value)


@FUZZ
@given(data=st.data(), kind=st.sampled_from(sorted(READERS)), bad=hostile_values)
def test_a_valid_payload_with_one_hostile_field_raises_only_payload_error(
    data: st.DataObject, kind: str, bad: str
) -> None:
    fields = data.draw(valid(kind)).to_dict()
    key = data.draw(st.sampled_from(sorted(fields) or ["x"]))
    wire = json.dumps({"schema": 1, **fields, key: "HOSTILE"}).replace('"HOSTILE"', bad, 1)
    reads(kind, wire.encode())


@FUZZ
@given(data=st.data(), kind=st.sampled_from(sorted(READERS)))
def test_a_valid_payload_with_its_bytes_mutated_raises_only_payload_error(data: st.DataObject, kind: str) -> None:
    wire = bytearray(encode(data.draw(valid(kind)).to_dict()))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(wire)))
        how = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = data.draw(st.sampled_from([ord(c) for c in '[]{}",:\\0-9eE.']) | st.integers(0, 255))
        if how == "insert":
            wire[at:at] = bytes([byte]) * data.draw(st.sampled_from([1, 30, 500]))
        elif at < len(wire):
            wire[at : at + 1] = b"" if how == "delete" else bytes([byte])
    reads(kind, bytes(wire))
