"""``[[tracking]]``: auto-tracking, one table per PTZ camera that tracks (see docs/tracking.md).

Two roles.  ``teacher``: the camera follows the teacher in its own picture (``source``), inside
the zones drawn on its home preset's picture.  ``students``: the camera frames the seat group
where a student stands up, seen in a fixed panorama (``source``).  Every problem is reported at
once with the others of the site config.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.tracking.virtual import virtual_ptz
from drivers.checks import Checks, at, join, shown
from drivers.profile_model import Profile

ROLES = ("teacher", "students")
ZONE_KINDS = ("podium", "blackboard", "door")
Corners = tuple[float, float, float, float]
NEEDS = {"teacher": ("move", "stop", "preset_recall"), "students": ("preset_recall",)}
ZOOM = ("zoom_tele", "zoom_wide", "zoom_stop")

_KEYS = {
    "camera", "role", "source", "home_preset", "enabled", "fps", "zones", "seats", "dead_zone", "settle", "gain",
    "height", "zoom", "lost_after_s", "home_after_s", "board_s", "manual_pause_s", "stand_s", "sit_s", "settle_s",
    "return_after_s", "fill",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class TrackingConfig:
    """One tracking camera (each key is documented in docs/tracking.md)."""

    camera: str
    role: str
    source: str
    home_preset: int
    enabled: bool = True
    fps: float = 10.0
    zones: tuple[tuple[str, Corners], ...] = ()  # teacher: (kind, [x0, y0, x1, y1]) on the home picture
    dead_zone: float = 0.10
    settle: float = 0.04
    gain: float = 1.5
    height: float = 0.6
    zoom: bool = True
    lost_after_s: float = 1.5
    home_after_s: float = 8.0
    board_s: float = 3.0
    manual_pause_s: float = 30.0
    seats: tuple[tuple[Corners, int], ...] = ()  # students: (box on the panorama, preset)
    stand_s: float = 1.0
    sit_s: float = 1.5
    settle_s: float = 2.0
    return_after_s: float = 6.0
    fill: float = 0.15


def parse_tracking(
    check: Checks, data: Mapping[str, Any], profiles: Mapping[str, Profile], sources: Sequence[str]
) -> tuple[TrackingConfig, ...]:
    """Every ``[[tracking]]`` table; `profiles` are the cameras' by device id, `sources` the [sources] ids."""
    raw = data.get("tracking", [])
    if not isinstance(raw, list):
        check.add("tracking", f"got {type(raw).__name__}, expected [[tracking]] tables")
        return ()
    out: list[TrackingConfig] = []
    seen: set[str] = set()
    for i, spec in enumerate(raw):
        path = at("tracking", i)
        table = check.table(spec, path, _KEYS, ("camera", "role", "source", "home_preset"))
        if not table:
            continue
        config = _one(check, table, path, profiles, sources)
        if config is None:
            continue
        if config.camera in seen:
            check.add(join(path, "camera"), f"{config.camera!r} is tracked twice, expected one table per camera")
        seen.add(config.camera)
        out.append(config)
    return tuple(out)


def check_virtual(check: Checks, sources: Mapping[str, str], cameras: Mapping[str, str]) -> None:
    """``scene:NAME`` and ``ptz:CAMERA?scene=NAME`` sources name a known scene and a simulated camera.

    `sources` maps ids to URLs, `cameras` camera device ids to their addresses (only cameras whose
    simulator is the frame engine's model, which a virtual camera follows: not ONVIF's).
    """
    virtual = {i: u for i, u in sources.items() if u.startswith(("scene:", "ptz:"))}
    if not virtual:
        return
    from streaming.virtual_ptz import SCENE_EXPECTED, is_scene_name

    for source_id, url in virtual.items():
        aimed = virtual_ptz(url)
        scene = aimed[1] if aimed is not None else url.partition(":")[2]
        if not is_scene_name(scene):
            check.add(f"sources.{source_id}", f"got scene {shown(scene)}, expected {SCENE_EXPECTED}")
        if aimed is not None and cameras.get(aimed[0]) != "sim":
            expected = 'a camera in [[devices]] with address = "sim" (a virtual PTZ camera is a simulated one)'
            check.add(f"sources.{source_id}", f"got camera {aimed[0]!r}, expected {expected}")


