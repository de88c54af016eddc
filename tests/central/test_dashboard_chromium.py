"""The whole dashboard in real headless Chromium: two real agents, a command, an alarm acknowledged, a Will."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

from browser import chromium_page, log_in, script_errors
from fleet_stores import fleet_at
from rooms import REPO, SCREENSHOTS, skip_without_chromium
from test_dashboard import PASSWORD

from central.app import Central
from central.mosquitto import LocalBroker, free_port
from central.users import Users
from contract.mqtt import BrokerAddress

# Real agents (classroom-agent run) on simulated devices, each in its own process, so that
# SIGKILL makes the broker publish its Will and SIGTERM is a clean stop.  Room 1 is configured
# so that its disk is always "low": a real alarm for the technician to acknowledge.
AGENT_CONFIG = """
agent_id = "{agent}"
site = "no1-school"
room = "{room}"
data_dir = "{data}"
[broker]
url = "{url}"
[intervals]
telemetry_s = 60
[http]
port = {port}
[health]
disk_low_percent = {disk_low}
[[devices]]
id = "panel"
profile = "samsung-mdc"
address = "sim"
[[devices]]
id = "camera"
profile = "sony-visca"
address = "sim"
"""


async def _start_agent(url: str, tmp: Path, agent: str, room: str, alarm: bool) -> asyncio.subprocess.Process:
    config = tmp / f"{agent}.toml"
    config.write_text(
        AGENT_CONFIG.format(
            agent=agent, room=room, data=tmp / agent, url=url, port=free_port(), disk_low=100 if alarm else 1
        )
    )
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent.cli",
        "run",
        "--config",
        str(config),
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


async def _wait_online(central: Central, agents: set[str]) -> None:
    async with asyncio.timeout(30):
        while {a["agent_id"] for a in central.db.agents() if a["state"] == "online"} != agents:
            await asyncio.sleep(0.1)
        while not central.db.alarms(agent_id="agent-1"):
            await asyncio.sleep(0.1)


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.kill()
    await proc.wait()


async def _browse(url: str, agents: dict[str, asyncio.subprocess.Process]) -> None:
    from playwright.async_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with chromium_page(viewport={"width": 1280, "height": 860}) as page:
        errors = script_errors(page)
        await page.goto(url)
        await expect(page).to_have_url(re.compile(r"/login\?next="))
        await log_in(page, "tech", PASSWORD)

        # The fleet: two rooms online, in Chinese.
        rows = page.locator("#fleet tbody tr")
        await expect(rows).to_have_count(2)
        await expect(page.locator('tr[data-state="online"] .badge')).to_have_text(["在线", "在线"])
        await expect(page.locator('tr[data-agent="agent-1"] .room a')).to_have_text("高一(1)班")
        await expect(page.locator('tr[data-agent="agent-1"] [data-device="panel"] .device-state')).to_contain_text(
            "电源 开"
        )

        # Room 1: power its panel off and watch the reply and the new state arrive.
        await page.click('tr[data-agent="agent-1"] .room a')
        await expect(page).to_have_url(re.compile(r"/room/agent-1$"))
        panel_state = page.locator('[data-device="panel"] .device-state')
        await expect(panel_state).to_contain_text("电源 开")
        await expect(page.locator("#live.on")).to_have_count(1)
        await page.evaluate("window.notReloaded = true")
        await page.click('[data-device="panel"] button[data-action="power_off"]')
        await expect(page.locator("#outcomes li").first).to_have_text("显示屏电源：成功 — 电源 关")
        await expect(panel_state).to_contain_text("电源 关")
        await expect(page.locator("#commands tbody tr").first).to_contain_text("tech")
        await page.click('#alarms button[data-action="ack"]')
        await expect(page.locator("#alarms")).to_contain_text("已由 tech 确认")
        assert await page.evaluate("window.notReloaded") is True
        await page.screenshot(path=str(SCREENSHOTS / "dashboard-room.png"), full_page=True)

        # Back to the fleet: room 2's agent dies (its Will says lost), room 1's stops cleanly.
        await page.click("a.brand")
        await expect(page.locator("#live.on")).to_have_count(1)
        await expect(page.locator('tr[data-state="online"]')).to_have_count(2)
        await page.evaluate("window.notReloaded = true")
        agents["agent-2"].kill()
        await expect(page.locator('tr[data-agent="agent-2"]')).to_have_attribute("data-state", "lost")
        await expect(page.locator('tr[data-agent="agent-2"] .badge')).to_have_text("失联")
        await expect(page.locator('tr[data-agent="agent-1"] [data-device="panel"] .device-state')).to_contain_text(
            "电源 关"
        )
        await page.screenshot(path=str(SCREENSHOTS / "dashboard-fleet.png"), full_page=True)
        agents["agent-1"].terminate()
        await expect(page.locator('tr[data-agent="agent-1"]')).to_have_attribute("data-state", "offline")
        await expect(page.locator('tr[data-agent="agent-1"] .badge')).to_have_text("离线")
        assert await page.evaluate("window.notReloaded") is True
        assert errors == []


async def test_dashboard_in_chromium(broker: LocalBroker, tmp_path: Path) -> None:
    skip_without_chromium()
    db_path = fleet_at(tmp_path)
    Users(db_path).add("tech", PASSWORD, "technician")
    central = Central(BrokerAddress.parse(broker.url), db_path)
    agents: dict[str, asyncio.subprocess.Process] = {}
    try:
        async with asyncio.TaskGroup() as tg:
            service = tg.create_task(central.run(("127.0.0.1", 0)), name="central[test].run")
            try:
                async with asyncio.timeout(15):
                    await central.http_ready.wait()
                    await central.collector.connected.wait()
                agents["agent-1"] = await _start_agent(broker.url, tmp_path, "agent-1", "高一(1)班", True)
                agents["agent-2"] = await _start_agent(broker.url, tmp_path, "agent-2", "录播教室", False)
                await _wait_online(central, {"agent-1", "agent-2"})
                async with asyncio.timeout(90):
                    await _browse(central.http_url, agents)
            finally:
                service.cancel()
    finally:
        for proc in agents.values():
            await _stop(proc)
        central.close()
