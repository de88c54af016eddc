"""The MQTT contract's signalling payload: ``rtc/<peer>`` messages between agents (WebRTC lessons).

Kept apart from `contract.payloads` (topics and the other payloads) so each stays small; it
follows the same rules: JSON objects, ISO 8601 UTC timestamps, PayloadError naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from contract.errors import PayloadError
from contract.wire import choice, get, timestamp

RTC_TYPES = ("offer", "answer", "reject", "bye", "join", "leave", "hello", "here")
PRESENCE_STATES = ("free", "leading", "remote")  # a `here`: no lesson, leading one, taking part in `main`'s
LESSON_MODES = ("zhuandi", "dual_teacher")
SFU_ROOM_MAX = 2**31 - 1  # Janus takes 64-bit room numbers; keep to what any JSON reader holds exactly


@dataclass(frozen=True, slots=True)
class RtcMessage:
    """``rtc/<peer>``: one WebRTC signalling message; the sender is the topic's agent, never a field.

    `seq` numbers a sender's offers in one lesson, so an answer to a superseded offer is ignored.
    `sources` names the video sources the sender sends (the receiver sets up that many tracks).
    An offer with `sfu` (Janus's HTTP API) and `sfu_room` sends those sources through that SFU
    instead: the receiver pulls them from the room (publisher = the sender's agent id) and the
    offer's SDP carries only the way back (the receiver's own pictures and sound, peer to peer).
    Presence: `hello` asks whether a classroom is there; `here` answers with its `room` name, its
    `state` (PRESENCE_STATES) and, taking part in a lesson, the leading agent `main`.
    """

    type: str
    lesson: str
    ts: str
    mode: str = ""
    room: str = ""
    sdp: str = ""
    reason: str = ""
    seq: int = 0
    sources: tuple[str, ...] = ()
    sfu: str = ""
    sfu_room: int = 0
    state: str = ""
    main: str = ""

    def __post_init__(self) -> None:
        """Refuse a message the other side could not act on."""
        if self.type not in RTC_TYPES:
            raise PayloadError(f"type: got {self.type!r}, expected one of {', '.join(RTC_TYPES)}")
        if self.type in ("offer", "answer") and not self.sdp.strip():
            raise PayloadError(f"sdp: missing (an {self.type} carries a session description)")
        if self.type == "offer" and self.mode not in LESSON_MODES:
            raise PayloadError(f"mode: got {self.mode!r}, expected one of {', '.join(LESSON_MODES)}")
        if (self.sfu or self.sfu_room) and self.type != "offer":
            raise PayloadError(f"sfu: only an offer names an SFU, got one in a {self.type}")
        if self.sfu and not sfu_url_ok(self.sfu):
            raise PayloadError(f"sfu: got {self.sfu[:200]!r}, expected Janus's HTTP API (http://HOST:PORT/janus)")
        if bool(self.sfu) != (0 < self.sfu_room <= SFU_ROOM_MAX):
            raise PayloadError(f"sfu_room: got {self.sfu_room!r}, expected a room 1..{SFU_ROOM_MAX} with an sfu URL")
        self._check_presence()

    def _check_presence(self) -> None:
        """A `here` says where and how the classroom is; nothing else carries presence fields."""
        if self.type != "here":
            if self.state or self.main:
                raise PayloadError(f"state: only a here says it, got one in a {self.type}")
            if self.type == "hello" and self.sdp:
                raise PayloadError("sdp: a hello carries no session description")
            return
        if self.state not in PRESENCE_STATES:
            raise PayloadError(f"state: got {self.state!r}, expected one of {', '.join(PRESENCE_STATES)}")
        if not self.room.strip():
            raise PayloadError("room: missing (a here names its classroom)")
        if (self.state == "remote") != bool(self.main):
            raise PayloadError(f"main: got {self.main!r}, expected the leading agent exactly when state is remote")

    def to_dict(self) -> dict[str, Any]:
        """Payload fields (empty ones left out)."""
        out: dict[str, Any] = {"type": self.type, "lesson": self.lesson, "ts": self.ts, "seq": self.seq}
        for key in ("mode", "room", "sdp", "reason", "state", "main"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.sources:
            out["sources"] = list(self.sources)
        if self.sfu:
            out |= {"sfu": self.sfu, "sfu_room": self.sfu_room}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RtcMessage:
        """Parse; PayloadError names the bad key."""
        sources = get(data, "sources", list, [])
        if not all(isinstance(s, str) and s for s in sources):
            raise PayloadError(f"sources: got {sources!r}, expected a list of source names")
        return cls(
            choice(data, "type", RTC_TYPES),
            get(data, "lesson", str),
            timestamp(data, "ts"),
            get(data, "mode", str, ""),
            get(data, "room", str, ""),
            get(data, "sdp", str, ""),
            get(data, "reason", str, ""),
            get(data, "seq", int, 0),
            tuple(sources),
            get(data, "sfu", str, ""),
            get(data, "sfu_room", int, 0),
            get(data, "state", str, ""),
            get(data, "main", str, ""),
        )


def sfu_url_ok(url: str) -> bool:
    """Whether `url` can be Janus's HTTP API root: http(s)://HOST[:PORT][/PATH], no credentials, query or fragment."""
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        return False
    plain = not (parts.query or parts.fragment or parts.username or parts.password or " " in url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and plain and port_ok