def _one(
    check: Checks, spec: Mapping[str, Any], path: str, profiles: Mapping[str, Profile], sources: Sequence[str]
) -> TrackingConfig | None:
    camera = check.text(spec, "camera", path)
    role = check.choice(spec, "role", path, ROLES)
    source = check.text(spec, "source", path)
    if source and source not in sources:
        check.add(join(path, "source"), f"got {source!r}, expected a source declared in [sources]")
    _camera(check, path, camera, role, profiles, check.flag(spec, "zoom", path, True))
    config = TrackingConfig(
        camera=camera,
        role=role,
        source=source,
        home_preset=check.integer(spec, "home_preset", path, 1, low=0, high=255),
        enabled=check.flag(spec, "enabled", path, True),
        fps=check.number(spec, "fps", path, 10.0, above=0, high=30),
        zones=_zones(check, spec, path) if role == "teacher" else (),
        dead_zone=check.number(spec, "dead_zone", path, 0.10, above=0, high=0.45),
        settle=check.number(spec, "settle", path, 0.04, above=0, high=0.45),
        gain=check.positive(spec, "gain", path, 1.5),
        height=check.number(spec, "height", path, 0.6, above=0, high=1),
        zoom=check.flag(spec, "zoom", path, True),
        lost_after_s=check.positive(spec, "lost_after_s", path, 1.5),
        home_after_s=check.non_negative(spec, "home_after_s", path, 8.0),
        board_s=check.positive(spec, "board_s", path, 3.0),
        manual_pause_s=check.non_negative(spec, "manual_pause_s", path, 30.0),
        seats=_seats(check, spec, path) if role == "students" else (),
        stand_s=check.positive(spec, "stand_s", path, 1.0),
        sit_s=check.positive(spec, "sit_s", path, 1.5),
        settle_s=check.non_negative(spec, "settle_s", path, 2.0),
        return_after_s=check.non_negative(spec, "return_after_s", path, 6.0),
        fill=check.number(spec, "fill", path, 0.15, above=0, high=1),
    )
    if config.settle >= config.dead_zone:
        check.add(join(path, "settle"), f"got {config.settle:g}, expected less than dead_zone ({config.dead_zone:g})")
    if role == "teacher" and "seats" in spec:
        check.add(join(path, "seats"), 'only for role = "students"')
    if role == "students" and "zones" in spec:
        check.add(join(path, "zones"), 'only for role = "teacher"')
    return config if camera and role and source else None


def _camera(check: Checks, path: str, camera: str, role: str, profiles: Mapping[str, Profile], zoom: bool) -> None:
    """The camera is a configured PTZ camera whose profile has the commands the role sends."""
    if not camera:
        return
    profile = profiles.get(camera)
    if profile is None:
        check.add(join(path, "camera"), f"got {camera!r}, expected the id of a camera in [[devices]]")
        return
    missing = [c for c in NEEDS.get(role, ()) if c not in profile.commands]
    if role == "teacher" and zoom:
        missing += [c for c in ZOOM if c not in profile.commands]
    if missing:
        hint = " (or zoom = false)" if any(c in ZOOM for c in missing) else ""
        check.add(join(path, "camera"), f"{camera} ({profile.id}) cannot {', '.join(missing)}{hint}")


def _corners(check: Checks, value: object, where: str) -> Corners | None:
    """``[x0, y0, x1, y1]``: left, top, right, bottom, each from 0 to 1."""
    numbers = (
        [float(v) for v in value]
        if isinstance(value, list)
        and len(value) == 4
        and all(isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1 for v in value)
        else None
    )
    if numbers is None or not (numbers[0] < numbers[2] and numbers[1] < numbers[3]):
        check.add(where, f"got {shown(value)}, expected [x0, y0, x1, y1]: left, top, right, bottom from 0 to 1")
        return None
    return numbers[0], numbers[1], numbers[2], numbers[3]


def _zones(check: Checks, spec: Mapping[str, Any], path: str) -> tuple[tuple[str, Corners], ...]:
    """``zones = { podium = [..], blackboard = [..], door = [[..], [..]] }``: one box or a list of boxes per kind."""
    table = check.mapping(spec, "zones", path)
    out = []
    for kind, value in table.items():
        where = join(path, f"zones.{kind}")
        if kind not in ZONE_KINDS:
            check.add(where, f"unknown zone, expected {', '.join(ZONE_KINDS)}")
            continue
        boxes = value if isinstance(value, list) and value and isinstance(value[0], list) else [value]
        for j, box in enumerate(boxes):
            corners = _corners(check, box, at(where, j) if len(boxes) > 1 else where)
            if corners is not None:
                out.append((kind, corners))
    return tuple(out)


def _seats(check: Checks, spec: Mapping[str, Any], path: str) -> tuple[tuple[Corners, int], ...]:
    """``seats = [{ box = [x0, y0, x1, y1], preset = 11 }, ...]``: at least one group."""
    raw = check.array(spec, "seats", path)
    if not raw:
        check.add(join(path, "seats"), "missing (e.g. seats = [{ box = [0.1, 0.3, 0.3, 0.45], preset = 11 }])")
    out = []
    for i, item in enumerate(raw):
        where = at(join(path, "seats"), i)
        table = check.table(item, where, {"box", "preset"}, ("box", "preset"), expected="a table { box, preset }")
        if not table:
            continue
        corners = _corners(check, table.get("box"), join(where, "box")) if "box" in table else None
        preset = check.integer(table, "preset", where, -1, low=0, high=255)
        if corners is not None and preset >= 0:
            out.append((corners, preset))
    return tuple(out)
