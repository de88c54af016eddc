"""A simulated device, sans-IO: request bytes in, reply bytes out, state kept.

It reads requests with the same profile the controller writes them with, keeps the state a
real device keeps (power, input, volume, mute, presets, pan/tilt/zoom) and answers with the
profile's own reply templates, so what it sends is what the published protocol says.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from drivers.errors import ArgumentError
from drivers.profile_model import STATE_KEYS, FieldType, Profile, SimReply
from drivers.protocol.engine import Codec, Framer

# ``"@2:6"`` in a [simulator] reply: the request's bytes 2..6, as text (the command a device refuses).
_SPAN = re.compile(r"@(\d+):(\d+)")

# Motion while a move/zoom is held: units per second at speed 1.
PAN_RATE = 20.0
ZOOM_RATE = 400.0

DIRECTIONS = {
    "up": (0, 1),
    "down": (0, -1),
    "left": (-1, 0),
    "right": (1, 0),
    "upleft": (-1, 1),
    "upright": (1, 1),
    "downleft": (-1, -1),
    "downright": (1, -1),
}


@dataclass
class DeviceState:
    """What a device remembers; the field names are the profiles' reply field names."""

    power: str = "on"
    source: str = ""
    volume: int = 10
    mute: str = "off"
    focus: str = "auto"
    preset: int = 0
    pan: float = 0.0
    tilt: float = 0.0
    zoom: float = 0.0
    presets: dict[int, tuple[float, float, float]] = field(default_factory=dict)
    pan_velocity: tuple[float, float] = (0.0, 0.0)
    zoom_velocity: float = 0.0
    since: float = 0.0
    power_until: float = 0.0  # when warming / cooling ends
    extra: dict[str, object] = field(default_factory=dict)  # the profile's own fields (lamp_hours, fan_status, ...)
    meters: dict[str, float] = field(default_factory=dict)  # hour meters, read back whole
    failed: bool = False  # a device that has failed: commands get [simulator] when_failed

    def values(self) -> dict[str, object]:
        """The state as reply field values."""
        return {
            **self.extra,
            **{name: int(hours) for name, hours in self.meters.items()},
            "power": self.power,
            "source": self.source,
            "volume": self.volume,
            "mute": self.mute,
            "focus": self.focus,
            "preset": self.preset,
            "pan": round(self.pan),
            "tilt": round(self.tilt),
            "zoom": round(self.zoom),
        }


