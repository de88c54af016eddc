"""The degradation controller with synthetic encode times: no encoder, no clock."""

from __future__ import annotations

import pytest

from streaming.adapt import Adapter, AdaptRules, Level


def feed(adapter: Adapter, start: float, seconds: float, encode_share: float, gap: float = 1.0) -> list[Level]:
    """Frames at the current rate for `seconds`, each taking `encode_share` of a full-rate period at full size.

    Encode time does not shrink when fewer frames are sent, and shrinks with the pixels when the
    size does; `gap` is the time between frames in current periods.
    """
    changes = []
    now = start
    full_pixels = adapter.full_size[0] * adapter.full_size[1]
    while now < start + seconds:
        period = 1.0 / adapter.level.fps
        pixels = adapter.level.size[0] * adapter.level.size[1] / full_pixels
        change = adapter.frame(now, encode_share / adapter.full_fps * pixels, gap * period)
        if change is not None:
            changes.append(change)
        now += gap * period
    return changes


def test_a_screen_loses_frame_rate_first_and_says_why() -> None:
    adapter = Adapter(30, (1920, 1080), "fps")
    changes = feed(adapter, 0.0, 1.5, encode_share=0.95)
    assert [c.degraded for c in changes] == ["fps"]
    assert changes[0].fps == pytest.approx(20) and changes[0].size == (1920, 1080)
    assert changes[0].to_dict() == {
        "degraded": "fps",
        "fps": 20.0,
        "size": "1920x1080",
        "reason": "cpu: encoding takes 95% of the frame period",
    }


def test_a_camera_loses_resolution_first() -> None:
    adapter = Adapter(30, (1280, 720), "size")
    changes = feed(adapter, 0.0, 1.5, encode_share=0.95)
    assert [(c.degraded, c.fps, c.size) for c in changes] == [("size", 30, (960, 540))]


def test_steps_down_at_most_once_a_second_until_the_load_fits() -> None:
    adapter = Adapter(30, (1280, 720), "fps")
    # encoding takes 1.3 full-rate periods: 30 fps is too much, 20 too (0.87 of 50 ms), 15 fits (0.65)
    changes = feed(adapter, 0.0, 10.0, encode_share=1.3)
    assert [c.fps for c in changes] == [pytest.approx(20), pytest.approx(15)]
    assert adapter.level.fps == pytest.approx(15)


def test_steady_under_the_threshold_is_left_alone() -> None:
    adapter = Adapter(30, (1280, 720), "size")
    assert feed(adapter, 0.0, 30.0, encode_share=0.7) == []
    assert adapter.level.degraded == "" and adapter.level.to_dict()["reason"] == ""


def test_missed_frame_slots_step_down_even_with_quick_encodes() -> None:
    adapter = Adapter(30, (1280, 720), "size")
    # each frame encodes fast but the thread gets the CPU only every 3 periods (starved, not slow)
    changes = feed(adapter, 0.0, 1.5, encode_share=0.2, gap=3.0)
    assert len(changes) == 1 and "skipped" in changes[0].reason


def test_a_slow_source_repeated_every_one_and_a_half_periods_is_not_skipping() -> None:
    adapter = Adapter(30, (1280, 720), "size")
    assert feed(adapter, 0.0, 10.0, encode_share=0.2, gap=1.5) == []


def test_back_up_one_step_per_calm_period_once_the_cpu_allows() -> None:
    adapter = Adapter(30, (1280, 720), "fps")
    feed(adapter, 0.0, 10.0, encode_share=1.3)
    assert adapter.level.fps == pytest.approx(15)
    # the courseware closes: encoding takes 0.3 of the full-rate period again
    changes = feed(adapter, 10.0, 9.0, encode_share=0.3)
    assert changes == []  # not before 10 s of headroom
    changes = feed(adapter, 19.0, 30.0, encode_share=0.3)
    assert [c.fps for c in changes] == [pytest.approx(20), pytest.approx(30)]
    assert changes[-1].degraded == "" and changes[-1].reason == ""


def test_no_step_up_that_would_overload_again() -> None:
    adapter = Adapter(30, (1280, 720), "size")
    feed(adapter, 0.0, 10.0, encode_share=1.3)
    assert adapter.level.size == (960, 540)  # 0.73 there
    # 0.85 at full size: under 50 % at 960x540 (0.48), but 1280x720 would be 0.85 -> stays
    assert feed(adapter, 10.0, 60.0, encode_share=0.85) == []
    assert adapter.level.size == (960, 540)


def test_a_brief_spike_restarts_the_calm_period() -> None:
    rules = AdaptRules(up_after_s=10.0)
    adapter = Adapter(30, (1280, 720), "fps", rules)
    feed(adapter, 0.0, 10.0, encode_share=1.3)
    feed(adapter, 10.0, 8.0, encode_share=0.3)
    feed(adapter, 18.0, 1.2, encode_share=1.2)  # 0.6 at 15 fps: bearable, but no headroom to climb
    assert feed(adapter, 19.2, 9.0, encode_share=0.3) == []
    assert len(feed(adapter, 28.2, 3.0, encode_share=0.3)) == 1


def test_the_ladder_ends_at_its_floor_and_keeps_sending() -> None:
    adapter = Adapter(30, (1280, 720), "size")
    changes = feed(adapter, 0.0, 30.0, encode_share=20.0)  # hopeless: every level is too slow
    assert adapter.level == changes[-1]
    assert adapter.level.degraded == "fps+size"
    assert adapter.level.fps >= 5 and adapter.level.size[1] >= 180
    assert all(size % 2 == 0 for change in changes for size in change.size)


def test_a_small_low_rate_source_has_nothing_to_give_up() -> None:
    adapter = Adapter(5, (320, 180), "fps")
    assert len(adapter.steps) == 1
    assert feed(adapter, 0.0, 5.0, encode_share=2.0) == []


def test_a_5_fps_courseware_screen_can_only_lose_size() -> None:
    adapter = Adapter(5, (1920, 1080), "fps")
    changes = feed(adapter, 0.0, 5.0, encode_share=2.0)
    assert [(c.degraded, c.fps, c.size) for c in changes] == [("size", 5, (1440, 810)), ("size", 5, (960, 540))]


def test_adaptation_switched_off_keeps_full_quality_however_slow_encoding_is() -> None:
    adapter = Adapter(30, (1920, 1080), "size", AdaptRules(enabled=False))
    assert feed(adapter, 0.0, 5.0, encode_share=3.0) == []
    assert adapter.level.step == 0 and adapter.level.degraded == ""
