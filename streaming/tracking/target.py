"""One target, followed frame by frame in the picture of a camera that may itself move.

`TargetTracker` is sans-IO: a picture and the time in, a `Sighting` out.  It looks for a person
who moves by themselves (camera-motion compensated differencing, `motion.EgoMotion`) or whom
OpenCV's HOG detector finds, keeps that person once seen for a few frames, follows them through
the picture's motion and their own, and holds on while they stand still by their look: the
upper body's picture found again near where it was (normalised cross-correlation), else the
colours of their clothes (a hue/saturation histogram).  Unconfirmed for `lost_after_s`, the target is
lost and the search starts again.

`Odometry` adds up the camera's motion since it was last at its home preset, so a box in the
moving picture can be placed on the home picture, where the technician drew the zones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from streaming.source import Image
from streaming.tracking.geometry import Box, union
from streaming.tracking.motion import EgoMotion, Grey, Matrix, Motion, u8
from streaming.tracking.people import PeopleDetector

SEARCHING, FOLLOWING = "searching", "following"
HIST_BINS = [16, 8]
MATCH = 0.6  # normalised cross-correlation above which the upper body is found again
MAX_WALK = 1.5  # a person's own speed, in their heights per second, at most
PERSON_ASPECT = 0.4  # a standing person's box: width / height
SAME_PERSON = 0.45  # Bhattacharyya distance of two clothes histograms below which they are the same person
Hist = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class TrackerSettings:
    """How the tracker analyses and when it acquires and loses a target."""

    width: int = 320  # analysis picture width (the height follows the picture's aspect)
    acquire_frames: int = 3  # frames in a row a moving person must be seen before being followed
    lost_after_s: float = 1.5  # unconfirmed this long: the target is lost
    min_height: float = 0.15  # smallest person, as a share of the picture's height
    hog_every_s: float = 1.0  # HOG near the target while following (0: never)
    search_hog_every_s: float = 2.0  # HOG over the whole picture while searching (0: never)


@dataclass(frozen=True, slots=True)
class Sighting:
    """What the tracker knows this frame: its state and the target's box (normalised to the picture)."""

    state: str  # searching | following
    box: Box | None = None
    seen: bool = False  # confirmed by this frame (motion, colours or HOG), not only predicted
    lost_for_s: float = 0.0  # since the target was last confirmed (0 while seen)
    speed: float = 0.0  # the target's own horizontal speed, picture widths per second
    home_box: Box | None = None  # the box placed on the home picture (zones), when odometry knows


class Odometry:
    """The camera's motion since its home preset, added up frame by frame (normalised coordinates)."""

    def __init__(self) -> None:
        """At home until told otherwise."""
        self._home_to_view = np.eye(3)
        self.known = True

    def reset(self) -> None:
        """The camera is at its home preset now."""
        self._home_to_view = np.eye(3)
        self.known = True

    def forget(self) -> None:
        """The camera moved in a way that was not measured (a preset jump): zones are unknown until home."""
        self.known = False

    def add(self, transform: Matrix, size: tuple[int, int]) -> None:
        """One frame's camera motion (analysis pixels of `size`)."""
        s = np.diag([float(size[0]), float(size[1]), 1.0])
        step = np.linalg.inv(s) @ np.vstack([transform, [0.0, 0.0, 1.0]]) @ s
        self._home_to_view = step @ self._home_to_view

    def to_view(self, box: Box) -> Box | None:
        """A box of the home picture (a zone) on the current picture (None when the camera's path is unknown)."""
        if not self.known:
            return None
        return _mapped(self._home_to_view, box)

    def to_home(self, box: Box) -> Box | None:
        """A box of the current picture on the home picture (None when the camera's path is unknown)."""
        if not self.known:
            return None
        return _mapped(np.linalg.inv(self._home_to_view), box)


def _mapped(matrix: npt.NDArray[np.floating[Any]], box: Box) -> Box:
    x0, y0, _ = matrix @ np.array([box.x, box.y, 1.0])
    x1, y1, _ = matrix @ np.array([box.right, box.bottom, 1.0])
    return Box(float(x0), float(y0), float(x1 - x0), float(y1 - y0))


@dataclass
class _Candidate:
    box: Box
    count: int = 1


@dataclass
class _Target:
    box: Box  # analysis pixels
    hist: Hist
    seen_at: float
    velocity: float = 0.0  # own horizontal speed, analysis pixels per second
    template: Grey | None = None  # the upper body's picture when last seen moving (or found by HOG)
    template_h: float = 0.0  # the box's height then


