"""The site config's media sections: [sources], [recording], [director], [upload]."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.config.delivery import DeliveryTarget, parse_targets
from agent.config.paths import resolve_path
from agent.lesson.pictures import EXPECTED as LESSON_PICTURES
from agent.lesson.pictures import PictureRef
from agent.sources import EXPECTED, source_kind
from contract.payloads import NAME_CHARS
from drivers.checks import Checks, at, join


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One video source of the room: its id, URL (rtsp://..., synthetic, screen:0, usb:0) and display name."""

    id: str
    url: str
    name: str = ""  # what people call it (``name = "讲台摄像机"``), shown by the dashboard instead of the id

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
    audio: str = "silence"  # silence | tone | none | mic | mic:DEVICE | an rtsp source id (the camera's sound)
    bitrate_mbps: float = 4.0  # estimate for the disk guard
    planned_minutes: float = 45.0  # how long a recording must be able to run
    disk_min_free_gb: float = 1.0  # never start below this much free space
    retention_days: float = 30.0  # uploaded recordings are deleted after this
    director: DirectorConfig | None = None  # [director]: needed by the ``directed`` layout
    resource_mode: bool = False  # also each source in an MP4 of its own (<recording>/<source>.mp4)

    def needed_bytes(self) -> int:
        """Free space a recording needs to finish: segments plus the final remux, or the floor."""
        planned = self.bitrate_mbps * 1e6 / 8 * self.planned_minutes * 60
        return int(max(2 * planned, self.disk_min_free_gb * 2**30))


@dataclass(frozen=True, slots=True)
class UploadConfig:
    """``[upload]``: classroom-central's HTTP server and this agent's token, and the other targets.

    `url` is empty when recordings go only to `targets` (``[[upload.targets]]``: FTP drops, HTTP PUT).
    """

    url: str
    token: str = field(repr=False)
    chunk_mib: float = 4.0  # at most 8 (the centre's bound on a chunk)
    targets: tuple[DeliveryTarget, ...] = ()

    @property
    def chunk_bytes(self) -> int:
        """The chunk size in bytes."""
        return max(1, int(self.chunk_mib * 2**20))


def parse_sources(check: Checks, data: Mapping[str, Any]) -> tuple[SourceConfig, ...]:
    """``[sources]``: id -> URL or ``{ url = URL, name = "讲台摄像机" }``, each URL of a kind the agent can open."""
    out = []
    for source_id, value in data.items():
        path = f"sources.{source_id}"
        url, name = value, ""
        if isinstance(value, dict):
            check.known(value, path, {"url", "name"}, listed=True)
            url, name = value.get("url"), display_name(check, value, path)
        if any(c in source_id for c in "/+#") or not source_id.isprintable():
            check.add(path, "expected a name without / + #")
        elif not isinstance(url, str):
            check.add(path, f"got {url!r}, expected a URL string ({EXPECTED}) or {{ url = URL, name = NAME }}")
        elif source_kind(url) is None:
            check.add(path, f"got {url!r}, expected {EXPECTED}")
        else:
            out.append(SourceConfig(source_id, url, name))
    return tuple(out)


def display_name(check: Checks, data: Mapping[str, Any], path: str) -> str:
    """``name``: what people call a device or a source (at most NAME_CHARS printable characters); "" if absent."""
    name = check.text(data, "name", path).strip()
    if len(name) > NAME_CHARS or not name.isprintable():
        check.add(join(path, "name"), f"got {name[:80]!r}, expected at most {NAME_CHARS} printable characters")
        return ""
    return name


_RECORDING = {
    "dir", "layout", "sources", "size", "fps", "corner", "fragment_s", "segment_s", "audio", "bitrate_mbps",
    "planned_minutes", "disk_min_free_gb", "retention_days", "resource_mode",
}  # fmt: skip


def parse_recording(
    check: Checks, data: Mapping[str, Any], data_dir: Path, base: Path, sources: tuple[SourceConfig, ...]
) -> RecordingConfig | None:
    """``[recording]`` (and the ``[director]`` it may use), or None when absent."""
    if "recording" not in data:
        return None
    rec = check.section(data, "recording")
    check.known(rec, "recording", _RECORDING)
    declared = {s.id for s in sources}
    roles = check.array(rec, "sources", "recording", [s.id for s in sources][:1])
    for i, name in enumerate(roles):
        if name not in declared and not _lesson_picture(data, name):
            expected = LESSON_PICTURES if "lesson" in data else "a source declared in [sources]"
            check.add(at("recording.sources", i), f"got {name!r}, expected {expected}")
    size = _size(check, rec)
    config = RecordingConfig(
        dir=resolve_path(base, check.text(rec, "dir", "recording")) if "dir" in rec else data_dir / "recordings",
        layout=check.text(rec, "layout", "recording", "single"),
        sources=tuple(str(r) for r in roles),
        size=size,
        fps=check.positive(rec, "fps", "recording", 25.0),
        corner=check.text(rec, "corner", "recording", "bottom-right"),
        fragment_s=check.positive(rec, "fragment_s", "recording", 2.0),
        segment_s=check.positive(rec, "segment_s", "recording", 600.0),
        audio=check.text(rec, "audio", "recording", "silence"),
        bitrate_mbps=check.positive(rec, "bitrate_mbps", "recording", 4.0),
        planned_minutes=check.positive(rec, "planned_minutes", "recording", 45.0),
        disk_min_free_gb=check.non_negative(rec, "disk_min_free_gb", "recording", 1.0),
        retention_days=check.positive(rec, "retention_days", "recording", 30.0),
        director=_director(check, data, tuple(str(r) for r in roles)) if "director" in data else None,
        resource_mode=check.flag(rec, "resource_mode", "recording", False),
    )
    rtsp = {s.id for s in sources if source_kind(s.url) == "rtsp"}
    if config.audio in declared and config.audio not in rtsp:
        check.add("recording.audio", f"got {config.audio!r}, expected an rtsp source (only cameras carry sound)")
    elif config.audio not in ("silence", "tone", "none", "mic", *rtsp) and not config.audio.startswith("mic:"):
        expected = "silence, tone, none, mic, mic:DEVICE or an rtsp source"
        check.add("recording.audio", f"got {config.audio!r}, expected {expected}")
    pictures = [s for s in config.sources if s not in declared]
    if config.resource_mode and pictures:  # a lesson picture comes and goes: no file of its own to keep
        check.add(
            "recording.resource_mode",
            f"expected false: {', '.join(pictures)} are lesson pictures, not room sources",
        )
    if config.fragment_s > config.segment_s:
        check.add(
            "recording.fragment_s",
            f"got {config.fragment_s:g}, expected at most segment_s ({config.segment_s:g})",
        )
    if not roles:
        check.add("recording.sources", "missing (declare [sources] and name them here in role order)")
    elif not any(i.startswith("recording.sources") for i in check.problems):
        _layout(check, config)
    if config.layout == "directed" and config.director is None:
        check.add("recording.layout", "got 'directed', expected a [director] section with its rules")
    return config


