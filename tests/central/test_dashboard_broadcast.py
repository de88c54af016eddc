"""The room page shows 直播中 with the target's name and health from the agent's telemetry (in Chromium)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from browser import chromium_page, log_in, script_errors
from test_dashboard_lesson import PASSWORD, NoSender  # tests/central is on sys.path

from central.fleet_rows import Seen
from central.fleetdb import FleetDB
from central.live import Changes
from central.users import Users
from central.web import create_app
from contract import Info, Status, Telemetry, now_iso

RETRYING = {
    "active": True, "target": "platform", "url": "rtmp://live.example/live/***", "state": "retrying",
    "since": "2026-11-22T08:10:00Z", "gaps": 2, "down_s": 14.5, "last_error": "[Errno 111] Connection refused",
}  # fmt: skip


def fleet(tmp: Path, broadcast: dict[str, Any]) -> FleetDB:
    db = FleetDB(tmp / "fleet.db")
    now = now_iso()
    telemetry = Telemetry(now, 12.5, 40.0, 50 * 10**9, 61.0, extra={"broadcast": broadcast})
    db.write_batch(
        [
            Seen("east", "room-main", Status("online", 1, now, "1.0"), now),
            Seen("east", "room-main", Info("主讲教室", "pc-1", "1.0", ()), now),
            Seen("east", "room-main", telemetry, now),
        ]
    )
    Users(db.path).add("wang", PASSWORD, "viewer")
    return db


async def on_air_line(db: FleetDB) -> tuple[str, str, list[str]]:
    """The #broadcast line's text and health, and any script errors, as Chromium renders the room page."""
    from playwright.async_api import expect

    app = create_app(db, Changes(), NoSender(), users=Users(db.path), secret=b"0" * 32)  # type: ignore[arg-type]
    async with TestServer(app) as server, chromium_page() as page:
        errors = script_errors(page)
        await page.goto(str(server.make_url("/room/room-main")))
        await log_in(page, "wang", PASSWORD)
        line = page.locator("#broadcast")
        await expect(line).to_have_count(1)
        return await line.text_content() or "", await line.get_attribute("data-health") or "", errors


@pytest.mark.parametrize(
    ("broadcast", "words", "health"),
    [
        ({**RETRYING, "state": "live", "gaps": 0}, "直播中：platform · 推流正常", "live"),
        (RETRYING, "直播中：platform · 推流中断，正在重连 · 已中断 2 次，共 14.5 秒", "retrying"),
        ({"active": False, "target": ""}, "", ""),
    ],
)
async def test_the_room_page_says_on_air_with_the_target_and_its_health(
    tmp_path: Path, broadcast: dict[str, Any], words: str, health: str
) -> None:
    db = fleet(tmp_path, broadcast)
    try:
        text, shown_health, errors = await on_air_line(db)
    finally:
        db.close()
    assert errors == []
    assert (text, shown_health) == (words, health)
