"""Refusals and failures carry a code and params, whichever door the command came in by.

The centre words them in the viewer's language (`central/static/words.js`); these tests pin what the
agent sends: the command table's own checks, a display on a serial port that is not there (a real
path), a device the config calls by its name, and the room's school hours in ``info``.
"""

from __future__ import annotations

import asyncio
import re
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.alarms import Alarms
from agent.commands.table import Arg, CommandDef, CommandTable, Failed, ListArg
from agent.config.site import DeviceConfig, parse_config
from agent.devices import DeviceService
from agent.errors import ConfigError
from agent.power.wake import school_hours
from agent.timetable.model import Timetable
from agent.timetable.parse import parse_timetable
from contract import CommandStatus, DeviceState, Event
from drivers.profile import find_profile


async def _nothing(args: Mapping[str, Any]) -> dict[str, Any]:
    return dict(args)


async def _slow(args: Mapping[str, Any]) -> None:
    await asyncio.Event().wait()


def _table() -> CommandTable:
    table = CommandTable()
    device = Arg("device", choices=("panel",))
    table.add(CommandDef("panel.volume", (device, Arg("level", type="int", min=0, max=100)), _nothing))
    table.add(CommandDef("panel.mute", (device, Arg("on", type="bool")), _nothing))
    table.add(CommandDef("lesson.start", (ListArg("remotes", choices=("room-101",)),), _nothing))
    table.add(CommandDef("agent.slow", (), _slow, timeout_s=0.05))
    return table


@pytest.mark.parametrize(
    ("name", "args", "code", "params"),
    [
        ("panel.volume", {"device": "panel", "level": 140}, "arg_range", {"value": 140, "min": 0, "max": 100}),
        ("panel.volume", {"device": "panel", "level": "loud"}, "arg_int", {"arg": "level", "value": "loud"}),
        ("panel.volume", {"device": "screen", "level": 3}, "arg_choice", {"value": "screen", "choices": ["panel"]}),
        ("panel.volume", {"device": "panel"}, "arg_missing", {"arg": "level", "command": "panel.volume"}),
        ("panel.volume", {"device": "panel", "level": 3, "x": 1}, "arg_unknown", {"arg": "x"}),
        ("panel.mute", {"device": "panel", "on": "maybe"}, "arg_bool", {"arg": "on", "value": "maybe"}),
        ("lesson.start", {"remotes": "room-9"}, "arg_choice", {"arg": "remotes", "choices": ["room-101"]}),
        ("panel.dance", {}, "unknown_command", {"command": "panel.dance"}),
        ("agent.slow", {}, "command_timeout", {"seconds": 0.05}),
    ],
)  # fmt: skip
async def test_every_refusal_of_the_table_names_its_code_and_params(
    name: str, args: dict[str, Any], code: str, params: dict[str, Any]
) -> None:
    outcome = await _table().execute(name, args)
    assert outcome.status in (CommandStatus.REJECTED, CommandStatus.FAILED)
    assert (outcome.code, {k: v for k, v in outcome.params.items() if k in params}) == (code, params)
    assert outcome.to_dict()["code"] == code and outcome.error  # the English stays, for the technician


async def test_a_display_on_a_serial_port_that_is_gone_fails_as_device_unreachable(tmp_path: Path) -> None:
    events: list[Event] = []
    states: list[DeviceState] = []

    async def on_state(state: DeviceState) -> None:
        states.append(state)

    port = str(tmp_path / "ttyUSB7")  # a path no serial port is at
    config = DeviceConfig("side", find_profile("samsung-mdc"), port, 0.05, name="侧面大屏")
    side = DeviceService(config, on_state, Alarms(events.append))
    runner = asyncio.create_task(side.run(), name="test[side].run")
    try:
        async with asyncio.timeout(20):
            while not any(e.type == "device_offline" for e in events):
                await asyncio.sleep(0.05)
        with pytest.raises(Failed) as failure:
            await side.call("power_on", {})
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    assert states[-1].online is False and states[-1].code == "device_unreachable" and port in states[-1].error
    alarm = next(e for e in events if e.type == "device_offline")
    assert alarm.extra["params"] == {"device": "side", "code": "device_unreachable"}
    assert failure.value.code == "device_unreachable"
    assert failure.value.params == {"device": "side"}


CONFIG = """
agent_id = "room-1"
site = "east"
room = "高一(1)班"
[broker]
url = "mqtt://127.0.0.1:1883"
[[devices]]
id = "panel"
name = "讲台大屏"
profile = "samsung-mdc"
address = "sim"
[sources]
teacher = { url = "synthetic:teacher", name = "老师特写" }
board = "synthetic:board"
"""


def test_devices_and_sources_have_the_names_people_use_and_a_display_its_inputs(tmp_path: Path) -> None:
    config = parse_config(_toml(CONFIG), base=tmp_path)
    panel = config.devices[0]
    assert (panel.name, panel.inputs[:2]) == ("讲台大屏", ("hdmi1", "hdmi2"))
    assert [(s.id, s.name) for s in config.sources] == [("teacher", "老师特写"), ("board", "")]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ('name = "讲台大屏"', ""),
        ('name = "' + "长" * 65 + '"', "devices[0].name"),
        ("name = 5", "devices[0].name"),
    ],
)
def test_a_name_that_is_too_long_or_not_text_is_a_config_problem(tmp_path: Path, change: str, named: str) -> None:
    text = CONFIG.replace('name = "讲台大屏"', change)
    if not named:
        parse_config(_toml(text), base=tmp_path)
        return
    with pytest.raises(ConfigError, match=re.escape(named)):
        parse_config(_toml(text), base=tmp_path)


def test_a_source_table_with_an_unknown_key_is_a_config_problem(tmp_path: Path) -> None:
    text = CONFIG.replace('name = "老师特写" }', 'name = "老师特写", colour = "red" }')
    with pytest.raises(ConfigError, match=re.escape("sources.teacher.colour")):
        parse_config(_toml(text), base=tmp_path)


def test_school_hours_run_from_each_days_first_lesson_to_its_last_and_drop_when_over() -> None:
    timetable = _timetable()
    monday_9 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 09:00 at +08:00, a Monday
    hours = school_hours(timetable, monday_9, horizon_days=6)
    assert [(a.isoformat(), b.isoformat()) for a, b in hours[:2]] == [
        ("2026-11-23T08:00:00+08:00", "2026-11-23T11:40:00+08:00"),  # today, under way
        ("2026-11-24T08:00:00+08:00", "2026-11-24T11:40:00+08:00"),
    ]
    assert len(hours) == 5  # Monday to Friday; the weekend has no lessons
    evening = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # 14:00: today's lessons are over
    assert school_hours(timetable, evening, horizon_days=6)[0][0].day == 24


def _timetable() -> Timetable:
    lessons = [
        {"day": [1, 2, 3, 4, 5], "start": "08:00", "end": "08:45", "name": "语文"},
        {"day": [1, 2, 3, 4, 5], "start": "10:55", "end": "11:40", "name": "数学"},
    ]
    return parse_timetable({"timezone": "+08:00", "lessons": lessons})


def _toml(text: str) -> dict[str, Any]:
    return tomllib.loads(text)
