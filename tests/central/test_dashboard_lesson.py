"""The room page shows the live lesson from the agent's telemetry: mode, role, each peer's link (in Chromium)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer
from browser import chromium_page, log_in, script_errors
from fleet_stores import fleet_at

from central.fleet_rows import Seen
from central.fleetdb import FleetDB
from central.live import Changes
from central.users import Users
from central.web import create_app
from central.web_text import ZH
from contract import Info, Status, Telemetry, now_iso

PASSWORD = "pass-word-1"
LESSON = {
    "active": True,
    "id": "0c6c577e0c24",
    "mode": "zhuandi",
    "role": "main",
    "since": "2026-11-22T08:00:00Z",
    "sources": ["teacher", "courseware"],
    "peers": {
        "room-a": {"state": "connected", "since": "2026-11-22T08:00:01Z", "attempts": 1, "frames_sent": 1200,
                   "frames_received": 900, "rtt_ms": 3.4, "loss": 0.012, "bitrate_in_kbps": 420.0,
                   "bitrate_out_kbps": 810.5, "fps_in": 15.0},
        "room-b": {"state": "no_answer", "since": "2026-11-22T08:00:05Z", "attempts": 3,
                   "reason": "offer 3 unanswered after 10 s"},
    },
}  # fmt: skip


class NoSender:
    async def send(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError("this test sends no command")


def fleet(tmp: Path, lesson: dict[str, Any] | None) -> FleetDB:
    db = FleetDB(fleet_at(tmp))
    now = now_iso()
    extra = {"lesson": lesson} if lesson is not None else {}
    db.write_batch(
        [
            Seen("east", "room-main", Status("online", 1, now, "1.0"), now),
            Seen("east", "room-main", Info("主讲教室", "pc-1", "1.0", ()), now),
            Seen("east", "room-main", Telemetry(now, 12.5, 40.0, 50 * 10**9, 61.0, extra=extra), now),
        ]
    )
    Users(db.location).add("wang", PASSWORD, "viewer")
    return db


async def room_page_text(db: FleetDB) -> tuple[str, list[str], list[str]]:
    """The #lesson section's text, its peer states and any script errors, as Chromium renders them."""
    from playwright.async_api import expect

    app = create_app(db, Changes(), NoSender(), users=Users(db.location), secret=b"0" * 32)  # type: ignore[arg-type]
    async with TestServer(app) as server, chromium_page() as page:
        errors = script_errors(page)
        await page.goto(str(server.make_url("/room/room-main")))
        await log_in(page, "wang", PASSWORD)
        await expect(page).to_have_url(re.compile(r"/room/room-main"))
        section = page.locator("#lesson")
        await expect(section).to_have_count(1)
        nodes = section.locator("[data-peer-state]")
        states = await nodes.evaluate_all("(nodes) => nodes.map((n) => n.dataset.peerState)")
        return await section.inner_text(), states, errors


async def test_the_room_page_shows_the_live_lesson_and_each_peers_link(tmp_path: Path) -> None:
    db = fleet(tmp_path, LESSON)
    try:
        text, states, errors = await room_page_text(db)
    finally:
        db.close()
    assert errors == []
    assert states == ["connected", "no_answer"]
    assert "专递课堂，本教室为主讲教室" in text
    assert "room-a" in text and "已连接" in text and "3 ms" in text and "1.2 %" in text and "420 / 811 kbps" in text
    assert "1200 / 900" in text
    assert "无应答" in text and "技术信息" in text  # the reason, in English, waits behind the toggle
    assert "offer 3 unanswered" not in text


async def test_a_room_without_a_lesson_says_so(tmp_path: Path) -> None:
    db = fleet(tmp_path, None)
    try:
        text, states, errors = await room_page_text(db)
    finally:
        db.close()
    assert errors == [] and states == []
    assert ZH["live_lesson_none"] in text and "room-a" not in text
