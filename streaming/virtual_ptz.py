"""Virtual cameras for tests and demos: a wide scene, whole (a panorama) or as a simulated PTZ camera sees it.

`VirtualCamera` is a `Source`: its reader thread renders a scene (a synthetic classroom of
`streaming.tracking.scenes`, or a video file) at its own pace and, when given a simulated
camera's position, crops it at that camera's pan / tilt / zoom (`streaming.tracking.optics`).
Commands sent to the simulator (by a technician, or by tracking) therefore change what the
camera shows next.  Every virtual camera reads the scene at the monotonic clock modulo the
scene's length, so a panorama and a PTZ camera on the same scene show the same moment.

Scene names (``scene:NAME`` and ``ptz:DEVICE?scene=NAME`` source URLs): ``podium`` (a teacher
walking along the podium, writing at the board, standing behind the desk), ``door`` (a
teacher who leaves by the door and comes back), ``students`` (the students' rows, three of them
standing up in turn), ``empty`` and ``empty-students`` (nobody, a flickering light); or the
path of a video file (played in a loop).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

from drivers.protocol.engine import Codec
from drivers.sim.model import Simulator
from streaming.source import Image, Source
from streaming.tracking.footage import FootageScene
from streaming.tracking.geometry import Box
from streaming.tracking.optics import Axis, PtzOptics, render_view
from streaming.tracking.scenes import EMPTY, LEAVE_AND_RETURN, PODIUM_WALK, FrontScene, Scene, StudentsScene

Position = Callable[[], tuple[float, float, float]]

SCENES: Mapping[str, Callable[[], Scene]] = {
    "podium": lambda: FrontScene(PODIUM_WALK),
    "door": lambda: FrontScene(LEAVE_AND_RETURN),
    "students": lambda: StudentsScene(),
    "empty": lambda: FrontScene(EMPTY, flicker=0.04),
    "empty-students": lambda: StudentsScene((), seated=False, flicker=0.04),
}
SCENE_EXPECTED = f"a scene ({', '.join(SCENES)}) or the path of a video file"


def scene_named(name: str) -> Scene:
    """A built-in scene by name, or a video file by path; ValueError naming what is expected."""
    if name in SCENES:
        return SCENES[name]()
    path = Path(name)
    if "/" in name and path.is_file():
        return FootageScene(path)
    raise ValueError(f"got {name!r}, expected {SCENE_EXPECTED}")


def is_scene_name(name: str) -> bool:
    """Whether `name` names a built-in scene or looks like a video file's path (checked when opened)."""
    return name in SCENES or "/" in name


class VirtualCamera(Source):
    """A scene as a camera: whole (`position` None) or cropped where a simulated PTZ camera points."""

    def __init__(
        self,
        name: str,
        scene: Scene,
        *,
        size: tuple[int, int] = (640, 360),
        fps: float = 10.0,
        position: Position | None = None,
        optics: PtzOptics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`position` gives the simulator's (pan, tilt, zoom) now; `optics` maps it on the scene."""
        super().__init__(name)
        if size[0] < 16 or size[1] < 16 or fps <= 0:
            raise ValueError(f"virtual camera {name!r}: bad size {size} or fps {fps}")
        if (position is None) != (optics is None):
            raise ValueError(f"virtual camera {name!r}: a position needs optics, and optics a position")
        self.scene = scene
        self.size = size
        self.fps = fps
        self.position = position
        self.optics = optics
        self._clock = clock

    def draw(self) -> Image:
        """The picture now (a new array)."""
        wide = self.scene.render(self._clock() % max(self.scene.duration, 1.0))
        if self.position is None or self.optics is None:
            width, height = self.scene.size
            return render_view(wide, Box(0.0, 0.0, float(width), float(height)), self.size)
        pan, tilt, zoom = self.position()
        return render_view(wide, self.optics.crop(pan, tilt, zoom, self.scene.size, self.size), self.size)

    def _run(self) -> None:
        """Draw at `fps` until stopping; a slow machine skips frames rather than falling behind."""
        self.connected = True
        period = 1.0 / self.fps
        due = time.monotonic()
        try:
            while not self.stopping:
                try:
                    self._publish(self.draw())
                    self.error = ""
                except (OSError, ValueError) as exc:  # a video file gone or unreadable
                    self.error = str(exc)
                due = max(due + period, time.monotonic())
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    break
        finally:
            self.connected = False


def aim_presets(simulator: Simulator, optics: PtzOptics, presets: Mapping[int, tuple[float, float, float]]) -> None:
    """Store presets in a simulated camera, each aimed at (u, v) of the wide scene at a magnification.

    What a technician does with the remote on a real camera, written into the simulator's preset
    memory (not every protocol can drive a camera to a position, Pelco's cannot); then the first
    preset given is recalled through the profile's own ``preset_recall``, so the camera starts there.
    """
    for number, (u, v, magnification) in presets.items():
        pan, tilt = optics.position_for(u, v)
        share = (magnification - 1.0) / max(1e-9, optics.max_zoom - 1.0)
        zoom = optics.zoom.low + share * (optics.zoom.high - optics.zoom.low)
        simulator.state.presets[number] = (
            _within(optics.pan, pan),
            _within(optics.tilt, tilt),
            _within(optics.zoom, zoom),
        )
    if presets:
        first = next(iter(presets))
        simulator.feed(Codec(simulator.profile).encode("preset_recall", {"n": first}))


def _within(axis: Axis, value: float) -> float:
    return max(axis.low, min(axis.high, value))
