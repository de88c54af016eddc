"""The closed loop, frame by frame on an injected clock: scene -> simulated camera -> tracker -> commands.

A `Rig` holds a camera profile's simulator (the same sans-IO model the ``simulate`` command
serves), renders what that camera sees of a scene at its current pan / tilt / zoom
(`optics`), feeds the picture to a `TeacherLoop`, encodes each command with the profile's
codec and feeds the bytes to the simulator, so tracking commands change what the tracker sees
next exactly as on the wire.  Commands take effect `latency_s` after the picture they answer
(a real camera is not instant).  Time is the rig's own: no sleeping, the same run every time.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from drivers.profile_model import Profile
from drivers.protocol.engine import Codec
from drivers.sim.model import Simulator
from streaming.source import Image
from streaming.tracking.follow import FollowSettings, PtzCommand, speed_ranges
from streaming.tracking.geometry import Box, Zone, Zones
from streaming.tracking.optics import PtzOptics, field_ranges, in_view, render_view
from streaming.tracking.quality import QualityMeter
from streaming.tracking.scenes import Scene
from streaming.tracking.target import FOLLOWING
from streaming.tracking.teacher import TeacherLoop

VIEW = (640, 360)
HOME_PRESET = 1


def home_zones(zones: Zones, optics: PtzOptics, wide: tuple[int, int], view: tuple[int, int] = VIEW) -> Zones:
    """Zones drawn on the wide picture, redrawn on the camera's home picture (as a technician would)."""
    crop = optics.crop(optics.pan.home, optics.tilt.home, optics.zoom.low, wide, view)
    return Zones(tuple(Zone(z.kind, in_view(z.box, crop, wide).clipped()) for z in zones.zones))


@dataclass
class RigRun:
    """What one run measured."""

    quality: QualityMeter
    costs: list[float] = field(default_factory=list)  # CPU seconds of analysis per frame
    commands: list[tuple[float, str]] = field(default_factory=list)

    @property
    def cost_ms(self) -> float:
        """Mean analysis CPU time per frame, milliseconds."""
        return 1000.0 * sum(self.costs) / len(self.costs) if self.costs else 0.0


class Rig:
    """A simulated PTZ camera looking at a scene, and the tracking loop driving it (see the module's docstring)."""

    def __init__(
        self,
        scene: Scene,
        profile: Profile,
        *,
        fps: float = 10.0,
        latency_s: float = 0.1,
        zones: Zones | None = None,
        follow: Mapping[str, object] | None = None,
        optics: PtzOptics | None = None,
        fixed: bool = False,
    ) -> None:
        """`zones` on the home picture (default: the scene's own, redrawn there); `fixed`: a camera that never moves."""
        self.scene = scene
        self.fps = fps
        self.latency_s = latency_s
        self.fixed = fixed
        self.now = 0.0
        ranges = field_ranges(profile)
        self.optics = optics or PtzOptics.for_profile(ranges)
        home = {"pan": self.optics.pan.home, "tilt": self.optics.tilt.home, "zoom": self.optics.zoom.low}
        self.sim = Simulator(profile, clock=lambda: self.now, initial=home)
        self.codec = Codec(profile)
        self._send(PtzCommand("preset_set", (("n", HOME_PRESET),)))
        speeds = speed_ranges(ranges)
        settings: dict[str, object] = {"pan_speed": speeds["pan_speed"], "tilt_speed": speeds["tilt_speed"]}
        settings.update(follow or {})
        if zones is None:
            zones = home_zones(getattr(scene, "zones", Zones()), self.optics, scene.size)
        self.loop = TeacherLoop(FollowSettings(HOME_PRESET, **settings), zones, settle_s=0.0)  # type: ignore[arg-type]
        self._pending: list[tuple[float, PtzCommand]] = []
        self.last_view: Image | None = None

    def _send(self, command: PtzCommand) -> None:
        self.sim.feed(self.codec.encode(command.name, command.kwargs))

    def view(self) -> tuple[Image, Box]:
        """What the camera sees now, and the crop of the wide picture it is."""
        pan, tilt, zoom = self.sim.position(self.now)
        crop = self.optics.crop(pan, tilt, zoom, self.scene.size, VIEW)
        return render_view(self.scene.render(self.now), crop, VIEW), crop

    def run(self, seconds: float, *, start: float = 0.0) -> RigRun:
        """Run the loop for `seconds` of scene time from `start`; the figures measured."""
        run = RigRun(QualityMeter())
        for i in range(int(round(seconds * self.fps))):
            self.now = start + i / self.fps
            while self._pending and self._pending[0][0] <= self.now:
                self._send(self._pending.pop(0)[1])
            image, crop = self.view()
            self.last_view = image
            commands: list[PtzCommand] = []
            if not self.fixed:
                started = time.thread_time()
                commands = self.loop.feed(image, self.now)
                run.costs.append(time.thread_time() - started)
                self._pending += [(self.now + self.latency_s, c) for c in commands]
                run.commands += [(self.now, str(c)) for c in commands]
            truth = self.scene.truth(self.now)
            seen = self.loop.sighting
            followed = seen.box if seen.state == FOLLOWING and not self.fixed else None
            shown = in_view(truth, crop, self.scene.size) if truth is not None else None
            run.quality.feed(self.now, shown, followed, len(commands))
        return run
