"""Timetable lessons with ``broadcast = "target"``: parsed, planned, and put on air by the scheduler (virtual time)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from test_timetable import MONDAY, at  # tests/agent is on sys.path
from test_timetable_scheduler import Room, VirtualTime, run_until_reached

from agent.commands.table import Arg, CommandDef, Rejected
from agent.timetable.model import Timetable, plan
from agent.timetable.parse import parse_timetable
from agent.timetable.scheduler import SchedulerService

DAY: dict[str, Any] = {
    "timezone": "+08:00",
    "auto_power": False,
    "lessons": [
        {"day": 1, "start": "08:00", "end": "08:45", "name": "语文", "record": True, "broadcast": "platform"},
        {"day": 1, "start": "08:55", "end": "09:40", "name": "数学"},
        {"day": 1, "start": "10:00", "end": "10:45", "name": "英语", "broadcast": "platform", "layout": "pip"},
        {"day": 1, "start": "10:45", "end": "11:30", "name": "英语", "broadcast": "platform", "layout": "pip"},
        {"day": 1, "start": "11:30", "end": "12:00", "name": "班会", "broadcast": "district"},
    ],
}


class OnAir(Room):
    """The stub room, with ``broadcast.start`` / ``broadcast.stop`` under their real names."""

    def __init__(self, time: VirtualTime, on_air: str | None = None) -> None:
        super().__init__(time)
        self.on_air = on_air
        args = (Arg("target", choices=("platform", "district")), Arg("layout", required=False))
        self.table.add(CommandDef("broadcast.start", args, self._broadcast_start))
        self.table.add(CommandDef("broadcast.stop", (), self._broadcast_stop))

    async def _broadcast_start(self, args: Mapping[str, Any]) -> dict[str, Any]:
        if self.on_air is not None:  # as BroadcastService says
            raise Rejected(f"already broadcasting to {self.on_air}; broadcast.stop first")
        self._log("broadcast.start", args)
        self.on_air = args["target"]
        return {"target": self.on_air}

    async def _broadcast_stop(self, args: Mapping[str, Any]) -> dict[str, Any]:
        if self.on_air is None:
            raise Rejected("not broadcasting")
        self._log("broadcast.stop", args)
        stopped, self.on_air = self.on_air, None
        return {"target": stopped}


def scheduler(room: OnAir, timetable: Timetable, time: VirtualTime) -> SchedulerService:
    return SchedulerService(
        lambda: timetable, room.execute, clock=time.clock, is_recording=lambda: room.recording,
        is_broadcasting=lambda: room.on_air, sleep=time.sleep,
    )  # fmt: skip


def on_air(room: OnAir) -> list[tuple[str, str, dict[str, Any]]]:
    return [c for c in room.calls if c[1].startswith(("broadcast.", "record."))]


def test_a_lesson_names_its_target_and_the_plan_says_to_broadcast_it() -> None:
    table = parse_timetable(DAY)
    assert parse_timetable(table.to_dict()) == table
    now = plan(table, at(MONDAY, "10:20"))
    assert now.should_broadcast is not None and now.should_broadcast.args() == {"target": "platform", "layout": "pip"}
    assert plan(table, at(MONDAY, "09:00")).should_broadcast is None


async def test_a_school_day_goes_on_air_with_each_lesson_and_off_at_its_end() -> None:
    time = VirtualTime(at(MONDAY, "06:00"), until=at(MONDAY, "13:00"))
    room = OnAir(time)
    await run_until_reached(scheduler(room, parse_timetable(DAY), time), time)
    assert on_air(room) == [
        ("08:00:00", "record.start", {"lesson": "语文"}),  # the recording first: the broadcast joins its encoder
        ("08:00:00", "broadcast.start", {"target": "platform"}),
        ("08:45:00", "broadcast.stop", {}),
        ("08:45:00", "record.stop", {}),
        ("10:00:00", "broadcast.start", {"target": "platform", "layout": "pip"}),
        # 英语连堂 to the same platform goes on as one push: its viewers see no break at 10:45
        ("11:30:00", "broadcast.stop", {}),  # 班会 goes to another platform
        ("11:30:00", "broadcast.start", {"target": "district"}),
        ("12:00:00", "broadcast.stop", {}),
    ]
    assert room.on_air is None


async def test_booted_mid_lesson_it_goes_on_air_at_once_and_a_failed_start_is_retried() -> None:
    time = VirtualTime(at(MONDAY, "10:20:05"), until=at(MONDAY, "11:00"))
    room = OnAir(time)
    room.failures["broadcast.start"] = 2  # the platform is not there yet
    await run_until_reached(scheduler(room, parse_timetable(DAY), time), time)
    assert on_air(room) == [("10:21:05", "broadcast.start", {"target": "platform", "layout": "pip"})]


async def test_a_broadcast_started_by_hand_is_never_stopped_by_the_timetable() -> None:
    time = VirtualTime(at(MONDAY, "09:00"), until=at(MONDAY, "09:50"))
    room = OnAir(time, on_air="district")  # a technician put the school assembly on air
    await run_until_reached(scheduler(room, parse_timetable(DAY), time), time)
    assert on_air(room) == [] and room.on_air == "district"
