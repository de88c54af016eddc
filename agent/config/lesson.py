"""The site config's ``[lesson]`` section: live lessons (专递课堂, 双师) over WebRTC.

```
[lesson]
trusted = ["room-main"]             # agents whose offers this room answers ("site/agent" for another school)
send = ["teacher", "courseware"]    # what this room sends when it leads a lesson
answer_with = ["students"]          # what it sends back when it is a remote classroom
remotes = ["room-remote"]           # lesson.start's default remote classrooms
audio = "tone:440"                  # tone[:HZ], mic, mic:DEVICE, an rtsp source id, or none
ice_host_addresses = ["127.0.0.1"]  # the addresses ICE offers (school PCs have several NICs)
ice_transport_policy = "all"        # "relay": media only through the TURN server (behind NAT, direct paths blocked)
[[lesson.ice_servers]]              # STUN/TURN (coturn); aiortc uses the first STUN and the first TURN server
urls = ["turn:turn.school.example:3478"]
username = "agent"
credential = "..."
[lesson.video.camera]               # every camera; [lesson.video.courseware] the screen; [lesson.video.<id>] one source
size = "1280x720"
fps = 30
bitrate_kbps = 2000
[lesson.sites]                      # rooms of another school: signalling from that name elsewhere is ignored
room-201 = "school-b"
[lesson.adapt]                      # a busy PC: encoders step down instead of freezing (these are the defaults)
enabled = true
down_load = 0.8                     # median encode time / frame period over 1 s that calls for a step down
up_load = 0.5                       # below this for up_after_s: step back up
up_after_s = 10
min_fps = 5                         # never below this frame rate
min_height = 180                    # nor below this picture height
```

With ``sfu = "http://HOST:8088/janus"`` (Janus's HTTP API) the leading room publishes each source
once to that SFU and its remote classrooms pull from it (``sfu_room``: the VideoRoom number,
else one derived from the lesson id; ``sfu_min_remotes``: only for lessons with at least that
many remote classrooms; ``sfu_timeout_s``: the deadline of each request to Janus).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.config.media import SourceConfig
from contract.rtc import SFU_ROOM_MAX, sfu_url_ok
from drivers.checks import Checks, at, join
from streaming.adapt import AdaptRules

_LESSON = {
    "trusted", "send", "answer_with", "remotes", "audio", "ice_host_addresses", "ice_servers", "ice_transport_policy",
    "video", "sites", "adapt",
    "offer_timeout_s", "keyframe_after_s", "renegotiate_after_s", "loss_alarm", "rtt_alarm_ms", "degraded_after_s",
    "sfu", "sfu_room", "sfu_min_remotes", "sfu_timeout_s",
}  # fmt: skip
_VIDEO = {"size", "fps", "bitrate_kbps"}
ICE_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")
ICE_TRANSPORT_POLICIES = ("all", "relay")


@dataclass(frozen=True, slots=True)
class VideoSettings:
    """How one outgoing source is encoded: picture size, frame rate, bitrate."""

    size: tuple[int, int]
    fps: float
    bitrate_kbps: int

    def to_dict(self) -> dict[str, Any]:
        """For status and logs."""
        return {"size": f"{self.size[0]}x{self.size[1]}", "fps": self.fps, "bitrate_kbps": self.bitrate_kbps}


# Cameras at 720p30; the courseware screen sharp (text legible) at a low frame rate.
CAMERA = VideoSettings((1280, 720), 30.0, 2000)
COURSEWARE = VideoSettings((1920, 1080), 5.0, 3000)


@dataclass(frozen=True, slots=True)
class IceServerConfig:
    """One STUN or TURN server."""

    urls: tuple[str, ...]
    username: str = ""
    credential: str = ""


@dataclass(frozen=True, slots=True)
class LessonConfig:
    """``[lesson]``: who this room trusts, what it sends, how ICE finds a path, when a link is bad."""

    trusted: tuple[str, ...] = ()
    send: tuple[str, ...] = ()
    answer_with: tuple[str, ...] = ()
    remotes: tuple[str, ...] = ()
    audio: str = "none"
    ice_host_addresses: tuple[str, ...] = ()
    ice_servers: tuple[IceServerConfig, ...] = ()
    ice_transport_policy: str = "all"  # "relay": offer only the TURN server's relay address
    video: Mapping[str, VideoSettings] = field(default_factory=dict)  # "camera", "courseware" or a source id
    sites: Mapping[str, str] = field(default_factory=dict)  # agent id -> its site, when not ours
    offer_timeout_s: float = 10.0
    keyframe_after_s: float = 2.0
    renegotiate_after_s: float = 6.0
    loss_alarm: float = 0.05
    rtt_alarm_ms: float = 400.0
    degraded_after_s: float = 5.0
    sfu: str = ""  # Janus's HTTP API root: publish once to it, remotes pull from it ("" = peer to peer only)
    sfu_room: int = 0  # the VideoRoom number (0: derived from the lesson id)
    sfu_min_remotes: int = 1  # go through the SFU only for lessons with at least this many remote classrooms
    sfu_timeout_s: float = 10.0
    adapt: AdaptRules = AdaptRules()  # how encoders degrade on a busy PC

    def video_for(self, source_id: str, kind: str) -> VideoSettings:
        """A source's settings: its own, else its class's (the screen or ``courseware`` is sharp)."""
        if source_id in self.video:
            return self.video[source_id]
        sharp = kind == "screen" or source_id == "courseware"
        return self.video.get("courseware", COURSEWARE) if sharp else self.video.get("camera", CAMERA)

    def trusts(self, site: str, agent: str) -> bool:
        """Whether an offer from `agent` of `site` is answered."""
        return trusts(self.trusted, site, agent)


def trusts(trusted: tuple[str, ...], site: str, agent: str) -> bool:
    """The rule of ``lesson.trusted``: an entry names an agent id (any site) or ``site/agent``."""
    return agent in trusted or f"{site}/{agent}" in trusted


def parse_lesson(check: Checks, data: Mapping[str, Any], sources: tuple[SourceConfig, ...]) -> LessonConfig | None:
    """``[lesson]``, or None when absent (then the media stack is never loaded for lessons)."""
    if "lesson" not in data:
        return None
    spec = check.section(data, "lesson")
    check.known(spec, "lesson", _LESSON)
    declared = {s.id: s.kind for s in sources}
    lists = {k: _names(check, spec, k) for k in ("trusted", "send", "answer_with", "remotes")}
    for key in ("send", "answer_with"):
        for i, name in enumerate(lists[key]):
            if name not in declared:
                check.add(at(f"lesson.{key}", i), f"got {name!r}, expected a source declared in [sources]")
    numbers: dict[str, Any] = {k: check.positive(spec, k, "lesson", v) for k, v in _NUMBERS.items()}
    config = LessonConfig(
        trusted=lists["trusted"],
        send=lists["send"],
        answer_with=lists["answer_with"],
        remotes=lists["remotes"],
        audio=_audio(check, spec, declared),
        ice_host_addresses=_addresses(check, spec),
        ice_servers=_ice_servers(check, spec),
        ice_transport_policy=check.text(spec, "ice_transport_policy", "lesson", "all"),
        video=_video(check, spec, declared),
        sites=_sites(check, spec),
        adapt=_adapt(check, spec),
        **numbers,
        **_sfu(check, spec),
    )
    _check_policy(check, config)
    if config.renegotiate_after_s <= config.keyframe_after_s:
        check.add("lesson.renegotiate_after_s", "expected more than keyframe_after_s (a keyframe request comes first)")
    return config


_NUMBERS = {
    "offer_timeout_s": 10.0,
    "keyframe_after_s": 2.0,
    "renegotiate_after_s": 6.0,
    "loss_alarm": 0.05,
    "rtt_alarm_ms": 400.0,
    "degraded_after_s": 5.0,
}


def _adapt(check: Checks, spec: Mapping[str, Any]) -> AdaptRules:
    """``[lesson.adapt]``: the thresholds of `streaming.adapt`, each checked."""
    data = check.section(spec, "adapt", "lesson")
    path = "lesson.adapt"
    check.known(data, path, {"enabled", "down_load", "up_load", "up_after_s", "min_fps", "min_height"})
    base = AdaptRules()
    down = check.number(data, "down_load", path, base.down_load, above=0, high=4, expected="a number in (0, 4]")
    up = check.number(data, "up_load", path, base.up_load, above=0, high=4, expected="a number in (0, 4]")
    if up >= down:
        check.add(f"{path}.up_load", f"got {up}, expected less than down_load ({down})")
    return AdaptRules(
        enabled=check.flag(data, "enabled", path, True),
        down_load=down,
        up_load=up,
        up_after_s=check.positive(data, "up_after_s", path, base.up_after_s),
        min_fps=check.number(data, "min_fps", path, base.min_fps, low=1, high=60, expected="1..60"),
        min_height=check.integer(data, "min_height", path, base.min_height, low=16, high=2160),
    )


def _names(check: Checks, spec: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = check.array(spec, key, "lesson")
    out = []
    for i, name in enumerate(value):
        if not isinstance(name, str) or not name or any(c in name for c in "+#"):
            check.add(at(f"lesson.{key}", i), f"got {name!r}, expected a name without + #")
        else:
            out.append(name)
    return tuple(out)


def _audio(check: Checks, spec: Mapping[str, Any], declared: Mapping[str, str]) -> str:
    audio = check.text(spec, "audio", "lesson", "none")
    rtsp = {i for i, kind in declared.items() if kind == "rtsp"}
    if audio in declared and audio not in rtsp:
        check.add("lesson.audio", f"got {audio!r}, expected an rtsp source (only cameras carry sound)")
    elif audio in ("none", "mic", *rtsp) or audio.startswith("mic:") or re.fullmatch(r"tone(:\d+(\.\d+)?)?", audio):
        return str(audio)
    else:
        check.add("lesson.audio", f"got {audio!r}, expected tone, tone:HZ, mic, mic:DEVICE, none or an rtsp source")
    return "none"


def _addresses(check: Checks, spec: Mapping[str, Any]) -> tuple[str, ...]:
    out = []
    for i, text in enumerate(check.array(spec, "ice_host_addresses", "lesson")):
        try:
            out.append(str(ipaddress.ip_address(text)))
        except ValueError:
            check.add(at("lesson.ice_host_addresses", i), f"got {text!r}, expected an IP address of this PC")
    return tuple(out)


def _ice_servers(check: Checks, spec: Mapping[str, Any]) -> tuple[IceServerConfig, ...]:
    out = []
    for i, server in enumerate(check.array(spec, "ice_servers", "lesson")):
        path = at("lesson.ice_servers", i)
        if not isinstance(server, dict):
            # Not echoed like other values: a TURN URL typed here may carry a credential.
            check.add(path, f"got a {type(server).__name__}, expected a table [[lesson.ice_servers]]")
            continue
        check.known(server, path, {"urls", "username", "credential"})
        urls = server.get("urls", [])
        urls = [urls] if isinstance(urls, str) else urls
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
            expected = "stun:HOST[:PORT] or turn:HOST[:PORT] URLs"
            check.add(join(path, "urls"), f"got {server.get('urls')!r}, expected {expected}")
            continue
        for url in urls:
            if not url.startswith(ICE_SCHEMES):
                check.add(join(path, "urls"), f"got {url!r}, expected a stun:, stuns:, turn: or turns: URL")
        username = check.text(server, "username", path)
        credential = check.text(server, "credential", path)
        if any(u.startswith(("turn:", "turns:")) for u in urls) and not (username and credential):
            check.add(path, "a TURN server needs username and credential")
        out.append(IceServerConfig(tuple(urls), username, credential))
    return tuple(out)


def _check_policy(check: Checks, config: LessonConfig) -> None:
    """``ice_transport_policy``: all or relay, and relay only with a TURN server to relay through."""
    policy = config.ice_transport_policy
    if policy not in ICE_TRANSPORT_POLICIES:
        check.add("lesson.ice_transport_policy", f'got {policy!r}, expected "all" or "relay"')
    turn = any(u.startswith(("turn:", "turns:")) for s in config.ice_servers for u in s.urls)
    if policy == "relay" and not turn:
        check.add(
            "lesson.ice_transport_policy",
            'got "relay" without a TURN server: add a [[lesson.ice_servers]] with a turn: URL, username and credential',
        )


def _video(check: Checks, spec: Mapping[str, Any], declared: Mapping[str, str]) -> dict[str, VideoSettings]:
    out = {}
    for name, table in check.section(spec, "video").items():
        path = f"lesson.video.{name}"
        if name not in ("camera", "courseware", *declared):
            check.add(f"lesson.video.{name}", "expected camera, courseware or a source declared in [sources]")
            continue
        if not isinstance(table, dict):
            check.table(table, path, expected="a table { size, fps, bitrate_kbps }")
            continue
        check.known(table, path, _VIDEO)
        base = COURSEWARE if name == "courseware" or declared.get(name) == "screen" else CAMERA
        out[name] = VideoSettings(
            _size(check, table, path, base.size),
            check.positive(table, "fps", path, base.fps),
            int(check.positive(table, "bitrate_kbps", path, base.bitrate_kbps)),
        )
    return out


def _size(check: Checks, table: Mapping[str, Any], path: str, default: tuple[int, int]) -> tuple[int, int]:
    if "size" not in table:
        return default
    text = check.text(table, "size", path)
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match or int(match.group(1)) % 2 or int(match.group(2)) % 2 or int(match.group(1)) < 16:
        check.add(join(path, "size"), f"got {text!r}, expected WIDTHxHEIGHT in even numbers, e.g. 1280x720")
        return default
    return int(match.group(1)), int(match.group(2))


def _sites(check: Checks, spec: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for agent, site in check.section(spec, "sites").items():
        if not isinstance(site, str) or not site or any(c in site for c in "/+#"):
            check.add(f"lesson.sites.{agent}", f"got {site!r}, expected the agent's site name")
        else:
            out[agent] = site
    return out


def _sfu(check: Checks, spec: Mapping[str, Any]) -> dict[str, Any]:  # keys of LessonConfig
    """``sfu``, ``sfu_room``, ``sfu_min_remotes``, ``sfu_timeout_s``."""
    url = check.text(spec, "sfu", "lesson")
    if url and not sfu_url_ok(url):
        check.add("lesson.sfu", f"got {url!r}, expected Janus's HTTP API, e.g. http://sfu.school.lan:8088/janus")
        url = ""
    for key in ("sfu_room", "sfu_min_remotes", "sfu_timeout_s"):
        if key in spec and "sfu" not in spec:
            check.add(f"lesson.{key}", "set without lesson.sfu (the SFU's URL)")
    rooms = f"a VideoRoom number 1..{SFU_ROOM_MAX}"
    room = check.integer(spec, "sfu_room", "lesson", 0, low=1, high=SFU_ROOM_MAX, expected=rooms)
    remotes = "a number of remote classrooms, at least 1"
    least = check.integer(spec, "sfu_min_remotes", "lesson", 1, low=1, expected=remotes)
    timeout = check.positive(spec, "sfu_timeout_s", "lesson", 10.0)
    return {"sfu": url, "sfu_room": room, "sfu_min_remotes": least, "sfu_timeout_s": timeout}
