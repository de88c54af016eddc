"""A student who stands up, seen in the fixed students' panorama (sans-IO).

The panorama does not move, so a background model works: a running average of the empty or
seated room, learnt quickly where nothing is going on and hardly at all where something is
(a student who stands for a minute does not melt into the background).  The technician draws,
for each group of seats, the box where a standing student's head and shoulders appear: just
above the seated heads.  Foreground filling a seat box, with its top (the head) in the box's
upper part, for `stand_s` seconds is a student standing there (the head decides between a
front-row box and the one behind it, which a standing student's body crosses); the box emptying
for `sit_s` seconds is them sitting down.  A change of light
over the whole picture is taken out by matching mean brightness first, and small movements of
seated students (heads that sway, hands that write) fill too little of a box to count.

`StudentsLoop` drives the student PTZ camera with it: the standing student's seat preset, then
the director's cue ``student standing`` once the camera has had `settle_s` to get there; when
they sit, the cue goes off at once and the camera goes home `home_after_s` later (after the
director has cut away).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from streaming.source import Image
from streaming.tracking.follow import PtzCommand
from streaming.tracking.geometry import Box
from streaming.tracking.motion import u8

ANALYSIS_WIDTH = 320
Float = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Seats:
    """A group of seats: where a standing student's head and shoulders show, and the preset that frames them."""

    box: Box
    preset: int


@dataclass(frozen=True, slots=True)
class StandingSettings:
    """Thresholds of the standing watch (see the module's docstring)."""

    fill: float = 0.15  # share of a seat box that must change
    threshold: int = 22  # grey-level difference that counts as a change
    stand_s: float = 1.0
    sit_s: float = 1.5
    learn: float = 0.05  # background learning rate where nothing changes (per picture)
    learn_busy: float = 0.0005  # ... and where something does


class StandingWatch:
    """Which seat group (if any) has a student standing, picture by picture."""

    def __init__(self, seats: Sequence[Seats], settings: StandingSettings | None = None) -> None:
        """`seats` boxes are normalised to the panorama."""
        self.seats = tuple(seats)
        self.settings = settings or StandingSettings()
        self.background: Float | None = None
        self.standing: int | None = None  # index into `seats`
        self.fills: list[float] = [0.0] * len(self.seats)
        self._since: list[float | None] = [None] * len(self.seats)
        self._empty_since: float | None = None

    def feed(self, image: Image, now: float) -> int | None:
        """One panorama picture; the seat group a student stands in (None: everyone sits)."""
        grey = self._grey(image)
        if self.background is None or self.background.shape != grey.shape:
            self.background = grey.astype(np.float32)
            return self.standing
        mask = self._foreground(grey, self.background)
        busy = u8(cv2.dilate(mask, np.ones((5, 5), np.uint8)))
        cv2.accumulateWeighted(grey, self.background, self.settings.learn, mask=cv2.bitwise_not(busy))
        cv2.accumulateWeighted(grey, self.background, self.settings.learn_busy, mask=busy)
        heads = self._heads(mask)
        fills = [self._fill(mask, s.box) if self._head_in(heads, s.box) else 0.0 for s in self.seats]
        # A student standing further back crosses the boxes in front of them on the way up: a box
        # with a head above it (the same seats' column, further back) does not count.
        self.fills = [0.0 if self._shadowed(i, fills) else fill for i, fill in enumerate(fills)]
        self._update(now)
        return self.standing

    def _heads(self, mask: npt.NDArray[np.uint8]) -> list[tuple[float, float]]:
        """The top of each changed blob (normalised): where a standing student's head is."""
        height, width = mask.shape
        joined = u8(cv2.dilate(mask, np.ones((5, 3), np.uint8)))
        count, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
        tops = []
        for i in range(1, count):
            x, y, w, h, area = (int(v) for v in stats[i])
            if area < 12:
                continue
            row = np.flatnonzero(labels[y] == i)
            tops.append(((float(row.mean()) if row.size else x + w / 2) / width, y / height))
        return tops

    def _shadowed(self, index: int, fills: list[float]) -> bool:
        box = self.seats[index].box
        for other, fill in zip(self.seats, fills, strict=True):
            overlap = min(other.box.right, box.right) - max(other.box.x, box.x)
            behind = other.box.y < box.y and overlap > 0.3 * min(box.w, other.box.w)
            if behind and fill >= self.settings.fill:
                return True
        return False

    @staticmethod
    def _head_in(heads: list[tuple[float, float]], box: Box) -> bool:
        """A blob's top lies in the upper part of `box`: the student standing there, not one behind."""
        return any(box.x <= x <= box.right and box.y - 0.25 * box.h <= y <= box.y + 0.5 * box.h for x, y in heads)

    def _grey(self, image: Image) -> npt.NDArray[np.uint8]:
        height = max(2, round(image.shape[0] * ANALYSIS_WIDTH / image.shape[1]))
        small = cv2.resize(image, (ANALYSIS_WIDTH, height), interpolation=cv2.INTER_AREA)
        return u8(cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (3, 3), 0))

    def _foreground(self, grey: npt.NDArray[np.uint8], background: Float) -> npt.NDArray[np.uint8]:
        before, after = float(background.mean()), float(grey.mean())
        model = background * (after / before) if before > 1.0 else background
        diff = cv2.absdiff(grey.astype(np.float32), model)
        mask = u8(np.where(diff > self.settings.threshold, 255, 0))
        return u8(cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)))

    @staticmethod
    def _fill(mask: npt.NDArray[np.uint8], box: Box) -> float:
        height, width = mask.shape
        px = box.scaled(width, height).clipped(width, height)
        part = mask[int(px.y) : int(px.bottom) + 1, int(px.x) : int(px.right) + 1]
        return float(np.count_nonzero(part)) / part.size if part.size else 0.0

    def _update(self, now: float) -> None:
        s = self.settings
        for i, fill in enumerate(self.fills):
            if fill >= s.fill:
                self._since[i] = now if self._since[i] is None else self._since[i]
            else:
                self._since[i] = None
        if self.standing is None:
            ready = [i for i, t in enumerate(self._since) if t is not None and now - t >= s.stand_s]
            if ready:
                self.standing = max(ready, key=lambda i: self.fills[i])
                self._empty_since = None
            return
        if self.fills[self.standing] < s.fill / 2:
            self._empty_since = now if self._empty_since is None else self._empty_since
            if now - self._empty_since >= s.sit_s:
                self.standing = None
        else:
            self._empty_since = None


