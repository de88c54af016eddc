"""The simulated PTZ head (sans-IO) on a fake clock: velocity, limits, timeouts, targets, presets."""

from __future__ import annotations

import pytest

from drivers.sim.onvif.ptz import MAX_PRESETS, PAN_TILT_FULL_SPEED, ZOOM_FULL_SPEED, Position, PtzHead


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def head(clock: FakeClock) -> PtzHead:
    return PtzHead(clock)


def test_a_new_head_is_at_home_and_idle(head: PtzHead) -> None:
    assert head.position() == Position(0.0, 0.0, 0.0)
    assert not head.pan_tilt_moving() and not head.zoom_moving()


def test_velocity_moves_the_position_over_time(head: PtzHead, clock: FakeClock) -> None:
    head.continuous((0.5, -0.25), 0.5, duration_s=10)
    assert head.pan_tilt_moving() and head.zoom_moving()
    clock.advance(0.4)
    here = head.position()
    assert here.pan == pytest.approx(0.5 * PAN_TILT_FULL_SPEED * 0.4)
    assert here.tilt == pytest.approx(-0.25 * PAN_TILT_FULL_SPEED * 0.4)
    assert here.zoom == pytest.approx(0.5 * ZOOM_FULL_SPEED * 0.4)


def test_the_timeout_ends_a_continuous_move(head: PtzHead, clock: FakeClock) -> None:
    head.continuous((1.0, 0.0), None, duration_s=0.5)
    clock.advance(5)
    assert head.position().pan == pytest.approx(0.5 * PAN_TILT_FULL_SPEED)
    assert not head.pan_tilt_moving()


def test_a_move_stops_at_the_limits_and_then_counts_as_idle(head: PtzHead, clock: FakeClock) -> None:
    head.continuous((1.0, -1.0), -1.0, duration_s=60)
    clock.advance(30)
    assert head.position() == Position(1.0, -1.0, 0.0)
    assert not head.pan_tilt_moving() and not head.zoom_moving()


def test_stop_holds_the_position_reached(head: PtzHead, clock: FakeClock) -> None:
    head.continuous((1.0, 0.0), 1.0, duration_s=10)
    clock.advance(0.3)
    head.stop(pan_tilt=True, zoom=False)
    clock.advance(0.3)
    here = head.position()
    assert here.pan == pytest.approx(0.3 * PAN_TILT_FULL_SPEED)
    assert here.zoom == pytest.approx(0.6 * ZOOM_FULL_SPEED)
    assert not head.pan_tilt_moving() and head.zoom_moving()


def test_an_omitted_axis_group_keeps_moving(head: PtzHead, clock: FakeClock) -> None:
    head.continuous((0.5, 0.0), 0.5, duration_s=10)
    clock.advance(0.2)
    head.continuous(None, 0.0, duration_s=10)  # zoom stops, pan/tilt untouched
    clock.advance(0.2)
    assert head.position().pan == pytest.approx(0.5 * PAN_TILT_FULL_SPEED * 0.4)
    assert head.pan_tilt_moving() and not head.zoom_moving()


def test_move_to_arrives_at_speed_and_only_then(head: PtzHead, clock: FakeClock) -> None:
    head.move_to((0.8, -0.4), 0.6, pan_tilt_speed=0.5, zoom_speed=1.0)
    clock.advance(0.8)  # pan covers 0.5 * 1.0 * 0.8 = 0.4 of 0.8
    assert head.position().pan == pytest.approx(0.4)
    assert head.pan_tilt_moving()
    clock.advance(10)
    assert head.position() == Position(0.8, -0.4, 0.6)
    assert not head.pan_tilt_moving() and not head.zoom_moving()


def test_move_to_past_a_limit_stops_at_the_limit(head: PtzHead, clock: FakeClock) -> None:
    head.move_to((3.0, -3.0), 2.0)
    clock.advance(60)
    assert head.position() == Position(1.0, -1.0, 1.0)


def test_move_by_translates_from_the_current_position(head: PtzHead, clock: FakeClock) -> None:
    head.move_to((0.5, 0.5), 0.5)
    clock.advance(60)
    head.move_by((-0.25, 0.9), -0.1)
    clock.advance(60)
    assert head.position() == Position(0.25, 1.0, pytest.approx(0.4))


def test_presets_fill_free_slots_and_go_back(head: PtzHead, clock: FakeClock) -> None:
    head.move_to((0.3, 0.2), 0.1)
    clock.advance(60)
    saved = head.save_preset(head.slot_free() or "", "podium")
    assert (saved.token, saved.name) == ("1", "podium")
    assert head.slot_free() == "2"
    head.move_to((-1.0, -1.0), 1.0)
    clock.advance(60)
    head.go(head.presets["1"].position)
    clock.advance(60)
    assert head.position() == Position(0.3, 0.2, pytest.approx(0.1))


def test_preset_slots_are_the_decimal_tokens_up_to_the_maximum(head: PtzHead) -> None:
    assert head.is_slot("1") and head.is_slot(str(MAX_PRESETS))
    for token in ("0", "01", str(MAX_PRESETS + 1), "x", "", "-1", "1.0"):
        assert not head.is_slot(token)
    for n in range(1, MAX_PRESETS + 1):
        head.save_preset(str(n), None)
    assert head.slot_free() is None


def test_saving_again_keeps_the_name_unless_a_new_one_is_given(head: PtzHead) -> None:
    head.save_preset("5", "blackboard")
    assert head.save_preset("5", None).name == "blackboard"
    assert head.save_preset("5", "door").name == "door"
