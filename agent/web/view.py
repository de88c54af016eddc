"""What the classroom page shows, computed from the agent's status (sans-IO: no server, no clock).

`room_layout` is fixed for the agent's lifetime (the devices, their presets, the panel's inputs);
`live_view` changes and is pushed to the page whenever it does.  Lights are green / amber / red
with a reason key the page words in the teacher's language (agent.web.text ``why_*``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from agent.config.site import SIM, DeviceConfig
from agent.timetable.model import Lesson, Timetable, plan
from drivers.profile_model import DISPLAY_KINDS

# Used when the site config names no presets for a camera: what most classrooms keep in 1..3.
DEFAULT_PRESETS: Mapping[int, str] = {1: "讲台", 2: "黑板", 3: "学生全景"}
STANDBY = frozenset({"off", "standby", "cooling"})  # cooling: a projector's lamp is already off
NETWORK_SCHEMES = frozenset({"tcp", "udp", "onvif", "http", "https"})
OFFLINE_NOUN: Mapping[str, str] = {"display": "panel", "projector": "projector", "camera": "camera"}
NEXT_LESSON_DAYS = 7


@dataclass(frozen=True, slots=True)
class Light:
    """One device or source at a glance: green / amber / red, why, and the technical detail."""

    level: str
    why: str
    detail: str = ""
    link: str = ""  # an offline device's: serial or network, which says what cable to check

    def to_dict(self) -> dict[str, str]:
        """For the page's JSON (``link`` only when there is one)."""
        out = {"level": self.level, "why": self.why, "detail": self.detail}
        return out | {"link": self.link} if self.link else out


def device_link(device: DeviceConfig) -> str:
    """``serial`` or ``network``: how the device is wired, so that an offline one names the right cable.

    A simulated device (``sim``) counts as the real one would most often be wired: by its serial
    line when its profile has one.
    """
    if device.profile.driver == "onvif":
        return "network"
    if device.address == SIM:
        return "serial" if device.profile.transport.serial is not None else "network"
    return "network" if urlsplit(device.address).scheme.lower() in NETWORK_SCHEMES else "serial"


def device_light(kind: str, state: Mapping[str, Any], link: str = "serial") -> Light:
    """A device's light from its ``DeviceState`` dict (``online``, ``state``, ``error``); `link` as `device_link`."""
    error = str(state.get("error", ""))
    if not state.get("online"):
        if not error or error == "not polled yet":
            return Light("amber", "connecting")
        return Light("red", f"{OFFLINE_NOUN.get(kind, 'device')}_offline", error, link)
    if str(state.get("state", {}).get("power", "")).lower() in STANDBY:
        return Light("amber", "standby")
    return Light("green", "ok")


def source_light(health: Mapping[str, Any]) -> Light:
    """A source's light from its health (``connected``, ``error``)."""
    if health.get("connected"):
        return Light("green", "source_ok")
    error = str(health.get("error") or "")
    return Light("red", "source_offline", error) if error else Light("amber", "source_waiting")


def camera_presets(device: DeviceConfig) -> dict[int, str]:
    """The named presets of a camera: the site config's (a ``presets`` table on the device), else the defaults."""
    return dict(device.presets or DEFAULT_PRESETS)


def panel_inputs(device: DeviceConfig) -> list[str]:
    """The input names a panel's profile can switch to (empty when it cannot, or when the device says which it has)."""
    profile = device.profile
    field = profile.fields.get("source")
    if "set_input" not in profile.commands or field is None or reports_inputs(device):
        return []
    return list(field.values)


def reports_inputs(device: DeviceConfig) -> bool:
    """Whether the device reports the inputs it has (PJLink's INST: its profile names 45, a projector has a few)."""
    return "inputs" in device.profile.fields and "source" in device.profile.fields


def input_codes(device: DeviceConfig) -> dict[str, str]:
    """A reporting device's input codes -> the names set_input takes (PJLink ``31`` -> ``digital1``)."""
    field = device.profile.fields.get("source")
    if not reports_inputs(device) or field is None:
        return {}
    return {str(code): name for name, code in field.values.items()}


