"""Blackboard writing: the teacher in the blackboard zone, turned to the board, for a few seconds.

Turned away is read from the head: a face shows skin, the back of a head shows hair.  In the top
of the teacher's box, skin-coloured pixels (YCrCb, the usual skin range) mean a face; dark ones
and next to no skin mean the back of a head; neither means the box is not on a head, and counts
as not turned.  The cue goes on after `board_s` seconds of both and off after
`release_s` seconds without either, so a glance at the board or a step aside does not cut.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from streaming.source import Image
from streaming.tracking.geometry import Box, Zones

SKIN_LOW = np.array([60, 140, 85], np.uint8)  # Y, Cr, Cb (Cr from 140: a beige wall is not skin)
SKIN_HIGH = np.array([255, 170, 135], np.uint8)
FACING_SKIN = 0.12  # a face: at least this share of the head region is skin
TURNED_SKIN = 0.08  # the back of a head: less skin than this (a neck, an ear) ...
HAIR = 0.12  # ... and at least this share dark (hair) ...
HAIR_Y = 60  # ... darker than this (luma)


def facing_away(image: Image, box: Box) -> bool | None:
    """Whether the person in `box` (normalised to `image`) shows the back of their head.

    None when the top of the box shows neither a face nor dark hair (the box is off the head, or
    too small to tell): nothing is concluded from it.
    """
    height, width = image.shape[:2]
    head = Box(box.x + box.w * 0.25, box.y, box.w * 0.5, box.h * 0.22).scaled(width, height).clipped(width, height)
    if head.w < 3 or head.h < 3:
        return None
    part = image[int(head.y) : int(head.bottom), int(head.x) : int(head.right)]
    ycrcb = cv2.cvtColor(part, cv2.COLOR_BGR2YCrCb)
    skin = float(np.count_nonzero(cv2.inRange(ycrcb, SKIN_LOW, SKIN_HIGH))) / (part.shape[0] * part.shape[1])
    hair = float(np.count_nonzero(ycrcb[:, :, 0] < HAIR_Y)) / (part.shape[0] * part.shape[1])
    if skin >= FACING_SKIN:
        return False
    if hair >= HAIR and skin < TURNED_SKIN:
        return True
    return None


@dataclass
class BoardWatch:
    """Says when the teacher writes at the board (see the module's docstring)."""

    zones: Zones
    board_s: float = 3.0
    release_s: float = 2.0
    writing: bool = False
    _since: float | None = None
    _away_since: float | None = None

    def feed(self, home_box: Box | None, turned: bool | None, now: float) -> bool:
        """One frame: the teacher's box on the home picture (None: unknown) and whether they face away."""
        at_board = (
            home_box is not None
            and bool(self.zones.of("blackboard"))
            and self.zones.inside("blackboard", home_box.cx, home_box.bottom)
            and turned is True
        )
        if at_board:
            self._away_since = None
            self._since = now if self._since is None else self._since
            if now - self._since >= self.board_s:
                self.writing = True
        else:
            self._since = None
            self._away_since = now if self._away_since is None else self._away_since
            if now - self._away_since >= self.release_s:
                self.writing = False
        return self.writing
