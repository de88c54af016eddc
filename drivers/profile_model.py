"""The frozen dataclasses a hardware profile loads into (see ``drivers.profile``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from drivers.errors import ArgumentError
from drivers.protocol.template import Checksum, Raw, Template

KINDS = ("camera", "display", "projector")
# Kinds the agent drives like a panel (panel.power / panel.input / panel.mute).
DISPLAY_KINDS = ("display", "projector")
# Who speaks the protocol: the generic frame engine, or a driver of its own (see drivers.driver).
DRIVERS = ("engine", "onvif")
REPLY_KINDS = ("ack", "completion", "value", "error")
CONFIDENCE = ("primary", "secondary", "unconfirmed")
PARITIES = ("N", "E", "O")
ENCAPSULATIONS = ("visca-ip",)
# Connection-level handshakes a TCP transport performs before the first frame (see drivers.transport).
LOGINS = ("pjlink",)
FIELD_TYPES = ("int", "enum", "text")
# What a simulated device remembers; `[simulator] initial` may set these.
STATE_KEYS = ("power", "source", "volume", "mute", "focus", "preset", "pan", "tilt", "zoom")


@dataclass(frozen=True, slots=True)
class FieldType:
    """The type of a named value: an int range, an enum of names to device codes, or free text.

    A ``text`` field is printable text of at most `max` characters (a projector's name).
    """

    name: str
    kind: str
    min: int = 0
    max: int = 255
    values: Mapping[str, Raw] = field(default_factory=dict)
    default: Raw | None = None
    doc: str = ""
    broadcast: int | None = None  # the code that addresses every device at once (Samsung MDC's ID 0xFE)

    def coerce(self, value: object) -> Raw:
        """Turn a user's value (int, or text from a CLI/JSON) into the device code."""
        if self.kind == "text":
            return self._text(value)
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
        if not self.min <= number <= self.max and number != self.broadcast:
            raise ArgumentError(f"{self.name}={number}: out of range {self.min}..{self.max}")
        return number

    def _text(self, value: object) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ArgumentError(f"{self.name}={value!r}: expected text")
        text = str(value)
        if len(text) > self.max or not text.isprintable():
            raise ArgumentError(f"{self.name}={text!r}: expected at most {self.max} printable characters")
        return text

    def name_of(self, code: Raw) -> object:
        """The user-facing value of a device code (enum name, or the int itself)."""
        if self.kind == "enum":
            for name, known in self.values.items():
                if _same_code(known, code):
                    return name
        return code

    def knows(self, code: Raw) -> bool:
        """True when `code` is a valid device code for this type."""
        if self.kind == "text":
            return isinstance(code, str) and len(code) <= self.max
        if self.kind == "enum":
            return any(_same_code(known, code) for known in self.values.values())
        return isinstance(code, int) and (self.min <= code <= self.max or code == self.broadcast)


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
    """One command: the frame(s) it may send and the replies it expects.

    A command may have several frames (``send = [...]`` in the profile): the first one that uses
    every argument given, and has a value for each of its own, is sent.  So an optional argument
    picks the frame: VISCA's ``zoom_tele`` is ``8x 01 04 07 02 FF`` without a speed and
    ``8x 01 04 07 2p FF`` with one.
    """

    name: str
    send: Template | None  # None: the profile's own driver builds the request (not the frame engine)
    replies: tuple[str, ...]
    params: tuple[str, ...]
    timeout_ms: int
    retry: bool
    doc: str = ""
    alternatives: tuple[Template, ...] = ()  # further frames, tried in order after `send`
    broadcast: bool = False  # may go to a field's broadcast value; then nothing answers

    @property
    def templates(self) -> tuple[Template, ...]:
        """Every frame this command may send, in the order they are tried."""
        return () if self.send is None else (self.send, *self.alternatives)

    @property
    def optional(self) -> frozenset[str]:
        """Arguments that only some of the frames take (leaving them out picks another frame)."""
        if len(self.templates) < 2:
            return frozenset()
        return frozenset(n for n in self.params if any(n not in frame_params(t) for t in self.templates))


def frame_params(template: Template) -> tuple[str, ...]:
    """The arguments a frame template takes (its fields, less the checksum)."""
    return tuple(n for n in template.names if n != "checksum")


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
    """Transport defaults: serial line (None: a network-only device), TCP/UDP ports, timing.

    `login` names a connection-level handshake (PJLink's greeting and password) that a TCP
    connection performs before the first frame; `idle_close_s` is how long the device keeps an
    idle connection open (0: for ever), which its simulator imitates.
    """

    serial: SerialDefaults | None
    tcp_port: int = 0
    udp_port: int = 0
    udp_encapsulation: str = ""
    timeout_ms: int = 1000
    gap_ms: int = 0
    login: str = ""
    idle_close_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Provenance:
    """Which published document the codes come from, and how sure we are."""

    document: str
    confidence: str
    url: str = ""
    notes: str = ""
    # Commands of the shared vocabulary the source gives no code for: left out, never guessed.
    unsourced: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SimReply:
    """A reply the simulator sends in a situation, with the fields it fills in."""

    reply: str
    fields: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class SimBehaviour:
    """How a simulated device behaves over time (``[simulator]`` beyond its replies).

    Power goes through ``warming`` / ``cooling`` for `warmup_s` / `cooldown_s` when they are set;
    meanwhile commands other than the `standby_commands` get `when_busy`.  The `standby_commands`
    are answered in standby too.  Each of `hour_meters` (state names) grows by `hours_per_s`
    for every second the power is on.  `effects` maps a command to the state it sets.
    A frame whose first `command_bytes` are a known command's but which matches none, and an
    argument outside `available` (the inputs this unit has), get `bad_parameter`; a device
    whose state says ``failed`` answers `when_failed` to all but the standby commands.
    """

    warmup_s: float = 0.0
    cooldown_s: float = 0.0
    when_busy: SimReply | None = None
    standby_commands: tuple[str, ...] = ("power_on", "get_power")
    hour_meters: tuple[str, ...] = ()
    hours_per_s: float = 0.0
    effects: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    bad_parameter: SimReply | None = None
    command_bytes: int = 0
    available: Mapping[str, tuple[object, ...]] = field(default_factory=dict)
    when_failed: SimReply | None = None


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
    sim: SimBehaviour = field(default_factory=SimBehaviour)

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
        return self.pick(command, args)[1]

    def pick(self, command: CommandSpec, args: Mapping[str, object]) -> tuple[Template | None, dict[str, object]]:
        """The frame `args` select and the checked values it needs; ArgumentError naming any problem."""
        # Every command takes `address`, even one (a broadcast) whose frame ignores it.
        unknown = sorted(set(args) - set(command.params) - {"address"})
        if unknown:
            takes = ", ".join(command.params) or "no arguments"
            raise ArgumentError(f"{command.name}: unknown argument {unknown[0]!r} (takes {takes})")
        template = self._frame_for(command, args)
        resolved: dict[str, object] = {}
        for name in command.params if template is None else frame_params(template):
            ftype = self.fields[name]
            if name in args:
                value = args[name]
            elif ftype.default is not None:
                value = ftype.default
            else:
                raise ArgumentError(f"{command.name}: missing argument {name!r}")
            resolved[name] = ftype.name_of(ftype.coerce(value))
        self._check_broadcast(command, resolved)
        return template, resolved

    def _frame_for(self, command: CommandSpec, args: Mapping[str, object]) -> Template | None:
        frames = command.templates
        given = set(args) - {"address"}
        fits = [t for t in frames if given <= set(frame_params(t))]
        for template in fits:
            if all(n in args or self.fields[n].default is not None for n in frame_params(template)):
                return template
        if frames and not fits:
            raise ArgumentError(f"{command.name}: no frame takes {', '.join(sorted(given))} together")
        return fits[0] if fits else None  # the missing argument is then named by the caller

    def _check_broadcast(self, command: CommandSpec, values: Mapping[str, object]) -> None:
        """A broadcast value is for commands marked ``broadcast``: every device acts and none answers."""
        for name in self.broadcast_fields(values):
            if not command.broadcast:
                allowed = ", ".join(c.name for c in self.commands.values() if c.broadcast) or "none"
                code = self.fields[name].broadcast
                raise ArgumentError(
                    f"{command.name}: {name}={code} (0x{code:02X}) addresses every device at once and none "
                    f"answers, so {command.name} cannot be sent to it (broadcast commands: {allowed})"
                )

    def broadcast_fields(self, values: Mapping[str, object]) -> list[str]:
        """Names of the fields in `values` set to their broadcast value."""
        out = []
        for name, value in values.items():
            ftype = self.fields.get(name)
            if ftype is not None and ftype.broadcast is not None and value == ftype.broadcast:
                out.append(name)
        return out

    def codes(self, values: Mapping[str, object]) -> dict[str, Raw]:
        """Turn user-facing values into device codes, field by field."""
        return {k: self.fields[k].coerce(v) for k, v in values.items() if k in self.fields}
