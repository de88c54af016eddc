"""Live lessons (专递课堂 / 双师) from the timetable: which room leads, the plan, the scheduler starting them."""

from __future__ import annotations

import asyncio
import json
import tomllib
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from test_timetable import BEIJING, MONDAY, at
from test_timetable_scheduler import Room, VirtualTime, run_until_reached, scheduler

from agent.timetable.model import Timetable, TimetableError, is_timetable_main, plan, timetable_main
from agent.timetable.parse import parse_timetable

TUESDAY, WEDNESDAY, FRIDAY = MONDAY + timedelta(days=1), MONDAY + timedelta(days=2), MONDAY + timedelta(days=4)
RURAL, SOLO = ["room-101", "room-102"], ["room-201"]

LIVE: dict[str, Any] = {
    "timezone": "+08:00",
    "skip_dates": ["2025-10-01..2025-10-07"],
    "makeup_days": {"2025-09-28": 2},
    "lessons": [
        {"day": [2, 4], "start": "09:00", "end": "09:45", "name": "英语", "live": "zhuandi", "remotes": RURAL},
        {"day": [2, 4], "start": "09:45", "end": "10:30", "name": "英语连堂", "live": "zhuandi", "remotes": RURAL},
        {"day": [2, 4], "start": "10:30", "end": "11:15", "name": "科学", "live": "dual_teacher", "remotes": SOLO},
        {"day": 3, "start": "10:00", "end": "10:45", "name": "美术", "main": "room-100"},
        {"day": 5, "start": "14:00", "end": "14:45", "name": "音乐", "live": "dual_teacher", "remotes": SOLO},
        {
            "dates": ["2025-10-03"],
            "start": "09:00",
            "end": "09:45",
            "name": "公开课",
            "live": "zhuandi",
            "remotes": RURAL,
        },
    ],
}


def live_day() -> Timetable:
    """LIVE with 英语 and 科学 recorded: a live lesson can be recorded too."""
    data = json.loads(json.dumps(LIVE))
    data["lessons"][0]["record"] = data["lessons"][2]["record"] = True
    return parse_timetable(data)


@pytest.mark.parametrize(
    ("when", "lesson", "mode", "remotes"),
    [
        (at(TUESDAY, "08:59:59"), None, None, None),
        (at(TUESDAY, "09:00"), "英语", "zhuandi", RURAL),
        (at(TUESDAY, "10:40"), "科学", "dual_teacher", ["room-201"]),
        (at(TUESDAY, "11:15"), None, None, None),
        (at(WEDNESDAY, "10:10"), None, None, None),  # another room leads 美术: nothing to start here
        (at(FRIDAY, "14:10"), "音乐", "dual_teacher", ["room-201"]),
        (at(date(2025, 9, 28), "09:10"), "英语", "zhuandi", RURAL),  # Sunday working as a Tuesday (调休)
        (at(date(2025, 9, 30), "09:10"), "英语", "zhuandi", RURAL),  # the Tuesday before the holiday
        (at(date(2025, 10, 2), "09:10"), None, None, None),  # a Thursday in the National Day holiday
        (at(date(2025, 10, 3), "09:10"), "公开课", "zhuandi", RURAL),  # a dated lesson inside the holiday
        (at(date(2025, 10, 3), "14:10"), None, None, None),  # that Friday's weekly 音乐 is skipped
        (datetime(2025, 9, 2, 1, 10, tzinfo=UTC), "英语", "zhuandi", RURAL),  # 09:10 in Beijing
    ],
)
def test_plan_says_which_live_lesson_this_room_leads(
    when: datetime, lesson: str | None, mode: str | None, remotes: list[str] | None
) -> None:
    live = plan(parse_timetable(LIVE), when).should_lead
    assert (live.lesson if live else None) == lesson
    assert (live.args() if live else None) == ({"mode": mode, "remotes": remotes} if live else None)
    if live is not None:
        assert live.starts.date() == when.astimezone(BEIJING).date()


