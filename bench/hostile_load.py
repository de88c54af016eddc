"""Hostile messages for bench/hostile_ingest.py: each kind the centre must survive, mixed into a publisher's load.

The kind of a live hostile message follows its agent's index (`kind_of`), so fleet.db's per-agent
`dropped` counters add up per kind.  A retained event cannot be mixed into a live stream (Mosquitto
clears the retain flag for a subscriber already there), so `retained_events` are published before the
centre subscribes: the replay every restart of the centre would see.
"""

from __future__ import annotations

import json
from collections import Counter

from ingest_load import SITE, agent_id

from contract import CommandReply, CommandStatus, Event, Status, Telemetry, Topics, encode, now_iso

# Live kinds, by agent index modulo their number; the retained event comes on top (published beforehand).
KINDS = ("deep", "bignum", "session", "nan", "oversize", "nonjson", "schema", "forged")
DROPPED_KINDS = KINDS[:-1]  # a forged reply is well-formed: it changes nothing, but it is not a drop
RETAINED = "retained event"
_CPU = b'"cpu_percent":12.5'
_NOT_FINITE = (b"NaN", b"Infinity", b"-Infinity")
_NOT_JSON = (b"\xff\xfe\x00 not even UTF-8", b"room-42 is on fire {")
_WRONG_SCHEMA = (
    b"[1, 2, 3]",  # not an object
    b'{"schema": 2, "device": "camera", "online": true, "ts": "2026-12-02T08:00:00Z", "state": {}}',
    b'{"schema": 1, "device": "camera", "online": "yes", "ts": "yesterday", "state": []}',
    b'{"schema": 1, "device": "panel", "online": true, "ts": "2026-12-02T08:00:00Z", "state": {}}',  # wrong device
)


def kind_of(i: int) -> str:
    """The hostile kind agent `i` sends."""
    return KINDS[i % len(KINDS)]


def command_id(i: int) -> str:
    """The id of the command seeded for agent `i` (a forged reply names its neighbour's)."""
    return f"cmd-{agent_id(i)}"


def hostile_count(valid: int, per_valid: float) -> int:
    """How many hostile messages a publisher of `valid` messages mixes in."""
    return round(valid * per_valid)


def _telemetry(ts: str, cpu: bytes) -> bytes:
    base = encode(Telemetry(ts, 12.5, 41.0, 120_000_000_000, 37.5, {"cpu": 48.0}, 3600.0).to_dict())
    assert _CPU in base
    return base.replace(_CPU, b'"cpu_percent":' + cpu)


def oversized(ts: str) -> bytes:
    """A telemetry payload of 68 KB of plain floats: only the size check can refuse it."""
    return encode(Telemetry(ts, 12.5, 41.0, 1, 37.5, {}, 1.0, {"pad": [1.0] * 17_000}).to_dict())


def hostile(i: int, k: int, big: bytes) -> tuple[str, bytes, bool]:
    """Agent `i`'s `k`-th hostile message: (topic, payload, retain); `big` is the oversized payload."""
    topics, ts, kind = Topics(SITE, agent_id(i)), now_iso(), kind_of(i)
    if kind == "deep":
        return topics.state("panel"), b"[" * 1000 + b"]" * 1000, True
    if kind == "bignum":
        return topics.telemetry, _telemetry(ts, b"9" * 400), False
    if kind == "session":  # json, not the contract's encode, which would refuse it
        return topics.status, json.dumps(Status("online", 2**70, ts, "bench").to_dict() | {"schema": 1}).encode(), True
    if kind == "nan":
        return topics.telemetry, _telemetry(ts, _NOT_FINITE[k % len(_NOT_FINITE)]), False
    if kind == "oversize":
        return topics.telemetry, big, False
    if kind == "nonjson":
        return topics.info, _NOT_JSON[k % len(_NOT_JSON)], True
    if kind == "schema":
        return topics.state("camera"), _WRONG_SCHEMA[k % len(_WRONG_SCHEMA)], True
    forged = CommandReply(command_id(i - 1), CommandStatus.SUCCEEDED, {"forged": True}, name="panel.power")
    return topics.reply, encode(forged.to_dict()), False


def mix_hostile(
    messages: list[tuple[str, bytes, bool]], first: int, count: int, per_valid: float, live_from: int
) -> tuple[list[tuple[str, bytes, bool]], dict[str, int]]:
    """`messages` with hostile ones spread evenly through its live part (from `live_from`); and the count per kind.

    The k-th hostile message comes from agent `first + k % count`, of that agent's kind.
    """
    live, total, big = messages[live_from:], hostile_count(len(messages), per_valid), oversized(now_iso())
    out, kinds, k = messages[:live_from], Counter[str](), 0
    for j, message in enumerate(live):
        out.append(message)
        while k < total and (k + 1) * len(live) <= (j + 1) * (total + 1):
            i = first + k % count
            out.append(hostile(i, k, big))
            kinds[kind_of(i)] += 1
            k += 1
    return out, dict(kinds)


def retained_events(count: int) -> list[tuple[str, bytes, bool]]:
    """One retained alarm event on each of the first `count` agents' event topics (a replay, if read)."""
    ts = now_iso()
    event = encode(Event("projector.lamp", "critical", "raise", ts, "lamp failure", "panel").to_dict())
    return [(Topics(SITE, agent_id(i)).event, event, True) for i in range(count)]
