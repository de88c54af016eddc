"""The site configuration: one TOML file per classroom PC, validated before anything starts.

Every problem is reported at once, as ``key.path: got X, expected Y``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.config.broadcast import BroadcastConfig, parse_broadcast
from agent.config.lesson import LessonConfig, parse_lesson
from agent.config.media import (
    DirectorConfig,
    RecordingConfig,
    SourceConfig,
    UploadConfig,
    display_name,
    parse_recording,
    parse_sources,
    parse_upload,
)
from agent.config.paths import resolve_path
from agent.config.power import PowerConfig, parse_power
from agent.config.tracking import TrackingConfig, check_virtual, parse_tracking
from agent.errors import ConfigError
from agent.sources import onvif_camera
from agent.timetable.model import Timetable, TimetableError
from agent.timetable.parse import parse_timetable
from contract.errors import AddressError
from contract.mqtt import BrokerAddress
from contract.payloads import MAX_INPUTS, NAME_CHARS
from drivers.checks import Checks, at, join
from drivers.driver import open_driver
from drivers.errors import ArgumentError, ProfileError
from drivers.profile import find_profile
from drivers.profile_model import Profile

SIM = "sim"
# Lamp hours at which a projector's lamp is near the end of its life (many classroom lamps are rated
# 3,500-6,000 h in normal mode; a technician orders a spare in time).
LAMP_HOURS_LIMIT = 3000


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """One device of the room: its id, profile and where it is (``sim`` for a simulator)."""

    id: str
    profile: Profile
    address: str
    poll_s: float
    presets: Mapping[int, str] = field(default_factory=dict)  # camera preset number -> name on the page
    lamp_hours_limit: int = LAMP_HOURS_LIMIT  # a lamp this old raises lamp_end_of_life
    name: str = ""  # what people call it (``name = "讲台摄像机"``), shown instead of the id

    @property
    def inputs(self) -> tuple[str, ...]:
        """The inputs a display's profile names (``hdmi1``, ``ops`` …); () when they are not a fixed list."""
        source = self.profile.fields.get("source")
        names = tuple(source.values) if source is not None and source.kind == "enum" else ()
        return tuple(n for n in names if 0 < len(n) <= NAME_CHARS)[:MAX_INPUTS]  # within info's limits

    @property
    def kind(self) -> str:
        """``display``, ``projector`` or ``camera``, from the profile."""
        return self.profile.kind


@dataclass(frozen=True, slots=True)
class SiteConfig:
    """Everything the agent needs to run in one room."""

    agent_id: str
    site: str
    room: str
    data_dir: Path
    broker: BrokerAddress
    devices: tuple[DeviceConfig, ...]
    telemetry_s: float = 10.0
    http_host: str = "127.0.0.1"
    http_port: int = 8765
    http_pin: str = ""  # [http] pin: other devices on the LAN may use the page and the API with it
    http_allowed_origins: tuple[str, ...] = ()  # web sites (the centre's) that may watch over WHEP
    disk_path: Path = field(default_factory=lambda: Path("."))
    disk_low_percent: float = 10.0
    outbox_max_age_h: float = 72.0
    outbox_max_rows: int = 100_000
    sources: tuple[SourceConfig, ...] = ()
    recording: RecordingConfig | None = None
    timetable: Timetable = field(default_factory=Timetable)
    upload: UploadConfig | None = None  # [upload]: without it recordings stay on this PC
    lesson: LessonConfig | None = None  # [lesson]: without it this room takes no part in live lessons
    tracking: tuple[TrackingConfig, ...] = ()  # [[tracking]]: auto-tracking cameras (docs/tracking.md)
    broadcast: BroadcastConfig | None = None  # [broadcast]: live pushes to platforms (RTMP, SRT)
    power: PowerConfig = field(default_factory=PowerConfig)  # [power]: shutdown/reboot commands, waking

    @property
    def db_path(self) -> Path:
        """The agent's one SQLite file."""
        return self.data_dir / "agent.db"

    def device(self, device_id: str) -> DeviceConfig | None:
        """The device with this id."""
        return next((d for d in self.devices if d.id == device_id), None)


