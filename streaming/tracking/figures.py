"""People drawn for synthetic scenes: a walking, standing or writing figure and a seated student.

Proportions follow a standing adult (head about 1/7.5 of the height, legs about half), so the
figures look like people to OpenCV's HOG people detector as well as to a viewer: the tests
then exercise the same code paths real footage does.  Coordinates are pixels; a figure is
placed by its feet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from streaming.source import Image

BGR = tuple[int, int, int]
SKIN: BGR = (150, 175, 210)
HAIR: BGR = (30, 30, 35)
SHOES: BGR = (25, 25, 25)


@dataclass(frozen=True, slots=True)
class Look:
    """A person's colours (BGR)."""

    shirt: BGR = (60, 60, 170)
    trousers: BGR = (50, 40, 40)
    skin: BGR = SKIN
    hair: BGR = HAIR


@dataclass(frozen=True, slots=True)
class Pose:
    """How a figure stands: stride phase (radians), facing the camera or not, arm raised to write."""

    phase: float = 0.0
    stride: float = 0.0  # 0 standing still .. 1 a full walking stride
    back: bool = False  # facing away from the camera (writing at the board)
    writing: float = -1.0  # <0: arms down; else the writing hand's position along its stroke, 0..1


def _thick(u: float, units: float) -> int:
    return max(2, int(round(units * u)))


class _Pen:
    """Draws in figure units: 100 units is the figure's height, (0, 0) its feet, y up."""

    def __init__(self, image: Image, feet_x: float, feet_y: float, height: float) -> None:
        self.image = image
        self.fx, self.fy, self.u = feet_x, feet_y, height / 100.0

    def p(self, x: float, y: float) -> tuple[int, int]:
        return int(round(self.fx + x * self.u)), int(round(self.fy - y * self.u))

    def line(self, a: tuple[float, float], b: tuple[float, float], color: BGR, units: float) -> None:
        cv2.line(self.image, self.p(*a), self.p(*b), color, _thick(self.u, units), cv2.LINE_AA)

    def ellipse(self, centre: tuple[float, float], axes: tuple[float, float], color: BGR, arc: tuple[int, int]) -> None:
        size = (max(1, int(axes[0] * self.u)), max(1, int(axes[1] * self.u)))
        cv2.ellipse(self.image, self.p(*centre), size, 0, arc[0], arc[1], color, -1, cv2.LINE_AA)

    def poly(self, points: list[tuple[float, float]], color: BGR) -> None:
        cv2.fillConvexPoly(self.image, np.array([self.p(*q) for q in points], np.int32), color, cv2.LINE_AA)


def draw_person(image: Image, feet_x: float, feet_y: float, height: float, look: Look, pose: Pose) -> None:
    """A standing or walking person whose feet are at (`feet_x`, `feet_y`), `height` pixels tall."""
    pen = _Pen(image, feet_x, feet_y, height)
    swing = math.sin(pose.phase) * 0.38 * pose.stride
    for side, angle in ((-1, swing), (1, -swing)):
        hip_x = side * 4.0
        stance = side * 3.0 * (1.0 - pose.stride)  # standing: feet a little apart, as people stand
        foot = (hip_x + stance + 50 * math.sin(angle), 50 - 50 * math.cos(angle))
        pen.line((hip_x, 50), foot, look.trousers, 7)
        pen.ellipse((foot[0] + (0 if pose.back else 2), foot[1]), (5, 2), SHOES, (0, 360))
    pen.poly([(-11, 83), (11, 83), (8, 48), (-8, 48)], look.shirt)
    for side, angle in ((-1, -swing), (1, swing)):
        shoulder = (side * 10.0, 81.0)
        if pose.writing >= 0 and side == 1:
            # The writing hand reaches up to the board and moves along a stroke.
            hand = (18 + 10 * pose.writing, 96 + 4 * math.sin(pose.writing * 9))
        else:
            hand = (shoulder[0] + 32 * math.sin(angle * 0.8), 81 - 32 * math.cos(angle * 0.8))
        pen.line(shoulder, hand, look.shirt, 5)
        pen.ellipse(hand, (3, 3), look.skin, (0, 360))
    pen.line((0, 83), (0, 87), look.skin, 4)
    pen.ellipse((0, 93), (6, 7.5), look.hair if pose.back else look.skin, (0, 360))
    if not pose.back:
        pen.ellipse((0, 97), (6.2, 4), look.hair, (180, 360))


def draw_seated(image: Image, x: float, desk_y: float, height: float, look: Look, rise: float = 0.0) -> None:
    """A student behind a desk whose top edge is at `desk_y`; `rise` 0 seated .. 1 standing up.

    Only what shows above the desk is drawn (the desk is drawn over it by the scene).  `height` is
    the student's standing height in pixels; standing lifts the head by about a third of it.
    """
    pen = _Pen(image, x, desk_y, height)
    lift = 32.0 * max(0.0, min(1.0, rise))
    base = -4.0 + lift  # hips just below the desk top when seated
    pen.poly([(-11, base + 33), (11, base + 33), (9, base - 4), (-9, base - 4)], look.shirt)
    for side in (-1, 1):
        pen.line((side * 10.0, base + 31), (side * 13.0, base + 6), look.shirt, 5)
    pen.line((0, base + 33), (0, base + 37), look.skin, 4)
    pen.ellipse((0, base + 43), (6, 7.5), look.skin, (0, 360))
    pen.ellipse((0, base + 47), (6.2, 4), look.hair, (180, 360))


def person_box(feet_x: float, feet_y: float, height: float) -> tuple[float, float, float, float]:
    """The pixel box (x, y, w, h) `draw_person` fills, arms included."""
    width = 0.40 * height
    return feet_x - width / 2, feet_y - height * 1.02, width, height * 1.04
