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

from agent.sources import EXPECTED, source_kind
from agent.timetable import Timetable, TimetableError
from central.errors import ConfigError
from central.mqtt import BrokerAddress
from drivers.errors import ArgumentError, ProfileError
from drivers.profile import find_profile
from drivers.profile_model import Profile

SIM = "sim"


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """One device of the room: its id, profile and where it is (``sim`` for a simulator)."""

    id: str
    profile: Profile
    address: str
    poll_s: float

    @property
    def kind(self) -> str:
        """``display`` or ``camera``, from the profile."""
        return self.profile.kind


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One video source of the room: its id and URL (rtsp://..., synthetic, screen:0, usb:0)."""

    id: str
    url: str

    @property
    def kind(self) -> str:
        """``rtsp``, ``synthetic``, ``screen`` or ``usb``."""
        return source_kind(self.url) or "?"


@dataclass(frozen=True, slots=True)
class DirectorConfig:
    """``[director]``: the rules that choose the ``directed`` layout's main picture (see streaming.director)."""

    rules: tuple[tuple[str, str], ...]  # (when, show) in priority order
    hold_s: float = 5.0
    thresholds: tuple[tuple[str, float], ...] = ()  # (source, activity threshold in [0, 1])


@dataclass(frozen=True, slots=True)
class RecordingConfig:
    """How lessons are recorded: where, which sources in which layout, and the disk guard."""

    dir: Path
    layout: str
    sources: tuple[str, ...]  # in role order (see streaming.compose.Layout)
    size: tuple[int, int] = (1280, 720)
    fps: float = 25.0
    corner: str = "bottom-right"
    fragment_s: float = 2.0
    segment_s: float = 600.0
    audio: str = "silence"  # silence | tone | none
    bitrate_mbps: float = 4.0  # estimate for the disk guard
    planned_minutes: float = 45.0  # how long a recording must be able to run
    disk_min_free_gb: float = 1.0  # never start below this much free space
    retention_days: float = 30.0  # uploaded recordings are deleted after this
    director: DirectorConfig | None = None  # [director]: needed by the ``directed`` layout

    def needed_bytes(self) -> int:
        """Free space a recording needs to finish: segments plus the final remux, or the floor."""
        planned = self.bitrate_mbps * 1e6 / 8 * self.planned_minutes * 60
        return int(max(2 * planned, self.disk_min_free_gb * 2**30))


@dataclass(frozen=True, slots=True)
class UploadConfig:
    """``[upload]``: where finished recordings go (classroom-central's HTTP server) and this agent's token."""

    url: str
    token: str
    chunk_mib: float = 4.0  # at most 8 (the centre's bound on a chunk)

    @property
    def chunk_bytes(self) -> int:
        """The chunk size in bytes."""
        return max(1, int(self.chunk_mib * 2**20))


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
    disk_path: Path = field(default_factory=lambda: Path("."))
    disk_low_percent: float = 10.0
    outbox_max_age_h: float = 72.0
    outbox_max_rows: int = 100_000
    sources: tuple[SourceConfig, ...] = ()
    recording: RecordingConfig | None = None
    timetable: Timetable = field(default_factory=Timetable)
    upload: UploadConfig | None = None  # [upload]: without it recordings stay on this PC

    @property
    def db_path(self) -> Path:
        """The agent's one SQLite file."""
        return self.data_dir / "agent.db"

    def device(self, device_id: str) -> DeviceConfig | None:
        """The device with this id."""
        return next((d for d in self.devices if d.id == device_id), None)


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}")

    def get(self, data: Mapping[str, Any], key: str, path: str, kind: type | tuple[type, ...], default: Any) -> Any:
        if key not in data:
            return default
        value = data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            self.add(f"{path}{key}", f"got {value!r}, expected {names}")
            return default
        return value

    def known(self, data: Mapping[str, Any], path: str, allowed: set[str]) -> None:
        for key in sorted(set(data) - allowed):
            self.add(f"{path}{key}", "unknown key")


