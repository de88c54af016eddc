"""Timetable (课表) behaviour with an injected clock: parsing, the planner, the scheduler, schedule.*."""

from __future__ import annotations

import asyncio
import json
import tomllib
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from agent.commands.schedule import Schedule, TimetableStore, register_schedule_commands
from agent.commands.table import Arg, CommandDef, CommandTable, Failed, ListArg, Rejected
from agent.timetable.model import Timetable, TimetableError, is_timetable_main, next_change, plan, timetable_main
from agent.timetable.parse import parse_timetable
from agent.timetable.scheduler import SchedulerService

BEIJING = timezone(timedelta(hours=8))
MONDAY = date(2025, 9, 1)

TIMETABLE: dict[str, Any] = {
    "timezone": "+08:00",
    "power_on_before_min": 15,
    "power_off_after_min": 10,
    "skip_dates": ["2025-10-01..2025-10-07"],
    "makeup_days": {"2025-09-28": 3},
    "lessons": [
        {"day": [1, 3], "start": "08:00", "end": "08:45", "name": "语文", "teacher": "王老师", "record": True},
        {"day": [1, 3], "start": "08:55", "end": "09:40", "name": "数学", "teacher": "李老师"},
        {"day": [1, 3], "start": "10:00", "end": "10:45", "name": "英语", "teacher": "张老师", "record": True},
        {"day": 6, "start": "09:00", "end": "09:45", "name": "兴趣课", "record": True, "layout": "pip"},
    ],
}


def at(day: date, hhmm: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hhmm), tzinfo=BEIJING)


# --- parsing -------------------------------------------------------------------------------


def test_every_problem_is_reported_at_once_with_its_key_path() -> None:
    bad = {
        "timezone": "Mars/Olympus",
        "power_on_before_min": -5,
        "colour": "red",
        "skip_dates": ["2025-13-01"],
        "lessons": [
            {"day": 1, "start": "08:00", "end": "08:45", "name": "语文"},
            {"day": 1, "start": "08:30", "end": "09:15", "name": "数学"},
            {"day": 8, "start": "25:00", "end": "09:00", "name": ""},
            {"day": 2, "start": "10:00", "end": "09:00", "name": "英语", "room": "A"},
        ],
    }
    with pytest.raises(TimetableError) as caught:
        parse_timetable(bad)
    problems = caught.value.problems
    expected = [
        "timetable.timezone:",
        "timetable.power_on_before_min:",
        "timetable.colour: unknown key",
        "timetable.skip_dates[0]:",
        "timetable.lessons[2].day:",
        "timetable.lessons[2].start:",
        "timetable.lessons[2].name: missing",
        "timetable.lessons[3].end: 09:00 is not after start 10:00",
        "timetable.lessons[3].room: unknown key",
    ]
    for prefix in expected:
        assert any(p.startswith(prefix) for p in problems), (prefix, problems)
    assert str(len(problems)) in str(caught.value)


def test_overlapping_lessons_on_a_day_are_named() -> None:
    data = {
        "lessons": [
            {"day": [1, 2], "start": "08:00", "end": "08:45", "name": "语文"},
            {"day": 2, "start": "08:40", "end": "09:20", "name": "数学"},
            {"dates": ["2025-09-01"], "start": "08:30", "end": "09:00", "name": "公开课"},
        ]
    }
    with pytest.raises(TimetableError) as caught:
        parse_timetable(data)
    assert caught.value.problems == (
        "timetable.lessons[1]: overlaps lessons[0] (语文 08:00-08:45 / 数学 08:40-09:20) on weekday 2",
        "timetable.lessons[2]: overlaps lessons[0] (语文 08:00-08:45 / 公开课 08:30-09:00) on 2025-09-01",
    )


def test_round_trip_and_toml_native_times_and_dates() -> None:
    timetable = parse_timetable(TIMETABLE)
    assert parse_timetable(json.loads(json.dumps(timetable.to_dict()))) == timetable
    toml = tomllib.loads(
        """
        [timetable]
        skip_dates = [2025-10-01, "2025-10-02..2025-10-07"]
        [[timetable.lessons]]
        day = 6
        start = 09:00:00
        end = 09:45:00
        name = "兴趣课"
        record = true
        """
    )
    parsed = parse_timetable(toml["timetable"])
    assert parsed.lessons[0].start == time(9, 0) and parsed.lessons[0].days == (6,)
    assert parsed.skip_dates == ((date(2025, 10, 1), date(2025, 10, 1)), (date(2025, 10, 2), date(2025, 10, 7)))


