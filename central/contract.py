"""The MQTT contract, topic tree v1: topics and typed payloads, shared by agent and centre.

Every payload is a JSON object carrying ``"schema": 1``; readers ignore unknown keys.  Every
timestamp is an ISO 8601 UTC string (``2026-11-22T08:00:00Z``).  A payload that breaks the
contract raises PayloadError naming the key, so a reader can log it and carry on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SCHEMA = 1
ROOT = "classroom/v1"
CENTRAL_STATUS = f"{ROOT}/_central/status"
FLEET = f"{ROOT}/+/+/#"

STATES = ("online", "offline", "lost")
SEVERITIES = ("info", "warning", "critical")
ACTIONS = ("raise", "clear", "log")
REPLY_STATUSES = ("succeeded", "failed", "rejected", "expired")


class PayloadError(ValueError):
    """A topic or payload that does not follow the contract."""


def now_iso() -> str:
    """The current UTC time as the contract writes it (seconds precision)."""
    return to_iso(datetime.now(UTC))


def to_iso(moment: datetime) -> str:
    """A datetime as ``2026-11-22T08:00:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    """Read a contract timestamp; PayloadError when it is not one."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError, TypeError):
        raise PayloadError(f"bad timestamp {text!r}: expected e.g. 2026-11-22T08:00:00Z") from None
    if moment.tzinfo is None:
        raise PayloadError(f"bad timestamp {text!r}: no time zone")
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed topic: ``classroom/v1/<site>/<agent>/<kind>[/<rest>]``."""

    site: str
    agent: str
    kind: str
    rest: str = ""

    def __str__(self) -> str:
        """The topic string."""
        tail = f"/{self.rest}" if self.rest else ""
        return f"{ROOT}/{self.site}/{self.agent}/{self.kind}{tail}"

    @classmethod
    def parse(cls, topic: str) -> Topic:
        """Split a fleet topic; PayloadError when it is not one of ours."""
        parts = topic.split("/")
        if len(parts) < 5 or "/".join(parts[:2]) != ROOT or not all(parts[2:5]):
            raise PayloadError(f"topic {topic!r} is not classroom/v1/<site>/<agent>/<kind>")
        return cls(parts[2], parts[3], parts[4], "/".join(parts[5:]))


@dataclass(frozen=True, slots=True)
class Topics:
    """The topics of one agent."""

    site: str
    agent: str

    def _t(self, kind: str, rest: str = "") -> str:
        return str(Topic(self.site, self.agent, kind, rest))

    @property
    def status(self) -> str:
        """Retained online/offline/lost; the Will."""
        return self._t("status")

    @property
    def info(self) -> str:
        """Retained room, hostname, version, devices."""
        return self._t("info")

    def state(self, device: str) -> str:
        """Retained last known state of one device."""
        return self._t("state", device)

    @property
    def telemetry(self) -> str:
        """Periodic health, QoS 0."""
        return self._t("telemetry")

    @property
    def event(self) -> str:
        """Alarms and audit events."""
        return self._t("event")

    def cmd(self, name: str = "#") -> str:
        """Commands from the centre (``#``: all of them)."""
        return self._t("cmd", name)

    @property
    def reply(self) -> str:
        """Replies to commands."""
        return self._t("reply")

    def rtc(self, peer: str) -> str:
        """WebRTC signalling this agent sends to agent `peer` (written in our own subtree)."""
        return self._t("rtc", peer)

    @property
    def rtc_inbox(self) -> str:
        """The subscription for signalling addressed to this agent, from any site and agent."""
        return f"{ROOT}/+/+/rtc/{self.agent}"