@pytest.mark.parametrize(
    ("when", "main"),
    [
        (at(WEDNESDAY, "09:54:59"), None),
        (at(WEDNESDAY, "09:55"), "room-100"),  # 5 minutes early: the two PCs' clocks differ
        (at(WEDNESDAY, "10:44:59"), "room-100"),
        (at(WEDNESDAY, "10:45"), None),
        (at(date(2025, 10, 1), "10:10"), None),  # a Wednesday in the holiday
        (at(TUESDAY, "09:10"), None),  # this room leads: no one else is its main
    ],
)
def test_timetable_main_names_the_leader_of_the_lesson_on_now(when: datetime, main: str | None) -> None:
    assert timetable_main(parse_timetable(LIVE), when) == main


def test_the_main_may_be_named_by_id_or_by_site_and_id() -> None:
    by_site = json.loads(json.dumps(LIVE))
    by_site["lessons"][3]["main"] = "school-a/room-100"
    now = at(WEDNESDAY, "10:10")
    assert is_timetable_main(parse_timetable(LIVE), now, "school-b", "room-100")
    assert is_timetable_main(parse_timetable(by_site), now, "school-a", "room-100")
    assert not is_timetable_main(parse_timetable(by_site), now, "school-b", "room-100")
    assert not is_timetable_main(parse_timetable(LIVE), now, "school-a", "room-101")


def test_a_main_lesson_just_after_midnight_is_answered_from_before_midnight() -> None:
    night = {"day": 2, "start": "00:02", "end": "00:30", "name": "夜", "main": "x"}
    timetable = parse_timetable({"lessons": [night]})
    assert timetable_main(timetable, at(MONDAY, "23:58")) == "x"
    assert timetable_main(timetable, at(MONDAY, "23:56")) is None


def test_every_live_lesson_problem_is_reported_at_once() -> None:
    lesson = {"day": 2, "start": "09:00", "end": "09:45", "name": "英语"}
    bad = {
        "lessons": [
            {**lesson, "live": "broadcast", "remotes": ["room-101"]},
            {**lesson, "day": 3, "remotes": ["room-101"]},
            {**lesson, "day": 4, "live": "zhuandi"},
            {**lesson, "day": 5, "live": "dual_teacher", "remotes": ["room-101", "room-102"]},
            {**lesson, "day": 6, "live": "zhuandi", "remotes": ["room 101", "", "room-102", "room-102"]},
            {**lesson, "day": 7, "live": "zhuandi", "remotes": ["room-101"], "main": "room-100"},
            {**lesson, "dates": ["2025-10-03"], "day": [], "main": "a/b/c"},
        ]
    }
    with pytest.raises(TimetableError) as caught:
        parse_timetable(bad)
    assert caught.value.problems == (
        "timetable.lessons[0].live: got 'broadcast', expected zhuandi or dual_teacher",
        "timetable.lessons[1].remotes: only with live = zhuandi or dual_teacher (a lesson this room leads)",
        'timetable.lessons[2].remotes: missing (the remote classrooms\' agent ids, e.g. ["room-101"])',
        "timetable.lessons[3].remotes: dual_teacher takes exactly one remote classroom, got 2",
        "timetable.lessons[4].remotes[0]: got 'room 101', expected an agent id (no spaces, / + #)",
        "timetable.lessons[4].remotes[1]: got '', expected an agent id (no spaces, / + #)",
        "timetable.lessons[4].remotes[3]: 'room-102' is listed twice",
        "timetable.lessons[5].main: give either live (this room leads) or main (another room leads), not both",
        "timetable.lessons[6].main: got 'a/b/c', expected the leading classroom's agent id (or site/agent id)",
    )


def test_live_lessons_round_trip_through_schedule_set_and_toml() -> None:
    timetable = parse_timetable(LIVE)
    assert parse_timetable(json.loads(json.dumps(timetable.to_dict()))) == timetable
    toml = tomllib.loads(
        """
        [[lessons]]
        day = 3
        start = 10:00:00
        end = 10:45:00
        name = "美术"
        main = "school-a/room-100"
        """
    )
    assert parse_timetable(toml).lessons[0].main == "school-a/room-100"


def lessons(room: Room) -> list[tuple[str, str, dict[str, Any]]]:
    return [c for c in room.calls if c[1].startswith(("lesson.", "record."))]


