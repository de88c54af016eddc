"""The teacher camera's loop: its own picture in, its commands and the blackboard cue out (sans-IO).

`TeacherLoop` joins the tracker, the follower, the zones and the blackboard watch:

- a person may become the target only inside the podium zone and outside the doors (someone
  passing the door is not the teacher);
- a target last seen in a door zone has left the room: the camera goes home at once instead of
  waiting `home_after_s`;
- after a jump to the home preset, pictures are ignored for `settle_s` (the camera is still
  travelling) and the tracker starts again from the home picture, where the zones are drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from streaming.source import Image
from streaming.tracking.board import BoardWatch, facing_away
from streaming.tracking.follow import ZOOM_STOP, Follower, FollowSettings, PtzCommand
from streaming.tracking.geometry import Box, Zones
from streaming.tracking.target import FOLLOWING, Sighting, TargetTracker, TrackerSettings


@dataclass(frozen=True, slots=True)
class LoopStatus:
    """What telemetry and the page say about one tracked camera."""

    state: str  # settling | searching | following | holding (unconfirmed, not yet lost)
    box: Box | None = None
    zone: str = ""  # podium | blackboard | door | "" (where the teacher is on the home picture)
    writing: bool = False
    commands_per_min: float = 0.0

    def to_dict(self) -> dict[str, object]:
        """For telemetry."""
        return {
            "state": self.state,
            "box": self.box.to_list() if self.box is not None else None,
            "zone": self.zone,
            "writing": self.writing,
            "commands_per_min": round(self.commands_per_min, 1),
        }


class TeacherLoop:
    """One PTZ camera following the teacher in its own picture (see the module's docstring)."""

    def __init__(
        self,
        follow: FollowSettings,
        zones: Zones | None = None,
        tracker: TrackerSettings | None = None,
        *,
        settle_s: float = 2.0,
        board_s: float = 3.0,
    ) -> None:
        """Start as if the camera had just been sent home: the first pictures wait `settle_s`."""
        self.zones = zones or Zones()
        self.tracker = TargetTracker(tracker, allowed=self._may_follow)
        self.follower = Follower(follow)
        self.board = BoardWatch(self.zones, board_s=board_s)
        self.settle_s = settle_s
        self.sighting = Sighting("searching")
        self._settled_at: float | None = None
        self._last_door = False
        self._last_t: float | None = None
        self.status = LoopStatus("settling")

    def _may_follow(self, home_box: Box | None) -> bool:
        if home_box is None:
            return True  # the camera's path is unknown: anyone will do rather than no one
        x, feet = home_box.cx, home_box.bottom
        in_door = any(z.box.contains(x, feet) for z in self.zones.of("door"))
        return self.zones.inside("podium", x, feet) and not in_door

    def go_home(self, now: float) -> list[PtzCommand]:
        """Send the camera to its home preset and search from there (start, switch on, teacher gone)."""
        self.follower.reset()
        self.tracker.reset(home=False)
        self._settled_at = now + self.settle_s
        self.sighting = Sighting("searching")
        self.board.writing = False
        return [PtzCommand("preset_recall", (("n", self.follower.settings.home_preset),))]

    def resume(self) -> list[PtzCommand]:
        """Someone moved the camera by hand: search again from wherever it is (zones unknown until home).

        Returns the command that stops a zoom tracking had started (their pan is theirs to stop).
        """
        release = [ZOOM_STOP] if self.follower.state.zooming else []
        self.follower.reset(away=True)
        self.tracker.reset(home=False)
        self._settled_at = None
        self.board.writing = False
        return release

    def halt(self, now: float) -> list[PtzCommand]:
        """Stop the camera where it is (tracking switched off)."""
        self.board.writing = False
        self.status = LoopStatus("off")
        return self.follower.halt(now)

    def feed(self, image: Image, now: float) -> list[PtzCommand]:
        """One picture of the camera, taken at `now`; the commands to send for it."""
        if self._settled_at is not None:
            if now < self._settled_at:
                self.status = LoopStatus("settling")
                return []
            self._settled_at = None
            self.tracker.reset(home=True)
        sighting = self.tracker.feed(image, now)
        zone = self._zone(sighting.home_box)
        if sighting.box is not None and sighting.seen:
            self._last_door = zone == "door"
        if sighting.state != FOLLOWING and self._last_door:
            sighting = replace(sighting, lost_for_s=self.follower.settings.home_after_s)  # left by the door
        self.sighting = sighting
        self._observe(now)
        commands = self.follower.step(sighting, now)
        if self.follower.went_home:
            self._last_door = False
            self.tracker.reset(home=False)
            self._settled_at = now + self.settle_s
        turned = facing_away(image, sighting.box) if sighting.box is not None and sighting.seen else None
        writing = self.board.feed(sighting.home_box if sighting.box is not None else None, turned, now)
        state = sighting.state if sighting.seen or sighting.box is None else "holding"
        rate = self.follower.commands_in(60.0, now)
        self.status = LoopStatus(state, sighting.box, zone, writing, float(rate))
        return commands

    def _observe(self, now: float) -> None:
        """Tell the follower how fast the picture moved (what its speed units do at this zoom)."""
        motion, last = self.tracker.last_motion, self._last_t
        self._last_t = now
        if motion is None or not motion.trusted or last is None or now <= last:
            return
        if abs(motion.scale - 1.0) > 0.003:
            self.follower.zoomed(motion.scale)  # a speed unit moves a magnified picture faster
            return
        self.follower.observe(abs(motion.shift[0]) / self.tracker.settings.width / (now - last), now)

    def _zone(self, home_box: Box | None) -> str:
        if home_box is None:
            return ""
        found = self.zones.at(home_box.cx, home_box.bottom)
        for kind in ("door", "blackboard", "podium"):
            if kind in found:
                return kind
        return ""