_TOP = {
    "agent_id", "site", "room", "data_dir", "broker", "devices", "intervals", "http", "health", "outbox",
    "sources", "recording", "director", "timetable", "upload", "lesson", "tracking", "broadcast", "power",
}  # fmt: skip


def load_config(path: str | Path, *, broker_url: str | None = None) -> SiteConfig:
    """Load and check a site config; ConfigError lists every problem found."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_config(data, base=path.parent, broker_url=broker_url, source=str(path))


def parse_config(
    data: Mapping[str, Any], *, base: Path = Path("."), broker_url: str | None = None, source: str = "config"
) -> SiteConfig:
    """Check a parsed config mapping (see `load_config`)."""
    check = Checks()
    check.known(data, "", _TOP)
    ident = {k: _ident(check, data, k) for k in ("agent_id", "site")}
    room = check.text(data, "room", "")
    if not room:
        check.add("room", "missing (the room's name, shown to technicians)")
    broker = _broker(check, data.get("broker", {}), broker_url)
    devices = _devices(check, data.get("devices", []))
    sections = {name: check.section(data, name) for name in ("intervals", "http", "health", "outbox")}
    intervals, http, health, outbox = (sections[n] for n in ("intervals", "http", "health", "outbox"))
    check.known(intervals, "intervals", {"telemetry_s"})
    check.known(http, "http", {"host", "port", "pin", "allowed_origins"})
    check.known(health, "health", {"disk_path", "disk_low_percent"})
    check.known(outbox, "outbox", {"max_age_h", "max_rows"})
    data_dir = resolve_path(base, check.text(data, "data_dir", "", "var"))
    sources = parse_sources(check, check.section(data, "sources"))
    _camera_sources(check, sources, devices)
    recording = parse_recording(check, data, data_dir, base, sources)
    if "director" in data and recording is None:
        check.add("director", "expected [recording] too (the director chooses a recording's main picture)")
    timetable = _timetable(check, data)
    broadcast = parse_broadcast(check, data, sources, recording)
    _broadcast_lessons(check, timetable, broadcast)
    config = SiteConfig(
        agent_id=ident["agent_id"],
        site=ident["site"],
        room=room,
        data_dir=data_dir,
        broker=broker or BrokerAddress("127.0.0.1", 1883),
        devices=devices,
        telemetry_s=check.positive(intervals, "telemetry_s", "intervals", 10.0),
        http_host=check.text(http, "host", "http", "127.0.0.1"),
        http_port=check.integer(http, "port", "http", 8765, low=0, high=65535, expected="a port 0..65535"),
        http_pin=_pin(check, http),
        http_allowed_origins=_origins(check, http),
        disk_path=resolve_path(base, check.text(health, "disk_path", "health", ".")),
        disk_low_percent=check.positive(health, "disk_low_percent", "health", 10.0),
        outbox_max_age_h=check.positive(outbox, "max_age_h", "outbox", 72.0),
        outbox_max_rows=int(check.positive(outbox, "max_rows", "outbox", 100_000)),
        sources=sources,
        recording=recording,
        timetable=timetable,
        upload=parse_upload(check, data, base),
        lesson=parse_lesson(check, data, sources),
        broadcast=broadcast,
        power=parse_power(check, data),
        tracking=parse_tracking(
            check, data, {d.id: d.profile for d in devices if d.kind == "camera"}, [s.id for s in sources]
        ),
    )
    simulated = {d.id: d.address for d in devices if d.kind == "camera" and d.profile.framed}  # onvif: no model
    check_virtual(check, {s.id: s.url for s in sources}, simulated)
    if check.problems:
        raise ConfigError(f"{source}: {len(check.problems)} problem(s):\n  " + "\n  ".join(check.problems))
    return config


def _timetable(check: Checks, data: Mapping[str, Any]) -> Timetable:
    """``[timetable]`` (see agent.timetable.model); its problems join the others."""
    if "timetable" not in data:
        return Timetable()
    try:
        return parse_timetable(data["timetable"])
    except TimetableError as exc:
        check.extend(exc.problems)
        return Timetable()


def _broadcast_lessons(check: Checks, timetable: Timetable, broadcast: BroadcastConfig | None) -> None:
    """Every timetable lesson's ``broadcast`` names a ``[broadcast]`` target."""
    targets = tuple(broadcast.targets) if broadcast is not None else ()
    for i, lesson in enumerate(timetable.lessons):
        if lesson.broadcast is not None and lesson.broadcast not in targets:
            expected = f"one of {', '.join(targets)}" if targets else "a target of a [broadcast] section"
            check.add(f"timetable.lessons[{i}].broadcast", f"got {lesson.broadcast!r}, expected {expected}")


