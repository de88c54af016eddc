"""The MQTT contract's typed payloads: status, info, device state, events, commands, replies, telemetry.

Every payload is a JSON object carrying ``"schema": 1``; readers ignore unknown keys.  Every
timestamp is an ISO 8601 UTC string (``2026-11-22T08:00:00Z``).  A payload that breaks the
contract raises PayloadError naming the key, so a reader can log it and carry on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from contract.codes import code_from, params_from
from contract.errors import PayloadError
from contract.hours import Window, hours_dicts, hours_from
from contract.power import Nic, nics_from, wakes_from
from contract.timestamps import parse_iso
from contract.wire import choice, get, timestamp

STATES = ("online", "offline", "lost")
EVENT_ID_CHARS = 128
# A device's or a source's display name (``name = "讲台摄像机"``), and the inputs a display offers.
NAME_CHARS = 64
MAX_INPUTS = 64  # PJLink names 45
SEVERITIES = ("info", "warning", "critical")
ACTIONS = ("raise", "clear", "log")


class CommandStatus(StrEnum):
    """How a command ended; on the wire as its plain string."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    # The centre's own verdict when no reply came in time: never in an agent's reply.
    TIMEOUT = "timeout"


REPLY_STATUSES = tuple(s.value for s in CommandStatus if s is not CommandStatus.TIMEOUT)


@dataclass(frozen=True, slots=True)
class Status:
    """``status``: online, offline (clean stop) or lost (the Will)."""

    state: str
    session: int
    since: str
    version: str

    def to_dict(self) -> dict[str, Any]:
        """Payload fields."""
        return {"state": self.state, "session": self.session, "since": self.since, "version": self.version}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Status:
        """Parse; PayloadError names the bad key."""
        return cls(
            choice(data, "state", STATES),
            get(data, "session", int),
            timestamp(data, "since"),
            get(data, "version", str, ""),
        )


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """One device in ``info``: its id, kind, profile, display name and (a display's) inputs."""

    id: str
    kind: str
    profile: str
    name: str = ""
    inputs: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Payload fields."""
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "profile": self.profile}
        return out | ({"name": self.name} if self.name else {}) | ({"inputs": list(self.inputs)} if self.inputs else {})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeviceInfo:
        """Parse; PayloadError names the bad key."""
        inputs = get(data, "inputs", list, [])
        if len(inputs) > MAX_INPUTS or not all(isinstance(x, str) and 0 < len(x) <= NAME_CHARS for x in inputs):
            raise PayloadError(f"inputs: expected at most {MAX_INPUTS} names of 1..{NAME_CHARS} characters")
        kind, profile = get(data, "kind", str, ""), get(data, "profile", str, "")
        return cls(get(data, "id", str), kind, profile, _name(data), tuple(inputs))


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """One video source in ``info``: its id, kind, URL (without a password) and display name."""

    id: str
    kind: str
    url: str
    name: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Payload fields."""
        return {"id": self.id, "kind": self.kind, "url": self.url} | ({"name": self.name} if self.name else {})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SourceInfo:
        """Parse; PayloadError names the bad key."""
        return cls(get(data, "id", str), get(data, "kind", str, ""), get(data, "url", str, ""), _name(data))


def _name(data: Mapping[str, Any]) -> str:
    name = get(data, "name", str, "")
    if len(name) > NAME_CHARS:
        raise PayloadError(f"name: {len(name)} characters, expected at most {NAME_CHARS}")
    return str(name)


