"""The sans-IO rules that keep a lesson peer healthy: frozen pictures and degraded links, with plain numbers."""

from __future__ import annotations

from agent.lesson.health import PeerWatch, Verdict, WatchRules

RULES = WatchRules(
    keyframe_after_s=2.0, renegotiate_after_s=6.0, loss_alarm=0.05, rtt_alarm_ms=400.0, degraded_after_s=5.0
)


def test_a_frozen_picture_gets_one_keyframe_request_then_a_renegotiation() -> None:
    watch = PeerWatch(RULES)
    assert watch.sample(0.0, {"teacher": 0.1, "courseware": 1.0}, 0.0, 5.0) == Verdict()
    assert watch.sample(1.0, {"teacher": 2.5, "courseware": 0.2}, 0.0, 5.0).keyframe == ("teacher",)
    assert watch.sample(2.0, {"teacher": 3.5, "courseware": 0.2}, 0.0, 5.0).keyframe == ()  # asked once per freeze
    verdict = watch.sample(5.0, {"teacher": 6.5, "courseware": 0.2}, 0.0, 5.0)
    assert verdict.renegotiate == "incoming teacher frozen for 6 s after a keyframe request"


def test_a_picture_that_recovers_and_freezes_again_is_asked_again() -> None:
    watch = PeerWatch(RULES)
    assert watch.sample(0.0, {"students": 2.0}, None, None).keyframe == ("students",)
    assert watch.sample(1.0, {"students": 0.0}, None, None).keyframe == ()
    assert watch.sample(9.0, {"students": 2.1}, None, None).keyframe == ("students",)


def test_link_degraded_only_after_loss_or_rtt_stays_high_and_clears_after_it_stays_low() -> None:
    watch = PeerWatch(RULES)
    assert watch.sample(0.0, {}, 0.10, 20.0).degraded is None  # one bad second is not an alarm
    assert watch.sample(3.0, {}, 0.0, 20.0).degraded is None  # and the count starts over
    for t in (4.0, 6.0, 8.0):
        assert watch.sample(t, {}, 0.01, 900.0).degraded is None
    raised = watch.sample(9.0, {}, 0.20, 900.0)
    assert raised.degraded is True and raised.detail == "loss 20% > 5%, RTT 900 ms > 400 ms"
    assert watch.sample(10.0, {}, 0.20, 900.0).degraded is None  # raised once
    assert watch.sample(11.0, {}, 0.0, 30.0).degraded is None
    assert watch.sample(16.0, {}, 0.0, 30.0).degraded is False
