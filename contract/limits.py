"""The bounds of every payload on the wire, in one place (DESIGN.md quotes them).

They are checked before a payload is parsed or stored, on both sides: the broker enforces the
largest size too (``classroom-central broker-config`` writes it into Mosquitto's configuration).
"""

from __future__ import annotations

from dataclasses import dataclass

KIB = 1024
# The deepest nesting of objects and lists a payload may have (the deepest real one is 4).
MAX_DEPTH = 16
# Integers must fit SQLite's INTEGER (int64), where the centre stores them.
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
# The longest integer literal worth converting: int64's 19 digits and a sign (a longer one is refused unread).
INT_DIGITS = 20


@dataclass(frozen=True, slots=True)
class Bounds:
    """The limits of one topic kind's payloads: bytes in all, characters in any one string, nesting depth."""

    size: int
    string: int
    depth: int = MAX_DEPTH


# status, info, state, telemetry, event: small JSON; no string longer than 16 KiB.
PAYLOAD = Bounds(size=64 * KIB, string=16 * KIB)
# cmd and reply carry WebRTC session descriptions in media.watch (a few KB, more with many candidates).
COMMAND = Bounds(size=64 * KIB, string=64 * KIB)
# rtc/<peer>: signalling; its SDP may fill the whole payload.
RTC = Bounds(size=256 * KIB, string=256 * KIB)

BY_KIND = {
    "status": PAYLOAD,
    "info": PAYLOAD,
    "state": PAYLOAD,
    "telemetry": PAYLOAD,
    "event": PAYLOAD,
    "cmd": COMMAND,
    "reply": COMMAND,
    "rtc": RTC,
}
# The broker's own ceiling (message_size_limit): the largest payload any topic may carry.
LARGEST = max(b.size for b in BY_KIND.values())
# MQTT packet overhead on top of the payload: fixed header, topic (at most 64 KiB by MQTT), properties.
PACKET_OVERHEAD = 64 * KIB + 1 * KIB


def for_kind(kind: str) -> Bounds:
    """The bounds of topic kind `kind` (``telemetry``, ``rtc``, ...); the strictest for an unknown one."""
    return BY_KIND.get(kind, PAYLOAD)
