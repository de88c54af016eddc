"""What tracking sees, drawn on the camera's picture: the zones (or seat groups) and the target.

The technician's view on the classroom page: the zones they drew, where the camera thinks they
are now, and the box it follows, so a wrong zone or a lost target shows at a glance.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from streaming.source import Image
from streaming.tracking.geometry import Box

COLOURS = {  # BGR
    "podium": (80, 200, 80),
    "blackboard": (40, 200, 230),
    "door": (60, 60, 230),
    "seats": (200, 160, 60),
    "standing": (40, 140, 255),
    "target": (255, 255, 255),
}


def draw_tracking(image: Image, target: Box | None, zones: Sequence[tuple[str, Box]]) -> Image:
    """A copy of `image` with `zones` (kind, box) and the `target` drawn on it (normalised boxes)."""
    out = np.ascontiguousarray(image.copy())
    height, width = out.shape[:2]
    scale = max(1, width // 320)
    for kind, box in zones:
        _rectangle(out, box, COLOURS.get(kind, (200, 200, 200)), scale)
        x, y = int(box.x * width) + 4 * scale, int(box.y * height) + 14 * scale
        cv2.putText(out, kind, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * scale, COLOURS.get(kind, (200, 200, 200)), scale)
    if target is not None:
        _rectangle(out, target, (0, 0, 0), 3 * scale)
        _rectangle(out, target, COLOURS["target"], scale)
    return out


def _rectangle(image: Image, box: Box, colour: tuple[int, int, int], thickness: int) -> None:
    height, width = image.shape[:2]
    top_left = (int(box.x * width), int(box.y * height))
    bottom_right = (int(box.right * width), int(box.bottom * height))
    cv2.rectangle(image, top_left, bottom_right, colour, thickness)