def decode(payload: bytes | bytearray | str) -> dict[str, Any]:
    """JSON object with ``schema: 1``; PayloadError otherwise."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PayloadError(f"expected a JSON object, got {type(data).__name__}")
    if data.get("schema") != SCHEMA:
        raise PayloadError(f"schema: got {data.get('schema')!r}, expected {SCHEMA}")
    return data


def encode(data: Mapping[str, Any]) -> bytes:
    """The wire form of a payload dict (schema added)."""
    return json.dumps({"schema": SCHEMA, **data}, ensure_ascii=False, separators=(",", ":")).encode()


def _get(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    if key not in data:
        if default is ...:
            raise PayloadError(f"{key}: missing")
        return default
    value = data[key]
    if isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise PayloadError(f"{key}: got {value!r}")
    if not isinstance(value, kind):
        raise PayloadError(f"{key}: got {value!r}")
    return value


def _choice(data: Mapping[str, Any], key: str, options: tuple[str, ...]) -> str:
    value = _get(data, key, str)
    if value not in options:
        raise PayloadError(f"{key}: got {value!r}, expected one of {', '.join(options)}")
    return str(value)


def _ts(data: Mapping[str, Any], key: str) -> str:
    value = _get(data, key, str)
    parse_iso(value)
    return str(value)


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
            _choice(data, "state", STATES),
            _get(data, "session", int),
            _ts(data, "since"),
            _get(data, "version", str, ""),
        )


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """One device in ``info``."""

    id: str
    kind: str
    profile: str

    def to_dict(self) -> dict[str, Any]:
        """Payload fields."""
        return {"id": self.id, "kind": self.kind, "profile": self.profile}


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """One video source in ``info``: its id, kind and URL (without a password)."""

    id: str
    kind: str
    url: str

    def to_dict(self) -> dict[str, Any]:
        """Payload fields."""
        return {"id": self.id, "kind": self.kind, "url": self.url}


@dataclass(frozen=True, slots=True)
class Info:
    """``info``: what and where this agent is."""

    room: str
    hostname: str
    version: str
    devices: tuple[DeviceInfo, ...]
    telemetry_interval_s: float = 10.0
    sources: tuple[SourceInfo, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Payload fields."""
        return {
            "room": self.room,
            "hostname": self.hostname,
            "version": self.version,
            "devices": [d.to_dict() for d in self.devices],
            "telemetry_interval_s": self.telemetry_interval_s,
            "sources": [s.to_dict() for s in self.sources],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Info:
        """Parse; PayloadError names the bad key."""
        devices = []
        for i, d in enumerate(_get(data, "devices", list, [])):
            if not isinstance(d, dict):
                raise PayloadError(f"devices[{i}]: expected an object")
            try:
                devices.append(DeviceInfo(_get(d, "id", str), _get(d, "kind", str, ""), _get(d, "profile", str, "")))
            except PayloadError as exc:
                raise PayloadError(f"devices[{i}].{exc}") from None
        sources = []
        for i, s in enumerate(_get(data, "sources", list, [])):
            if not isinstance(s, dict):
                raise PayloadError(f"sources[{i}]: expected an object")
            try:
                sources.append(SourceInfo(_get(s, "id", str), _get(s, "kind", str, ""), _get(s, "url", str, "")))
            except PayloadError as exc:
                raise PayloadError(f"sources[{i}].{exc}") from None
        return cls(
            _get(data, "room", str, ""),
            _get(data, "hostname", str, ""),
            _get(data, "version", str, ""),
            tuple(devices),
            float(_get(data, "telemetry_interval_s", (int, float), 10.0)),
            tuple(sources),
        )


@dataclass(frozen=True, slots=True)
class DeviceState:
    """``state/<device>``: the last known state of one device."""

    device: str
    online: bool
    ts: str
    state: Mapping[str, Any] = field(default_factory=dict)
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Payload fields."""
        out: dict[str, Any] = {"device": self.device, "online": self.online, "ts": self.ts, "state": dict(self.state)}
        if self.error:
            out["error"] = self.error
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeviceState:
        """Parse; PayloadError names the bad key."""
        return cls(
            _get(data, "device", str),
            _get(data, "online", bool),
            _ts(data, "ts"),
            _get(data, "state", dict, {}),
            _get(data, "error", str, ""),
        )


@dataclass(frozen=True, slots=True)
class Event:
    """``event``: an alarm raised or cleared, or an audit record (action ``log``)."""

    type: str
    severity: str
    action: str
    ts: str
    message: str = ""
    device: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Payload fields."""
        out: dict[str, Any] = {**self.extra, "type": self.type, "severity": self.severity, "action": self.action}
        out |= {"ts": self.ts, "message": self.message}
        if self.device:
            out["device"] = self.device
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        """Parse; PayloadError names the bad key."""
        known = {"schema", "type", "severity", "action", "ts", "message", "device"}
        return cls(
            _get(data, "type", str),
            _choice(data, "severity", SEVERITIES),
            _choice(data, "action", ACTIONS),
            _ts(data, "ts"),
            _get(data, "message", str, ""),
            _get(data, "device", str, ""),
            {k: v for k, v in data.items() if k not in known},
        )



# Command arguments and results too bulky (and too private) for an audit log: WebRTC session
# descriptions (a few KB each, with addresses) travel in media.watch but are logged by size only.
BULKY_KEYS = frozenset({"offer", "answer", "sdp"})


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
        ident = _get(data, "id", str)
        if not ident:
            raise PayloadError("id: empty")
        return cls(ident, name, _get(data, "args", dict, {}), _ts(data, "expires"), _get(data, "by", str, ""))

    def expired(self, now: datetime | None = None) -> bool:
        """Whether the expiry has passed."""
        return parse_iso(self.expires) <= (now or datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class CommandReply:
    """``reply``: the outcome of one command."""

    id: str
    status: str
    result: Any = None
    error: str = ""
    name: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Payload fields: ``result`` on success, ``error`` otherwise."""
        out: dict[str, Any] = {"id": self.id, "status": self.status}
        if self.name:
            out["command"] = self.name
        if self.status == "succeeded":
            out["result"] = self.result
        else:
            out["error"] = self.error
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CommandReply:
        """Parse; PayloadError names the bad key."""
        return cls(
            _get(data, "id", str),
            _choice(data, "status", REPLY_STATUSES),
            data.get("result"),
            _get(data, "error", str, ""),
            _get(data, "command", str, ""),
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
            _ts(data, "ts"),
            float(_get(data, "cpu_percent", (int, float))),
            float(_get(data, "memory_percent", (int, float))),
            int(_get(data, "disk_free_bytes", int)),
            float(_get(data, "disk_percent", (int, float))),
            _get(data, "temperatures", dict, {}),
            float(_get(data, "uptime_s", (int, float), 0.0)),
            {k: v for k, v in data.items() if k not in known},
        )
