"""``encoder_degraded``: a technician hears of a busy PC's degraded lesson when it lasts, and when it is over."""

from __future__ import annotations

from agent.lesson.busy import DegradedWatch

FULL = {"degraded": "", "fps": 30.0, "size": "1280x720", "reason": ""}
SMALLER = {"degraded": "size", "fps": 30.0, "size": "960x540", "reason": "cpu: encoding takes 95% of the frame period"}


def test_a_short_dip_raises_nothing() -> None:
    watch = DegradedWatch(after_s=5.0)
    assert watch.sample(0.0, {"teacher": SMALLER}) == ({}, [])
    assert watch.sample(4.0, {"teacher": SMALLER}) == ({}, [])
    assert watch.sample(5.0, {"teacher": FULL}) == ({}, [])
    assert watch.sample(9.0, {"teacher": SMALLER}) == ({}, [])  # the clock starts again


def test_a_lasting_degradation_is_raised_once_with_what_is_sent_and_cleared_when_back() -> None:
    watch = DegradedWatch(after_s=5.0)
    watch.sample(0.0, {"teacher": SMALLER, "courseware": FULL})
    raised, cleared = watch.sample(5.0, {"teacher": SMALLER, "courseware": FULL})
    assert list(raised) == ["teacher"] and cleared == []
    assert "960x540" in raised["teacher"] and "encoding takes 95%" in raised["teacher"]
    assert watch.sample(6.0, {"teacher": SMALLER, "courseware": FULL}) == ({}, [])
    assert watch.sample(20.0, {"teacher": FULL, "courseware": FULL}) == ({}, ["teacher"])


def test_a_source_no_longer_sent_is_cleared() -> None:
    watch = DegradedWatch(after_s=1.0)
    watch.sample(0.0, {"students": SMALLER})
    assert list(watch.sample(1.0, {"students": SMALLER})[0]) == ["students"]
    assert watch.sample(2.0, {}) == ({}, ["students"])
