"""Sans-IO: when encoding cannot keep up, step the frame rate or the size down, and back up later.

Like a browser's WebRTC under CPU pressure, a source degrades instead of freezing: the courseware
or screen loses frames per second first (text must stay sharp), a camera loses resolution first
(motion must stay fluid).  `Adapter` is fed each frame's encode time and the gap since the frame
before; it has no clock and no encoder, so every rule is testable with plain numbers.

- Step down when, over the last second, the median encode time exceeds `down_load` of the frame
  period, or frame slots are being missed (a gap over two periods).
- Step up when, for `up_after_s`, the median load stayed under `up_load` and the level above
  would still be under `down_load` by the same measure (so it does not step straight back down).
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass
from typing import Literal

Prefer = Literal["fps", "size"]

# The encoder repeats the last picture after this many periods without a new one, so only a
# longer gap means frame slots were missed (`streaming.encoding.MAX_GAP`).
REPEAT_GAP = 1.5

# (fps factor, size factor) from full quality down; the first steps are the preferred kind.
LADDERS: dict[str, tuple[tuple[float, float], ...]] = {
    "fps": ((1.0, 1.0), (2 / 3, 1.0), (1 / 2, 1.0), (1 / 3, 1.0), (1 / 3, 3 / 4), (1 / 3, 1 / 2)),
    "size": ((1.0, 1.0), (1.0, 3 / 4), (1.0, 1 / 2), (2 / 3, 1 / 2), (1 / 2, 1 / 2), (1 / 3, 1 / 2)),
}


@dataclass(frozen=True, slots=True)
class AdaptRules:
    """The thresholds; the defaults follow browsers' CPU adaptation in spirit (``enabled=False``: never adapt)."""

    enabled: bool = True
    down_load: float = 0.8  # median encode time / frame period that calls for a step down
    up_load: float = 0.5  # below this for `up_after_s`: room to step up
    window_s: float = 1.0  # the samples judged at once
    up_after_s: float = 10.0
    skipped_share: float = 0.1  # missed frame slots / expected frames in the window that call for a step down
    min_fps: float = 5.0
    min_height: int = 180


@dataclass(frozen=True, slots=True)
class Level:
    """What the encoder sends now, and why (for stats and ``lesson.status``)."""

    step: int
    fps: float
    size: tuple[int, int]
    degraded: str  # "" at full quality, else "fps", "size" or "fps+size"
    reason: str = ""

    def to_dict(self) -> dict[str, object]:
        """{"degraded": "fps", "fps": 15, "size": "1280x720", "reason": ...}."""
        return {
            "degraded": self.degraded,
            "fps": round(self.fps, 1),
            "size": f"{self.size[0]}x{self.size[1]}",
            "reason": self.reason,
        }


def even(value: float) -> int:
    """The even integer nearest below `value` (x264 wants even sizes in 4:2:0)."""
    return max(2, int(value) - int(value) % 2)


class Adapter:
    """The degradation state of one encoder; feed it every encoded frame."""

    def __init__(self, fps: float, size: tuple[int, int], prefer: Prefer, rules: AdaptRules | None = None) -> None:
        """`fps` and `size` are full quality; `prefer` is what goes first ("fps" for screens, "size" for cameras)."""
        self.rules = rules or AdaptRules()
        self.full_fps = fps
        self.full_size = size
        self.prefer = prefer
        self.steps = self._ladder(LADDERS[prefer])
        self.level = self._level(0, "")
        self._samples: deque[tuple[float, float, int]] = deque()  # (when, load, missed slots)
        self._calm_since: float | None = None

    def _ladder(self, factors: tuple[tuple[float, float], ...]) -> tuple[tuple[float, tuple[int, int]], ...]:
        """The (fps, size) levels, clamped to the floors, without repeats (a 5 fps screen only loses size)."""
        width, height = self.full_size
        floor_fps = min(self.rules.min_fps, self.full_fps)
        steps: list[tuple[float, tuple[int, int]]] = []
        for fps_factor, size_factor in factors:
            size = self.full_size if size_factor == 1.0 else (even(width * size_factor), even(height * size_factor))
            if size[1] < min(self.rules.min_height, height) or size[0] < 16:
                continue
            step = (max(floor_fps, self.full_fps * fps_factor), size)
            if step not in steps:
                steps.append(step)
        return tuple(steps)

    def _level(self, step: int, reason: str) -> Level:
        fps, size = self.steps[step]
        kinds = [kind for kind, less in (("fps", fps < self.full_fps), ("size", size != self.full_size)) if less]
        return Level(step, fps, size, "+".join(kinds), reason if kinds else "")

    @property
    def load(self) -> float:
        """Median encode time over the frame period in the window (0 with no samples)."""
        return statistics.median(s[1] for s in self._samples) if self._samples else 0.0

    def frame(self, now: float, encode_s: float, gap_s: float | None) -> Level | None:
        """One encoded frame: how long it took, and the time since the previous frame began (None at first).

        Returns the new level when it changes (the caller applies it), else None.
        """
        if not self.rules.enabled:
            return None
        period = 1.0 / self.level.fps
        missed = 0 if gap_s is None else max(0, int(gap_s / period - REPEAT_GAP))
        self._samples.append((now, encode_s / period, missed))
        while now - self._samples[0][0] > self.rules.window_s:
            self._samples.popleft()
        if now - self._samples[0][0] < self.rules.window_s * 0.9:
            return None  # not a full window yet (just started or just changed level)
        load = self.load
        expected = self.rules.window_s * self.level.fps
        skipped = sum(s[2] for s in self._samples)
        if load > self.rules.down_load or skipped > expected * self.rules.skipped_share:
            if self.level.step + 1 >= len(self.steps):
                return None
            why = (
                f"encoding takes {load:.0%} of the frame period"
                if load > self.rules.down_load
                else (f"{skipped} frames skipped in {self.rules.window_s:.0f} s")
            )
            return self._move(self.level.step + 1, f"cpu: {why}")
        return self._maybe_up(now, load)

    def _maybe_up(self, now: float, load: float) -> Level | None:
        if self.level.step == 0 or load >= self.rules.up_load or load * self._cost_up() >= self.rules.down_load:
            self._calm_since = None
            return None
        self._calm_since = now if self._calm_since is None else self._calm_since
        if now - self._calm_since < self.rules.up_after_s:
            return None
        return self._move(self.level.step - 1, self.level.reason)

    def _cost_up(self) -> float:
        """How much more the level above costs per frame period than this one (pixels x frames)."""
        fps_now, (width_now, height_now) = self.steps[self.level.step]
        fps_up, (width_up, height_up) = self.steps[self.level.step - 1]
        return (fps_up / fps_now) * (width_up * height_up) / (width_now * height_now)

    def _move(self, step: int, reason: str) -> Level:
        self.level = self._level(step, reason)
        self._samples.clear()  # judge the new level on its own frames
        self._calm_since = None
        return self.level
