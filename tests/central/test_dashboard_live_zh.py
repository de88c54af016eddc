"""The dashboard against real agents, in Chinese (Chromium): rejections, a serial port that is gone,
camera buttons that move only while held, and a room that goes away during its school hours.

A real Mosquitto, the real centre and two real agent processes on simulated devices.  Room 1
has a third display on ``/dev/ttyUSB7``, which does not exist; both rooms have a lesson in their
timetable now, so when room 2's agent dies the centre raises ``offline_in_hours`` by itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sys
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from browser import chromium_page, log_in, script_errors
from fleet_stores import fleet_at
from rooms import REPO, skip_without_chromium
from visible_text import assert_plain_chinese

from central.app import Central
from central.mosquitto import LocalBroker, free_port
from central.users import Users
from contract.mqtt import BrokerAddress

PASSWORD = "pass-word-1"
CONFIG = """
agent_id = "{agent}"
site = "no1-school"
room = "{room}"
data_dir = "{data}"
[broker]
url = "{url}"
[http]
port = {port}
[[devices]]
id = "panel"
name = "讲台大屏"
profile = "samsung-mdc"
address = "sim"
[[devices]]
id = "camera"
name = "讲台摄像机"
profile = "sony-visca"
address = "sim"
poll_s = 0.5
{extra}
[timetable]
timezone = "+00:00"
power_on_before_min = 0
power_off_after_min = 0
[[timetable.lessons]]
day = [{weekday}]
start = "{start}"
end = "{end}"
name = "数学"
"""
SIDE = """[[devices]]
id = "side"
name = "侧面大屏"
profile = "samsung-mdc"
address = "/dev/ttyUSB7"
poll_s = 0.5
"""
# The ids the pages show as they are (and the example id of 巡课's "other picture" hint).
IDS = [
    "room-2/students", "agent-1", "agent-2", "no1-school", "tech", "panel", "camera", "side", "samsung-mdc",
    "sony-visca", socket.gethostname(),
]  # fmt: skip


def _write(tmp: Path, url: str, agent: str, room: str, extra: str = "") -> tuple[Path, int]:
    now = datetime.now(UTC)
    start = max(now - timedelta(hours=1), now.replace(hour=0, minute=0))
    end = min(now + timedelta(hours=2), now.replace(hour=23, minute=59))
    port = free_port()
    config = tmp / f"{agent}.toml"
    config.write_text(
        CONFIG.format(
            agent=agent, room=room, data=tmp / agent, url=url, port=port, extra=extra,
            weekday=now.isoweekday(), start=start.strftime("%H:%M"), end=end.strftime("%H:%M"),
        ),
        encoding="utf-8",
    )  # fmt: skip
    return config, port


async def _agent(config: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent.cli", "run", "--config", str(config),
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


def _pan(port: int) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=10) as response:
        devices = json.loads(response.read())["devices"]
    camera = next(d for d in devices if d["device"] == "camera")
    return camera["state"].get("pan"), camera["ts"]


async def _settled_pan(port: int) -> Any:
    """The camera's pan once two polls after a third (each newer than the last) agree: it has stopped."""
    seen: list[tuple[Any, str]] = []
    async with asyncio.timeout(30):
        while True:
            pan, ts = await asyncio.to_thread(_pan, port)
            if not seen or ts != seen[-1][1]:
                seen.append((pan, ts))
            if len(seen) >= 3 and seen[-1][0] == seen[-2][0]:
                return pan
            await asyncio.sleep(0.2)