def _ident(check: Checks, data: Mapping[str, Any], key: str) -> str:
    value = check.text(data, key, "")
    if not value:
        check.add(key, "missing")
    elif any(c in value for c in "/+#") or not value.isprintable() or value.startswith("_"):
        check.add(key, f"got {value!r}, expected a name without / + # that does not start with _")
    return str(value)


def _broker(check: Checks, data: object, override: str | None) -> BrokerAddress | None:
    if not isinstance(data, dict):
        check.table(data, "broker", expected="a table [broker]")
        return None
    check.known(data, "broker", {"url", "username", "password", "ca_file", "cert_file", "key_file"})
    url = override or check.text(data, "url", "broker", "mqtt://127.0.0.1:1883")
    try:
        return BrokerAddress.parse(
            url,
            **{k: check.text(data, k, "broker") for k in ("username", "password", "ca_file", "cert_file", "key_file")},
        )
    except AddressError as exc:
        check.add("broker.url" if not override else "--broker", str(exc))
        return None


def _devices(check: Checks, data: object) -> tuple[DeviceConfig, ...]:
    if not isinstance(data, list):
        check.add("devices", f"got {data!r}, expected [[devices]] tables")
        return ()
    out: list[DeviceConfig] = []
    seen: set[str] = set()
    for i, dev in enumerate(data):
        path = at("devices", i)
        if not isinstance(dev, dict):
            check.table(dev, path)
            continue
        check.known(dev, path, {"id", "profile", "address", "poll_s", "presets", "lamp_hours_limit", "name"})
        dev_id = check.text(dev, "id", path)
        if not dev_id or any(c in dev_id for c in "/+#"):
            check.add(join(path, "id"), f"got {dev_id!r}, expected a name without / + #")
        elif dev_id in seen:
            check.add(join(path, "id"), f"duplicate device id {dev_id!r}")
        seen.add(dev_id)
        address = check.text(dev, "address", path)
        if not address:
            check.add(join(path, "address"), "missing (a serial port, tcp://HOST:PORT, udp://HOST:PORT or sim)")
        profile = _profile(check, dev, path)
        if profile is not None and profile.driver == "onvif" and address and address != SIM:
            address = _onvif_address(check, address, join(path, "address"))
        poll = check.positive(dev, "poll_s", path, profile.poll_interval_s if profile else 10.0)
        presets = _presets(check, dev, path, profile)
        lamp = check.integer(dev, "lamp_hours_limit", path, LAMP_HOURS_LIMIT, low=1, high=99999)
        if profile is not None and address and address != SIM:
            try:
                open_driver(profile, address)  # opens nothing: checks the address (and a PJLink password) now
            except ArgumentError as exc:
                check.add(join(path, "address"), str(exc))
        if profile is not None and dev_id and address:
            out.append(DeviceConfig(dev_id, profile, address, poll, presets, lamp, display_name(check, dev, path)))
    return tuple(out)


