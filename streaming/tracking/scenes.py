"""Synthetic classrooms the project renders: the front of the room with a teacher, the students' rows.

A scene is a wide picture as a function of time plus the truth about it (where the teacher or
the standing student is, normalised to the wide picture), so a test or a benchmark can measure
what a tracker made of it.  Every scene is drawn from a seed: the same seed gives the same
pictures, with a little sensor noise and, in the empty room, a flickering light.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from streaming.source import Image
from streaming.tracking.figures import Look, Pose, draw_person, draw_seated, person_box
from streaming.tracking.geometry import Box, Zone, Zones

WIDE = (1280, 720)
FEET_Y = 0.80  # the teacher's feet on the podium, as a fraction of the picture's height
TEACHER_H = 0.30  # the teacher's height, as a fraction of the picture's height (1.7 m)
NOISE_FRAMES = 6


class Scene(Protocol):
    """A wide picture over time and the truth about its target."""

    size: tuple[int, int]
    duration: float

    def render(self, t: float) -> Image:
        """The wide picture at `t` seconds (a new array)."""
        ...

    def truth(self, t: float) -> Box | None:
        """The target's box at `t`, normalised to the wide picture (None: no target in the room)."""
        ...


@dataclass(frozen=True, slots=True)
class Step:
    """Until `until` seconds: walk to `x`, stand, write at the board, or be out of the room."""

    until: float
    x: float
    mode: str = "walk"  # walk | stand | write | out


# The front of the room (normalised): where the board, the door and the teacher's desk are drawn.
BOARD = Box(0.22, 0.40, 0.40, 0.24)
DOOR = Box(0.77, 0.38, 0.09, 0.38)
DESK = Box(0.63, 0.66, 0.10, 0.18)
FRONT_ZONES = Zones(
    (
        Zone("podium", Box(0.03, 0.35, 0.73, 0.60)),
        Zone("blackboard", Box(0.22, 0.35, 0.40, 0.60)),
        Zone("door", Box(0.76, 0.35, 0.12, 0.60)),
    )
)

PODIUM_WALK = (
    Step(4, 0.45, "stand"), Step(10, 0.20), Step(13, 0.20, "stand"), Step(21, 0.74), Step(26, 0.74, "stand"),
    Step(30, 0.40), Step(38, 0.40, "write"), Step(44, 0.67), Step(50, 0.67, "stand"), Step(60, 0.45),
)  # fmt: skip
LEAVE_AND_RETURN = (
    Step(5, 0.50, "stand"), Step(13, 0.82), Step(23, 0.82, "out"), Step(30, 0.55), Step(40, 0.55, "stand"),
)  # fmt: skip
STANDING_STILL = (Step(1, 0.36, "stand"), Step(5, 0.52), Step(95, 0.52, "stand"))  # walks in, then stands
EMPTY = (Step(60, 0.5, "out"),)


def _noise_bank(size: tuple[int, int], seed: int, sigma: float = 2.5) -> list[tuple[Image, Image]]:
    """A few frames of sensor noise as (add, subtract) pairs, cycled so that noise costs little per frame."""
    rng = np.random.default_rng(seed)
    bank = []
    for _ in range(NOISE_FRAMES):
        noise = rng.normal(0.0, sigma, (size[1], size[0], 1)).repeat(3, axis=2)
        bank.append((np.clip(noise, 0, 255).astype(np.uint8), np.clip(-noise, 0, 255).astype(np.uint8)))
    return bank