def _items(data: Mapping[str, Any], key: str, parse: Any) -> tuple[Any, ...]:
    """Each object of the list `data[key]` parsed; PayloadError names ``key[i].field``."""
    out = []
    for i, item in enumerate(get(data, key, list, [])):
        if not isinstance(item, dict):
            raise PayloadError(f"{key}[{i}]: expected an object")
        try:
            out.append(parse(item))
        except PayloadError as exc:
            raise PayloadError(f"{key}[{i}].{exc}") from None
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Info:
    """``info``: what and where this agent is; `nics` and `wake` say how and when to wake its PC.

    `hours` are the windows its timetable has lessons in (`contract.hours`).
    """

    room: str
    hostname: str
    version: str
    devices: tuple[DeviceInfo, ...]
    telemetry_interval_s: float = 10.0
    sources: tuple[SourceInfo, ...] = ()
    nics: tuple[Nic, ...] = ()
    wake: tuple[str, ...] = ()
    hours: tuple[Window, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Payload fields."""
        return {
            "room": self.room,
            "hostname": self.hostname,
            "version": self.version,
            "devices": [d.to_dict() for d in self.devices],
            "telemetry_interval_s": self.telemetry_interval_s,
            "sources": [s.to_dict() for s in self.sources],
            "nics": [n.to_dict() for n in self.nics],
            "wake": list(self.wake),
            "hours": hours_dicts(self.hours),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Info:
        """Parse; PayloadError names the bad key."""
        return cls(
            get(data, "room", str, ""),
            get(data, "hostname", str, ""),
            get(data, "version", str, ""),
            _items(data, "devices", DeviceInfo.from_dict),
            float(get(data, "telemetry_interval_s", (int, float), 10.0)),
            _items(data, "sources", SourceInfo.from_dict),
            nics_from(data),
            wakes_from(data),
            hours_from(data),
        )


@dataclass(frozen=True, slots=True)
class DeviceState:
    """``state/<device>``: the last known state of one device; offline, `error` says why and `code` names it."""

    device: str
    online: bool
    ts: str
    state: Mapping[str, Any] = field(default_factory=dict)
    error: str = ""
    code: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Payload fields."""
        out: dict[str, Any] = {"device": self.device, "online": self.online, "ts": self.ts, "state": dict(self.state)}
        if self.error:
            out["error"] = self.error
        if self.code:
            out["code"] = self.code
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeviceState:
        """Parse; PayloadError names the bad key."""
        return cls(
            get(data, "device", str),
            get(data, "online", bool),
            timestamp(data, "ts"),
            get(data, "state", dict, {}),
            get(data, "error", str, ""),
            code_from(data),
        )


@dataclass(frozen=True, slots=True)
class Event:
    """``event``: an alarm raised or cleared, or an audit record (action ``log``).

    `id` is unique per agent (the agent's link gives each event one): the centre stores an event
    once, however often the broker delivers it.  Events of older agents have none.
    """

    type: str
    severity: str
    action: str
    ts: str
    message: str = ""
    device: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    id: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Payload fields."""
        out: dict[str, Any] = {**self.extra, "type": self.type, "severity": self.severity, "action": self.action}
        out |= {"ts": self.ts, "message": self.message}
        if self.device:
            out["device"] = self.device
        if self.id:
            out["id"] = self.id
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        """Parse; PayloadError names the bad key."""
        known = {"schema", "type", "severity", "action", "ts", "message", "device", "id"}
        ident = get(data, "id", str, "")
        if len(ident) > EVENT_ID_CHARS:
            raise PayloadError(f"id: {len(ident)} characters, expected at most {EVENT_ID_CHARS}")
        return cls(
            get(data, "type", str),
            choice(data, "severity", SEVERITIES),
            choice(data, "action", ACTIONS),
            timestamp(data, "ts"),
            get(data, "message", str, ""),
            get(data, "device", str, ""),
            {k: v for k, v in data.items() if k not in known},
            ident,
        )


# Command arguments and results too bulky (and too private) for an audit log: WebRTC session
# descriptions (a few KB each, with addresses) travel in media.watch, a camera's still (base64
# JPEG) in camera.snapshot; both are logged by size only.
BULKY_KEYS = frozenset({"offer", "answer", "sdp", "jpeg"})


def for_audit(values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` with each bulky text (an SDP offer or answer) replaced by its size."""
    return {k: f"<{len(v)} bytes>" if k in BULKY_KEYS and isinstance(v, str) else v for k, v in values.items()}


@dataclass(frozen=True, slots=True)
class Command:
    """``cmd/<name>``: a command from the centre, with an id and an expiry."""

    id: str
    name: str
    args: Mapping[str, Any]
    expires: str
    by: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Payload fields (the name travels in the topic)."""
        return {"id": self.id, "args": dict(self.args), "expires": self.expires, "by": self.by}

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> Command:
        """Parse; PayloadError names the bad key."""
        ident = get(data, "id", str)
        if not ident:
            raise PayloadError("id: empty")
        return cls(ident, name, get(data, "args", dict, {}), timestamp(data, "expires"), get(data, "by", str, ""))

    def expired(self, now: datetime | None = None) -> bool:
        """Whether the expiry has passed."""
        return parse_iso(self.expires) <= (now or datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class CommandReply:
    """``reply``: the outcome of one command; a failure's `code` and `params` let each reader word it."""

    id: str
    status: CommandStatus
    result: Any = None
    error: str = ""
    name: str = ""
    code: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Payload fields: ``result`` on success, ``error`` (with ``code`` and ``params``, when known) otherwise."""
        out: dict[str, Any] = {"id": self.id, "status": self.status}
        if self.name:
            out["command"] = self.name
        if self.status == CommandStatus.SUCCEEDED:
            out["result"] = self.result
            return out
        out["error"] = self.error
        if self.code:
            out |= {"code": self.code, "params": dict(self.params)}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CommandReply:
        """Parse; PayloadError names the bad key."""
        return cls(
            get(data, "id", str),
            CommandStatus(choice(data, "status", REPLY_STATUSES)),
            data.get("result"),
            get(data, "error", str, ""),
            get(data, "command", str, ""),
            code_from(data),
            params_from(data),
        )


@dataclass(frozen=True, slots=True)
class Telemetry:
    """``telemetry``: periodic PC health (QoS 0, never retained)."""

    ts: str
    cpu_percent: float
    memory_percent: float
    disk_free_bytes: int
    disk_percent: float
    temperatures: Mapping[str, float] = field(default_factory=dict)
    uptime_s: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Payload fields (``recording``, ``lesson``, ``stream`` ride in `extra`)."""
        return {
            **self.extra,
            "ts": self.ts,
            "cpu_percent": self.cpu_percent,
            "memory_percent": self.memory_percent,
            "disk_free_bytes": self.disk_free_bytes,
            "disk_percent": self.disk_percent,
            "temperatures": dict(self.temperatures),
            "uptime_s": self.uptime_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Telemetry:
        """Parse; PayloadError names the bad key."""
        known = {"schema", "ts", "cpu_percent", "memory_percent", "disk_free_bytes", "disk_percent"}
        known |= {"temperatures", "uptime_s"}
        return cls(
            timestamp(data, "ts"),
            float(get(data, "cpu_percent", (int, float))),
            float(get(data, "memory_percent", (int, float))),
            int(get(data, "disk_free_bytes", int)),
            float(get(data, "disk_percent", (int, float))),
            get(data, "temperatures", dict, {}),
            float(get(data, "uptime_s", (int, float), 0.0)),
            {k: v for k, v in data.items() if k not in known},
        )
