"""The classroom page shows 直播中 with the target's name and the push's health (view, and in Chromium)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer
from browser import chromium_page
from rooms import skip_without_chromium
from test_page import app_for, site  # tests/agent is on sys.path

from agent.timetable.model import Timetable
from agent.web.view import live_view, signature

ON_AIR = {
    "active": True, "target": "platform", "url": "rtmp://live.example/live/***", "state": "retrying", "gaps": 1,
    "down_s": 3.2, "seconds": 812.4, "last_error": "[Errno 111] Connection refused",
}  # fmt: skip


def view_of(broadcast: dict[str, Any]) -> dict[str, Any]:
    status = {"room": "r", "devices": [], "sources": {}, "broadcast": broadcast}
    return live_view(status, {}, Timetable(), datetime(2026, 11, 23, 8, 0, tzinfo=UTC))


def test_the_view_carries_the_target_and_its_health_and_changes_only_with_them() -> None:
    assert view_of(ON_AIR)["broadcast"] == {"active": True, "target": "platform", "health": "retrying", "gaps": 1}
    assert view_of({"active": False, "target": ""})["broadcast"]["active"] is False
    later = {**ON_AIR, "seconds": 900.0, "down_s": 4.0}  # the page is not re-sent for the clock alone
    assert signature(view_of(later)) == signature(view_of(ON_AIR))
    assert signature(view_of({**ON_AIR, "state": "live"})) != signature(view_of(ON_AIR))


async def test_the_page_says_on_air_in_chromium(tmp_path: Path) -> None:
    skip_without_chromium()
    from playwright.async_api import expect

    server = TestServer(app_for(site(tmp_path), broadcast=ON_AIR))
    await server.start_server()
    try:
        async with chromium_page(viewport={"width": 390, "height": 844}) as page:
            await page.goto(str(server.make_url("/")))
            line = page.locator("#broadcast")
            await expect(line).to_have_text("直播中：platform · 推流中断，正在重连")
            await expect(line).to_have_attribute("data-health", "retrying")
    finally:
        await server.close()