class Simulator:
    """One simulated device speaking one profile."""

    def __init__(
        self,
        profile: Profile,
        clock: Callable[[], float] = time.monotonic,
        initial: Mapping[str, object] | None = None,
    ) -> None:
        """Start in the profile's initial state (``[simulator] initial``), updated by `initial`."""
        self.profile = profile
        self.codec = Codec(profile)
        self.framer = Framer(profile.request_frame, profile.checksum)
        self.clock = clock
        self.state = DeviceState(since=clock())
        source = profile.fields.get("source")
        if source is not None and source.kind == "enum":
            self.state.source = next(iter(source.values))
        for name in profile.sim.hour_meters:
            self.state.meters[name] = 0.0
        for key, value in {**profile.sim_initial, **(initial or {})}.items():
            self.set(key, value)
        self.handled: deque[str] = deque(maxlen=1000)  # recent command names, newest last

    def feed(self, data: bytes, framer: Framer | None = None) -> list[bytes]:
        """Bytes from the controller in; the reply frames to send back out, in order.

        A simulator serving several connections passes each one's own `framer`.
        """
        out: list[bytes] = []
        for frame, garbage in (framer or self.framer).feed(data):
            if not garbage:
                out.extend(self.handle(frame))
        return out

    def new_framer(self) -> Framer:
        """A request framer for one more connection."""
        return Framer(self.profile.request_frame, self.profile.checksum)

    def set(self, key: str, value: object) -> None:
        """Change one state value (``[simulator] initial``, a test injecting a fault, ``--state``)."""
        if key == "failed":
            self.state.failed = bool(value)
        elif key in STATE_KEYS:
            setattr(self.state, key, value)
        elif key in self.state.meters:
            self.state.meters[key] = float(value)  # type: ignore[arg-type]
        else:
            self.state.extra[key] = value

    def set_field(self, name: str, value: object) -> None:
        """Set a state value given as a user would (``fan_status=error``), checked by the profile's field."""
        ftype = self.profile.fields.get(name)
        if ftype is None:
            raise ArgumentError(f"{self.profile.id} has no field {name!r}")
        self.set(name, ftype.name_of(ftype.coerce(value)))

    def handle(self, frame: bytes) -> list[bytes]:
        """Answer one complete request frame."""
        found = self.codec.match_request(frame)
        if found is None:
            return self._special(self._unreadable(frame), {}, frame)
        name, args = found
        self.handled.append(name)
        self._settle()
        # Sent to every device on the chain: each acts (or refuses), none answers.
        broadcast = bool(self.profile.broadcast_fields(args))
        refusal = self._refusal(name, args)
        if refusal is not None:
            return [] if broadcast else self._special(refusal, args, frame)
        self._apply(name, args)
        if broadcast:
            return []
        command = self.profile.commands[name]
        values = {**self._defaults(), **self.state.values(), **args}
        return [
            self.codec.build_reply(self.profile.replies[r], values)
            for r in command.replies
            if self.profile.replies[r].kind != "error"
        ]

    def _unreadable(self, frame: bytes) -> SimReply | None:
        """A frame no command matches: a known command with a bad parameter, or no command at all."""
        sim = self.profile.sim
        head = frame[: sim.command_bytes].lower()
        if sim.bad_parameter is not None and sim.command_bytes and len(head) == sim.command_bytes:
            for spec in self.profile.commands.values():
                if spec.send is not None and spec.send.prefix(sim.command_bytes).lower() == head:
                    return sim.bad_parameter
        return self.profile.sim_unknown

    def _refusal(self, name: str, args: Mapping[str, object]) -> SimReply | None:
        """Why the device does not do `name` now (failed, warming up, in standby, no such input), if it does not."""
        sim, s = self.profile.sim, self.state
        answered = name in sim.standby_commands
        if s.failed and sim.when_failed is not None and not answered:
            return sim.when_failed
        busy = s.power in ("warming", "cooling") and (not answered or name in ("power_on", "power_off"))
        if busy and sim.when_busy is not None:
            return sim.when_busy
        if s.power != "on" and not answered and self.profile.sim_when_off is not None:
            return self.profile.sim_when_off
        for key, allowed in sim.available.items():
            if key in args and args[key] not in allowed and sim.bad_parameter is not None:
                return sim.bad_parameter
        return None

    def _special(self, sim: SimReply | None, args: Mapping[str, object], frame: bytes) -> list[bytes]:
        if sim is None:
            return []
        values = {**self._defaults(), **args}
        for name, value in sim.fields.items():
            values[name] = self._from_request(name, value, frame, values[name])
        return [self.codec.build_reply(self.profile.replies[sim.reply], values)]

    def _from_request(self, name: str, value: object, frame: bytes, fallback: object) -> object:
        """``"@N"`` is the request's byte N (a NAK echoing the command it refuses); ``"@N:M"`` bytes N..M."""
        if not isinstance(value, str):
            return value
        span = _SPAN.fullmatch(value)
        if span is not None:
            text = frame[int(span[1]) : int(span[2])].decode("ascii", errors="replace")
            ftype = self.profile.fields[name]
            return text if ftype.knows(text) else fallback
        if not (value.startswith("@") and value[1:].isdigit()):
            return value
        index = int(value[1:])
        if index >= len(frame):
            return fallback
        ftype = self.profile.fields[name]
        text_codes = any(isinstance(c, str) for c in ftype.values.values())
        code = chr(frame[index]) if text_codes else frame[index]
        return ftype.name_of(code) if ftype.knows(code) else fallback

    def _defaults(self) -> dict[str, object]:
        return {name: _default(ftype) for name, ftype in self.profile.fields.items()}

    def _settle(self) -> None:
        """Advance held motion to now, clamped to the profile's ranges."""
        now = self.clock()
        dt, s = now - self.state.since, self.state
        s.since = now
        if s.power in ("on", "warming"):
            for name in s.meters:
                s.meters[name] += dt * self.profile.sim.hours_per_s
        if s.power in ("warming", "cooling") and now >= s.power_until:
            s.power = "on" if s.power == "warming" else "off"
        s.pan = self._clamp("pan", s.pan + s.pan_velocity[0] * dt)
        s.tilt = self._clamp("tilt", s.tilt + s.pan_velocity[1] * dt)
        s.zoom = self._clamp("zoom", s.zoom + s.zoom_velocity * dt, "position")

    def _clamp(self, name: str, value: float, alt: str = "") -> float:
        ftype = self.profile.fields.get(alt) or self.profile.fields.get(name)
        if ftype is None or ftype.kind != "int":
            return value
        return max(ftype.min, min(ftype.max, value))

    def _apply(self, name: str, args: Mapping[str, object]) -> None:
        s = self.state
        for key, value in self.profile.sim.effects.get(name, {}).items():
            self.set(key, value)
        if name in ("power_on", "power_off"):
            self._power(name == "power_on")
        elif name in ("mute_on", "mute_off"):
            s.mute = "on" if name == "mute_on" else "off"
        elif name in ("focus_auto", "focus_manual"):
            s.focus = "auto" if name == "focus_auto" else "manual"
        elif name == "set_input":
            s.source = str(args["source"])
        elif name == "set_volume":
            s.volume = int(args["level"])  # type: ignore[call-overload]
        else:
            self._apply_ptz(name, args)

    def _power(self, on: bool) -> None:
        """Switch, through warming up or cooling down when the profile's device does."""
        s, sim = self.state, self.profile.sim
        target = "on" if on else "off"
        if s.power == target:
            return
        delay = sim.warmup_s if on else sim.cooldown_s
        if delay:
            s.power = "warming" if on else "cooling"
            s.power_until = s.since + delay
        else:
            s.power = target

    def _apply_ptz(self, name: str, args: Mapping[str, object]) -> None:
        s = self.state
        if name == "move":
            dx, dy = DIRECTIONS[str(args["direction"])]
            speed_p = float(args.get("pan_speed", 1))  # type: ignore[arg-type]
            speed_t = float(args.get("tilt_speed", 1))  # type: ignore[arg-type]
            s.pan_velocity = (dx * speed_p * PAN_RATE, dy * speed_t * PAN_RATE)
        elif name == "stop":
            s.pan_velocity = (0.0, 0.0)
        elif name in ("zoom_tele", "zoom_wide"):
            speed = float(args.get("speed", 3)) + 1  # type: ignore[arg-type]
            s.zoom_velocity = speed * ZOOM_RATE * (1 if name == "zoom_tele" else -1)
        elif name == "zoom_stop":
            s.zoom_velocity = 0.0
        elif name == "zoom_to":
            s.zoom = float(args["position"])  # type: ignore[arg-type]
        elif name == "home":
            s.pan = s.tilt = 0.0
        elif name == "goto":
            s.pan, s.tilt = float(args["pan"]), float(args["tilt"])  # type: ignore[arg-type]
        elif name == "preset_set":
            s.presets[int(args["n"])] = (s.pan, s.tilt, s.zoom)  # type: ignore[call-overload]
        elif name == "preset_recall":
            n = int(args["n"])  # type: ignore[call-overload]
            s.pan, s.tilt, s.zoom = s.presets.get(n, (s.pan, s.tilt, s.zoom))
            s.preset = n
        elif name == "preset_clear":
            s.presets.pop(int(args["n"]), None)  # type: ignore[call-overload]


def _default(ftype: FieldType) -> object:
    if ftype.default is not None:
        return ftype.name_of(ftype.coerce(ftype.default))
    if ftype.kind == "text":
        return ""
    if ftype.kind == "enum":
        return next(iter(ftype.values))
    return max(ftype.min, 0) if ftype.min <= 0 <= ftype.max else ftype.min
