"""The PTZ controller: a sighting in, the camera commands that keep the target framed out (sans-IO).

It speaks the shared camera vocabulary every profile implements (``move``, ``stop``,
``zoom_tele``, ``zoom_wide``, ``zoom_stop``, ``preset_recall``), so any PTZ camera follows:

- a dead zone: nothing moves while the target's centre stays within `dead_zone` of the middle;
  once moving, the camera keeps going until it is within `settle` (hysteresis: no dithering);
- speed proportional to the error: the picture should move at `gain` picture widths per second
  per unit of error (plus the target's own speed, so a walking teacher is not trailed).  Speed
  units differ from one camera to the next, and their effect with the zoom, so the follower
  measures how fast the picture moves per speed unit while it turns (`observe`) and sets the
  speed from that; until it knows, it starts from a share of the profile's range.  The speed is
  changed only when the new one differs clearly, not more often than every `min_interval_s`;
- zoom to keep the target's height near `height` of the picture, only once the target has been
  seen within the dead zone for `zoom_after_s` (zooming in on someone off-centre loses them),
  and out again when the target nears a side or reaches the top or bottom (cut off);
- the target unconfirmed for `stop_after_s`: stop; lost for `home_after_s`: back to the home
  preset, once (and only if it moved since it was last there).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from streaming.tracking.geometry import Box
from streaming.tracking.target import SEARCHING, Sighting


@dataclass(frozen=True, slots=True)
class PtzCommand:
    """One command of the shared camera vocabulary with its arguments."""

    name: str
    args: tuple[tuple[str, int | str], ...] = ()

    @property
    def kwargs(self) -> dict[str, int | str]:
        """The arguments as a mapping, as a driver takes them."""
        return dict(self.args)

    def __str__(self) -> str:
        """``move direction=left pan_speed=6``."""
        return " ".join([self.name, *(f"{k}={v}" for k, v in self.args)])


STOP = PtzCommand("stop")
FIRST_GUESS = 2.5  # before the speed units are measured: error x this x the top speed
LATENCY_S = 0.3  # after a speed change, how long before the picture shows it
FEED_FORWARD = 0.8  # share of the target's own speed the camera matches (the rest is left to the error)
ZOOM_STOP = PtzCommand("zoom_stop")


@dataclass(frozen=True, slots=True)
class FollowSettings:
    """How the camera follows (see the module's docstring); speeds are the profile's own units."""

    home_preset: int
    dead_zone: float = 0.10
    settle: float = 0.04
    tilt_dead_zone: float = 0.18
    gain: float = 1.5
    pan_speed: tuple[int, int] = (1, 24)
    tilt_speed: tuple[int, int] = (1, 20)
    min_interval_s: float = 0.4
    height: float = 0.6
    height_band: float = 0.12
    zoom: bool = True
    zoom_after_s: float = 1.5
    stop_after_s: float = 0.6
    home_after_s: float = 8.0

    def __post_init__(self) -> None:
        """Reject settings that cannot work (the config checks them first, key by key)."""
        if not 0 < self.settle < self.dead_zone < 0.5:
            raise ValueError("follow: expected 0 < settle < dead_zone < 0.5")
        if self.pan_speed[0] > self.pan_speed[1] or self.tilt_speed[0] > self.tilt_speed[1]:
            raise ValueError("follow: a speed range runs backwards")


@dataclass
class _State:
    direction: str = ""  # the move under way ("" when still)
    speed: int = 0
    zooming: str = ""  # tele | wide | edge (widening while the target nears an edge) | ""
    changed_at: float = -1e9  # when the move last changed
    still_since: float | None = None  # target centred and camera still since
    lost_at: float | None = None
    homed: bool = False
    moved: bool = False  # the camera moved or zoomed since it was last sent home
    sent: list[float] = field(default_factory=list)  # when each command was sent (rate)
    rate: float | None = None  # measured picture widths per second per pan speed unit


class Follower:
    """Keeps one target framed with one PTZ camera (see the module's docstring)."""

    def __init__(self, settings: FollowSettings) -> None:
        """Nothing is sent until the first `step`."""
        self.settings = settings
        self.state = _State()
        self.went_home = False  # set by the step that recalled the home preset (the tracker resets)

    def reset(self, *, away: bool = False) -> None:
        """Forget motion and loss (tracking switched off and on again); `away`: the camera is not at home."""
        self.state = _State(moved=away)

    def commands_in(self, window_s: float, now: float) -> int:
        """How many commands were sent in the last `window_s` seconds."""
        return sum(1 for t in self.state.sent if now - t <= window_s)

    def observe(self, picture_speed: float, now: float) -> None:
        """The picture's measured horizontal speed (widths per second) this frame, to learn what a speed unit does."""
        state = self.state
        turning = state.direction.endswith(("left", "right")) and not state.zooming
        if not turning or state.speed <= 0 or now - state.changed_at < LATENCY_S or picture_speed <= 0:
            return
        sample = picture_speed / state.speed
        state.rate = sample if state.rate is None else 0.8 * state.rate + 0.2 * sample

    def zoomed(self, scale: float) -> None:
        """The picture was magnified by `scale` since the last frame: a speed unit now moves it that much faster."""
        if self.state.rate is not None:
            self.state.rate *= scale

    def halt(self, now: float) -> list[PtzCommand]:
        """Stop whatever is moving (tracking switched off)."""
        out = self._halt()
        self._mark(out, now)
        return out

    def step(self, sighting: Sighting, now: float) -> list[PtzCommand]:
        """The commands for this frame (often none)."""
        self.went_home = False
        s = self.settings
        if sighting.box is None or sighting.lost_for_s > s.stop_after_s:
            out = self._halt()
            out += self._maybe_home(sighting, now)
        else:
            self.state.lost_at, self.state.homed = None, False
            out = self._pan(sighting, now) + self._zoom(sighting, now)
        self._mark(out, now)
        return out

    def _mark(self, out: list[PtzCommand], now: float) -> None:
        if any(c.name in ("move", "zoom_tele", "zoom_wide") for c in out):
            self.state.moved = True
        self.state.sent += [now] * len(out)
        self.state.sent = [t for t in self.state.sent if now - t <= 120.0]

    def _halt(self) -> list[PtzCommand]:
        out: list[PtzCommand] = []
        if self.state.direction:
            out.append(STOP)
        if self.state.zooming:
            out.append(ZOOM_STOP)
        self.state.direction, self.state.speed, self.state.zooming = "", 0, ""
        self.state.still_since = None
        return out

    def _maybe_home(self, sighting: Sighting, now: float) -> list[PtzCommand]:
        state = self.state
        if sighting.state != SEARCHING:
            return []
        if state.lost_at is None:
            state.lost_at = now - sighting.lost_for_s
        if state.homed or not state.moved or now - state.lost_at < self.settings.home_after_s:
            return []
        state.homed, state.moved = True, False
        self.went_home = True
        return [PtzCommand("preset_recall", (("n", self.settings.home_preset),))]

    def _pan(self, sighting: Sighting, now: float) -> list[PtzCommand]:
        s, state = self.settings, self.state
        box = sighting.box
        assert box is not None
        ex, ey = box.cx - 0.5, box.cy - 0.5
        panning = state.direction.endswith(("left", "right"))
        tilting = state.direction.startswith(("up", "down"))
        # Where the picture should go: back to the middle, plus along with a target that walks on.
        pursue = s.gain * ex + FEED_FORWARD * sighting.speed
        keep_pace = panning and state.rate is not None and abs(pursue) > s.gain * s.settle
        horizontal = abs(ex) > (s.settle if panning else s.dead_zone) or keep_pace
        vertical = abs(ey) > (s.settle * 2 if tilting else s.tilt_dead_zone)
        sign = pursue if panning and state.rate is not None else ex
        direction = ("up" if ey < 0 else "down") * vertical + ("left" if sign < 0 else "right") * horizontal
        if not direction:
            if state.direction:
                state.direction, state.speed, state.changed_at = "", 0, now
                return [STOP]
            return []
        speed = self._speed(ex, pursue) if horizontal else self._first_guess(ey)
        changed = direction != state.direction
        step = abs(speed - state.speed) >= max(2, 0.25 * state.speed)
        if not (changed or step) or (not changed and now - state.changed_at < s.min_interval_s):
            return []
        state.direction, state.speed, state.changed_at = direction, speed, now
        tilt_low, tilt_high = s.tilt_speed
        tilt = max(tilt_low, min(tilt_high, round(FIRST_GUESS * abs(ey) * tilt_high)))
        return [PtzCommand("move", (("direction", direction), ("pan_speed", speed), ("tilt_speed", tilt)))]

    def _first_guess(self, error: float) -> int:
        low, high = self.settings.pan_speed
        return max(low, min(high, round(FIRST_GUESS * abs(error) * high)))

    def _speed(self, error: float, pursue: float) -> int:
        """The pan speed that moves the picture at `pursue` widths per second (a first guess until measured)."""
        low, high = self.settings.pan_speed
        rate = self.state.rate
        if rate is None or rate <= 0:
            return self._first_guess(error)
        return max(low, min(high, round(abs(pursue) / rate)))

    def _zoom(self, sighting: Sighting, now: float) -> list[PtzCommand]:
        s, state = self.settings, self.state
        box = sighting.box
        assert box is not None
        if not s.zoom:
            return []
        if state.zooming:
            off_centre = abs(box.cx - 0.5)
            if state.zooming == "edge":  # widened because the target neared an edge: until it is well inside
                done = (off_centre < 0.2 and not _cut(box, 0.08)) or box.h < s.height - s.height_band
            elif state.zooming == "tele":
                done = box.h >= s.height or off_centre > 1.5 * s.dead_zone or _cut(box, 0.03)
            else:
                done = box.h <= s.height
            if done:
                state.zooming, state.still_since = "", now
                return [ZOOM_STOP]
            return []
        big = box.h > s.height - s.height_band
        if (abs(box.cx - 0.5) > 0.32 and big) or (_cut(box, 0.03) and box.h > 0.5 * s.height):
            state.zooming = "edge"  # nearly out of the picture, or cut by its top or bottom: widen
            return [PtzCommand("zoom_wide")]
        if not sighting.seen or abs(box.cx - 0.5) > s.dead_zone:
            state.still_since = None
            return []
        if state.still_since is None:
            state.still_since = now
        if now - state.still_since < s.zoom_after_s:
            return []
        if box.h < s.height - s.height_band:
            state.zooming = "tele"
            return [PtzCommand("zoom_tele")]
        if box.h > s.height + s.height_band:
            state.zooming = "wide"
            return [PtzCommand("zoom_wide")]
        return []


def _cut(box: Box, margin: float) -> bool:
    """The box reaches the picture's top or bottom (within `margin`): the person may be cut off there."""
    return box.y < margin or box.bottom > 1.0 - margin


def speed_ranges(fields: Mapping[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    """``pan_speed`` / ``tilt_speed`` ranges of a profile (at least 1: speed 0 stands still on some cameras)."""
    out = {}
    for name in ("pan_speed", "tilt_speed"):
        low, high = fields.get(name, (1, 8))
        out[name] = (max(1, low), max(1, high))
    return out