# --- the planner ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "lesson", "record", "on"),
    [
        (at(MONDAY, "07:40"), None, None, False),  # before the power window
        (at(MONDAY, "07:45"), None, None, True),  # 15 minutes before the first lesson
        (at(MONDAY, "08:00"), "语文", "语文", True),
        (at(MONDAY, "08:44:59"), "语文", "语文", True),
        (at(MONDAY, "08:45"), None, None, True),  # break
        (at(MONDAY, "09:00"), "数学", None, True),  # not marked for recording
        (at(MONDAY, "10:50"), None, None, True),  # within 10 minutes after the last
        (at(MONDAY, "10:55"), None, None, False),
        (at(MONDAY + timedelta(days=1), "08:10"), None, None, False),  # Tuesday: no lessons
        (at(date(2025, 9, 6), "09:10"), "兴趣课", "兴趣课", True),  # Saturday
        (at(date(2025, 9, 7), "08:10"), None, None, False),  # Sunday
        (at(date(2025, 10, 1), "08:10"), None, None, False),  # National Day holiday, a Wednesday
        (at(date(2025, 9, 28), "08:10"), "语文", "语文", True),  # Sunday working as a Wednesday (调休)
        (datetime(2025, 9, 1, 0, 10, tzinfo=UTC), "语文", "语文", True),  # 08:10 in Beijing
    ],
)
def test_plan_says_what_should_be_true(when: datetime, lesson: str | None, record: str | None, on: bool) -> None:
    now = plan(parse_timetable(TIMETABLE), when)
    assert (now.lesson.name if now.lesson else None) == lesson
    assert (now.should_record.lesson if now.should_record else None) == record
    assert now.devices_on is on


def test_record_start_arguments_carry_teacher_and_layout() -> None:
    timetable = parse_timetable(TIMETABLE)
    monday = plan(timetable, at(MONDAY, "08:10")).should_record
    saturday = plan(timetable, at(date(2025, 9, 6), "09:10")).should_record
    assert monday is not None and monday.args() == {"lesson": "语文", "teacher": "王老师"}
    assert monday.starts == at(MONDAY, "08:00") and monday.ends == at(MONDAY, "08:45")
    assert saturday is not None and saturday.args() == {"lesson": "兴趣课", "layout": "pip"}


def test_next_change_is_the_next_boundary() -> None:
    timetable = parse_timetable(TIMETABLE)
    assert next_change(timetable, at(MONDAY, "07:00")) == at(MONDAY, "07:45")
    assert next_change(timetable, at(MONDAY, "08:10")) == at(MONDAY, "08:45")
    assert next_change(timetable, at(MONDAY, "11:00")) == at(MONDAY + timedelta(days=2), "07:45")
    assert next_change(Timetable(), at(MONDAY, "11:00")) is None


# --- the scheduler, in virtual time ---------------------------------------------------------


class VirtualTime:
    """A clock and a sleep that advance together; the sleep blocks once `until` is reached."""

    def __init__(self, start: datetime, until: datetime) -> None:
        self.now = start
        self.until = until
        self.reached = asyncio.Event()
        self.sleeps: list[float] = []
        self.hooks: dict[datetime, Callable[[], None]] = {}

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        assert 0 <= seconds <= 60, seconds  # every wait is bounded
        self.sleeps.append(seconds)
        assert len(self.sleeps) < 10_000, "the scheduler is spinning"
        if self.now + timedelta(seconds=seconds) > self.until:
            self.reached.set()
            await asyncio.Event().wait()
        self.now += timedelta(seconds=seconds)
        for when in [w for w in self.hooks if w <= self.now]:
            self.hooks.pop(when)()
        await asyncio.sleep(0)


class Room:
    """The real command table with stub handlers under the real names; calls logged in virtual time."""

    def __init__(self, time: VirtualTime, recording: str | None = None, live: str | None = None) -> None:
        self.time = time
        self.recording = recording
        self.live = live  # the id of the live lesson this room leads
        self.lessons = 0
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.failures: dict[str, int] = {}
        self.table = CommandTable()
        lesson = (Arg("lesson"), Arg("teacher", required=False), Arg("layout", required=False))
        self.table.add(CommandDef("record.start", lesson, self._start))
        self.table.add(CommandDef("record.stop", (), self._stop))
        device = Arg("device", choices=("panel-1", "panel-2"))
        self.table.add(CommandDef("panel.power", (device, Arg("on", "bool")), self._power))
        live = (Arg("mode", choices=("zhuandi", "dual_teacher")), ListArg("remotes", required=False))
        self.table.add(CommandDef("lesson.start", live, self._lesson_start))
        self.table.add(CommandDef("lesson.stop", (), self._lesson_stop))

    async def execute(self, name: str, args: Mapping[str, Any]) -> Any:
        return await self.table.execute(name, args, by="timetable", door="scheduler")

    def _log(self, name: str, args: Mapping[str, Any]) -> None:
        if self.failures.get(name):
            self.failures[name] -= 1
            raise Failed(f"{name}: recorder busy")
        self.calls.append((self.time.now.astimezone(BEIJING).strftime("%H:%M:%S"), name, dict(args)))

    async def _start(self, args: Mapping[str, Any]) -> None:
        self._log("record.start", args)
        self.recording = args["lesson"]

    async def _stop(self, args: Mapping[str, Any]) -> None:
        self._log("record.stop", args)
        self.recording = None

    async def _power(self, args: Mapping[str, Any]) -> None:
        self._log("panel.power", args)

    async def _lesson_start(self, args: Mapping[str, Any]) -> dict[str, Any]:
        if self.live is not None:  # as LessonService says
            raise Rejected(f"already in lesson {self.live} as main; lesson.stop first")
        self._log("lesson.start", {**args, "remotes": list(args["remotes"])})
        self.lessons += 1
        self.live = f"L{self.lessons}"
        return {"lesson": self.live, "mode": args["mode"], "remotes": list(args["remotes"])}

    async def _lesson_stop(self, args: Mapping[str, Any]) -> dict[str, Any]:
        if self.live is None:
            raise Rejected("no lesson is running")
        self._log("lesson.stop", args)
        stopped, self.live = self.live, None
        return {"lesson": stopped, "stopped": True}


