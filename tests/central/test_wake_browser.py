"""The room page's power buttons in real headless Chromium: wake a sleeping room, shut an awake one down.

The shutdown runs a script that writes down its arguments (never the OS's own command).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path

from browser import chromium_page, log_in, script_errors
from rooms import skip_without_chromium
from test_wake import MACS, PASSWORD, listener, magic, received, running_agent, running_centre, state, until

from central.mosquitto import LocalBroker

__all__ = ["listener"]  # the fixture, used by name
RECORDER = "import json, pathlib, sys\npathlib.Path(sys.argv[1]).write_text(json.dumps(sys.argv[2:]))\n"


async def test_wake_and_shutdown_buttons_on_the_room_page(
    tmp_path: Path, broker: LocalBroker, listener: socket.socket
) -> None:
    skip_without_chromium()
    from playwright.async_api import expect

    script, record = tmp_path / "record_args.py", tmp_path / "shutdown.json"
    script.write_text(RECORDER, encoding="utf-8")
    power = f"shutdown_command = {json.dumps([sys.executable, str(script), str(record), '{delay_s}'])}"
    async with running_centre(tmp_path, broker, listener.getsockname()[1]) as central:
        async with running_agent(tmp_path, broker, "room-b"):
            await until(lambda: state(central, "room-b") == "online")
        await until(lambda: state(central, "room-b") == "offline")
        async with running_agent(tmp_path, broker, "room-a", power):
            await until(lambda: state(central, "room-a") == "online")
            async with chromium_page() as page:
                errors = script_errors(page)
                page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
                await page.goto(central.http_url + "login?next=/room/room-b")
                await log_in(page, "tech", PASSWORD)
                await expect(page.locator("#room-head")).to_contain_text(MACS["room-b"])
                await expect(page.locator("#room-head")).to_contain_text("下次定时唤醒")
                await page.click('#power button[data-action="wake"]')
                await expect(page.locator("#outcomes li").first).to_have_text("唤醒电脑：成功 — 由 room-a 发出唤醒包")
                assert await received(listener) == magic(MACS["room-b"])

                await page.goto(central.http_url + "room/room-a")
                await page.click('#power button[data-action="shutdown"]')
                await expect(page.locator("#outcomes li").first).to_contain_text("电脑关机：成功")
                assert json.loads(record.read_text()) == ["60"]
                await expect(page.locator("#commands tbody tr").first).to_contain_text("强制 否")
                assert errors == []
