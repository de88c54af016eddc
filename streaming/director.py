"""Directing: which source is the main picture, chosen by rules the way recording classrooms do.

Commercial 录播 systems show the courseware while it changes, otherwise the teacher, a standing
student when the student camera reports one, and the panorama when nothing else is available,
and they hold each choice for a few seconds so the picture does not flicker.  Those systems get
"a student stands up" from the camera's own detection; ours measures motion in the student
camera's picture instead (`ActivityMeter`), so any camera works and a raised hand counts too.
Auto-tracking adds cues of its own (`CUES`: a student standing, the teacher writing at the
board), which rules name like a source's activity and which the tracking service sets.

`Director` is sans-IO: activities and the time come in, a source name comes out.
`DirectedPicture` is the glue the recorder calls once per output frame.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from streaming.compose import Compositor
from streaming.errors import StreamingError
from streaming.source import Frame, Image

ALWAYS = "always"
ACTIVE = " active"
CUES = ("student standing", "teacher writing")  # set by auto-tracking (Director.set_cue)
DEFAULT_THRESHOLD = 0.02
METER_SIZE = (64, 36)  # (width, height): enough to see a slide change or a person standing up


class DirectorError(StreamingError, ValueError):
    """Rules or thresholds are invalid: fix the config."""


def parse_when(when: str) -> str | None:
    """What a condition watches (a source for ``"<source> active"``, or a cue), or None for ``"always"``."""
    if when == ALWAYS:
        return None
    if when in CUES:
        return when
    source = when.removesuffix(ACTIVE)
    if source != when and source and source == source.strip():
        return source
    cues = ", ".join(f'"{c}"' for c in CUES)
    raise DirectorError(f'got {when!r}, expected "always" or "<source> active" (or a tracking cue: {cues})')


@dataclass(frozen=True, slots=True)
class Rule:
    """Show `show` when `when` holds: ``"<source> active"`` (activity above its threshold) or ``"always"``."""

    when: str
    show: str

    @property
    def watches(self) -> str | None:
        """The source whose activity the rule watches (None: always)."""
        return parse_when(self.when)

    def to_dict(self) -> dict[str, str]:
        """For config files."""
        return {"when": self.when, "show": self.show}

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> Rule:
        """The inverse of `to_dict`; the condition is checked."""
        rule = cls(str(data["when"]), str(data["show"]))
        rule.watches  # noqa: B018 -- validates the condition
        return rule


class Director:
    """Chooses the main picture from per-source activity, with a minimum hold time and a manual override.

    The first rule whose condition holds *and* whose source has a picture wins; a source absent
    from `activities` has no picture (no signal), so a later ``always`` rule is the fallback.
    A ``"<source> active"`` condition keeps holding until `hold_s` after the source's *last*
    change, so courseware stays on screen while the teacher talks over a slide, not only
    `hold_s` after it first changed.  The choice changes only after it has been held `hold_s`,
    unless its source lost its picture.  `override` may be called from another thread than
    `choose` (a plain attribute swap).  `reason` says why the current choice is shown.
    """

    def __init__(self, rules: Sequence[Rule], hold_s: float = 5.0, thresholds: Mapping[str, float] | None = None):
        """`thresholds` per source, in [0, 1]; sources not listed use `DEFAULT_THRESHOLD`."""
        if not rules:
            raise DirectorError("rules: expected at least one rule")
        if hold_s < 0:
            raise DirectorError(f"hold_s: got {hold_s!r}, expected 0 or more")
        self.rules = tuple(rules)
        self._watches = tuple(r.watches for r in self.rules)
        self.hold_s = hold_s
        self.thresholds = dict(thresholds or {})
        self.manual: str | None = None
        self.current: str | None = None
        self.reason = ""  # override | rule | hold | fallback
        self.rule = ""  # the condition of the rule that chose (reason "rule" or "hold")
        self._since = 0.0
        self._last_active: dict[str, float] = {}
        self.cues: dict[str, float] = {}  # replaced whole by set_cue: safe to read from the recorder's thread

    def set_cue(self, cue: str, on: bool) -> None:
        """Auto-tracking says a cue (`CUES`) holds or not; rules name it like an activity."""
        self.cues = {**self.cues, cue: 1.0 if on else 0.0}

    def override(self, source: str | None) -> None:
        """Show `source` whatever the rules say; None hands the choice back to the rules at once."""
        self.manual = source
        if source is None:
            self.current = None  # the rules' choice shows at the next frame, not after a hold

    def wanted(self, activities: Mapping[str, float], now: float | None = None) -> str | None:
        """What the rules want now, ignoring the hold time (None: no rule's source has a picture).

        With `now`, a source counts as active until `hold_s` after its last activity `choose` saw.
        """
        rule = self._wanted({**activities, **self.cues}, now)
        return rule.show if rule is not None else None

    def _wanted(self, activities: Mapping[str, float], now: float | None) -> Rule | None:
        for rule, watches in zip(self.rules, self._watches, strict=True):
            if rule.show not in activities:
                continue
            if watches is None or self._active(watches, activities, now):
                return rule
        return None

    def _active(self, source: str, activities: Mapping[str, float], now: float | None) -> bool:
        if activities.get(source, 0.0) > self.thresholds.get(source, DEFAULT_THRESHOLD):
            return True
        last = self._last_active.get(source)
        return now is not None and last is not None and now - last < self.hold_s

    def choose(self, activities: Mapping[str, float], now: float) -> str:
        """The main picture: the override, else the rules' choice once the current one was held `hold_s`."""
        if self.manual is not None:
            self.reason, self.rule = "override", ""
            return self.manual
        activities = {**activities, **self.cues}
        for source in {w for w in self._watches if w is not None}:
            if activities.get(source, 0.0) > self.thresholds.get(source, DEFAULT_THRESHOLD):
                self._last_active[source] = now
        rule = self._wanted(activities, now)
        if rule is None:
            self.reason, self.rule = "fallback", ""
            return self.current or self.rules[-1].show
        lost = self.current not in activities
        if rule.show != self.current and (lost or now - self._since >= self.hold_s):
            self.current, self._since = rule.show, now
        self.reason = "rule" if rule.show == self.current else "hold"
        self.rule = rule.when if rule.show == self.current else self.rule
        assert self.current is not None
        return self.current

    def telemetry(self) -> dict[str, str]:
        """``{source, reason, rule}``: what is shown and why (override, rule, hold or fallback)."""
        if self.manual is not None:
            return {"source": self.manual, "reason": "override", "rule": ""}
        return {"source": self.current or "", "reason": self.reason, "rule": self.rule}


class ActivityMeter:
    """How much one source's picture changes: mean absolute difference of downscaled grey frames, in [0, 1].

    Cheap enough for every frame of several 1080p sources (about 0.5 ms each for a 64x36 thumbnail); a
    static picture measures about 0, a slide change or a person moving clearly more.
    """

    def __init__(self) -> None:
        """No activity until two frames were seen."""
        self._previous: npt.NDArray[np.int16] | None = None
        self._index = -1
        self.activity = 0.0

    def feed(self, frame: Frame) -> float:
        """Measure against the previous frame fed; the same frame again means nothing changed (0)."""
        if frame.index == self._index:
            self.activity = 0.0
            return self.activity
        self._index = frame.index
        grey = grey_thumbnail(frame.image)
        if self._previous is not None:
            self.activity = float(np.abs(grey - self._previous).mean()) / 255.0
        self._previous = grey
        return self.activity


def grey_thumbnail(image: Image) -> npt.NDArray[np.int16]:
    """A 64x36 grey picture (signed, ready to subtract).

    Every n-th pixel first (about 4x the thumbnail), then an area average: a fifth of the
    cost of averaging a whole 1080p picture, and still smooth enough not to alias.
    """
    width, height = METER_SIZE
    step_y, step_x = max(1, image.shape[0] // (4 * height)), max(1, image.shape[1] // (4 * width))
    small = cv2.resize(image[::step_y, ::step_x], METER_SIZE, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.int16)


class DirectedPicture:
    """The recorder's picture for the ``directed`` layout: measure the sources, let the director choose, compose.

    Activity is measured every `sample_s` (not every output frame), so a slide change that
    happens between two output frames still counts and the cost stays small.
    """

    def __init__(
        self,
        compositor: Compositor,
        director: Director,
        *,
        sample_s: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`compositor` has the ``directed`` layout; `clock` must be the frames' clock (monotonic)."""
        self.compositor = compositor
        self.director = director
        self.sample_s = sample_s
        self._clock = clock
        self._meters = {name: ActivityMeter() for name in compositor.layout.sources}
        self._next_sample = 0.0
        self.activities: dict[str, float] = {}

    def render(self) -> Image:
        """Compose one output picture with the director's choice as the main picture."""
        now = self._clock()
        frames = {name: source.latest() for name, source in self.compositor.sources.items()}
        if now >= self._next_sample:
            self._next_sample = now + self.sample_s
            self.activities = self._measure(frames, now)
        self.compositor.main = self.director.choose(self.activities, now)
        return self.compositor.compose(frames, now)

    def _measure(self, frames: Mapping[str, Frame | None], now: float) -> dict[str, float]:
        """Activity of every source with a fresh frame; sources without one are left out (no signal)."""
        out = {}
        for name, meter in self._meters.items():
            frame = frames.get(name)
            if frame is not None and now - frame.captured <= self.compositor.stale_s:
                out[name] = meter.feed(frame)
        return out
