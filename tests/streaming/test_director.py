"""The director: rules, hold time and override on synthetic activity; the activity measure on real frames."""

from __future__ import annotations

import time

import numpy as np
import pytest

from streaming.compose import Compositor, Layout
from streaming.director import (
    DEFAULT_THRESHOLD,
    ActivityMeter,
    DirectedPicture,
    Director,
    DirectorError,
    Rule,
    parse_when,
)
from streaming.source import Frame, Source
from streaming.synthetic import SyntheticSource

RULES = (
    Rule("courseware active", "courseware"),
    Rule("students active", "students"),
    Rule("always", "teacher"),
    Rule("always", "panorama"),
)
QUIET = {"courseware": 0.0, "students": 0.0, "teacher": 0.0, "panorama": 0.0}


def director(hold_s: float = 3.0) -> Director:
    return Director(RULES, hold_s, {"courseware": 0.05, "students": 0.1})


def run(d: Director, steps: list[tuple[float, dict[str, float]]]) -> list[str]:
    """The director's choice at each (time, activity changes over QUIET)."""
    return [d.choose({**QUIET, **changes}, now) for now, changes in steps]


def test_teacher_when_nothing_moves_and_courseware_wins_while_it_changes() -> None:
    d = director()
    shown = run(d, [(0.0, {}), (10.0, {"courseware": 0.2}), (11.0, {"courseware": 0.2, "students": 0.5})])
    assert shown == ["teacher", "courseware", "courseware"]


def test_student_activity_shows_the_students_only_above_their_threshold() -> None:
    d = director()
    assert run(d, [(0.0, {}), (10.0, {"students": 0.08}), (20.0, {"students": 0.3})]) == [
        "teacher",
        "teacher",
        "students",
    ]


def test_panorama_is_the_fallback_when_the_teacher_has_no_signal() -> None:
    d = director()
    no_teacher = {k: v for k, v in QUIET.items() if k != "teacher"}
    assert d.choose(QUIET, 0.0) == "teacher"
    assert d.choose(no_teacher, 0.5) == "panorama"  # a lost picture switches at once, hold or not


def test_the_hold_time_keeps_a_choice_against_flicker() -> None:
    d = director(hold_s=3.0)
    flicker = [(t / 2, {"courseware": 0.2} if t % 2 else {}) for t in range(12)]  # a change every 0.5 s
    shown = run(d, [(-10.0, {}), *flicker])
    assert shown[:2] == ["teacher", "teacher"]
    switches = sum(a != b for a, b in zip(shown, shown[1:], strict=False))
    assert switches <= 2  # 6 s of flicker: at most one change per hold time
    assert run(d, [(20.0, {})]) == ["teacher"]  # quiet again, after the hold: back to the teacher


def test_override_wins_until_handed_back_then_the_rules_choose_at_once() -> None:
    d = director(hold_s=3.0)
    assert d.choose(QUIET, 0.0) == "teacher"
    d.override("panorama")
    assert run(d, [(0.1, {"courseware": 0.9}), (10.0, {})]) == ["panorama", "panorama"]
    d.override(None)
    assert d.choose({**QUIET, "students": 0.9}, 10.1) == "students"


@pytest.mark.parametrize("when", ["sometimes", "courseware", " courseware active", "active", "courseware  active"])
def test_bad_conditions_are_rejected(when: str) -> None:
    with pytest.raises(DirectorError):
        parse_when(when)


def test_rule_round_trips_and_an_empty_rule_list_is_an_error() -> None:
    assert [Rule.from_dict(r.to_dict()) for r in RULES] == list(RULES)
    assert RULES[0].watches == "courseware" and RULES[2].watches is None
    with pytest.raises(DirectorError):
        Director([], 1.0)


def frame(image: np.ndarray, index: int) -> Frame:
    return Frame(image, time.monotonic(), index)