def reported_inputs(state: Mapping[str, Any], codes: Mapping[str, str]) -> list[str]:
    """The inputs a device says it has (``inputs = "11 21 31"``) by name, leaving out codes it cannot switch to."""
    text = state.get("inputs")
    if not isinstance(text, str):
        return []
    return list(dict.fromkeys(codes[code] for code in text.split()[:64] if code in codes))


def room_layout(
    devices: Sequence[DeviceConfig],
    commands: Iterable[str],
    lesson: Any = None,
    *,
    recording: bool = True,
    tracking: Iterable[Any] = (),
) -> dict[str, Any]:
    """The controls the page builds once: cameras with presets, panels with inputs, what is offered.

    `lesson` is the site config's ``[lesson]`` (``trusted`` and ``remotes``: the classrooms a lesson
    may link, by agent id; ``remotes``: the default choice), None when the room has none;
    `recording`: whether the site config has ``[recording]`` (record.start is there either way).
    `tracking` are its ``[[tracking]]`` tables: each camera gets an auto-tracking switch.
    """
    names = set(commands)
    remotes = [str(x) for x in getattr(lesson, "remotes", ()) or ()]
    trusted = [str(x).rsplit("/", 1)[-1] for x in getattr(lesson, "trusted", ()) or ()]  # "site/agent" too
    cameras = [{"id": d.id, "presets": camera_presets(d)} for d in devices if d.kind == "camera"]
    panels = [
        {
            "id": d.id,
            "kind": d.kind,
            "inputs": panel_inputs(d),
            "reports_inputs": reports_inputs(d),  # the live view brings the inputs it has
            "volume": "set_volume" in d.profile.commands,
        }
        for d in devices
        if d.kind in DISPLAY_KINDS
    ]
    return {
        "cameras": cameras,
        "panels": panels,
        "kinds": {d.id: d.kind for d in devices},
        "can_record": "record.start" in names and recording,
        "can_lesson": "lesson.start" in names,
        "can_mute": "lesson.mute" in names and str(getattr(lesson, "audio", "none")) != "none",
        "candidates": list(dict.fromkeys([*trusted, *remotes])),  # as lesson.peers asks them
        "default_remotes": remotes,
        "tracking": [{"camera": t.camera, "role": t.role} for t in tracking] if "tracking.enable" in names else [],
    }


def lesson_words(lesson: Lesson, day: date, today: date) -> dict[str, Any]:
    """One timetable lesson for the page."""
    return {
        "name": lesson.name,
        "teacher": lesson.teacher,
        "start": lesson.start.strftime("%H:%M"),
        "end": lesson.end.strftime("%H:%M"),
        "day": "" if day == today else day.isoformat(),
        "in_days": (day - today).days,
        "weekday": day.isoweekday(),
        "remotes": list(getattr(lesson, "remotes", ()) or ()),
        "mode": str(getattr(lesson, "mode", "") or ""),
    }


def timetable_now(timetable: Timetable, now: datetime) -> dict[str, Any]:
    """``{"current", "next"}``: the lesson going on at ``now`` and the next one to start (None when none)."""
    local = now.astimezone(timetable.tz) if now.tzinfo else now.replace(tzinfo=timetable.tz)
    today, clock = local.date(), local.time()
    current = next((x for x in timetable.lessons_on(today) if x.start <= clock < x.end), None)
    upcoming = None
    for offset in range(NEXT_LESSON_DAYS + 1):
        day = today + timedelta(days=offset)
        found = next((x for x in timetable.lessons_on(day) if offset or x.start > clock), None)
        if found is not None:
            upcoming = lesson_words(found, day, today)
            break
    return {"current": lesson_words(current, today, today) if current else None, "next": upcoming}