def _lesson_picture(data: Mapping[str, Any], name: object) -> bool:
    """Whether `name` is a lesson picture reference (``remote:1``...) and the room takes part in lessons."""
    return "lesson" in data and isinstance(name, str) and PictureRef.parse(name) is not None


def _director(check: Checks, data: Mapping[str, Any], roles: tuple[str, ...]) -> DirectorConfig:
    """``[director]``: rules and thresholds name the recording's sources; every problem is reported."""
    from streaming.director import DirectorError, parse_when

    spec = check.section(data, "director")
    check.known(spec, "director", {"rules", "hold_s", "thresholds"})
    expected = f"expected one of the recording's sources ({', '.join(roles)})"
    hold_s = check.non_negative(spec, "hold_s", "director", 5.0)
    thresholds = []
    for name, value in check.mapping(spec, "thresholds", "director").items():
        if name not in roles:
            check.add(f"director.thresholds.{name}", f"unknown source, {expected}")
        elif isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            check.add(f"director.thresholds.{name}", f"got {value!r}, expected a number from 0 to 1")
        else:
            thresholds.append((name, float(value)))
    rules = []
    raw = check.array(spec, "rules", "director")
    if not raw:
        check.add("director.rules", 'missing (e.g. [{ when = "courseware active", show = "courseware" }, ...])')
    for i, rule in enumerate(raw):
        path = at("director.rules", i)
        if not isinstance(rule, dict):
            check.table(rule, path, expected="a table { when = ..., show = ... }")
            continue
        check.known(rule, path, {"when", "show"})
        when, show = check.text(rule, "when", path), check.text(rule, "show", path)
        try:
            watches = parse_when(when)
        except DirectorError as exc:
            check.add(join(path, "when"), str(exc))
        else:
            if watches is not None and watches not in roles:
                check.add(join(path, "when"), f"got {when!r}: {watches!r} is not a source, {expected}")
        if show not in roles:
            check.add(join(path, "show"), f"got {show!r}, {expected}")
        rules.append((when, show))
    return DirectorConfig(tuple(rules), hold_s, tuple(thresholds))


def _layout(check: Checks, config: RecordingConfig) -> None:
    """Check the layout with the compositor's own rules (the media stack is loaded: there are sources)."""
    from streaming.compose import Layout, LayoutError

    try:
        Layout(config.layout, config.sources, config.size, config.corner)
    except LayoutError as exc:
        check.add("recording.layout", str(exc))


def _size(check: Checks, rec: Mapping[str, Any]) -> tuple[int, int]:
    text = check.text(rec, "size", "recording", "1280x720")
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match or int(match.group(1)) % 2 or int(match.group(2)) % 2:
        check.add("recording.size", f"got {text!r}, expected WIDTHxHEIGHT in even numbers, e.g. 1280x720")
        return 1280, 720
    return int(match.group(1)), int(match.group(2))


def parse_upload(check: Checks, data: Mapping[str, Any], base: Path = Path(".")) -> UploadConfig | None:
    """``[upload] url, token, chunk_mib`` and ``[[upload.targets]]``; None when the section is absent.

    classroom-central's `url` and `token` may be left out when targets are given.
    """
    if "upload" not in data:
        return None
    spec = check.section(data, "upload")
    check.known(spec, "upload", {"url", "token", "chunk_mib", "targets"})
    targets = parse_targets(check, spec, base)
    url = check.text(spec, "url", "upload")
    token = check.text(spec, "token", "upload")
    central = bool(url or token or "targets" not in spec)
    if not central and not spec["targets"]:
        check.add("upload.targets", "empty, expected [[upload.targets]] (or url and token for classroom-central)")
    if central and not re.fullmatch(r"https?://[^/\s]+/?", url):
        check.add("upload.url", f"got {url!r}, expected classroom-central's address, e.g. http://central:8080")
    if central and len(token) < 16:
        check.add(
            "upload.token",
            "expected this agent's upload token (16 characters or more, registered at the centre)",
        )
    chunk = check.positive(spec, "chunk_mib", "upload", 4.0)
    if chunk > 8:
        check.add("upload.chunk_mib", f"got {chunk:g}, expected at most 8")
    return UploadConfig(url.rstrip("/") if central else "", token if central else "", min(chunk, 8.0), targets)