def test_activity_of_a_static_source_is_zero_and_of_a_moving_one_above_the_threshold() -> None:
    still = SyntheticSource("still", (1920, 1080), color=(40, 90, 200))
    bars = SyntheticSource("bars", (1920, 1080), fps=30)  # scrolling bars and a running clock
    still_meter, bars_meter = ActivityMeter(), ActivityMeter()
    for index in (0, 6, 12):  # 0.2 s apart at 30 fps: how often DirectedPicture samples
        still_activity = still_meter.feed(frame(still.draw(index), index))
        bars_activity = bars_meter.feed(frame(bars.draw(index), index))
    assert still_activity < 0.001
    assert bars_activity > DEFAULT_THRESHOLD


def test_a_source_that_sends_no_new_frame_measures_no_activity() -> None:
    bars = SyntheticSource("bars", (320, 240))
    meter = ActivityMeter()
    meter.feed(frame(bars.draw(0), 1))
    assert meter.feed(frame(bars.draw(6), 2)) > DEFAULT_THRESHOLD
    assert meter.feed(frame(bars.draw(6), 2)) == 0.0  # a screen grabber that only sends changes, say


class Held(Source):
    """A source whose picture the test sets (no thread)."""

    def __init__(self, name: str, color: tuple[int, int, int]) -> None:
        super().__init__(name)
        self.show(color)

    def show(self, color: tuple[int, int, int]) -> None:
        image = np.empty((90, 160, 3), np.uint8)
        image[:] = color
        self._publish(image)

    def _run(self) -> None:
        pass


def test_directed_layout_shows_the_courseware_full_screen_once_it_changes() -> None:
    teacher, courseware = Held("teacher", (0, 200, 0)), Held("courseware", (200, 0, 0))
    layout = Layout("directed", ("courseware", "teacher"), (128, 72))
    d = Director([Rule("courseware active", "courseware"), Rule("always", "teacher")], hold_s=1.0)
    now = [time.monotonic()]
    picture = DirectedPicture(Compositor(layout, [teacher, courseware]), d, sample_s=0.2, clock=lambda: now[0])

    def colour_at(t: float) -> tuple[int, ...]:
        now[0] += t
        return tuple(int(c) for c in picture.render()[36, 64])

    assert colour_at(0.0) == (0, 200, 0)  # nothing changes: the teacher, the whole picture
    assert colour_at(0.5) == (0, 200, 0)
    courseware.show((120, 0, 0))  # the next slide
    assert colour_at(0.5) == (120, 0, 0)
    assert colour_at(0.5) == (120, 0, 0)  # static again, but held
    assert colour_at(1.0) == (0, 200, 0)  # hold over: the teacher


def test_courseware_stays_until_the_hold_after_its_last_change_not_after_the_switch() -> None:
    d = director(hold_s=3.0)
    slides = [(t, {"courseware": 0.2}) for t in (0.0, 2.0, 4.0)]  # a slide every 2 s, quiet in between
    between = [(t, {}) for t in (1.0, 3.5, 5.0, 6.9)]
    shown = run(d, sorted([(-10.0, {}), *slides, *between]))
    assert shown == ["teacher", "courseware", "courseware", "courseware", "courseware", "courseware", "courseware",
                     "courseware"]  # fmt: skip
    assert run(d, [(7.1, {})]) == ["teacher"]  # 3 s after the last slide change


def test_the_director_says_why_it_shows_what_it_shows() -> None:
    d = director(hold_s=3.0)
    d.choose(QUIET, 0.0)
    assert d.telemetry() == {"source": "teacher", "reason": "rule", "rule": "always"}
    d.choose({**QUIET, "students": 0.5}, 1.0)  # wanted, but the teacher is held
    assert d.telemetry() == {"source": "teacher", "reason": "hold", "rule": "always"}
    d.choose({**QUIET, "students": 0.5}, 3.0)
    assert d.telemetry() == {"source": "students", "reason": "rule", "rule": "students active"}
    d.override("panorama")
    d.choose(QUIET, 4.0)
    assert d.telemetry() == {"source": "panorama", "reason": "override", "rule": ""}
    d.override(None)
    d.choose({}, 5.0)  # no source has a picture
    assert d.telemetry()["reason"] == "fallback"
