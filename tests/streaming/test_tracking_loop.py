"""The teacher camera's closed loop on rendered classrooms, frame by frame on the rig's own clock.

Each test runs a scene through a simulated camera of a real profile: the tracking commands are
encoded with the profile and fed to its simulator as bytes, and what the camera then sees is
rendered from its new pan / tilt / zoom.  The figures asserted are behaviour (where the teacher
is in the picture, which commands went out), never how long anything took.
"""

from __future__ import annotations

import pytest

from drivers.profile import find_profile
from streaming.director import Director, Rule
from streaming.tracking.rig import Rig, RigRun
from streaming.tracking.scenes import EMPTY, LEAVE_AND_RETURN, PODIUM_WALK, STANDING_STILL, FrontScene, Scene

CENTRED_GOAL = 0.80  # the goal on the synthetic podium walk
STILL_COMMANDS_GOAL = 6  # per minute, while the target stands still


def run(scene: Scene, profile: str = "sony-visca", seconds: float | None = None, **kw: object) -> tuple[Rig, RigRun]:
    rig = Rig(scene, find_profile(profile), **kw)  # type: ignore[arg-type]
    return rig, rig.run(scene.duration if seconds is None else seconds)


def test_a_walking_teacher_stays_centred_far_more_often_than_in_a_fixed_wide_shot() -> None:
    scene = FrontScene(PODIUM_WALK)
    _, followed = run(scene)
    _, fixed = run(scene, fixed=True)
    assert followed.quality.centred >= CENTRED_GOAL
    assert followed.quality.centred >= fixed.quality.centred + 0.25
    assert fixed.quality.commands == 0


@pytest.mark.parametrize("profile", ["pelco-d"])
def test_a_camera_of_another_protocol_follows_just_as_well(profile: str) -> None:
    _, followed = run(FrontScene(PODIUM_WALK), profile)
    assert followed.quality.centred >= CENTRED_GOAL
    assert any(c.startswith("move") for _, c in followed.commands)


def test_a_teacher_standing_still_costs_next_to_no_commands_once_framed() -> None:
    scene = FrontScene(STANDING_STILL)
    _, still = run(scene)
    framed_after = 15.0
    later = [c for t, c in still.commands if t >= framed_after]
    minutes = (scene.duration - framed_after) / 60
    assert len(later) <= STILL_COMMANDS_GOAL * minutes
    assert still.quality.centred >= 0.9


def test_a_teacher_who_leaves_by_the_door_sends_the_camera_home_at_once_and_is_found_again() -> None:
    scene = FrontScene(LEAVE_AND_RETURN)  # out by the door from 13 s, back in at 23 s
    _, run_ = run(scene, follow={"home_after_s": 60.0})
    homes = [t for t, c in run_.commands if c.startswith("preset_recall")]
    assert homes and 13.0 <= homes[0] <= 20.0  # not the 60 s a teacher merely hidden would get
    assert len(run_.quality.reacquire_s) == 1 and run_.quality.reacquire_s[0] < 5.0
    assert run_.quality.centred >= CENTRED_GOAL


def test_an_empty_room_with_a_flickering_light_moves_nothing_and_cues_nothing() -> None:
    rig, empty = run(FrontScene(EMPTY, flicker=0.05))
    assert empty.commands == []
    assert rig.loop.status.state == "searching"
    assert not rig.loop.status.writing


def test_writing_at_the_board_cues_the_blackboard_once_and_standing_before_it_facing_the_room_does_not() -> None:
    scene = FrontScene(PODIUM_WALK)  # faces the room at the board 0-4 s, writes 30-38 s
    rig = Rig(scene, find_profile("sony-visca"))
    director = Director([Rule("teacher writing", "blackboard"), Rule("always", "teacher")], hold_s=2.0)
    writing_at: list[float] = []
    shown: list[str] = []
    for i in range(int(scene.duration * 10)):
        rig.run(0.1, start=i / 10)
        director.set_cue("teacher writing", rig.loop.status.writing)
        shown.append(director.choose({"teacher": 0.0, "blackboard": 0.0}, rig.now))
        if rig.loop.status.writing:
            writing_at.append(rig.now)
    assert writing_at and writing_at[0] >= 31.0 and writing_at[-1] <= 42.0
    cuts = [b for a, b in zip(shown, shown[1:], strict=False) if a != b]
    assert cuts == ["blackboard", "teacher"]
    assert director.telemetry()["rule"] == "always"
