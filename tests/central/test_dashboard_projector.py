"""A projector's lamp and faults on the dashboard, in real headless Chromium, from end to end.

Our PJLink simulator (asking for a password, its fan failing, its lamp at 3,100 hours) on loopback;
a real agent process polling it; a real Mosquitto; the real collector and dashboard.  The room page
must word the alarms from their codes and params, in Chinese and in English, and clear them when
the projector is well again.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

from browser import chromium_page, log_in, script_errors
from fleet_stores import fleet_at
from rooms import REPO, SCREENSHOTS, skip_without_chromium

from central.app import Central
from central.mosquitto import LocalBroker, free_port
from central.users import Users
from contract.mqtt import BrokerAddress
from drivers.profile import find_profile
from drivers.sim.model import Simulator
from drivers.sim.runner import SimServer

PASSWORD = "pass-word-1"
PROJECTOR_PASSWORD = "jbmia42"
AGENT = "room-p"

CONFIG = """
agent_id = "{agent}"
site = "no1-school"
room = "多媒体教室"
data_dir = "{data}"
[broker]
url = "{url}"
[intervals]
telemetry_s = 60
[http]
port = {port}
[[devices]]
id = "projector"
profile = "pjlink"
address = "{projector}?password={password}"
poll_s = 0.5
"""


async def _wait_alarms(central: Central, codes: set[str], open_: bool = True) -> None:
    async with asyncio.timeout(40):
        while True:
            rows = central.db.alarms(agent_id=AGENT, open_only=False)
            seen = {a["type"] for a in rows if (a["cleared_ts"] is None) == open_}
            if codes <= seen:
                return
            await asyncio.sleep(0.1)


async def _browse(url: str, sim: Simulator, central: Central) -> None:
    from playwright.async_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    url = url.rstrip("/")
    async with chromium_page(viewport={"width": 1280, "height": 900}) as page:
        errors = script_errors(page)
        await page.goto(f"{url}/room/{AGENT}")
        await log_in(page, "tech", PASSWORD)
        await expect(page).to_have_url(re.compile(f"/room/{AGENT}$"))

        card = page.locator('[data-device="projector"]')
        await expect(card.locator("h3")).to_contain_text("投影机 projector")
        await expect(card.locator(".device-state")).to_contain_text("灯泡使用时间（小时） 3100")
        await expect(card.locator(".device-state")).to_contain_text("风扇 故障")
        await expect(card.locator('button[data-action="volume"]')).to_have_count(0)  # PJLink has no volume

        alarms = page.locator("#alarms")
        lamp = alarms.locator("tr", has=page.locator('[data-alarm-text="lamp_end_of_life"]'))
        await expect(lamp).to_contain_text("投影机灯泡即将到期")
        await expect(lamp).to_contain_text("灯泡已使用 3100 小时，达到 3000 小时的更换提醒，请准备备用灯泡")
        await expect(lamp).to_contain_text("警告")
        fan = alarms.locator("tr", has=page.locator('[data-alarm-text="fault_fan"]'))
        await expect(fan).to_contain_text("投影机风扇异常")
        await expect(fan).to_contain_text("风扇：故障")
        await expect(fan).to_contain_text("严重")
        await expect(fan).to_contain_text("未恢复")

        await card.locator('button[data-action="power_off"]').click()
        await expect(page.locator("#outcomes li").first).to_contain_text("显示屏电源：成功")
        await expect(card.locator(".device-state")).to_contain_text("电源 散热中")
        await page.screenshot(path=str(SCREENSHOTS / "dashboard-projector.png"), full_page=True)

        sim.set("fan_status", "ok")  # the fan is fixed: the alarm clears by itself
        await _wait_alarms(central, {"fault_fan"}, open_=False)
        await expect(fan).to_contain_text("已恢复")
        await expect(card.locator(".device-state")).to_contain_text("风扇 正常")

        await page.goto(f"{url}/lang/en?next=/room/{AGENT}")
        await expect(lamp).to_contain_text("projector lamp near end of life")
        await expect(lamp).to_contain_text("lamp at 3100 hours, past the 3000-hour reminder")
        await expect(fan).to_contain_text("fan: error")
        await expect(card.locator("h3")).to_contain_text("Projector projector")
        assert errors == []


async def test_projector_alarms_on_the_room_page_in_chromium(broker: LocalBroker, tmp_path: Path) -> None:
    skip_without_chromium()
    db_path = fleet_at(tmp_path)
    Users(db_path).add("tech", PASSWORD, "technician")
    # A frozen clock: the lamp stays at 3,100 hours and the cool-down lasts.
    sim = Simulator(find_profile("pjlink"), clock=lambda: 0.0, initial={"lamp_hours": 3100, "fan_status": "error"})
    central = Central(BrokerAddress.parse(broker.url), db_path)
    async with SimServer(sim, "tcp://127.0.0.1:0", password=PROJECTOR_PASSWORD) as projector:
        config = tmp_path / "agent.toml"
        config.write_text(
            CONFIG.format(
                agent=AGENT,
                data=tmp_path / AGENT,
                url=broker.url,
                port=free_port(),
                projector=projector.device_path,
                password=PROJECTOR_PASSWORD,
            )
        )
        agent = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent.cli", "run", "--config", str(config),
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
        try:
            async with asyncio.TaskGroup() as tg:
                service = tg.create_task(central.run(("127.0.0.1", 0)), name="central[test].run")
                try:
                    async with asyncio.timeout(15):
                        await central.http_ready.wait()
                        await central.collector.connected.wait()
                    await _wait_alarms(central, {"lamp_end_of_life", "fault_fan"})
                    async with asyncio.timeout(90):
                        await _browse(central.http_url, sim, central)
                finally:
                    service.cancel()
        finally:
            if agent.returncode is None:
                agent.terminate()
            await agent.wait()