def scheduler(room: Room, timetable: Timetable, time: VirtualTime) -> SchedulerService:
    return SchedulerService(
        lambda: timetable,
        room.execute,
        clock=time.clock,
        is_recording=lambda: room.recording,
        is_live=lambda: room.live,
        displays=("panel-1", "panel-2"),
        sleep=time.sleep,
    )


async def run_until_reached(service: SchedulerService, time: VirtualTime) -> None:
    task = asyncio.create_task(service.run())
    try:
        async with asyncio.timeout(10):
            await time.reached.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def recordings(room: Room) -> list[tuple[str, str, dict[str, Any]]]:
    return [c for c in room.calls if c[1].startswith("record.")]


async def test_a_school_day_records_each_marked_lesson_once_and_powers_the_displays() -> None:
    time = VirtualTime(at(MONDAY, "06:00"), until=at(MONDAY, "12:00"))
    room = Room(time)
    await run_until_reached(scheduler(room, parse_timetable(TIMETABLE), time), time)
    off, on = {"on": False}, {"on": True}
    assert room.calls == [
        ("06:00:00", "panel.power", {"device": "panel-1", **off}),  # start-up applies the plan
        ("06:00:00", "panel.power", {"device": "panel-2", **off}),
        ("07:45:00", "panel.power", {"device": "panel-1", **on}),
        ("07:45:00", "panel.power", {"device": "panel-2", **on}),
        ("08:00:00", "record.start", {"lesson": "语文", "teacher": "王老师"}),
        ("08:45:00", "record.stop", {}),
        ("10:00:00", "record.start", {"lesson": "英语", "teacher": "张老师"}),
        ("10:45:00", "record.stop", {}),
        ("10:55:00", "panel.power", {"device": "panel-1", **off}),
        ("10:55:00", "panel.power", {"device": "panel-2", **off}),
    ]


async def test_booted_in_the_middle_of_a_lesson_records_at_once() -> None:
    time = VirtualTime(at(MONDAY, "08:20:17"), until=at(MONDAY, "09:00"))
    room = Room(time)
    await run_until_reached(scheduler(room, parse_timetable(TIMETABLE), time), time)
    assert recordings(room) == [
        ("08:20:17", "record.start", {"lesson": "语文", "teacher": "王老师"}),
        ("08:45:00", "record.stop", {}),
    ]


async def test_booted_while_the_right_lesson_records_does_nothing_until_it_ends() -> None:
    time = VirtualTime(at(MONDAY, "08:20"), until=at(MONDAY, "09:00"))
    room = Room(time, recording="语文")
    await run_until_reached(scheduler(room, parse_timetable(TIMETABLE), time), time)
    assert recordings(room) == [("08:45:00", "record.stop", {})]


async def test_a_failed_record_start_is_retried_until_it_succeeds() -> None:
    time = VirtualTime(at(MONDAY, "07:59"), until=at(MONDAY, "08:50"))
    room = Room(time)
    room.failures["record.start"] = 2
    await run_until_reached(scheduler(room, parse_timetable(TIMETABLE), time), time)
    assert recordings(room) == [
        ("08:01:00", "record.start", {"lesson": "语文", "teacher": "王老师"}),  # 08:00 and 08:00:30 failed
        ("08:45:00", "record.stop", {}),
    ]


async def test_a_recording_stopped_by_hand_is_not_restarted_within_the_lesson() -> None:
    time = VirtualTime(at(MONDAY, "07:59"), until=at(MONDAY, "10:10"))
    room = Room(time)

    def teacher_presses_stop() -> None:
        room.recording = None

    time.hooks[at(MONDAY, "08:30")] = teacher_presses_stop
    await run_until_reached(scheduler(room, parse_timetable(TIMETABLE), time), time)
    assert [(t, n) for t, n, _ in recordings(room)] == [("08:00:00", "record.start"), ("10:00:00", "record.start")]