def _texture(image: Image, rng: np.random.Generator, strength: float) -> None:
    """Plaster blotches and fine speckle: corners and texture a camera-motion estimate can hold on to."""
    h, w = image.shape[:2]
    coarse = cv2.resize(rng.normal(0, 1, (max(2, h // 24), max(2, w // 24))).astype(np.float32), (w, h))
    fine = cv2.resize(rng.normal(0, 1, (max(2, h // 3), max(2, w // 3))).astype(np.float32), (w, h))
    field = strength * coarse + 0.8 * strength * fine
    image[:] = np.clip(image.astype(np.float32) + field[..., None], 0, 255).astype(np.uint8)


def _front_room(size: tuple[int, int], seed: int) -> Image:
    """The front wall seen from the back of the room: board, door, window, posters, clock, floor."""
    w, h = size
    rng = np.random.default_rng(seed)
    room = np.empty((h, w, 3), np.uint8)
    room[:] = (188, 204, 214)
    floor_y = int(0.74 * h)
    room[floor_y:] = (105, 118, 128)
    room[: int(0.12 * h)] = (215, 220, 222)  # ceiling
    _texture(room, rng, 9.0)

    def rect(box: Box, color: tuple[int, int, int], border: int = 0, edge: tuple[int, int, int] = (60, 60, 60)) -> None:
        p0, p1 = (int(box.x * w), int(box.y * h)), (int(box.right * w), int(box.bottom * h))
        cv2.rectangle(room, p0, p1, color, -1)
        if border:
            cv2.rectangle(room, p0, p1, edge, border)

    for tile in range(0, w, max(8, w // 14)):  # floor tiles
        cv2.line(room, (tile, floor_y), (int(w / 2 + (tile - w / 2) * 1.6), h), (90, 100, 110), 1, cv2.LINE_AA)
    for y in (0.78, 0.85, 0.94):
        cv2.line(room, (0, int(y * h)), (w, int(y * h)), (92, 102, 112), 1, cv2.LINE_AA)
    for x in np.arange(0.08, 1.0, 0.16):  # ceiling lights
        rect(Box(float(x), 0.03, 0.08, 0.025), (245, 250, 250), 2, (150, 150, 150))
    rect(Box(0.0, 0.66, 1.0, 0.08), (150, 170, 180))  # wainscot panels
    rect(Box(0.90, 0.30, 0.08, 0.26), (225, 205, 170), 6, (235, 235, 235))  # a second window
    for x in np.arange(0.0, 1.0, 0.05):
        cv2.line(room, (int(x * w), int(0.66 * h)), (int(x * w), floor_y), (120, 135, 145), 2)
    rect(Box(0.30, 0.18, 0.24, 0.08), (40, 40, 190))  # a red banner with gold characters
    for k in range(8):
        cx, cy = int((0.32 + 0.028 * k) * w), int(0.22 * h)
        cv2.rectangle(room, (cx - w // 120, cy - h // 40), (cx + w // 120, cy + h // 40), (60, 200, 230), 2)
    rect(BOARD, (45, 75, 42), 6, (60, 90, 120))
    for _ in range(16):  # chalk
        x0 = BOARD.x + rng.uniform(0.02, 0.32)
        y0 = BOARD.y + rng.uniform(0.02, 0.21)
        x1 = x0 + rng.uniform(0.02, 0.06)
        cv2.line(room, (int(x0 * w), int(y0 * h)), (int(x1 * w), int(y0 * h)), (215, 220, 220), 2)
    rect(DOOR, (50, 80, 125), 5, (40, 50, 70))
    rect(Box(DOOR.x + 0.02, DOOR.y + 0.04, 0.06, 0.10), (150, 140, 120), 2, (40, 50, 70))
    cv2.circle(room, (int((DOOR.x + 0.015) * w), int((DOOR.y + 0.20) * h)), max(2, w // 200), (30, 190, 220), -1)
    rect(Box(0.03, 0.30, 0.13, 0.26), (225, 205, 170), 6, (235, 235, 235))
    cv2.line(room, (int(0.095 * w), int(0.30 * h)), (int(0.095 * w), int(0.56 * h)), (235, 235, 235), 4)
    for i, color in enumerate(((70, 140, 220), (160, 90, 60), (80, 170, 90))):
        poster = Box(0.64 + 0.045 * i, 0.42 + 0.03 * (i % 2), 0.035, 0.10)
        rect(poster, color, 2, (40, 40, 40))
        for k in range(4):
            y = int((poster.y + 0.02 + 0.022 * k) * h)
            cv2.line(room, (int((poster.x + 0.006) * w), y), (int((poster.right - 0.006) * w), y), (240, 240, 240), 1)
    radius = max(4, h // 36)
    cv2.circle(room, (int(0.42 * w), int(0.33 * h)), radius, (235, 235, 235), -1)
    cv2.circle(room, (int(0.42 * w), int(0.33 * h)), radius, (40, 40, 40), 2)
    cv2.line(room, (int(0.42 * w), int(0.33 * h)), (int(0.42 * w), int(0.33 * h) - radius + 3), (40, 40, 40), 2)
    return room


def _at(steps: Sequence[Step], t: float) -> tuple[float, str, float]:
    """(x, mode, metres walked so far) at `t` on a path that starts at the first step's x."""
    start_t, x, walked = 0.0, steps[0].x, 0.0
    for step in steps:
        if t < step.until:
            if step.mode == "walk":
                share = (t - start_t) / max(1e-6, step.until - start_t)
                return x + (step.x - x) * share, "walk", walked + abs(step.x - x) * share
            return step.x, step.mode, walked
        if step.mode == "walk":
            walked += abs(step.x - x)
        start_t, x = step.until, step.x
    return x, steps[-1].mode, walked


class FrontScene:
    """The front of a classroom in a wide shot, with a teacher who follows `steps` (looped)."""

    def __init__(
        self, steps: Sequence[Step] = PODIUM_WALK, size: tuple[int, int] = WIDE, *, seed: int = 16, flicker: float = 0.0
    ) -> None:
        """`flicker` is the light's brightness swing (0.04: ±4 %, a fluorescent tube or passing clouds)."""
        if not steps:
            raise ValueError("a scene needs at least one step")
        self.steps = tuple(steps)
        self.size = size
        self.duration = self.steps[-1].until
        self.flicker = flicker
        self.zones = FRONT_ZONES
        self.look = Look(shirt=(70, 60, 165), trousers=(55, 45, 40))
        self._room = _front_room(size, seed)
        self._noise = _noise_bank(size, seed + 1)

    def _where(self, t: float) -> tuple[float, str, float]:
        return _at(self.steps, t % self.duration if self.duration > 0 else 0.0)

    def truth(self, t: float) -> Box | None:
        """The teacher's box (None while out of the room)."""
        x, mode, _ = self._where(t)
        if mode == "out":
            return None
        w, h = self.size
        bx, by, bw, bh = person_box(x * w, FEET_Y * h, TEACHER_H * h)
        return Box(bx / w, by / h, bw / w, bh / h)

    def render(self, t: float) -> Image:
        """The room at `t` with the teacher, the desk in front, noise and flicker."""
        w, h = self.size
        image = self._room.copy()
        x, mode, walked = self._where(t)
        height = TEACHER_H * h
        if mode != "out":
            stride = 1.0 if mode == "walk" else 0.0
            sway = 0.0 if mode == "walk" else 0.004 * math.sin(t * 1.3)  # weight shifts while standing
            writing = (t * 0.7) % 1.0 if mode == "write" else -1.0
            phase = 2 * math.pi * walked * w / (0.55 * height)
            pose = Pose(phase=phase, stride=stride, back=mode == "write", writing=writing)
            draw_person(image, (x + sway) * w, FEET_Y * h, height, self.look, pose)
        left, top, right = int(DESK.x * w), int(DESK.y * h), int(DESK.right * w)
        cv2.rectangle(image, (left, top), (right, int(DESK.bottom * h)), (40, 70, 110), -1)
        cv2.rectangle(image, (left, top), (right, int((DESK.y + 0.02) * h)), (30, 50, 80), -1)
        return _finish(image, t, self._noise, self.flicker)


def _finish(image: Image, t: float, noise: list[tuple[Image, Image]], flicker: float) -> Image:
    add, sub = noise[int(t * 30) % len(noise)]
    image = np.asarray(cv2.subtract(cv2.add(image, add), sub), np.uint8)
    if flicker:
        gain = 1.0 + flicker * math.sin(2 * math.pi * t / 7.0) * (0.6 + 0.4 * math.sin(2 * math.pi * t / 2.3))
        image = np.asarray(cv2.convertScaleAbs(image, alpha=gain), np.uint8)
    return image


@dataclass(frozen=True, slots=True)
class Stand:
    """Student `seat` (row, column) stands from `start` to `end` seconds."""

    seat: tuple[int, int]
    start: float
    end: float


ROWS, COLUMNS = 3, 6
STUDENTS_STAND = (Stand((0, 1), 10.0, 18.0), Stand((1, 4), 30.0, 37.0), Stand((2, 2), 48.0, 54.0))


class StudentsScene:
    """The students' rows seen from the front (the students' panorama), some standing up in turn.

    With `seated` false the room is empty (desks only).  Seated students fidget a little, which a
    standing detector must not take for someone standing.
    """

    def __init__(
        self,
        stands: Sequence[Stand] = STUDENTS_STAND,
        size: tuple[int, int] = WIDE,
        *,
        seed: int = 26,
        seated: bool = True,
        flicker: float = 0.0,
        duration: float = 60.0,
    ) -> None:
        """Everything is drawn from `seed`."""
        self.stands = tuple(stands)
        self.size = size
        self.duration = duration
        self.seated = seated
        self.flicker = flicker
        rng = np.random.default_rng(seed)
        palette = [(60, 60, 170), (150, 90, 40), (60, 140, 60), (40, 40, 40), (170, 170, 190), (90, 60, 120)]
        self.looks = {
            (r, c): Look(shirt=palette[int(rng.integers(len(palette)))]) for r in range(ROWS) for c in range(COLUMNS)
        }
        self._phase = {seat: float(rng.uniform(0, 6.28)) for seat in self.looks}
        self._room = self._draw_room(rng)
        self._noise = _noise_bank(size, seed + 1)

    def seat_xy(self, seat: tuple[int, int]) -> tuple[float, float, float]:
        """Normalised (x, desk top y, standing height) of a seat; the front row is the nearest, lowest, largest."""
        row, column = seat
        scale = 1.0 - 0.18 * row
        x = 0.5 + (column - (COLUMNS - 1) / 2) * 0.15 * scale
        return x, 0.86 - 0.17 * row, 0.55 * scale

    def standing_box(self, seat: tuple[int, int]) -> Box:
        """Where the head and shoulders of a student standing at `seat` show (normalised)."""
        x, desk_y, height = self.seat_xy(seat)
        unit_x, unit_y = height * self.size[1] / self.size[0] / 100, height / 100
        return Box(x - 13 * unit_x, desk_y - 80 * unit_y, 26 * unit_x, 30 * unit_y)

    def _draw_room(self, rng: np.random.Generator) -> Image:
        w, h = self.size
        room = np.empty((h, w, 3), np.uint8)
        room[:] = (196, 206, 200)
        _texture(room, rng, 9.0)
        cv2.rectangle(room, (int(0.05 * w), int(0.08 * h)), (int(0.2 * w), int(0.3 * h)), (225, 205, 170), -1)
        cv2.rectangle(room, (int(0.8 * w), int(0.08 * h)), (int(0.95 * w), int(0.3 * h)), (225, 205, 170), -1)
        cv2.rectangle(room, (int(0.4 * w), int(0.06 * h)), (int(0.6 * w), int(0.22 * h)), (70, 110, 60), -1)
        return room

    def rise(self, seat: tuple[int, int], t: float) -> float:
        """How far student `seat` has stood up at `t`: 0 seated, 1 standing (a second to get up)."""
        for stand in self.stands:
            if stand.seat == seat and stand.start <= t < stand.end + 1.0:
                return max(0.0, min(1.0, t - stand.start, stand.end + 1.0 - t))
        return 0.0

    def truth(self, t: float) -> Box | None:
        """The standing student's box (None while everyone sits)."""
        t = t % self.duration
        for stand in self.stands:
            if self.seated and stand.start + 1.0 <= t < stand.end:
                x, desk_y, height = self.seat_xy(stand.seat)
                return Box(x - 0.2 * height * 9 / 16, desk_y - 0.62 * height, 0.4 * height * 9 / 16, 0.62 * height)
        return None

    def render(self, t: float) -> Image:
        """The rows at `t`: back row first so that nearer desks cover farther students."""
        t = t % self.duration
        w, h = self.size
        image = self._room.copy()
        for row in reversed(range(ROWS)):
            for column in range(COLUMNS):
                seat = (row, column)
                x, desk_y, height = self.seat_xy(seat)
                if self.seated:
                    fidget = 0.002 * math.sin(t * 0.9 + self._phase[seat])
                    draw_seated(image, (x + fidget) * w, desk_y * h, height * h, self.looks[seat], self.rise(seat, t))
                half = 0.065 * (1.0 - 0.18 * row)
                top, bottom = int(desk_y * h), int((desk_y + 0.09) * h)
                cv2.rectangle(image, (int((x - half) * w), top), (int((x + half) * w), bottom), (60, 95, 140), -1)
        return _finish(image, t, self._noise, self.flicker)