@dataclass(frozen=True, slots=True)
class StudentsStatus:
    """What telemetry says about the students' camera."""

    state: str  # seated | standing | returning | off
    seats: int | None = None  # the seat group standing (index in the config's list)
    cue: bool = False

    def to_dict(self) -> dict[str, object]:
        """For telemetry."""
        return {"state": self.state, "seats": self.seats, "cue": self.cue}


class StudentsLoop:
    """The student PTZ camera, driven by the panorama's standing watch (see the module's docstring)."""

    def __init__(
        self,
        seats: Sequence[Seats],
        home_preset: int,
        settings: StandingSettings | None = None,
        *,
        settle_s: float = 2.0,
        home_after_s: float = 6.0,
    ) -> None:
        """Nothing is sent until the first picture."""
        self.watch = StandingWatch(seats, settings)
        self.home_preset = home_preset
        self.settle_s = settle_s
        self.home_after_s = home_after_s
        self.cue = False
        self._aimed: int | None = None  # the seat group the camera was sent to
        self._aimed_at = 0.0
        self._sat_at: float | None = None
        self.status = StudentsStatus("seated")

    def resume(self) -> list[PtzCommand]:
        """Someone moved the camera by hand: forget where it was sent (the next student standing re-aims it)."""
        self.cue = False
        self._aimed, self._sat_at = None, None
        return []

    def halt(self) -> list[PtzCommand]:
        """Tracking switched off: the cue goes off and the camera goes home if it was away."""
        self.cue = False
        away, self._aimed, self._sat_at = self._aimed is not None, None, None
        self.status = StudentsStatus("off")
        return [_recall(self.home_preset)] if away else []

    def feed(self, image: Image, now: float) -> list[PtzCommand]:
        """One panorama picture; the student camera's commands for it."""
        standing = self.watch.feed(image, now)
        out: list[PtzCommand] = []
        if standing is not None and standing != self._aimed:
            self._aimed, self._aimed_at, self._sat_at = standing, now, None
            self.cue = False
            out.append(_recall(self.watch.seats[standing].preset))
        elif standing is not None:
            self.cue = now - self._aimed_at >= self.settle_s
        elif self._aimed is not None:
            self.cue = False
            self._sat_at = now if self._sat_at is None else self._sat_at
            if now - self._sat_at >= self.home_after_s:
                self._aimed, self._sat_at = None, None
                out.append(_recall(self.home_preset))
        state = "standing" if standing is not None else "returning" if self._aimed is not None else "seated"
        self.status = StudentsStatus(state, standing, self.cue)
        return out


def _recall(preset: int) -> PtzCommand:
    return PtzCommand("preset_recall", (("n", preset),))
