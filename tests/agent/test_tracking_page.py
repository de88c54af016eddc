"""The auto-tracking switch on the classroom page, in real headless Chromium against a real agent process.

The agent's teacher camera is simulated and its picture is a virtual PTZ camera over the rendered
podium, so the page shows a camera that really follows the walking teacher.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from browser import chromium_page, script_errors
from rooms import SCREENSHOTS, agent_process, skip_without_chromium
from visible_text import assert_plain_chinese

from central.mosquitto import LocalBroker, free_port

CONFIG = """
agent_id = "room-8"
site = "no1-school"
room = "初二(8)班"
data_dir = "{data}"
[broker]
url = "{url}"
[http]
port = {port}
[[devices]]
id = "camera"
profile = "sony-visca"
address = "sim"
poll_s = 1
[sources]
teacher = "ptz:camera?scene=podium"
[[tracking]]
camera = "camera"
role = "teacher"
source = "teacher"
home_preset = 1
settle_s = 0.5
manual_pause_s = 300
zones = {{ podium = [0.0, 0.2, 0.85, 1.0], blackboard = [0.15, 0.2, 0.65, 1.0] }}
"""


@asynccontextmanager
async def tracking_room(broker: LocalBroker, tmp: Path) -> AsyncIterator[str]:
    port = free_port()
    config = tmp / "site.toml"
    config.write_text(CONFIG.format(data=tmp / "var", url=broker.url, port=port), encoding="utf-8")
    base = f"http://127.0.0.1:{port}"

    def reachable() -> bool:
        with urllib.request.urlopen(f"{base}/api/status", None, 2):
            return True

    async with agent_process(config, reachable, "the agent", timeout=30, every=0.2):
        yield base


async def _teacher_turns_tracking_off_and_on(base: str) -> None:
    from playwright.async_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with chromium_page(viewport={"width": 1600, "height": 1000}) as page:
        errors = script_errors(page)
        await page.goto(base + "/")
        panel = page.locator('.card.camera[data-device="camera"] .tracking')
        switch = panel.locator('button[data-action="tracking"]')
        await expect(switch).to_have_text("自动跟踪")
        await expect(switch).to_have_attribute("aria-checked", "true")
        await expect(panel.locator(".tracking-state")).to_have_text("正在跟踪老师", timeout=60_000)
        view = panel.locator("img.tracking-view")
        await expect(view).to_be_visible()
        assert await view.evaluate("img => img.naturalWidth") == 1280  # the analysed picture itself
        card = page.locator('.card.camera[data-device="camera"]')
        await page.wait_for_timeout(3000)  # for the screenshot only: a few pictures into the following
        await card.screenshot(path=str(SCREENSHOTS / "page-tracking.png"))
        await assert_plain_chinese(page, {"camera", "teacher"})

        await switch.click()
        await expect(page.locator("#outcomes li").first).to_have_text("关闭自动跟踪：完成")
        await expect(switch).to_have_attribute("aria-checked", "false")
        await expect(panel.locator(".tracking-state")).to_have_text("已关闭")
        await expect(view).to_be_hidden()

        await switch.click()
        await expect(page.locator("#outcomes li").first).to_have_text("打开自动跟踪：完成")
        await expect(switch).to_have_attribute("aria-checked", "true")
        await expect(panel.locator(".tracking-state")).not_to_have_text("已关闭")

        # A teacher taking the camera by hand: tracking steps aside and says for how long.
        await page.locator('.card.camera[data-device="camera"] button.pad-up').hover()
        await page.mouse.down()
        await page.mouse.up()
        await expect(panel.locator(".tracking-state")).to_contain_text("手动控制中", timeout=10_000)

        await page.goto(base + "/page/lang/en?next=%2F")
        await expect(switch).to_have_text("Auto-tracking")
        await expect(panel.locator(".tracking-state")).to_contain_text("Under manual control")
        assert errors == []


async def test_the_teacher_sees_the_camera_follow_and_switches_tracking_off_and_on(
    broker: LocalBroker, tmp_path: Path
) -> None:
    skip_without_chromium()
    async with tracking_room(broker, tmp_path) as base:
        async with asyncio.timeout(180):
            await _teacher_turns_tracking_off_and_on(base)
