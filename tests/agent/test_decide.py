"""The lesson's signalling decisions, judged without a broker or WebRTC (agent.lesson.decide)."""

from __future__ import annotations

import logging
from typing import Any

from agent.lesson.decide import (
    Answer,
    Deliver,
    Heard,
    Ignore,
    Incoming,
    Kick,
    Leave,
    LessonNow,
    Refused,
    Reject,
    Reply,
    State,
    TakeIn,
    decide,
)
from contract.rtc import RtcMessage

NOW = "2026-03-02T08:00:00Z"
SDP = "v=0\r\n"


def room(**changes: Any) -> State:
    """A remote classroom `room-a` of `school` trusting `room-main`, free, at NOW."""
    return State(
        **{"me": "room-a", "site": "school", "room": "教室 A", "now": NOW, "trusted": ("room-main",)} | changes
    )


def leading(**changes: Any) -> State:
    """The main classroom `room-main` leading lesson `L1` to room-a (its second offer out)."""
    lesson = LessonNow("L1", "zhuandi", "main")
    base = {"me": "room-main", "remotes": ("room-a", "room-b"), "lesson": lesson, "peers": {"room-a": 2}}
    return room(**base | changes)


def offer(seq: int = 1, lesson: str = "L1") -> RtcMessage:
    return RtcMessage("offer", lesson, NOW, "zhuandi", "教室 main", SDP, seq=seq, sources=("teacher",))


def one(state: State, site: str, agent: str, message: RtcMessage) -> Any:
    actions = decide(state, Incoming(site, agent, message))
    assert len(actions) == 1, actions
    return actions[0]


def test_an_offer_from_a_trusted_agent_is_answered_when_the_room_is_free() -> None:
    assert one(room(), "school", "room-main", offer()) == Answer()


def test_an_untrusted_offer_is_rejected_audited_with_its_reason_and_its_seq() -> None:
    action = one(room(), "school", "room-stranger", offer(seq=7))
    assert isinstance(action, Reject) and action.audit == "lesson_offer_rejected"
    assert (action.message.type, action.message.lesson, action.message.seq) == ("reject", "L1", 7)
    assert action.message.reason.startswith("room-a does not trust school/room-stranger")


def test_trust_names_the_site_a_name_from_another_school_is_not_trusted() -> None:
    assert isinstance(one(room(), "school-b", "room-main", offer()), Answer)  # a bare id: any site
    assert isinstance(one(room(trusted=("school/room-main",)), "school-b", "room-main", offer()), Reject)
    assert isinstance(one(room(trusted=("school-b/room-main",)), "school-b", "room-main", offer()), Answer)


def test_the_timetable_main_is_answered_though_not_in_trusted() -> None:
    assert one(room(trusted=(), timetable_main=True), "school", "room-t", offer()) == Answer()
    assert isinstance(one(room(trusted=()), "school", "room-t", offer()), Reject)


def test_a_trusted_offer_is_rejected_as_busy_while_leading_or_in_another_lesson_connected() -> None:
    leading_now = room(lesson=LessonNow("L9", "zhuandi", "main"))
    busy = one(leading_now, "school", "room-main", offer())
    assert isinstance(busy, Reject) and busy.audit == "" and busy.message.reason == "room-a is leading lesson L9"
    elsewhere = LessonNow("L2", "zhuandi", "remote", "room-other", "school", connected=True)
    taken = one(room(trusted=("room-main", "room-other"), lesson=elsewhere), "school", "room-main", offer())
    assert isinstance(taken, Reject) and taken.message.reason == "room-a is in lesson L2 from room-other"


def test_an_offer_is_answered_when_the_other_lesson_never_connected_or_is_the_same_leaders() -> None:
    waiting = LessonNow("L2", "zhuandi", "remote", "room-other", "school", connected=False)
    assert one(room(lesson=waiting), "school", "room-main", offer()) == Answer()
    ours = LessonNow("L1", "zhuandi", "remote", "room-main", "school", connected=True)
    assert one(room(lesson=ours), "school", "room-main", offer(seq=3)) == Answer()  # a re-offer


def test_a_hello_is_answered_only_to_agents_this_room_would_meet() -> None:
    hello = RtcMessage("hello", "", NOW, seq=4)
    reply = one(room(), "school", "room-main", hello)
    assert isinstance(reply, Reply)
    here = reply.message
    assert (here.type, here.state, here.room, here.seq) == ("here", "free", "教室 A", 4)
    stranger = one(room(), "school", "room-stranger", hello)
    assert isinstance(stranger, Ignore) and stranger.level == logging.DEBUG
    assert isinstance(one(leading(), "school", "room-b", hello), Reply)  # one of its remotes
    assert isinstance(one(leading(), "school-b", "room-b", hello), Ignore)  # that name at another school
    assert isinstance(one(room(trusted=(), timetable_main=True), "school", "room-t", hello), Reply)