async def test_a_restarted_scheduler_resumes_the_lesson() -> None:
    time = VirtualTime(at(MONDAY, "07:59"), until=at(MONDAY, "08:30"))
    room = Room(time)
    service = scheduler(room, parse_timetable(TIMETABLE), time)
    await run_until_reached(service, time)
    room.recording = None  # the recorder crashed with the agent
    time.until, time.reached = at(MONDAY, "08:50"), asyncio.Event()
    await run_until_reached(service, time)  # the supervisor starts it again
    assert [(t, n) for t, n, _ in recordings(room)] == [
        ("08:00:00", "record.start"),
        ("08:30:00", "record.start"),
        ("08:45:00", "record.stop"),
    ]


async def test_a_dead_display_is_given_up_and_a_crashing_handler_does_not_stop_the_timetable() -> None:
    time = VirtualTime(at(MONDAY, "07:40"), until=at(MONDAY, "08:50"))
    room = Room(time)
    room.failures["panel.power"] = 1_000  # every switch fails

    async def crashing(args: Mapping[str, Any]) -> None:
        raise RuntimeError("recorder bug")

    room.table.commands["record.stop"] = CommandDef("record.stop", (), crashing)
    await run_until_reached(scheduler(room, parse_timetable(TIMETABLE), time), time)
    tried = 1_000 - room.failures["panel.power"]
    assert tried == 2 * 5 * 2  # two displays, five attempts, for the start-up "off" and the 07:45 "on"
    assert recordings(room) == [("08:00:00", "record.start", {"lesson": "语文", "teacher": "王老师"})]
    assert time.sleeps[-1] == 30.0  # the stop is still being retried, every 30 s


async def test_schedule_set_replans_a_running_scheduler(tmp_path: Path) -> None:
    time = VirtualTime(at(MONDAY + timedelta(days=1), "13:55"), until=at(MONDAY + timedelta(days=1), "14:05"))
    room = Room(time)
    schedule = Schedule(TimetableStore(tmp_path / "agent.db"), parse_timetable(TIMETABLE), clock=time.clock)
    service = SchedulerService(
        schedule.current, room.execute, clock=time.clock, is_recording=lambda: room.recording, sleep=time.sleep
    )
    register_schedule_commands(room.table, schedule, on_change=service.changed)
    task = asyncio.create_task(service.run())
    try:
        async with asyncio.timeout(10):
            await time.reached.wait()  # 14:05 on a Tuesday: nothing to record; the scheduler sleeps
            assert room.recording is None
            lesson = {"day": 2, "start": "14:00", "end": "14:45", "name": "物理", "teacher": "赵老师", "record": True}
            outcome = await room.table.execute("schedule.set", {"timetable": {"lessons": [lesson]}, "by": "centre"})
            assert outcome.status == "succeeded", outcome
            while room.recording != "物理":
                await asyncio.sleep(0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


# --- schedule.* -----------------------------------------------------------------------------


async def test_schedule_set_rejects_a_bad_timetable_and_persists_a_good_one(tmp_path: Path) -> None:
    db = tmp_path / "agent.db"
    configured = parse_timetable({"lessons": [{"day": 5, "start": "08:00", "end": "08:45", "name": "音乐"}]})
    changes: list[str] = []
    table = CommandTable()
    register_schedule_commands(table, Schedule(TimetableStore(db), configured), lambda: changes.append("x"))

    bad = {"lessons": [{"day": 1, "start": "09:00", "end": "08:00", "name": "语文"}], "colour": 1}
    rejected = await table.execute("schedule.set", {"timetable": bad})
    assert rejected.status == "rejected"
    assert "timetable.lessons[0].end: 08:00 is not after start 09:00" in rejected.error
    assert "timetable.colour: unknown key" in rejected.error
    assert changes == []
    assert (await table.execute("schedule.get", {})).result["source"] == "config"

    ok = await table.execute("schedule.set", {"timetable": json.dumps(TIMETABLE), "by": "centre"})
    assert ok.status == "succeeded" and ok.result["lessons"] == 4 and changes == ["x"]

    reopened = Schedule(TimetableStore(db), configured)  # as after a restart
    assert reopened.current() == parse_timetable(TIMETABLE)
    described = reopened.describe()
    assert described["source"] == "command" and described["set_by"] == "centre" and described["set_at"]
    assert reopened.clear() is True
    assert Schedule(TimetableStore(db), configured).current() == configured


# --- live lessons (专递课堂 / 双师) from the timetable ---------------------------------------------

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