def device_view(
    kind: str, state: Mapping[str, Any], link: str = "serial", codes: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """One device: its light and the state the controls show (power, input, volume, position).

    `codes` (`input_codes`) of a device that reports its inputs: ``inputs`` lists the ones it has.
    """
    values = state.get("state", {}) if state.get("online") else {}
    keep = ("power", "source", "volume", "mute", "pan", "tilt", "zoom", "preset")
    out = {
        "id": state.get("device", ""),
        "kind": kind,
        "light": device_light(kind, state, link).to_dict(),
        "state": {k: values[k] for k in keep if k in values},
    }
    return out | {"inputs": reported_inputs(values, codes)} if codes else out


def live_view(
    status: Mapping[str, Any],
    kinds: Mapping[str, str],
    timetable: Timetable,
    now: datetime,
    links: Mapping[str, str] | None = None,
    inputs: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """Everything on the page that changes: lights, recording, broadcast, lesson, timetable.

    `links` as `device_link`; `inputs` the `input_codes` of each device that reports its inputs.
    """
    sources = status.get("sources") or {}
    wired, codes = links or {}, inputs or {}

    def device(d: Mapping[str, Any]) -> dict[str, Any]:
        ident = str(d.get("device", ""))
        return device_view(kinds.get(ident, ""), d, wired.get(ident, "serial"), codes.get(ident))

    return {
        "room": status.get("room", ""),
        "agent_id": status.get("agent_id", ""),
        "devices": [device(d) for d in status.get("devices", [])],
        "sources": [{"id": i, "light": source_light(h).to_dict()} for i, h in sorted(sources.items())],
        "recording": _recording(status.get("recording")),
        "broadcast": _broadcast(status.get("broadcast")),
        "lesson": status.get("lesson") or None,
        "timetable": timetable_now(timetable, now),
        "lead": _lead(timetable, now),
        "tracking": [_tracking(t) for t in status.get("tracking") or []],
    }


def _tracking(status: Mapping[str, Any]) -> dict[str, Any]:
    """One tracking camera for the page: its switch, its state in words, whether it is paused."""
    keep = ("camera", "role", "enabled", "state", "writing", "paused_s")
    out = {k: status.get(k) for k in keep}
    out["paused_s"] = int(out.get("paused_s") or 0)  # whole seconds: the page counts down by itself
    return out


def _lead(timetable: Timetable, now: datetime) -> dict[str, Any] | None:
    """The live lesson the timetable has this room lead now (``mode``, ``remotes``): the picker's default."""
    live = plan(timetable, now).should_lead
    return live.args() if live is not None else None


def signature(view: Mapping[str, Any]) -> str:
    """What must differ for the page to be told: everything but running seconds (recording, tracking paused)."""
    recording = {**view.get("recording", {}), "seconds": None}
    tracking = [{**t, "paused_s": bool(t.get("paused_s"))} for t in view.get("tracking") or []]
    return json.dumps(
        {**view, "recording": recording, "tracking": tracking},
        sort_keys=True,
        ensure_ascii=False,
        default=str,
        allow_nan=False,
    )


def _broadcast(telemetry: Any) -> dict[str, Any]:
    """直播中: the target's name and the push's health (``live``, ``retrying``, ``connecting``) and its gaps."""
    if not isinstance(telemetry, Mapping) or not telemetry.get("active"):
        return {"active": False, "target": "", "health": "", "gaps": 0}
    health = str(telemetry.get("state", ""))
    return {"active": True, "target": str(telemetry.get("target", "")), "health": health,
            "gaps": int(telemetry.get("gaps", 0) or 0)}  # fmt: skip


def _recording(telemetry: Any) -> dict[str, Any]:
    if not isinstance(telemetry, Mapping) or not telemetry.get("active"):
        return {"active": False, "lesson": "", "seconds": 0}
    # Whole seconds: the page counts on by itself between pushes.
    return {"active": True, "lesson": str(telemetry.get("lesson", "")), "seconds": int(telemetry.get("seconds", 0))}
