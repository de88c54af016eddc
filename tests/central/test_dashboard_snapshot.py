"""An ONVIF camera on the room page (Chromium): its identity in the device card, a still from camera.snapshot.

A real Mosquitto, the real centre and a real agent process whose camera is the simulated ONVIF camera
(address ``sim``): the still travels as a small JPEG in the command's reply, within the contract.
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

PASSWORD = "pass-word-1"
CONFIG = """
agent_id = "agent-9"
site = "east"
room = "录播教室"
data_dir = "{data}"
[broker]
url = "{url}"
[http]
port = {port}
[[devices]]
id = "camera"
profile = "onvif"
address = "sim"
poll_s = 1
"""


async def _browse(url: str) -> None:
    from playwright.async_api import expect

    async with chromium_page(viewport={"width": 1280, "height": 900}) as page:
        errors = script_errors(page)
        await page.goto(url.rstrip("/") + "/room/agent-9")
        await log_in(page, "tech", PASSWORD)
        await expect(page).to_have_url(re.compile(r"/room/agent-9$"))
        card = page.locator('[data-device="camera"]')
        await expect(card.locator(".device-state")).to_contain_text("厂家 Classroom")
        await expect(card.locator(".device-state")).to_contain_text("型号 SimPTZ")

        picture = card.locator("img.snapshot")
        await expect(picture).to_be_hidden()
        await card.locator('button[data-action="snapshot"]').click()
        await expect(page.locator("#outcomes li").first).to_contain_text("摄像机抓拍：成功")
        await expect(picture).to_be_visible()
        width = await picture.evaluate("(img) => img.complete ? img.naturalWidth : 0")
        assert 0 < width <= 640 and int(await picture.get_attribute("data-width") or 0) == width
        outcome = await page.locator("#outcomes li").first.inner_text()
        assert "/9j/" not in outcome  # the base64 of a JPEG is never shown as text

        await card.locator('button[data-action="home"]').click()
        await expect(page.locator("#outcomes li").first).to_contain_text("摄像机回原位：成功")
        await expect(page.locator("#commands tbody tr").nth(1)).to_contain_text("摄像机抓拍")
        assert "/9j/" not in await page.locator("#commands").inner_text()  # the audit keeps the size only
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOTS / "dashboard-onvif.png"), full_page=True)
        assert errors == []


async def test_the_room_page_shows_an_onvif_cameras_identity_and_still(broker: LocalBroker, tmp_path: Path) -> None:
    skip_without_chromium()
    db_path = fleet_at(tmp_path)
    Users(db_path).add("tech", PASSWORD, "technician")
    central = Central(BrokerAddress.parse(broker.url), db_path)
    config = tmp_path / "agent-9.toml"
    config.write_text(CONFIG.format(data=tmp_path / "agent", url=broker.url, port=free_port()))
    agent: asyncio.subprocess.Process | None = None
    try:
        async with asyncio.TaskGroup() as tg:
            service = tg.create_task(central.run(("127.0.0.1", 0)), name="central[test].run")
            try:
                async with asyncio.timeout(15):
                    await central.http_ready.wait()
                    await central.collector.connected.wait()
                agent = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "agent.cli", "run", "--config", str(config),
                    cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                )  # fmt: skip
                async with asyncio.timeout(30):
                    while not any(a["agent_id"] == "agent-9" and a["state"] == "online" for a in central.db.agents()):
                        await asyncio.sleep(0.1)
                async with asyncio.timeout(90):
                    await _browse(central.http_url)
            finally:
                service.cancel()
    finally:
        if agent is not None and agent.returncode is None:
            agent.kill()
            await agent.wait()
        central.close()
