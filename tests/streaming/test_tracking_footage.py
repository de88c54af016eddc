"""Following one real pedestrian in Debian's vtest.avi (opencv-doc) with a simulated PTZ camera."""

from __future__ import annotations

import pytest

from drivers.profile import find_profile
from streaming.tracking.footage import VTEST, VTEST_WALKS, FootageScene, Walk
from streaming.tracking.geometry import Box, Zone, Zones
from streaming.tracking.optics import PtzOptics, field_ranges
from streaming.tracking.rig import Rig, home_zones

FOOTAGE_GOAL = 0.60  # the goal: share of frames with the pedestrian centred

pytestmark = pytest.mark.skipif(
    not VTEST.is_file(), reason=f"{VTEST} is missing: install Debian's opencv-doc (scripts/system-deps --test)"
)


def walker_zone(walk: Walk, size: tuple[int, int]) -> Zones:
    """A podium zone just around where the walker starts (the one person the camera should take)."""
    _, cx, cy, h = walk.keyframes[0]
    width, height = size
    return Zones(
        (Zone("podium", Box((cx - 0.35 * h) / width, (cy - 0.9 * h) / height, 0.7 * h / width, 1.8 * h / height)),)
    )


@pytest.mark.parametrize("walk", VTEST_WALKS, ids=lambda w: w.name)
def test_the_camera_keeps_one_real_walker_centred_among_others(walk: Walk) -> None:
    scene = FootageScene(VTEST, walk)
    try:
        profile = find_profile("sony-visca")
        zones = home_zones(walker_zone(walk, scene.size), PtzOptics.for_profile(field_ranges(profile)), scene.size)
        results = []
        for fixed in (False, True):
            rig = Rig(scene, profile, zones=zones, fixed=fixed)
            results.append(rig.run(scene.duration).quality.centred)
        followed, fixed_shot = results
        assert followed >= FOOTAGE_GOAL
        assert followed > fixed_shot + 0.2
    finally:
        scene.close()
