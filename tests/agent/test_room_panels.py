"""The room's commands on a 鸿合 Hitevision panel and a VISCA camera, each its profile's simulator on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.alarms import Alarms
from agent.commands.room import RoomCommands
from agent.commands.table import CommandStatus, CommandTable
from agent.config.site import parse_config
from agent.devices import DeviceService


@pytest.fixture
async def room(tmp_path: Path) -> AsyncIterator[CommandTable]:
    config = parse_config(
        {
            "agent_id": "room-7",
            "site": "no1",
            "room": "初二(7)班",
            "data_dir": str(tmp_path),
            "devices": [
                {"id": "panel", "profile": "hitevision-ifp", "address": "sim"},
                {"id": "camera", "profile": "sony-visca", "address": "sim"},
            ],
        }
    )

    async def on_state(state: Any) -> None:
        return None

    devices = {d.id: DeviceService(d, on_state, Alarms(lambda event: None)) for d in config.devices}
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(d.run(), name=f"test[{d.id}].run") for d in devices.values()]
        async with asyncio.timeout(10):
            while any(d.device is None for d in devices.values()):
                await asyncio.sleep(0.01)
        try:
            yield RoomCommands(devices, version="t", restart_service=lambda n: None, services=lambda: []).table()
        finally:
            for task in tasks:
                task.cancel()


async def test_a_teacher_switches_the_hitevision_panel_to_the_ops_pc(room: CommandTable) -> None:
    outcome = await room.execute("panel.input", {"device": "panel", "source": "ops"})
    assert outcome.status == CommandStatus.SUCCEEDED, outcome.error
    assert outcome.result == {"device": "panel", "reply": "ack"}
    volume = await room.execute("panel.volume", {"device": "panel", "level": 35})
    assert volume.result == {"device": "panel", "reply": "value", "volume": 35}


async def test_a_command_the_makers_documents_leave_out_is_refused_saying_so(room: CommandTable) -> None:
    outcome = await room.execute("panel.mute", {"device": "panel", "on": True})
    assert outcome.status == CommandStatus.REJECTED
    assert outcome.error == "panel (hitevision-ifp) cannot mute_on (its source publishes no code for it)"


@pytest.mark.parametrize("direction", ["tele", "wide", "stop"])
async def test_camera_zoom_still_works_with_the_standard_zoom_commands(room: CommandTable, direction: str) -> None:
    outcome = await room.execute("camera.zoom", {"device": "camera", "direction": direction})
    assert outcome.status == CommandStatus.SUCCEEDED, outcome.error
    assert outcome.result["reply"] == "completion"
