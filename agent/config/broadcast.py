"""The site config's ``[broadcast]`` section: live pushes of the room's programme to platforms.

```
[broadcast]
layout = "pip"                  # default: [recording] layout (the same picture shares one encoder)
sources = ["teacher", "board"]  # default: [recording] sources
size = "1280x720"               # default: [recording] size
fps = 25                        # default: [recording] fps
audio = "mic"                   # default: [recording] audio (silence | tone | none | mic | mic:DEVICE | a camera)
keyframe_s = 2                  # an IDR every 2 s, what platforms ask for
bitrate_kbps = 2500             # H.264, capped (VBV, 1 s)
profile = "main"                # baseline | main | high
audio_kbps = 128                # AAC-LC
connect_s = 10                  # no connection within this: that attempt failed
stall_s = 10                    # the platform took no data for this long: reconnect
[broadcast.targets.platform]    # broadcast.start target=platform
url = "rtmp://live.example.edu.cn/live/STREAM_KEY"
[broadcast.targets.backup]
url = "srt://ingest.example.edu.cn:9000?streamid=STREAM_ID&passphrase=SECRET"
```

The URL's secrets (the RTMP stream key, SRT's streamid and passphrase) never appear in a
message, even a config error's (`streaming.target`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.config.media import RecordingConfig, SourceConfig
from agent.lesson.pictures import EXPECTED as LESSON_PICTURES
from agent.lesson.pictures import PictureRef
from agent.sources import source_kind
from drivers.checks import Checks, join
from streaming.target import PushTarget, TargetError, parse_target

_BROADCAST = {
    "layout", "sources", "size", "fps", "audio", "keyframe_s", "bitrate_kbps", "profile", "audio_kbps",
    "connect_s", "stall_s", "targets",
}  # fmt: skip
PROFILES = ("baseline", "main", "high")
AUDIO = "silence, tone, none, mic, mic:DEVICE or an rtsp source"


@dataclass(frozen=True, slots=True)
class BroadcastConfig:
    """Where the programme can be pushed, what it shows, and how it is encoded."""

    targets: Mapping[str, PushTarget]
    layout: str
    sources: tuple[str, ...]
    size: tuple[int, int] = (1280, 720)
    fps: float = 25.0
    corner: str = "bottom-right"
    audio: str = "silence"
    keyframe_s: float = 2.0
    bitrate_kbps: int = 2500
    profile: str = "main"
    audio_kbps: int = 128
    connect_s: float = 10.0
    stall_s: float = 10.0

    def __repr__(self) -> str:
        """The targets by name and redacted URL only."""
        shown = {name: target.redacted for name, target in self.targets.items()}
        return f"BroadcastConfig(targets={shown}, layout={self.layout!r}, sources={self.sources!r})"


def parse_broadcast(
    check: Checks, data: Mapping[str, Any], sources: tuple[SourceConfig, ...], recording: RecordingConfig | None
) -> BroadcastConfig | None:
    """``[broadcast]``, or None when absent; every problem goes to `check`."""
    if "broadcast" not in data:
        return None
    spec = check.section(data, "broadcast")
    check.known(spec, "broadcast", _BROADCAST)
    declared = {s.id for s in sources}
    default_roles = list(recording.sources) if recording else [s.id for s in sources][:1]
    roles = [str(r) for r in check.array(spec, "sources", "broadcast", default_roles)]
    for i, name in enumerate(roles):
        lesson_picture = "lesson" in data and PictureRef.parse(name) is not None
        if name not in declared and not lesson_picture:
            expected = LESSON_PICTURES if "lesson" in data else "a source declared in [sources]"
            check.add(f"broadcast.sources[{i}]", f"got {name!r}, expected {expected}")
    if not roles:
        check.add("broadcast.sources", "missing (declare [sources] and name them here in role order)")
    config = BroadcastConfig(
        targets=_targets(check, spec),
        layout=check.text(spec, "layout", "broadcast", recording.layout if recording else "single"),
        sources=tuple(roles),
        size=_size(check, spec, recording.size if recording else (1280, 720)),
        fps=check.number(spec, "fps", "broadcast", recording.fps if recording else 25.0, above=0, high=60),
        corner=recording.corner if recording else "bottom-right",
        audio=_audio(check, spec, sources, recording.audio if recording else "silence"),
        keyframe_s=check.number(spec, "keyframe_s", "broadcast", 2.0, above=0, high=10),
        bitrate_kbps=check.integer(spec, "bitrate_kbps", "broadcast", 2500, low=100, high=50_000),
        profile=check.choice(spec, "profile", "broadcast", PROFILES, "main"),
        audio_kbps=check.integer(spec, "audio_kbps", "broadcast", 128, low=32, high=512),
        connect_s=check.number(spec, "connect_s", "broadcast", 10.0, low=1, high=120),
        stall_s=check.number(spec, "stall_s", "broadcast", 10.0, low=1, high=120),
    )
    if roles and not any(p.startswith("broadcast.sources") for p in check.problems):
        _layout(check, config)
    if config.layout == "directed" and (recording is None or recording.director is None):
        check.add("broadcast.layout", "got 'directed', expected a [director] section with its rules")
    return config


def _targets(check: Checks, spec: Mapping[str, Any]) -> dict[str, PushTarget]:
    """``[broadcast.targets.NAME] url = ...``: at least one, each URL checked (never shown with its key)."""
    table = check.section(spec, "targets", "broadcast")
    if not table:
        check.add("broadcast.targets", 'missing (e.g. [broadcast.targets.platform] url = "rtmp://HOST/APP/KEY")')
    out = {}
    for name, target in table.items():
        path = f"broadcast.targets.{name}"
        if any(c in name for c in "/+#=, ") or not name.isprintable():
            check.add(path, "expected a name without / + # = , or spaces")
            continue
        if not isinstance(target, dict):
            check.add(path, 'expected a table with url = "rtmp://..." (or rtmps://, srt://)')
            continue
        check.known(target, path, {"url"})
        if "url" not in target:
            check.add(join(path, "url"), "missing (rtmp://HOST/APP/KEY, rtmps://... or srt://HOST:PORT?streamid=...)")
            continue
        try:
            out[name] = parse_target(target["url"])
        except TargetError as exc:
            check.add(join(path, "url"), str(exc))
    return out


def _size(check: Checks, spec: Mapping[str, Any], default: tuple[int, int]) -> tuple[int, int]:
    text = check.text(spec, "size", "broadcast", f"{default[0]}x{default[1]}")
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match or int(match.group(1)) % 2 or int(match.group(2)) % 2 or min(map(int, match.groups())) < 64:
        check.add("broadcast.size", f"got {text!r}, expected WIDTHxHEIGHT in even numbers, e.g. 1280x720")
        return default
    return int(match.group(1)), int(match.group(2))


def _audio(check: Checks, spec: Mapping[str, Any], sources: tuple[SourceConfig, ...], default: str) -> str:
    audio = check.text(spec, "audio", "broadcast", default)
    rtsp = {s.id for s in sources if source_kind(s.url) == "rtsp"}
    if audio not in ("silence", "tone", "none", "mic", *rtsp) and not audio.startswith("mic:"):
        check.add("broadcast.audio", f"got {audio!r}, expected {AUDIO}")
    return audio


def _layout(check: Checks, config: BroadcastConfig) -> None:
    """The compositor's own rules (the media stack is loaded: there are sources)."""
    from streaming.compose import Layout, LayoutError

    try:
        Layout(config.layout, config.sources, config.size, config.corner)
    except LayoutError as exc:
        check.add("broadcast.layout", str(exc))
