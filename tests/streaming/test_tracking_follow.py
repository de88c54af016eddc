"""The PTZ follower, sans-IO: sightings in, the shared camera vocabulary out."""

from __future__ import annotations

import pytest

from streaming.tracking.follow import STOP, ZOOM_STOP, Follower, FollowSettings, PtzCommand
from streaming.tracking.geometry import Box
from streaming.tracking.target import FOLLOWING, SEARCHING, Sighting

HOME = 5


def seen(cx: float, cy: float = 0.5, h: float = 0.6, *, lost_for: float = 0.0, home: Box | None = None) -> Sighting:
    box = Box(cx - 0.2 * h, cy - h / 2, 0.4 * h, h)
    return Sighting(FOLLOWING, box, lost_for == 0.0, lost_for, 0.0, home)


def follower(**kw: object) -> Follower:
    return Follower(FollowSettings(HOME, pan_speed=(1, 24), tilt_speed=(1, 20), **kw))  # type: ignore[arg-type]


def moves(commands: list[PtzCommand]) -> list[dict[str, int | str]]:
    return [c.kwargs for c in commands if c.name == "move"]


def test_nothing_moves_while_the_target_stays_inside_the_dead_zone() -> None:
    f = follower(zoom=False)
    sent = [c for i in range(50) for c in f.step(seen(0.5 + 0.08 * (-1) ** i), i * 0.1)]
    assert sent == []


def test_the_camera_turns_towards_the_target_faster_the_further_it_is() -> None:
    near, far = follower(zoom=False), follower(zoom=False)
    (slow,) = moves(near.step(seen(0.65), 0.0))
    (fast,) = moves(far.step(seen(0.1), 0.0))
    assert slow["direction"] == "right" and fast["direction"] == "left"
    assert int(fast["pan_speed"]) > int(slow["pan_speed"]) >= 1
    assert int(fast["pan_speed"]) <= 24  # within the profile's range


def test_once_moving_it_keeps_going_until_the_target_is_close_to_the_middle_then_stops_once() -> None:
    f = follower(zoom=False)
    assert moves(f.step(seen(0.7), 0.0))
    assert f.step(seen(0.55), 0.1) == []  # inside the dead zone, but not yet settled: keep turning
    assert f.step(seen(0.52), 0.2) == [STOP]
    assert f.step(seen(0.51), 0.3) == []


def test_small_changes_of_error_do_not_resend_the_move() -> None:
    f = follower(zoom=False)
    sent = [c for i in range(40) for c in f.step(seen(0.75 + 0.01 * (i % 3)), i * 0.1)]
    assert len(sent) == 1


def test_tilt_follows_a_target_high_in_the_picture() -> None:
    f = follower(zoom=False)
    (move,) = moves(f.step(seen(0.5, cy=0.2), 0.0))
    assert move["direction"] == "up"


def test_a_small_target_is_zoomed_in_on_once_it_has_been_centred_a_while_and_zooming_stops_at_the_height() -> None:
    f = follower(zoom_after_s=1.0)
    early = [c for i in range(5) for c in f.step(seen(0.5, h=0.3), i * 0.1)]
    assert early == []
    later = [c for i in range(5, 15) for c in f.step(seen(0.5, h=0.3), i * 0.1)]
    assert later == [PtzCommand("zoom_tele")]
    assert f.step(seen(0.5, h=0.62), 1.6) == [ZOOM_STOP]


def test_a_target_nearing_the_edge_widens_the_picture() -> None:
    f = follower()
    sent = f.step(seen(0.9, h=0.7), 0.0)
    assert PtzCommand("zoom_wide") in sent


def test_unconfirmed_target_stops_the_camera_and_lost_target_sends_it_home_once() -> None:
    f = follower(zoom=False, home_after_s=5.0)
    assert moves(f.step(seen(0.8), 0.0))
    assert f.step(seen(0.8, lost_for=1.0), 1.0) == [STOP]
    assert f.step(Sighting(SEARCHING), 2.0) == []
    sent = [c for i in range(30, 100) for c in f.step(Sighting(SEARCHING), i * 0.1)]
    assert sent == [PtzCommand("preset_recall", (("n", HOME),))]
    assert f.went_home is False  # only the step that sent it says so


def test_a_camera_that_never_moved_is_not_sent_home() -> None:
    f = follower(home_after_s=1.0)
    assert [c for i in range(50) for c in f.step(Sighting(SEARCHING), i * 0.1)] == []


def test_settings_that_cannot_work_are_refused() -> None:
    with pytest.raises(ValueError):
        FollowSettings(HOME, dead_zone=0.05, settle=0.1)
