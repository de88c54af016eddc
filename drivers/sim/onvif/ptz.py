"""A PTZ head as ONVIF's generic spaces describe it: sans-IO, moved by an injected clock.

Positions are in the generic position spaces (pan and tilt -1..1, zoom 0 wide .. 1 tele);
velocities in the generic velocity spaces (-1..1), speeds in the generic speed spaces (0..1).
Nothing here sleeps: every reading asks the clock and works out where the head is by then.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]

PAN_TILT_RANGE = (-1.0, 1.0)
ZOOM_RANGE = (0.0, 1.0)
MAX_PRESETS = 128
# Full speed in position units per second: pan and tilt cross their whole range (2) in 2 s,
# zoom goes from wide to tele (1) in 2 s.
PAN_TILT_FULL_SPEED = 1.0
ZOOM_FULL_SPEED = 0.5
# A speed of 0 in a speed space still has to arrive somewhere: the slowest the head goes.
MIN_SPEED_FRACTION = 0.05


@dataclass(frozen=True)
class Position:
    """Where the head points, in the generic position spaces."""

    pan: float
    tilt: float
    zoom: float


@dataclass(frozen=True)
class Preset:
    """A stored position under a device-assigned token, with an optional name."""

    token: str
    name: str | None
    position: Position


class Axis:
    """One axis: a position that changes at a velocity (until a deadline) or towards a target."""

    def __init__(self, low: float, high: float, full_speed: float, clock: Clock) -> None:
        """Idle at the middle of its range (pan/tilt 0) or its low end (zoom wide)."""
        self.low, self.high, self.full_speed, self._clock = low, high, full_speed, clock
        self._start = min(max(0.0, low), high)
        self._t0 = clock()
        self._velocity = 0.0  # units per second
        self._until = self._t0
        self._target: float | None = None

    def _elapsed(self, now: float) -> float:
        return max(0.0, min(now, self._until) - self._t0)

    def at(self, now: float | None = None) -> float:
        """The position at `now` (the clock's time when not given)."""
        now = self._clock() if now is None else now
        if self._target is not None:
            if now >= self._until:
                return self._target
            travel = abs(self._velocity) * self._elapsed(now)
            gap = self._target - self._start
            return self._target if travel >= abs(gap) else self._start + math.copysign(travel, gap)
        return min(max(self._start + self._velocity * self._elapsed(now), self.low), self.high)

    def moving(self, now: float | None = None) -> bool:
        """Whether the axis is still moving at `now` (an axis pressed against its limit is not)."""
        now = self._clock() if now is None else now
        if now >= self._until or self._velocity == 0.0:
            return False
        if self._target is not None:
            return self.at(now) != self._target
        here = self.at(now)
        return not (here >= self.high and self._velocity > 0 or here <= self.low and self._velocity < 0)

    def _rebase(self) -> float:
        now = self._clock()
        self._start, self._t0, self._target = self.at(now), now, None
        return now

    def drive(self, velocity: float, duration_s: float) -> None:
        """Move at `velocity` (-1..1 of full speed) for `duration_s` seconds; 0 stops the axis."""
        now = self._rebase()
        self._velocity = velocity * self.full_speed
        self._until = now + duration_s if velocity else now

    def goto(self, target: float, speed: float) -> None:
        """Move to `target` (clamped to the range) at `speed` (0..1 of full speed)."""
        now = self._rebase()
        self._target = min(max(target, self.low), self.high)
        self._velocity = max(speed, MIN_SPEED_FRACTION) * self.full_speed
        self._until = now + abs(self._target - self._start) / self._velocity

    def halt(self) -> None:
        """Stop where the axis is now."""
        self.drive(0.0, 0.0)


class PtzHead:
    """Pan, tilt and zoom axes, the presets and the home position of one PTZ node."""

    def __init__(self, clock: Clock, max_presets: int = MAX_PRESETS) -> None:
        """At home (0, 0, wide), idle, with no presets."""
        self.clock = clock
        self.pan = Axis(*PAN_TILT_RANGE, PAN_TILT_FULL_SPEED, clock)
        self.tilt = Axis(*PAN_TILT_RANGE, PAN_TILT_FULL_SPEED, clock)
        self.zoom = Axis(*ZOOM_RANGE, ZOOM_FULL_SPEED, clock)
        self.max_presets = max_presets
        self.presets: dict[str, Preset] = {}
        self.home = Position(0.0, 0.0, 0.0)

    def position(self) -> Position:
        """Where the head points now."""
        now = self.clock()
        return Position(self.pan.at(now), self.tilt.at(now), self.zoom.at(now))

    def pan_tilt_moving(self) -> bool:
        """Whether pan or tilt is moving now."""
        now = self.clock()
        return self.pan.moving(now) or self.tilt.moving(now)

    def zoom_moving(self) -> bool:
        """Whether zoom is moving now."""
        return self.zoom.moving()

    def continuous(self, pan_tilt: tuple[float, float] | None, zoom: float | None, duration_s: float) -> None:
        """Move at these velocities for `duration_s`; an axis group given as None is left as it is."""
        if pan_tilt is not None:
            self.pan.drive(pan_tilt[0], duration_s)
            self.tilt.drive(pan_tilt[1], duration_s)
        if zoom is not None:
            self.zoom.drive(zoom, duration_s)

    def stop(self, pan_tilt: bool = True, zoom: bool = True) -> None:
        """Stop the chosen axis groups where they are."""
        if pan_tilt:
            self.pan.halt()
            self.tilt.halt()
        if zoom:
            self.zoom.halt()

    def move_to(
        self,
        pan_tilt: tuple[float, float] | None,
        zoom: float | None,
        pan_tilt_speed: float = 1.0,
        zoom_speed: float = 1.0,
    ) -> None:
        """Go to an absolute position (clamped to the ranges); None leaves that axis group alone."""
        if pan_tilt is not None:
            self.pan.goto(pan_tilt[0], pan_tilt_speed)
            self.tilt.goto(pan_tilt[1], pan_tilt_speed)
        if zoom is not None:
            self.zoom.goto(zoom, zoom_speed)

    def move_by(
        self,
        pan_tilt: tuple[float, float] | None,
        zoom: float | None,
        pan_tilt_speed: float = 1.0,
        zoom_speed: float = 1.0,
    ) -> None:
        """Move by a translation from where the head is; a target past a limit stops at the limit."""
        here = self.position()
        self.move_to(
            None if pan_tilt is None else (here.pan + pan_tilt[0], here.tilt + pan_tilt[1]),
            None if zoom is None else here.zoom + zoom,
            pan_tilt_speed,
            zoom_speed,
        )

    def go(self, position: Position, pan_tilt_speed: float = 1.0, zoom_speed: float = 1.0) -> None:
        """Go to a stored position (a preset or home)."""
        self.move_to((position.pan, position.tilt), position.zoom, pan_tilt_speed, zoom_speed)

    def slot_free(self) -> str | None:
        """The lowest preset token (1..max) not in use, or None when all are."""
        return next((str(n) for n in range(1, self.max_presets + 1) if str(n) not in self.presets), None)

    def is_slot(self, token: str) -> bool:
        """Whether `token` names one of the head's preset slots (1..max, in decimal)."""
        return token.isdigit() and token == str(int(token)) and 1 <= int(token) <= self.max_presets

    def save_preset(self, token: str, name: str | None) -> Preset:
        """Store the current position under `token` (a slot), keeping its old name when none is given."""
        old = self.presets.get(token)
        preset = Preset(token, name if name is not None else (old.name if old else None), self.position())
        self.presets[token] = preset
        return preset
