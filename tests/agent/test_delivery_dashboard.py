"""Each delivery target's state travels in the agent's telemetry (real Mosquitto, real centre) and the room
page shows it (headless Chromium): the technician sees a platform that does not take the recordings."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from browser import chromium_page, log_in, script_errors
from delivery_helpers import make_recording
from rooms import skip_without_chromium

from agent.config.site import parse_config
from agent.service import Agent
from central.app import Central
from central.mosquitto import LocalBroker, free_port
from central.users import Users
from contract.mqtt import BrokerAddress
from drivers.backoff import Backoff

PASSWORD = "pass-word-1"


def platform_state(central: Central) -> dict[str, Any]:
    latest = central.db.telemetry_history("room-101", 1)
    return dict(((latest[0].get("upload") or {}).get("targets") or {}).get("platform") or {}) if latest else {}


async def test_the_room_page_shows_each_delivery_target_from_the_agents_telemetry(
    broker: LocalBroker, tmp_path: Path
) -> None:
    skip_without_chromium()
    make_recording(tmp_path / "agent")[0].close()  # one finished recording, for a platform that is down
    down = f"http://127.0.0.1:{free_port()}/drop/"
    config = parse_config(
        {
            "agent_id": "room-101",
            "site": "east-school",
            "room": "初一(3)班",
            "data_dir": str(tmp_path / "agent"),
            "broker": {"url": broker.url},
            "intervals": {"telemetry_s": 0.5},
            "http": {"port": free_port()},
            "upload": {"targets": [{"name": "platform", "url": down, "timeout_s": 2}]},
        }  # fmt: skip
    )
    Users(tmp_path / "fleet.db").add("tech", PASSWORD, "technician")
    central = Central(BrokerAddress.parse(broker.url), tmp_path / "fleet.db")
    agent = Agent(config)
    assert agent.deliveries is not None
    agent.deliveries.backoff = lambda: Backoff(base=0.05, cap=0.3)
    try:
        async with asyncio.TaskGroup() as tg:
            service = tg.create_task(central.run(("127.0.0.1", 0)), name="central[test].run")
            room = tg.create_task(agent.run(), name="agent[room-101].run")
            try:
                async with asyncio.timeout(30):
                    await central.http_ready.wait()
                    while platform_state(central).get("failures", 0) < 1:
                        await asyncio.sleep(0.1)
                state = platform_state(central)
                assert (state["kind"], state["url"], state["pending"], state["delivered"]) == ("http", down, 1, 0)
                assert down in state["last_error"] and "Connect" in state["last_error"]
                async with asyncio.timeout(60):
                    await browse(central.http_url)
            finally:
                room.cancel()
                service.cancel()
    finally:
        central.close()


async def browse(url: str) -> None:
    from playwright.async_api import expect

    url = url.rstrip("/")
    async with chromium_page() as page:
        errors = script_errors(page)
        await page.goto(url + "/login")
        await log_in(page, "tech", PASSWORD)
        await expect(page.locator("#fleet")).to_have_count(1)
        await page.goto(url + "/room/room-101")
        row = page.locator("#deliveries tbody tr")
        await expect(page.locator("#deliveries h2")).to_have_text("录播文件投递")
        await expect(row).to_have_count(1)
        await expect(row.locator("td").nth(0)).to_have_text("platform（http）")
        await expect(row.locator("[data-delivery]")).to_have_text("投递失败，稍后重试")
        await expect(row.locator("td").nth(2)).to_have_text("1")  # pending
        await expect(row.locator("td").nth(5)).to_contain_text("127.0.0.1")
        assert errors == []