async def test_a_school_day_leads_each_live_lesson_and_records_it_while_it_is_up() -> None:
    time = VirtualTime(at(TUESDAY, "06:00"), until=at(TUESDAY, "12:00"))
    room = Room(time)
    await run_until_reached(scheduler(room, live_day(), time), time)
    assert lessons(room) == [
        ("09:00:00", "lesson.start", {"mode": "zhuandi", "remotes": RURAL}),  # up before the recording
        ("09:00:00", "record.start", {"lesson": "英语"}),
        ("09:45:00", "record.stop", {}),  # 英语连堂 goes on in the same lesson: the same classrooms
        ("10:30:00", "lesson.stop", {}),  # 科学 goes to another classroom
        ("10:30:00", "lesson.start", {"mode": "dual_teacher", "remotes": ["room-201"]}),
        ("10:30:00", "record.start", {"lesson": "科学"}),
        ("11:15:00", "record.stop", {}),  # the recording ends while the remote classroom is still up
        ("11:15:00", "lesson.stop", {}),
    ]
    assert room.live is None


async def test_a_remote_classrooms_timetable_starts_nothing() -> None:
    time = VirtualTime(at(WEDNESDAY, "09:00"), until=at(WEDNESDAY, "12:00"))
    room = Room(time)
    await run_until_reached(scheduler(room, parse_timetable(LIVE), time), time)
    assert lessons(room) == []


async def test_booted_in_the_middle_of_a_live_lesson_starts_it_at_once() -> None:
    time = VirtualTime(at(FRIDAY, "14:20:17"), until=at(FRIDAY, "15:00"))
    room = Room(time)
    await run_until_reached(scheduler(room, parse_timetable(LIVE), time), time)
    assert lessons(room) == [
        ("14:20:17", "lesson.start", {"mode": "dual_teacher", "remotes": ["room-201"]}),
        ("14:45:00", "lesson.stop", {}),
    ]


async def test_a_failed_lesson_start_is_retried_until_it_succeeds() -> None:
    time = VirtualTime(at(FRIDAY, "13:59"), until=at(FRIDAY, "15:00"))
    room = Room(time)
    room.failures["lesson.start"] = 2
    await run_until_reached(scheduler(room, parse_timetable(LIVE), time), time)
    assert [(t, n) for t, n, _ in lessons(room)] == [("14:01:00", "lesson.start"), ("14:45:00", "lesson.stop")]


async def test_a_live_lesson_stopped_by_hand_stays_stopped_and_a_manual_one_is_never_stopped() -> None:
    time = VirtualTime(at(FRIDAY, "13:59"), until=at(FRIDAY, "15:00"))
    room = Room(time)

    def teacher_stops_and_starts_another() -> None:
        room.live = "by-hand"

    time.hooks[at(FRIDAY, "14:20")] = teacher_stops_and_starts_another
    await run_until_reached(scheduler(room, parse_timetable(LIVE), time), time)
    assert [(t, n) for t, n, _ in lessons(room)] == [("14:00:00", "lesson.start")]
    assert room.live == "by-hand"  # not the timetable's to stop


async def test_a_lesson_started_early_by_hand_is_kept_and_ended_with_the_timetables() -> None:
    time = VirtualTime(at(FRIDAY, "13:58"), until=at(FRIDAY, "15:00"))
    room = Room(time, live="early")
    await run_until_reached(scheduler(room, parse_timetable(LIVE), time), time)
    assert lessons(room) == [("14:45:00", "lesson.stop", {})]  # never restarted: the remote room stays in


async def test_a_restarted_scheduler_neither_restarts_nor_forgets_its_live_lesson() -> None:
    time = VirtualTime(at(TUESDAY, "08:59"), until=at(TUESDAY, "09:20"))
    room = Room(time)
    service = scheduler(room, parse_timetable(LIVE), time)
    await run_until_reached(service, time)
    time.until, time.reached = at(TUESDAY, "10:00"), asyncio.Event()
    await run_until_reached(service, time)  # the supervisor starts the scheduler alone again
    assert [(t, n) for t, n, _ in lessons(room)] == [("09:00:00", "lesson.start")]
    time.until, time.reached = at(TUESDAY, "10:35"), asyncio.Event()
    await run_until_reached(service, time)
    assert [(t, n) for t, n, _ in lessons(room)][1:] == [("10:30:00", "lesson.stop"), ("10:30:00", "lesson.start")]
