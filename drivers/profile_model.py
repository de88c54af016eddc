"""The frozen dataclasses a hardware profile loads into (see ``drivers.profile``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from drivers.errors import ArgumentError
from drivers.protocol.template import Checksum, Raw, Template

KINDS = ("camera", "display")
# Who speaks the protocol: the generic frame engine, or a driver of its own (see drivers.driver).
DRIVERS = ("engine", "onvif")
REPLY_KINDS = ("ack", "completion", "value", "error")
CONFIDENCE = ("primary", "secondary", "unconfirmed")
PARITIES = ("N", "E", "O")
ENCAPSULATIONS = ("visca-ip",)
# What a simulated device remembers; `[simulator] initial` may set these.
STATE_KEYS = ("power", "source", "volume", "mute", "focus", "preset", "pan", "tilt", "zoom")


@dataclass(frozen=True, slots=True)
class FieldType:
    """The type of a named value: an int range or an enum of names to device codes."""

    name: str
    kind: str
    min: int = 0
    max: int = 255
    values: Mapping[str, Raw] = field(default_factory=dict)
    default: Raw | None = None
    doc: str = ""

    def coerce(self, value: object) -> Raw:
        """Turn a user's value (int, or text from a CLI/JSON) into the device code."""
        if self.kind == "enum":
            key = str(value).lower()
            for name, code in self.values.items():
                if name.lower() == key:
                    return code
            raise ArgumentError(f"{self.name}={value!r}: expected one of {', '.join(self.values)}")
        if isinstance(value, bool):
            raise ArgumentError(f"{self.name}={value!r}: expected an integer")
        try:
            number = value if isinstance(value, int) else _parse_int(str(value))
        except ValueError:
            raise ArgumentError(f"{self.name}={value!r}: expected an integer") from None
        if not self.min <= number <= self.max:
            raise ArgumentError(f"{self.name}={number}: out of range {self.min}..{self.max}")
        return number

    def name_of(self, code: Raw) -> object:
        """The user-facing value of a device code (enum name, or the int itself)."""
        if self.kind == "enum":
            for name, known in self.values.items():
                if _same_code(known, code):
                    return name
        return code

    def knows(self, code: Raw) -> bool:
        """True when `code` is a valid device code for this type."""
        if self.kind == "enum":
            return any(_same_code(known, code) for known in self.values.values())
        return isinstance(code, int) and self.min <= code <= self.max


def _parse_int(text: str) -> int:
    """Decimal (leading zeros allowed: ``007``), or ``0x``/``0b``/``0o`` prefixed."""
    text = text.strip()
    body = text.lstrip("+-")
    return int(text, 0) if body[:2].lower() in ("0x", "0b", "0o") else int(text, 10)


def _same_code(a: Raw, b: Raw) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return a == b


@dataclass(frozen=True, slots=True)
class ReplySpec:
    """One reply a device may send: its kind and how to recognise and parse it."""

    name: str
    kind: str
    template: Template | None = None
    regex: re.Pattern[str] | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """Field names this reply carries."""
        if self.template is not None:
            return self.template.names
        assert self.regex is not None
        return tuple(self.regex.groupindex)


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One command: the frame it sends and the replies it expects."""

    name: str
    send: Template | None  # None: the profile's own driver builds the request (not the frame engine)
    replies: tuple[str, ...]
    params: tuple[str, ...]
    timeout_ms: int
    retry: bool
    doc: str = ""


@dataclass(frozen=True, slots=True)
class FrameRule:
    """How to cut one direction's byte stream into frames."""

    start: bytes = b""
    end: bytes = b""
    size: int = 0
    length_offset: int = -1
    length_add: int = 0
    max_size: int = 256


@dataclass(frozen=True, slots=True)
class SerialDefaults:
    """Serial line settings of the device model."""

    baud: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1


@dataclass(frozen=True, slots=True)
class TransportDefaults:
    """Transport defaults: serial line, TCP/UDP ports, timing."""

    serial: SerialDefaults
    tcp_port: int = 0
    udp_port: int = 0
    udp_encapsulation: str = ""
    timeout_ms: int = 1000
    gap_ms: int = 0


@dataclass(frozen=True, slots=True)
class Provenance:
    """Which published document the codes come from, and how sure we are."""

    document: str
    confidence: str
    url: str = ""
    notes: str = ""


@dataclass(frozen=True, slots=True)
class SimReply:
    """A reply the simulator sends in a situation, with the fields it fills in."""

    reply: str
    fields: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Profile:
    """A whole device model."""

    id: str
    name: str
    kind: str
    path: str
    driver: str
    fold_case: bool
    text: bool
    provenance: Provenance
    transport: TransportDefaults
    request_frame: FrameRule
    reply_frame: FrameRule
    checksum: Checksum | None
    fields: Mapping[str, FieldType]
    commands: Mapping[str, CommandSpec]
    replies: Mapping[str, ReplySpec]
    error_replies: tuple[str, ...]
    poll_commands: tuple[str, ...]
    poll_interval_s: float
    sim_unknown: SimReply | None
    sim_when_off: SimReply | None
    sim_initial: Mapping[str, object]

    @property
    def framed(self) -> bool:
        """True when the generic frame engine speaks this profile's protocol."""
        return self.driver == "engine"

    def command(self, name: str) -> CommandSpec:
        """The command called `name`, or ArgumentError listing the known ones."""
        try:
            return self.commands[name]
        except KeyError:
            raise ArgumentError(
                f"profile {self.id} has no command {name!r}; known: {', '.join(sorted(self.commands))}"
            ) from None

    def replies_for(self, command: CommandSpec) -> tuple[ReplySpec, ...]:
        """The replies `command` may receive, its own first, then the profile's errors."""
        names = command.replies + tuple(n for n in self.error_replies if n not in command.replies)
        return tuple(self.replies[n] for n in names)

    def resolve_args(self, command: CommandSpec, args: Mapping[str, object]) -> dict[str, object]:
        """Fill defaults and check every argument; raise ArgumentError naming the problem."""
        # Every command takes `address`, even one (a broadcast) whose frame ignores it.
        unknown = sorted(set(args) - set(command.params) - {"address"})
        if unknown:
            takes = ", ".join(command.params) or "no arguments"
            raise ArgumentError(f"{command.name}: unknown argument {unknown[0]!r} (takes {takes})")
        resolved: dict[str, object] = {}
        for name in command.params:
            ftype = self.fields[name]
            if name in args:
                value = args[name]
            elif ftype.default is not None:
                value = ftype.default
            else:
                raise ArgumentError(f"{command.name}: missing argument {name!r}")
            resolved[name] = ftype.name_of(ftype.coerce(value))
        return resolved

    def codes(self, values: Mapping[str, object]) -> dict[str, Raw]:
        """Turn user-facing values into device codes, field by field."""
        return {k: self.fields[k].coerce(v) for k, v in values.items() if k in self.fields}