def _onvif_address(check: Checks, address: str, path: str) -> str:
    """An onvif camera's address, checked now (the problem never shows the password); "" when it is wrong."""
    from drivers.onvif.address import parse_address

    try:
        parse_address(address)
    except ArgumentError as exc:
        check.add(path, str(exc))
        return ""
    return address


def _camera_sources(check: Checks, sources: tuple[SourceConfig, ...], devices: tuple[DeviceConfig, ...]) -> None:
    """``onvif:DEVICE[/PROFILE]`` sources must name an onvif camera of ``[[devices]]``."""
    drivers = {d.id: d.profile for d in devices}
    for source in sources:
        camera = onvif_camera(source.url)
        if camera is None:
            continue
        profile = drivers.get(camera[0])
        if profile is None:
            known = ", ".join(i for i, p in drivers.items() if p.driver == "onvif") or "none configured"
            check.add(f"sources.{source.id}", f"got {source.url!r}, expected an onvif camera's device id ({known})")
        elif profile.driver != "onvif":
            check.add(f"sources.{source.id}", f"got {source.url!r}: {camera[0]} is a {profile.id} device, not onvif")


def _presets(check: Checks, dev: Mapping[str, Any], path: str, profile: Profile | None) -> dict[int, str]:
    """``presets = {1 = "讲台", ...}``: a camera's preset numbers (0..255) and the names the page shows."""
    if "presets" not in dev:
        return {}
    table = check.mapping(dev, "presets", path)
    if profile is not None and profile.kind != "camera":
        check.add(join(path, "presets"), f"got presets on a {profile.kind}, expected them only on a camera")
        return {}
    out: dict[int, str] = {}
    for key, name in table.items():
        where = join(path, f"presets.{key}")
        if not key.isdigit() or not 0 <= int(key) <= 255:
            check.add(where, f"got preset number {key!r}, expected a number 0..255")
        elif not isinstance(name, str) or not name.strip():
            check.add(where, f'got {name!r}, expected the preset\'s name (e.g. "讲台")')
        else:
            out[int(key)] = name.strip()
    return dict(sorted(out.items()))


def _pin(check: Checks, http: Mapping[str, Any]) -> str:
    """``[http] pin``: 4 to 12 digits (a string, so that a leading 0 stays)."""
    if isinstance(http.get("pin"), int) and not isinstance(http.get("pin"), bool):
        check.add("http.pin", 'got a number, expected the PIN in quotes (a leading 0 would be lost), e.g. "2468"')
        return ""
    value = check.text(http, "pin", "http")
    if value and not (value.isascii() and value.isdigit() and 4 <= len(value) <= 12):
        check.add("http.pin", f'got {len(value)} characters, expected 4 to 12 digits in quotes, e.g. "2468"')
        return ""
    return str(value)


def _origins(check: Checks, http: Mapping[str, Any]) -> tuple[str, ...]:
    """``[http] allowed_origins``: ``scheme://host[:port]`` of the sites that may use WHEP/WHIP from a browser."""
    out = []
    for i, origin in enumerate(check.array(http, "allowed_origins", "http")):
        if not isinstance(origin, str) or not re.fullmatch(r"https?://[^/\s?#]+", origin):
            expected = "an origin like https://central.example:8080"
            check.add(at("http.allowed_origins", i), f"got {origin!r}, expected {expected}")
        else:
            out.append(origin.lower())
    return tuple(out)


def _profile(check: Checks, dev: Mapping[str, Any], path: str) -> Profile | None:
    name = check.text(dev, "profile", path)
    if not name:
        check.add(join(path, "profile"), "missing")
        return None
    try:
        return find_profile(name)
    except (ArgumentError, ProfileError) as exc:
        check.add(join(path, "profile"), str(exc))
        return None


__all__ = [
    "SIM",
    "BroadcastConfig",
    "DeviceConfig",
    "DirectorConfig",
    "LessonConfig",
    "PowerConfig",
    "RecordingConfig",
    "SiteConfig",
    "SourceConfig",
    "TrackingConfig",
    "UploadConfig",
    "load_config",
    "parse_config",
]
