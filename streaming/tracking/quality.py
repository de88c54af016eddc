"""How well a camera followed: the figures the issue asks for, from the truth about each frame.

- ``centred``: the share of frames, among those with the target in the room, in which the
  target's centre lies in the middle third of the camera's picture (horizontally, and inside
  it vertically);
- ``reacquire_s``: for each return of the target after it left the room, the seconds until the
  tracker followed it again (its box on the target);
- ``commands_per_min``: camera commands per minute (jitter);
- ``false_cuts_per_min``: director cuts on cues nobody caused (counted by the caller: a cue on
  an empty room is false by definition).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streaming.tracking.geometry import Box

THIRD = 1.0 / 3.0


@dataclass
class QualityMeter:
    """Accumulates the figures frame by frame (the truth normalised to the camera's picture)."""

    frames: int = 0
    present: int = 0
    centred_frames: int = 0
    commands: int = 0
    cuts: int = 0
    seconds: float = 0.0
    reacquire_s: list[float] = field(default_factory=list)
    _returned_at: float | None = None
    _was_present: bool = True
    _last: float | None = None

    def feed(self, now: float, truth: Box | None, followed: Box | None, commands: int = 0) -> None:
        """One frame: where the target really is (None: not in the room) and what the tracker follows."""
        if self._last is not None:
            self.seconds += max(0.0, now - self._last)
        self._last = now
        self.frames += 1
        self.commands += commands
        if truth is None:
            self._was_present = False
            self._returned_at = None
            return
        self.present += 1
        if centred(truth):
            self.centred_frames += 1
        if not self._was_present:
            self._was_present, self._returned_at = True, now
        if self._returned_at is not None and followed is not None and on_target(followed, truth):
            self.reacquire_s.append(now - self._returned_at)
            self._returned_at = None

    def cut(self) -> None:
        """The director cut on a tracking cue."""
        self.cuts += 1

    @property
    def centred(self) -> float:
        """Share of frames with the target in the room where it was centred."""
        return self.centred_frames / self.present if self.present else 0.0

    @property
    def minutes(self) -> float:
        """Time measured, in minutes."""
        return self.seconds / 60.0

    @property
    def commands_per_min(self) -> float:
        """Camera commands per minute."""
        return self.commands / self.minutes if self.minutes else 0.0

    @property
    def cuts_per_min(self) -> float:
        """Director cuts per minute."""
        return self.cuts / self.minutes if self.minutes else 0.0

    def to_dict(self) -> dict[str, object]:
        """The figures, rounded."""
        return {
            "centred": round(self.centred, 3),
            "commands_per_min": round(self.commands_per_min, 1),
            "reacquire_s": [round(s, 1) for s in self.reacquire_s],
            "cuts_per_min": round(self.cuts_per_min, 2),
            "frames": self.frames,
        }


def centred(box: Box) -> bool:
    """The box's centre is in the middle third of the picture horizontally and inside it vertically."""
    return THIRD <= box.cx <= 2 * THIRD and 0.0 <= box.cy <= 1.0


def on_target(followed: Box, truth: Box) -> bool:
    """The followed box is on the target: its centre inside the target's box."""
    return truth.contains(followed.cx, followed.cy)