async def _browse(url: str, agents: dict[str, asyncio.subprocess.Process], port: int, ids: list[str]) -> None:
    from playwright.async_api import expect

    async with chromium_page(viewport={"width": 1280, "height": 900}, locale="zh-CN") as page:
        errors = script_errors(page)
        await page.goto(url.rstrip("/") + "/room/agent-1")
        await log_in(page, "tech", PASSWORD)
        await expect(page).to_have_url(re.compile(r"/room/agent-1$"))

        # A value out of range: refused, in words, the agent's English behind 技术信息.
        panel = page.locator('[data-device="panel"]')
        await expect(panel.locator("h3")).to_contain_text("讲台大屏")
        await panel.locator("input.level").fill("140")
        await panel.locator('button[data-action="volume"]').click()
        outcome = page.locator("#outcomes li").first
        await expect(outcome).to_contain_text("显示屏音量：被拒绝 — 音量：140 超出范围 0–100")
        await expect(outcome.locator("details.detail")).to_have_count(1)

        # The serial port that is not there: the card and the alarm say so in words.
        side = page.locator('[data-device="side"] .device-state')
        await expect(side).to_have_text("连不上侧面大屏（串口或网络），请检查连线和地址设置")
        await expect(page.locator('[data-alarm-text="device_offline"]')).to_have_text(
            "连不上侧面大屏（串口或网络），请检查连线和地址设置", timeout=20000
        )

        # Held: the camera turns; let go: it stops (the stop follows the move in the log).
        camera = page.locator('[data-device="camera"]')
        right = camera.locator('button[data-action="move_right"]')
        await right.hover()
        await page.mouse.down()
        moves = page.locator("#commands tbody tr", has_text="摄像机转动")
        await expect(moves).to_have_count(1)
        await page.mouse.up()
        stops = page.locator("#commands tbody tr", has_text="摄像机停止")
        await expect(stops).to_have_count(1)
        await expect(stops.first).to_contain_text("成功")
        first = await _settled_pan(port)
        # One click (down and up at once): one step, never an endless pan.
        await camera.locator('button[data-action="move_left"]').click()
        await expect(stops).to_have_count(2)
        await expect(moves).to_have_count(2)
        second = await _settled_pan(port)
        assert second != first and second == await _settled_pan(port)
        await assert_plain_chinese(page, ids)

        # Room 2's agent dies during its school hours: lost, its last known state greyed, an alarm.
        await page.click("a.brand")
        agents["agent-2"].kill()
        row = page.locator('tr[data-agent="agent-2"]')
        await expect(row).to_have_attribute("data-state", "lost", timeout=20000)
        await expect(row.locator(".stale-mark")).to_contain_text("最后已知")
        await expect(row.locator(".alarm-count .unacked")).to_have_text("1 未确认", timeout=20000)
        await expect(page.locator("#fleet tbody tr").first).to_have_attribute("data-agent", "agent-2")
        await assert_plain_chinese(page, ids)
        await row.locator(".room a").click()
        await expect(page.locator('[data-alarm-text="offline_in_hours"]')).to_contain_text("上课时间")
        await expect(page.locator("#stale-note")).to_be_visible()
        await assert_plain_chinese(page, ids)
        assert errors == []


async def test_the_dashboard_speaks_plainly_about_real_rooms(broker: LocalBroker, tmp_path: Path) -> None:
    skip_without_chromium()
    db_path = fleet_at(tmp_path)
    Users(db_path).add("tech", PASSWORD, "technician")
    central = Central(BrokerAddress.parse(broker.url), db_path)
    central.hours.every_s = 0.5  # look often: the test does not wait half a minute
    agents: dict[str, asyncio.subprocess.Process] = {}
    try:
        async with asyncio.TaskGroup() as tg:
            service = tg.create_task(central.run(("127.0.0.1", 0)), name="central[test].run")
            try:
                async with asyncio.timeout(15):
                    await central.http_ready.wait()
                    await central.collector.connected.wait()
                config, port = _write(tmp_path, broker.url, "agent-1", "高一(1)班", SIDE)
                agents["agent-1"] = await _agent(config)
                agents["agent-2"] = await _agent(_write(tmp_path, broker.url, "agent-2", "录播教室")[0])
                async with asyncio.timeout(30):
                    while {a["agent_id"] for a in central.db.agents() if a["state"] == "online"} != set(agents):
                        await asyncio.sleep(0.1)
                macs = [str(n["mac"]) for a in central.db.agents() for n in a["nics"]]  # this PC's cards
                async with asyncio.timeout(120):
                    await _browse(central.http_url, agents, port, IDS + macs)
            finally:
                service.cancel()
    finally:
        for proc in agents.values():
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
        central.close()