class TargetTracker:
    """Finds and follows one person in a (possibly moving) camera's picture; see the module's docstring."""

    def __init__(
        self,
        settings: TrackerSettings | None = None,
        *,
        allowed: Callable[[Box | None], bool] = lambda home_box: True,
        detector: PeopleDetector | None = None,
    ) -> None:
        """`allowed(home_box)` says whether a person there may become the target (the podium, not the door)."""
        self.settings = settings or TrackerSettings()
        self.allowed = allowed
        self.motion = EgoMotion()
        self.odometry = Odometry()
        self.detector = detector or PeopleDetector()
        self._target: _Target | None = None
        self._candidates: list[_Candidate] = []
        self._size = (0, 0)
        self._last_t: float | None = None
        self._next_hog = 0.0
        self.last_motion: Motion | None = None

    def reset(self, *, home: bool = False) -> None:
        """Drop the target and the motion history (the camera jumped); `home`: it is at its home preset now."""
        self._target = None
        self._candidates = []
        self.motion.reset()
        if home:
            self.odometry.reset()
        else:
            self.odometry.forget()

    def feed(self, image: Image, now: float) -> Sighting:
        """Analyse one picture of the camera taken at `now` (seconds, any monotonic origin)."""
        width = self.settings.width
        height = max(2, round(image.shape[0] * width / image.shape[1]))
        small = u8(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA))
        grey = u8(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
        self._size = (width, height)
        dt = 0.0 if self._last_t is None else max(0.0, now - self._last_t)
        self._last_t = now
        keep_out = self._target.box if self._target is not None else None
        motion = self.motion.feed(grey, keep_out)
        self.last_motion = motion
        if motion.trusted:
            self.odometry.add(motion.transform, self._size)
        hsv = u8(cv2.cvtColor(small, cv2.COLOR_BGR2HSV))
        if self._target is None:
            self._search(image, hsv, motion, now)
            if self._target is not None:
                self._remember(grey, self._target)
        else:
            self._follow(image, hsv, grey, motion, now, dt)
        return self._sighting(now)

    # -- searching ---------------------------------------------------------------------------

    def _search(self, image: Image, hsv: Image, motion: Motion, now: float) -> None:
        width, height = self._size
        people = [b for b in motion.blobs if self._person_like(b) and self.allowed(self._home(b))]
        carried = [_Candidate(motion.moved(c.box), c.count) for c in self._candidates]
        kept: list[_Candidate] = []
        for blob in people:
            match = max(carried, key=lambda c: c.box.overlap(blob), default=None)
            if match is not None and match.box.overlap(blob) > 0.2:
                # Head, body and legs do not all move in every frame: keep the tallest extent seen.
                top, bottom = min(blob.y, match.box.y), max(blob.bottom, match.box.bottom)
                kept.append(_Candidate(Box(blob.x, top, blob.w, bottom - top), match.count + 1))
            else:
                kept.append(_Candidate(blob, 1))
        self._candidates = kept
        ready = [c for c in kept if c.count >= self.settings.acquire_frames]
        if ready:
            best = max(ready, key=lambda c: c.box.h)
            self._start(self._whole(image, best.box) or best.box, hsv, now)
            return
        every = self.settings.search_hog_every_s
        if every > 0 and now >= self._next_hog:
            self._next_hog = now + every
            found = self._hog_whole(image)
            allowed = [b for b in found if self.allowed(self._home(b))]
            if allowed:
                self._start(max(allowed, key=lambda b: b.h), hsv, now)

    def _whole(self, image: Image, part: Box) -> Box | None:
        """The whole person HOG finds around what moved (motion may show only some of them)."""
        factor = image.shape[1] / self._size[0]
        around = part.scaled(factor, factor)
        found = [b.scaled(1 / factor, 1 / factor) for b, _ in self.detector.near(image, around)]
        holding = [b for b in found if b.contains(part.cx, part.cy) and b.h >= 0.8 * part.h]
        return max(holding, key=lambda b: b.overlap(part), default=None)

    def _person_like(self, blob: Box) -> bool:
        return blob.h >= self.settings.min_height * self._size[1] and blob.h >= 0.9 * blob.w

    def _hog_whole(self, image: Image) -> list[Box]:
        """People over the whole picture, in analysis pixels (HOG at about 480 pixels wide)."""
        factor = 480.0 / image.shape[1]
        small = u8(cv2.resize(image, (480, max(2, round(image.shape[0] * factor))), interpolation=cv2.INTER_LINEAR))
        to_analysis = self._size[0] / 480.0
        found = self.detector.detect(small, upscale=1.3)
        return [b.scaled(to_analysis, to_analysis) for b, _ in found if b.h * to_analysis >= self._min_px()]

    def _min_px(self) -> float:
        return self.settings.min_height * self._size[1]

    def _start(self, found: Box, hsv: Image, now: float) -> None:
        box = Box(found.cx - PERSON_ASPECT * found.h / 2, found.y, PERSON_ASPECT * found.h, found.h)
        self._target = _Target(box, _hist(hsv, box), now)
        self._candidates = []
        self._next_hog = now + self.settings.hog_every_s

    # -- following ---------------------------------------------------------------------------

    def _follow(self, image: Image, hsv: Image, grey: Grey, motion: Motion, now: float, dt: float) -> None:
        target = self._target
        assert target is not None
        carried = motion.moved(target.box)
        predicted = Box(carried.x + target.velocity * dt, carried.y, carried.w, carried.h)
        measured = self._measure(predicted, motion.blobs, hsv, target.hist)
        if measured is not None:
            box = _blend(predicted, measured)
            if dt > 0:
                own = (box.cx - carried.cx) / dt
                limit = MAX_WALK * box.h  # nobody walks faster: a jump is a measurement's fault
                target.velocity = max(-limit, min(limit, 0.6 * target.velocity + 0.4 * own))
            target.seen_at = now
            if measured.h >= 0.7 * predicted.h:
                target.box = box
                self._remember(grey, target)
        else:
            target.velocity *= 0.5
            box = predicted
            # Standing still: the same upper body nearby, in the same clothes (a look-alike patch of
            # wall or desk has other colours), or at least the same clothes where it was.
            for place in (_match(grey, predicted, target), predicted):
                if place is not None and _distance(_hist(hsv, place), target.hist) < SAME_PERSON:
                    box, target.seen_at = place, now
                    break
        target.box = box
        every = self.settings.hog_every_s
        if every > 0 and now >= self._next_hog:
            self._next_hog = now + every
            self._confirm(image, hsv, now)
        if now - target.seen_at > self.settings.lost_after_s:
            self._target = None

    def _measure(self, predicted: Box, blobs: tuple[Box, ...], hsv: Image, hist: Hist) -> Box | None:
        """The moving parts that belong to the target: near its predicted place, in one person's width."""
        p = predicted
        gate = Box(p.cx - p.w * 1.2, p.y - p.h * 0.2, p.w * 2.4, p.h * 1.4)
        # Tall blobs near the target, or small ones on it (an arm, a head): not a flag or a tape in the wind beside it.
        near = [
            b
            for b in blobs
            if (gate.contains(b.cx, b.cy) and b.h >= 0.35 * p.h) or _inside_share(b, p) >= 0.5 or b.overlap(p) > 0.2
        ]
        if not near:
            return None
        primary = min(near, key=lambda b: abs(b.cx - predicted.cx) + 0.5 * abs(b.cy - predicted.cy))
        # A person's parts are stacked (head, body, legs): only blobs above or below the nearest one join it.
        group = [b for b in near if b is primary or _stacked(primary, b)]
        measured = union(group)
        assert measured is not None
        if _distance(_hist(hsv, measured), hist) > SAME_PERSON and _distance(_hist(hsv, predicted), hist) < SAME_PERSON:
            return None  # someone else moved past; the target is still where it was
        return measured

    def _confirm(self, image: Image, hsv: Image, now: float) -> None:
        """HOG near the target: a person found there corrects the box (its height above all) and the colours."""
        target = self._target
        assert target is not None
        factor = image.shape[1] / self._size[0]
        around = target.box.scaled(factor, factor)
        found = [(b.scaled(1 / factor, 1 / factor), w) for b, w in self.detector.near(image, around)]
        matches = [(b, w) for b, w in found if b.overlap(target.box) > 0.25]
        if not matches:
            return
        best = max(matches, key=lambda m: m[1] * m[0].overlap(target.box))[0]
        box = target.box
        target.box = Box(*((a + b) / 2 for a, b in zip(box.to_list(9), best.to_list(9), strict=True)))
        target.hist = 0.7 * target.hist + 0.3 * _hist(hsv, target.box)
        target.seen_at = now
        target.template = None  # taken again at the next sure sighting, at the corrected size

    def _remember(self, grey: Grey, target: _Target) -> None:
        """Keep the upper body's picture, to find the target again when it stops moving."""
        patch = _upper(target.box).clipped(grey.shape[1], grey.shape[0])
        if patch.w >= 6 and patch.h >= 6:
            target.template = grey[int(patch.y) : int(patch.bottom), int(patch.x) : int(patch.right)].copy()
            target.template_h = target.box.h

    # -- output ------------------------------------------------------------------------------

    def _home(self, box: Box) -> Box | None:
        width, height = self._size
        return self.odometry.to_home(box.scaled(1 / width, 1 / height))

    def _sighting(self, now: float) -> Sighting:
        target = self._target
        if target is None:
            return Sighting(SEARCHING)
        width, height = self._size
        box = target.box.scaled(1 / width, 1 / height)
        lost_for = max(0.0, now - target.seen_at)
        return Sighting(FOLLOWING, box, lost_for == 0.0, lost_for, target.velocity / width, self._home(target.box))


def _blend(predicted: Box, measured: Box) -> Box:
    """Trust the measured centre; let the size change slowly (motion shows only the parts that moved)."""
    cx = 0.3 * predicted.cx + 0.7 * measured.cx
    full = measured.h >= 0.7 * predicted.h and measured.w <= 0.8 * measured.h  # one whole person, not two
    h = 0.75 * predicted.h + 0.25 * min(measured.h, 1.3 * predicted.h) if full else predicted.h
    bottom = 0.6 * predicted.bottom + 0.4 * measured.bottom if full else predicted.bottom
    w = PERSON_ASPECT * h
    return Box(cx - w / 2, bottom - h, w, h)


def _upper(box: Box) -> Box:
    """A person's head and chest: the part a desk does not hide and arms move least."""
    return Box(box.x + 0.15 * box.w, box.y + 0.02 * box.h, 0.7 * box.w, 0.45 * box.h)


def _match(grey: Grey, predicted: Box, target: _Target) -> Box | None:
    """The target's upper body found again near `predicted` (None when nothing there looks like it)."""
    if target.template is None or target.template_h <= 0:
        return None
    scale = predicted.h / target.template_h
    height, width = target.template.shape
    size = (max(4, round(width * scale)), max(4, round(height * scale)))
    template = u8(cv2.resize(target.template, size, interpolation=cv2.INTER_AREA))
    expected = _upper(predicted)
    area = Box(expected.x - 0.6 * predicted.w, expected.y - 0.15 * predicted.h, expected.w + 1.2 * predicted.w,
               expected.h + 0.3 * predicted.h).clipped(grey.shape[1], grey.shape[0])  # fmt: skip
    x0, y0 = int(area.x), int(area.y)
    region = grey[y0 : int(area.bottom), x0 : int(area.right)]
    if region.shape[0] < size[1] or region.shape[1] < size[0]:
        return None
    scores = cv2.matchTemplate(region, template, cv2.TM_CCOEFF_NORMED)
    _, best, _, (bx, by) = cv2.minMaxLoc(scores)
    if best < MATCH:
        return None
    dx, dy = x0 + bx - expected.x, y0 + by - expected.y
    return Box(predicted.x + dx, predicted.y + dy, predicted.w, predicted.h)


def _inside_share(blob: Box, box: Box) -> float:
    """How much of `blob` lies inside `box`."""
    w = min(blob.right, box.right) - max(blob.x, box.x)
    h = min(blob.bottom, box.bottom) - max(blob.y, box.y)
    return max(0.0, w) * max(0.0, h) / blob.area if blob.area else 0.0


def _stacked(a: Box, b: Box) -> bool:
    """Whether two blobs overlap horizontally by most of the narrower one's width."""
    overlap = min(a.right, b.right) - max(a.x, b.x)
    return overlap > 0.5 * min(a.w, b.w)


def _distance(a: Hist, b: Hist) -> float:
    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))


def _hist(hsv: Image, box: Box) -> Hist:
    """Hue/saturation histogram of the upper body (the clothes; a desk may hide the legs)."""
    height, width = hsv.shape[:2]
    x0 = int(max(0, box.x + box.w * 0.25))
    x1 = int(min(width, box.right - box.w * 0.25))
    y0 = int(max(0, box.y + box.h * 0.12))
    y1 = int(min(height, box.y + box.h * 0.5))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.zeros((HIST_BINS[0], HIST_BINS[1]), np.float32)
    part = hsv[y0:y1, x0:x1]
    hist = cv2.calcHist([part], [0, 1], None, HIST_BINS, [0, 180, 0, 256])
    return np.asarray(cv2.normalize(hist, hist, 1.0, 0.0, cv2.NORM_L1), np.float32)


__all__ = ["FOLLOWING", "SEARCHING", "Odometry", "Sighting", "TargetTracker", "TrackerSettings"]
