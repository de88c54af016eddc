"""The timetable's scheduler in virtual time: recording each marked lesson once, retries, restarts, schedule.*."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from test_timetable import BEIJING, MONDAY, TIMETABLE, at

from agent.commands.schedule import Schedule, TimetableStore, register_schedule_commands
from agent.commands.table import Arg, CommandDef, CommandTable, Failed, ListArg, Rejected
from agent.timetable.model import Timetable
from agent.timetable.parse import parse_timetable
from agent.timetable.scheduler import SchedulerService


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