def test_a_here_says_what_the_room_is_doing() -> None:
    hello = RtcMessage("hello", "", NOW, seq=1)
    lead = one(leading(trusted=("room-b",)), "school", "room-b", hello).message
    assert (lead.state, lead.lesson, lead.main, lead.mode) == ("leading", "L1", "", "zhuandi")
    part = LessonNow("L2", "dual_teacher", "remote", "room-main", "school")
    remote = one(room(lesson=part), "school", "room-main", hello).message
    assert (remote.state, remote.lesson, remote.main, remote.mode) == ("remote", "L2", "room-main", "dual_teacher")


def test_a_here_is_kept_only_from_a_classroom_this_room_links() -> None:
    here = RtcMessage("here", "", NOW, room="教室 main", seq=1, state="free")
    assert one(room(), "school", "room-main", here) == Heard()
    assert isinstance(one(room(), "school", "room-x", here), Ignore)


def test_a_join_is_taken_in_from_a_trusted_or_listed_remote_and_refused_otherwise() -> None:
    join = RtcMessage("join", "", NOW, room="教室 C", sources=("students", "board"))
    assert one(leading(), "school", "room-b", join) == TakeIn(("students", "board"))
    assert one(leading(trusted=("room-c",)), "school", "room-c", join) == TakeIn(("students", "board"))
    refused = one(leading(), "school", "room-c", join)
    assert isinstance(refused, Reject) and refused.audit == "lesson_join_refused"
    assert (refused.message.lesson, refused.message.seq) == ("L1", 0)
    assert refused.message.reason.startswith("room-main does not take school/room-c into its lessons")


def test_a_join_from_a_kept_remote_offers_again_and_one_to_a_room_not_leading_is_rejected() -> None:
    join = RtcMessage("join", "", NOW, room="教室 A")
    assert one(leading(), "school", "room-a", join) == Kick()
    idle = one(room(), "school", "room-b", join)
    assert isinstance(idle, Reject) and idle.audit == ""
    assert (idle.message.lesson, idle.message.reason) == ("", "room-a is not leading a lesson")


def test_an_answer_to_the_latest_offer_goes_to_its_peer_one_to_a_superseded_offer_is_ignored() -> None:
    def answer(seq: int) -> RtcMessage:
        return RtcMessage("answer", "L1", NOW, sdp=SDP, seq=seq)

    assert one(leading(), "school", "room-a", answer(2)) == Deliver()
    assert one(leading(), "school", "room-a", answer(0)) == Deliver()  # no seq: an older agent
    stale = one(leading(), "school", "room-a", answer(1))
    assert isinstance(stale, Ignore) and "superseded offer 1" in stale.why
    reject = RtcMessage("reject", "L1", NOW, reason="busy", seq=1)
    assert isinstance(one(leading(), "school", "room-a", reject), Ignore)


def test_a_message_from_a_peers_name_at_another_site_is_ignored() -> None:
    leave = RtcMessage("leave", "L1", NOW, reason="lesson.leave")
    assert one(leading(), "school", "room-a", leave) == Deliver()
    spoof = one(leading(), "school-b", "room-a", leave)
    assert isinstance(spoof, Ignore) and spoof.level == logging.WARNING
    moved = leading(sites={"room-a": "school-b"})
    assert one(moved, "school-b", "room-a", leave) == Deliver()
    assert isinstance(one(moved, "school", "room-a", leave), Ignore)


def test_a_bye_from_the_leader_leaves_the_lesson_one_from_anyone_else_is_only_logged() -> None:
    bye = RtcMessage("bye", "L1", NOW, reason="lesson.stop")
    part = room(lesson=LessonNow("L1", "zhuandi", "remote", "room-main", "school", connected=True))
    assert one(part, "school", "room-main", bye) == Leave("room-main ended the lesson")
    assert isinstance(one(part, "school-b", "room-main", bye), Ignore)
    assert isinstance(one(part, "school", "room-other", bye), Ignore)
    assert isinstance(one(room(), "school", "room-main", bye), Ignore)


def test_a_reject_ends_a_waiting_lesson_join_and_is_otherwise_only_logged() -> None:
    reject = RtcMessage("reject", "", NOW, reason="room-main is not leading a lesson")
    waiting = room(joining=frozenset({"room-main"}))
    assert one(waiting, "school", "room-main", reject) == Refused("room-main is not leading a lesson")
    bare = RtcMessage("reject", "", NOW)
    assert one(waiting, "school", "room-main", bare) == Refused("rejected")
    assert isinstance(one(room(), "school", "room-main", reject), Ignore)


def test_a_stray_answer_or_leave_is_dropped_without_a_word() -> None:
    assert decide(room(), Incoming("school", "room-main", RtcMessage("answer", "L1", NOW, sdp=SDP, seq=1))) == ()
    assert decide(room(), Incoming("school", "room-main", RtcMessage("leave", "L1", NOW))) == ()
