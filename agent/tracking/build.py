"""From a ``[[tracking]]`` table to the sans-IO loop that decides, and presets for simulated cameras."""

from __future__ import annotations

import cv2

from agent.config.tracking import Corners, TrackingConfig
from drivers.sim.model import Simulator
from streaming.source import Image
from streaming.tracking.follow import FollowSettings, speed_ranges
from streaming.tracking.geometry import Box, Zone, Zones
from streaming.tracking.optics import PtzOptics, field_ranges
from streaming.tracking.overlay import draw_tracking
from streaming.tracking.standing import Seats, StandingSettings, StudentsLoop
from streaming.tracking.target import TrackerSettings
from streaming.tracking.teacher import TeacherLoop
from streaming.virtual_ptz import aim_presets

STUDENT_IN_VIEW = 0.6  # a standing student framed by their seat preset: this share of the picture's height
SEATS_SHOW = 0.3  # a seat box shows this share of a standing student's height (head and shoulders)


def _box(corners: Corners) -> Box:
    x0, y0, x1, y1 = corners
    return Box(x0, y0, x1 - x0, y1 - y0)


def build_loop(config: TrackingConfig, fields: dict[str, tuple[int, int]] | None = None) -> TeacherLoop | StudentsLoop:
    """The loop for one camera; `fields` are its profile's (min, max) ranges (speeds), when known."""
    if config.role == "students":
        settings = StandingSettings(fill=config.fill, stand_s=config.stand_s, sit_s=config.sit_s)
        seats = [Seats(_box(corners), preset) for corners, preset in config.seats]
        return StudentsLoop(
            seats, config.home_preset, settings, settle_s=config.settle_s, home_after_s=config.return_after_s
        )
    speeds = speed_ranges(fields or {})
    follow = FollowSettings(
        config.home_preset,
        dead_zone=config.dead_zone,
        settle=config.settle,
        gain=config.gain,
        pan_speed=speeds["pan_speed"],
        tilt_speed=speeds["tilt_speed"],
        height=config.height,
        zoom=config.zoom,
        home_after_s=config.home_after_s,
    )
    zones = Zones(tuple(Zone(kind, _box(corners)) for kind, corners in config.zones))
    tracker = TrackerSettings(lost_after_s=config.lost_after_s)
    return TeacherLoop(follow, zones, tracker, settle_s=config.settle_s, board_s=config.board_s)


def aim_simulator(config: TrackingConfig, simulator: Simulator) -> None:
    """Store the presets tracking uses in a simulated camera (a real one's are set by the technician).

    Home is the widest view of the middle of the scene; each seat group's preset frames a student
    standing there (the seat boxes are drawn on the panorama, which shows the whole scene).
    """
    optics = PtzOptics.for_profile(field_ranges(simulator.profile))
    presets = {config.home_preset: (0.5, 0.5, 1.0)}
    for corners, preset in config.seats:
        box = _box(corners)
        student = box.h / SEATS_SHOW
        magnification = max(1.0, min(optics.max_zoom, optics.wide_view / (student / STUDENT_IN_VIEW)))
        presets[preset] = (box.cx, box.y + student * 0.45, magnification)
    aim_presets(simulator, optics, presets)


def overlay(loop: TeacherLoop | StudentsLoop, image: Image) -> bytes | None:
    """The picture with what the loop sees drawn on it, as JPEG (None when it cannot be encoded)."""
    if isinstance(loop, TeacherLoop):
        placed = [(z.kind, loop.tracker.odometry.to_view(z.box)) for z in loop.zones.zones]
        zones = [(kind, box) for kind, box in placed if box is not None]
        drawn = draw_tracking(image, loop.status.box, zones)
    else:
        standing = loop.watch.standing
        seats = [("standing" if i == standing else "seats", s.box) for i, s in enumerate(loop.watch.seats)]
        drawn = draw_tracking(image, None, seats)
    ok, data = cv2.imencode(".jpg", drawn, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return bytes(data) if ok else None
