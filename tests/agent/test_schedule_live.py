"""The timetable inside a running agent: a lesson under way is recorded by itself."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.config.site import load_config
from agent.service import Agent
from central.mosquitto import LocalBroker, free_port


async def test_an_agent_started_during_a_recorded_lesson_records_it(tmp_path: Path, broker: LocalBroker) -> None:
    beijing = datetime.now(UTC) + timedelta(hours=8)
    start, end = beijing - timedelta(minutes=5), beijing + timedelta(minutes=40)
    if start.date() != end.date():  # a lesson cannot cross midnight: move it to fit the day
        start = beijing.replace(hour=0, minute=0)
        end = beijing.replace(hour=23, minute=59)
    config = tmp_path / "site.toml"
    config.write_text(
        f"""
agent_id = "room-9"
site = "s"
room = "r"
data_dir = "{tmp_path / "var"}"
[broker]
url = "{broker.url}"
[http]
port = {free_port()}
[sources]
cam = "synthetic:cam"
[recording]
layout = "single"
sources = ["cam"]
size = "320x180"
fps = 10
bitrate_mbps = 0.1
planned_minutes = 1
[timetable]
timezone = "+08:00"
[[timetable.lessons]]
day = {beijing.isoweekday()}
start = "{start:%H:%M}"
end = "{end:%H:%M}"
name = "数学"
teacher = "李老师"
record = true
"""
    )
    agent = Agent(load_config(config))
    task = asyncio.create_task(agent.run())
    try:
        async with asyncio.timeout(30):
            while not agent.recording.telemetry()["active"]:
                await asyncio.sleep(0.1)
        assert agent.recording.telemetry()["lesson"] == "数学"
        outcome = await agent.table.execute("schedule.get", {})
        assert outcome.status == "succeeded" and outcome.result["source"] == "config"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