_TOP = {
    "agent_id", "site", "room", "data_dir", "broker", "devices", "intervals", "http", "health", "outbox",
    "sources", "recording", "director", "timetable", "upload",
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
    p = _Problems()
    p.known(data, "", _TOP)
    ident = {k: _ident(p, data, k) for k in ("agent_id", "site")}
    room = p.get(data, "room", "", str, "")
    if not room:
        p.add("room", "missing (the room's name, shown to technicians)")
    broker = _broker(p, data.get("broker", {}), broker_url)
    devices = _devices(p, data.get("devices", []))
    sections = {name: _section(p, data, name) for name in ("intervals", "http", "health", "outbox")}
    intervals, http, health, outbox = (sections[n] for n in ("intervals", "http", "health", "outbox"))
    p.known(intervals, "intervals.", {"telemetry_s"})
    p.known(http, "http.", {"host", "port"})
    p.known(health, "health.", {"disk_path", "disk_low_percent"})
    p.known(outbox, "outbox.", {"max_age_h", "max_rows"})
    data_dir = _path(base, p.get(data, "data_dir", "", str, "var"))
    sources = _sources(p, _section(p, data, "sources"))
    recording = _recording(p, data, data_dir, base, sources)
    if "director" in data and recording is None:
        p.add("director", "expected [recording] too (the director chooses a recording's main picture)")
    timetable = _timetable(p, data)
    config = SiteConfig(
        agent_id=ident["agent_id"],
        site=ident["site"],
        room=room,
        data_dir=data_dir,
        broker=broker or BrokerAddress("127.0.0.1", 1883),
        devices=devices,
        telemetry_s=_positive(p, intervals, "telemetry_s", "intervals.", 10.0),
        http_host=p.get(http, "host", "http.", str, "127.0.0.1"),
        http_port=_port(p, http, "port", "http.", 8765),
        disk_path=_path(base, p.get(health, "disk_path", "health.", str, ".")),
        disk_low_percent=_positive(p, health, "disk_low_percent", "health.", 10.0),
        outbox_max_age_h=_positive(p, outbox, "max_age_h", "outbox.", 72.0),
        outbox_max_rows=int(_positive(p, outbox, "max_rows", "outbox.", 100_000)),
        sources=sources,
        recording=recording,
        timetable=timetable,
        upload=_upload(p, data),
    )
    if p.items:
        raise ConfigError(f"{source}: {len(p.items)} problem(s):\n  " + "\n  ".join(p.items))
    return config


def _timetable(p: _Problems, data: Mapping[str, Any]) -> Timetable:
    """``[timetable]`` (see agent.timetable); its problems join the others."""
    if "timetable" not in data:
        return Timetable()
    try:
        return Timetable.from_dict(data["timetable"])
    except TimetableError as exc:
        p.items.extend(exc.problems)
        return Timetable()


def _section(p: _Problems, data: Mapping[str, Any], name: str) -> dict[str, Any]:
    section = data.get(name, {})
    if not isinstance(section, dict):
        p.add(name, f"got {section!r}, expected a table [{name}]")
        return {}
    return section


def _ident(p: _Problems, data: Mapping[str, Any], key: str) -> str:
    value = p.get(data, key, "", str, "")
    if not value:
        p.add(key, "missing")
    elif any(c in value for c in "/+#") or not value.isprintable() or value.startswith("_"):
        p.add(key, f"got {value!r}, expected a name without / + # that does not start with _")
    return str(value)


def _path(base: Path, text: str) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


def _positive(p: _Problems, data: Mapping[str, Any], key: str, path: str, default: float) -> float:
    value = p.get(data, key, path, (int, float), default)
    if value <= 0:
        p.add(f"{path}{key}", f"got {value!r}, expected a positive number")
        return default
    return float(value)


def _port(p: _Problems, data: Mapping[str, Any], key: str, path: str, default: int) -> int:
    value = p.get(data, key, path, int, default)
    if not 0 <= value <= 65535:
        p.add(f"{path}{key}", f"got {value!r}, expected a port 0..65535")
        return default
    return int(value)


def _broker(p: _Problems, data: object, override: str | None) -> BrokerAddress | None:
    if not isinstance(data, dict):
        p.add("broker", f"got {data!r}, expected a table [broker]")
        return None
    p.known(data, "broker.", {"url", "username", "password", "ca_file", "cert_file", "key_file"})
    url = override or p.get(data, "url", "broker.", str, "mqtt://127.0.0.1:1883")
    try:
        return BrokerAddress.parse(
            url,
            **{
                k: p.get(data, k, "broker.", str, "")
                for k in ("username", "password", "ca_file", "cert_file", "key_file")
            },
        )
    except ConfigError as exc:
        p.add("broker.url" if not override else "--broker", str(exc))
        return None


def _devices(p: _Problems, data: object) -> tuple[DeviceConfig, ...]:
    if not isinstance(data, list):
        p.add("devices", f"got {data!r}, expected [[devices]] tables")
        return ()
    out: list[DeviceConfig] = []
    seen: set[str] = set()
    for i, dev in enumerate(data):
        path = f"devices[{i}]."
        if not isinstance(dev, dict):
            p.add(f"devices[{i}]", "expected a table")
            continue
        p.known(dev, path, {"id", "profile", "address", "poll_s"})
        dev_id = p.get(dev, "id", path, str, "")
        if not dev_id or any(c in dev_id for c in "/+#"):
            p.add(f"{path}id", f"got {dev_id!r}, expected a name without / + #")
        elif dev_id in seen:
            p.add(f"{path}id", f"duplicate device id {dev_id!r}")
        seen.add(dev_id)
        address = p.get(dev, "address", path, str, "")
        if not address:
            p.add(f"{path}address", "missing (a serial port, tcp://HOST:PORT, udp://HOST:PORT or sim)")
        profile = _profile(p, dev, path)
        poll = _positive(p, dev, "poll_s", path, profile.poll_interval_s if profile else 10.0)
        if profile is not None and dev_id and address:
            out.append(DeviceConfig(dev_id, profile, address, poll))
    return tuple(out)


def _profile(p: _Problems, dev: Mapping[str, Any], path: str) -> Profile | None:
    name = p.get(dev, "profile", path, str, "")
    if not name:
        p.add(f"{path}profile", "missing")
        return None
    try:
        return find_profile(name)
    except (ArgumentError, ProfileError) as exc:
        p.add(f"{path}profile", str(exc))
        return None


def _sources(p: _Problems, data: Mapping[str, Any]) -> tuple[SourceConfig, ...]:
    out = []
    for source_id, url in data.items():
        path = f"sources.{source_id}"
        if any(c in source_id for c in "/+#") or not source_id.isprintable():
            p.add(path, "expected a name without / + #")
        elif not isinstance(url, str):
            p.add(path, f"got {url!r}, expected a URL string ({EXPECTED})")
        elif source_kind(url) is None:
            p.add(path, f"got {url!r}, expected {EXPECTED}")
        else:
            out.append(SourceConfig(source_id, url))
    return tuple(out)


_RECORDING = {
    "dir", "layout", "sources", "size", "fps", "corner", "fragment_s", "segment_s", "audio", "bitrate_mbps",
    "planned_minutes", "disk_min_free_gb", "retention_days",
}  # fmt: skip


def _recording(
    p: _Problems, data: Mapping[str, Any], data_dir: Path, base: Path, sources: tuple[SourceConfig, ...]
) -> RecordingConfig | None:
    if "recording" not in data:
        return None
    rec = _section(p, data, "recording")
    p.known(rec, "recording.", _RECORDING)
    declared = {s.id for s in sources}
    roles = p.get(rec, "sources", "recording.", list, [s.id for s in sources][:1])
    for i, name in enumerate(roles):
        if name not in declared:
            p.add(f"recording.sources[{i}]", f"got {name!r}, expected a source declared in [sources]")
    size = _size(p, rec)
    config = RecordingConfig(
        dir=_path(base, p.get(rec, "dir", "recording.", str, "")) if "dir" in rec else data_dir / "recordings",
        layout=p.get(rec, "layout", "recording.", str, "single"),
        sources=tuple(str(r) for r in roles),
        size=size,
        fps=_positive(p, rec, "fps", "recording.", 25.0),
        corner=p.get(rec, "corner", "recording.", str, "bottom-right"),
        fragment_s=_positive(p, rec, "fragment_s", "recording.", 2.0),
        segment_s=_positive(p, rec, "segment_s", "recording.", 600.0),
        audio=p.get(rec, "audio", "recording.", str, "silence"),
        bitrate_mbps=_positive(p, rec, "bitrate_mbps", "recording.", 4.0),
        planned_minutes=_positive(p, rec, "planned_minutes", "recording.", 45.0),
        disk_min_free_gb=_non_negative(p, rec, "disk_min_free_gb", 1.0),
        retention_days=_positive(p, rec, "retention_days", "recording.", 30.0),
        director=_director(p, data, tuple(str(r) for r in roles)) if "director" in data else None,
    )
    if config.audio not in ("silence", "tone", "none"):
        p.add("recording.audio", f"got {config.audio!r}, expected silence, tone or none")
    if config.fragment_s > config.segment_s:
        p.add("recording.fragment_s", f"got {config.fragment_s:g}, expected at most segment_s ({config.segment_s:g})")
    if not roles:
        p.add("recording.sources", "missing (declare [sources] and name them here in role order)")
    elif not any(i.startswith("recording.sources") for i in p.items):
        _layout(p, config)
    if config.layout == "directed" and config.director is None:
        p.add("recording.layout", "got 'directed', expected a [director] section with its rules")
    return config


def _director(p: _Problems, data: Mapping[str, Any], roles: tuple[str, ...]) -> DirectorConfig:
    """``[director]``: rules and thresholds name the recording's sources; every problem is reported."""
    from streaming.director import DirectorError, parse_when

    section = _section(p, data, "director")
    p.known(section, "director.", {"rules", "hold_s", "thresholds"})
    expected = f"expected one of the recording's sources ({', '.join(roles)})"
    hold_s = _non_negative(p, section, "hold_s", 5.0, "director.")
    thresholds = []
    for name, value in p.get(section, "thresholds", "director.", dict, {}).items():
        if name not in roles:
            p.add(f"director.thresholds.{name}", f"unknown source, {expected}")
        elif isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            p.add(f"director.thresholds.{name}", f"got {value!r}, expected a number from 0 to 1")
        else:
            thresholds.append((name, float(value)))
    rules = []
    raw = p.get(section, "rules", "director.", list, [])
    if not raw:
        p.add("director.rules", 'missing (e.g. [{ when = "courseware active", show = "courseware" }, ...])')
    for i, rule in enumerate(raw):
        path = f"director.rules[{i}]."
        if not isinstance(rule, dict):
            p.add(f"director.rules[{i}]", f"got {rule!r}, expected a table {{ when = ..., show = ... }}")
            continue
        p.known(rule, path, {"when", "show"})
        when, show = p.get(rule, "when", path, str, ""), p.get(rule, "show", path, str, "")
        try:
            watches = parse_when(when)
        except DirectorError as exc:
            p.add(f"{path}when", str(exc))
        else:
            if watches is not None and watches not in roles:
                p.add(f"{path}when", f"got {when!r}: {watches!r} is not a source, {expected}")
        if show not in roles:
            p.add(f"{path}show", f"got {show!r}, {expected}")
        rules.append((when, show))
    return DirectorConfig(tuple(rules), hold_s, tuple(thresholds))


def _layout(p: _Problems, config: RecordingConfig) -> None:
    """Check the layout with the compositor's own rules (the media stack is loaded: there are sources)."""
    from streaming.compose import Layout, LayoutError

    try:
        Layout(config.layout, config.sources, config.size, config.corner)
    except LayoutError as exc:
        p.add("recording.layout", str(exc))


def _size(p: _Problems, rec: Mapping[str, Any]) -> tuple[int, int]:
    text = p.get(rec, "size", "recording.", str, "1280x720")
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match or int(match.group(1)) % 2 or int(match.group(2)) % 2:
        p.add("recording.size", f"got {text!r}, expected WIDTHxHEIGHT in even numbers, e.g. 1280x720")
        return 1280, 720
    return int(match.group(1)), int(match.group(2))


def _non_negative(p: _Problems, data: Mapping[str, Any], key: str, default: float, path: str = "recording.") -> float:
    value = p.get(data, key, path, (int, float), default)
    if value < 0:
        p.add(f"{path}{key}", f"got {value!r}, expected 0 or more")
        return default
    return float(value)


def _upload(p: _Problems, data: Mapping[str, Any]) -> UploadConfig | None:
    """``[upload] url, token, chunk_mib`` (see agent.upload); None when the section is absent."""
    if "upload" not in data:
        return None
    section = _section(p, data, "upload")
    p.known(section, "upload.", {"url", "token", "chunk_mib"})
    url = p.get(section, "url", "upload.", str, "")
    if not re.fullmatch(r"https?://[^/\s]+/?", url):
        p.add("upload.url", f"got {url!r}, expected classroom-central's address, e.g. http://central:8080")
    token = p.get(section, "token", "upload.", str, "")
    if len(token) < 16:
        p.add("upload.token", "expected this agent's upload token (16 characters or more, registered at the centre)")
    chunk = _positive(p, section, "chunk_mib", "upload.", 4.0)
    if chunk > 8:
        p.add("upload.chunk_mib", f"got {chunk:g}, expected at most 8")
    return UploadConfig(url.rstrip("/"), token, min(chunk, 8.0))
