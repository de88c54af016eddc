"""The virtual PTZ camera: a simulated camera's commands move what its picture shows."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from drivers.profile import find_profile
from drivers.protocol.engine import Codec
from drivers.sim.model import Simulator
from streaming.tracking.motion import EgoMotion
from streaming.tracking.optics import PtzOptics, field_ranges
from streaming.tracking.scenes import PODIUM_WALK, FrontScene
from streaming.virtual_ptz import SCENES, VirtualCamera, aim_presets, scene_named


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def camera(profile: str = "sony-visca") -> tuple[VirtualCamera, Simulator, Clock]:
    clock = Clock()
    sim = Simulator(find_profile(profile), clock=clock)
    optics = PtzOptics.for_profile(field_ranges(sim.profile))
    aim_presets(sim, optics, {1: (0.5, 0.5, 1.0)})  # start looking at the middle of the room
    scene = FrontScene(PODIUM_WALK)
    return VirtualCamera("teacher", scene, position=sim.position, optics=optics, clock=clock), sim, clock


def send(sim: Simulator, command: str, **args: object) -> None:
    sim.feed(Codec(sim.profile).encode(command, args))


def motion_between(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    """(horizontal shift in pixels, magnification) from `before` to `after`, measured on the pictures."""
    ego = EgoMotion()
    grey = [cv2.cvtColor(cv2.resize(p, (320, 180)), cv2.COLOR_BGR2GRAY) for p in (before, after)]
    ego.feed(grey[0])
    found = ego.feed(grey[1])
    assert found.trusted
    return found.shift[0], found.scale


@pytest.mark.parametrize("profile", ["sony-visca", "pelco-d"])
def test_turning_the_camera_right_moves_its_picture_left_and_zooming_in_magnifies_it(profile: str) -> None:
    cam, sim, clock = camera(profile)
    still = cam.draw()
    speeds = {name: min(8, int(sim.profile.fields[name].max)) for name in ("pan_speed", "tilt_speed")}
    send(sim, "move", direction="right", **speeds)
    clock.now = 0.5
    turned = cam.draw()
    shift, _ = motion_between(still, turned)
    assert shift < -3  # the room slides left as the camera turns right
    send(sim, "stop")
    send(sim, "zoom_tele")
    before = cam.draw()
    clock.now = 1.5
    _, scale = motion_between(before, cam.draw())
    assert scale > 1.05


def test_a_camera_stopped_shows_the_same_room() -> None:
    cam, sim, clock = camera()
    first = cam.draw()
    clock.now = 0.01  # same moment of the scene, camera idle
    shift, scale = motion_between(first, cam.draw())
    assert abs(shift) < 0.5 and abs(scale - 1) < 0.01


def test_aimed_presets_bring_the_camera_back_to_where_they_were_stored() -> None:
    cam, sim, _ = camera()
    assert cam.optics is not None
    aim_presets(sim, cam.optics, {7: (0.3, 0.6, 2.0), 1: (0.5, 0.5, 1.0)})
    send(sim, "preset_recall", n=7)
    pan, tilt, zoom = sim.position()
    crop = cam.optics.crop(pan, tilt, zoom, cam.scene.size, cam.size)
    assert crop.cx / cam.scene.size[0] == pytest.approx(0.3, abs=0.01)
    assert crop.cy / cam.scene.size[1] == pytest.approx(0.6, abs=0.01)
    assert cam.optics.magnification(zoom) == pytest.approx(2.0, abs=0.05)


def test_the_simulators_position_is_read_without_changing_it() -> None:
    clock = Clock()
    sim = Simulator(find_profile("sony-visca"), clock=clock)
    send(sim, "move", direction="left", pan_speed=4, tilt_speed=4)
    clock.now = 2.0
    seen = sim.position()
    assert seen[0] < 0 and sim.state.pan == 0.0  # extrapolated, not stored
    send(sim, "stop")
    assert sim.state.pan == pytest.approx(seen[0])


def test_a_panorama_shows_the_whole_scene_and_the_source_delivers_frames() -> None:
    scene = scene_named("students")
    panorama = VirtualCamera("students", scene, size=(320, 180), fps=20.0)
    expected = cv2.resize(scene.render(0.0), (320, 180), interpolation=cv2.INTER_AREA)
    picture = VirtualCamera("students", scene, size=(320, 180), clock=lambda: 0.0).draw()
    assert float(np.abs(picture.astype(int) - expected.astype(int)).mean()) < 3
    panorama.start()
    try:
        frame = panorama.wait_newer(2, timeout=10.0)
        assert frame is not None and frame.index > 2 and frame.size == (320, 180)
        assert panorama.health().connected
    finally:
        panorama.stop()


def test_unknown_scenes_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="podium"):
        scene_named("nowhere")
    assert set(SCENES) >= {"podium", "students", "empty"}
