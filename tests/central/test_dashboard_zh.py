"""The dashboard in plain Chinese (Chromium): no English sentence and no raw JSON on a zh-CN page.

A fleet written through the real writer: a main classroom in a live lesson and recording, with an
alarm of every type the agent raises (each with the agent's English message), rejections and
failures with their codes, a long ``lesson.status`` result and a camera on a serial port that is
gone; a remote classroom; a lost room; and a room offline during its school hours, whose alarm
the centre's own `HoursWatch` raises.  `tests/visible_text.py` walks every visible text node.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from browser import chromium_page, log_in, script_errors
from fleet_stores import fleet_at
from rooms import SCREENSHOTS, skip_without_chromium
from visible_text import assert_plain_chinese, problems, visible_texts

from central.fleet_rows import CommandReplied, CommandSent, Seen
from central.fleetdb import FleetDB
from central.hours import HoursFleet, HoursWatch
from central.live import Changes
from central.users import Users
from central.web import create_app
from contract import (
    Command,
    CommandReply,
    CommandStatus,
    DeviceInfo,
    DeviceState,
    Event,
    Info,
    SourceInfo,
    Status,
    Telemetry,
    to_iso,
)

PASSWORD = "pass-word-1"
NOW = datetime.now(UTC)
SERIAL = "/dev/ttyUSB7: cannot open: [Errno 2] could not open port /dev/ttyUSB7: No such file or directory"
PANEL = DeviceInfo("panel", "display", "samsung-mdc", "讲台大屏", ("hdmi1", "hdmi2", "ops"))
CAMERA = DeviceInfo("camera", "camera", "sony-visca", "讲台摄像机")
SOURCES = (
    SourceInfo("teacher", "rtsp", "rtsp://10.0.0.9/main", "老师特写"),
    SourceInfo("students", "rtsp", "rtsp://10.0.0.10/main", "学生全景"),
)
LESSON = {
    "active": True, "id": "0c6c577e0c24", "mode": "zhuandi", "role": "main", "since": to_iso(NOW),
    "sources": ["teacher", "courseware"],
    "peers": {
        "room-101": {"state": "connected", "since": to_iso(NOW), "rtt_ms": 3.4, "loss": 0.012,
                     "bitrate_in_kbps": 420.0, "bitrate_out_kbps": 810.5, "frames_sent": 1200, "frames_received": 900},
        "room-102": {"state": "no_answer", "since": to_iso(NOW), "reason": "offer 3 unanswered after 10 s"},
    },
}  # fmt: skip
CONNECTED = LESSON["peers"]["room-101"]  # type: ignore[index]
# Every alarm the agent raises: (type, severity, device, English message, params), as the agent sends them.
ALARMS: list[tuple[str, str, str, str, dict[str, Any]]] = [
    ("device_offline", "warning", "camera", f"camera does not answer: {SERIAL}",
     {"device": "camera", "code": "device_unreachable"}),
    ("disk_low", "critical", "", "4.1% (3.2 GiB) free on /srv/classroom", {"free_percent": 4.1, "free_gb": 3.2}),
    ("disk_low", "critical", "recording", "not enough disk space to record: 3.2 GiB free on /srv, 9.0 GiB needed",
     {"free_gb": 3.2, "needed_gb": 9.0}),
    ("service_restarted", "warning", "devices", "devices crashed: RuntimeError('boom')", {"service": "devices"}),
    ("outbox_dropped", "warning", "", "120 undelivered events/replies dropped (outbox bounds)", {"count": 120}),
    ("encoder_degraded", "warning", "teacher", "teacher: sending 640x360 at 15 fps instead of full quality (busy)",
     {"source": "teacher", "size": "640x360", "fps": 15}),
    ("link_degraded", "warning", "room-101", "lesson link to room-101: loss 8% rtt 300 ms",
     {"peer": "room-101", "loss_percent": 8.0, "rtt_ms": 300}),
    ("lesson_peer_lost", "warning", "room-102", "lesson peer room-102: offer 3 unanswered after 10 s",
     {"peer": "room-102", "role": "remote"}),
    ("recording_failed", "critical", "", "recording 20261122-0800 failed: encoder died",
     {"recording": "20261122-0800", "lesson": "数学"}),
    ("upload_failed", "critical", "", "upload of recording 20261122-0800: HTTP 507",
     {"recording": "x", "retry": False}),
    ("source_offline", "warning", "students", "source students: no picture for 10 s", {"source": "students"}),
    ("sfu_unreachable", "warning", "http://10.0.0.5:8088", "janus: connection refused (sending peer to peer)",
     {"fallback": "p2p"}),
    ("lamp_end_of_life", "warning", "panel", "panel: lamp at 3100 h (limit 3000 h): order a spare",
     {"hours": 3100, "limit": 3000}),
    ("fault_fan", "critical", "panel", "panel: fan error", {"part": "fan", "level": "error"}),
    ("agent_from_the_future", "warning", "", "something new happened", {}),  # a type this centre has no words for
]  # fmt: skip
# (name, args, status, result, error, code, params): what the technician did and how each ended.
COMMANDS: list[tuple[str, dict[str, Any], str, Any, str, str, dict[str, Any]]] = [
    ("panel.volume", {"device": "panel", "level": 140}, "rejected", None, "level: 140 is out of range 0..100",
     "arg_range", {"arg": "level", "value": 140, "min": 0, "max": 100}),
    ("camera.home", {"device": "camera"}, "failed", None, f"camera: {SERIAL}", "device_unreachable",
     {"device": "camera"}),
    ("panel.input", {"device": "panel", "source": "vga"}, "rejected", None,
     "source: got 'vga', expected one of hdmi1, hdmi2, ops", "arg_choice",
     {"arg": "source", "value": "vga", "choices": ["hdmi1", "hdmi2", "ops"]}),
    ("record.start", {}, "rejected", None, "recording is not configured: add [sources] and [recording]",
     "recording_not_configured", {}),
    ("agent.shutdown", {"delay_s": 60, "force": False}, "rejected", None, "force: refused during recording 数学",
     "busy", {"action": "shutdown", "recording": True, "lesson": True}),
    ("lesson.status", {}, "succeeded", {**LESSON, "peers": {f"room-{i}": CONNECTED for i in range(40)}}, "", "", {}),
    ("panel.input", {"device": "panel", "source": "ops"}, "succeeded",
     {"device": "panel", "reply": "ack", "source": "ops"}, "", "", {}),
    ("agent.ping", {}, "succeeded", {"pong": True, "version": "1.0", "uptime_s": 12.5}, "", "", {}),
    ("camera.move", {"device": "camera", "direction": "right", "speed": 8}, "failed", None,
     "a message the agent words in a way this centre does not know", "some_future_code", {}),
]  # fmt: skip


class NoSender:
    async def send(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError("this test sends no command")


def _rows(db: FleetDB) -> None:
    now = to_iso(NOW)

    def seen(agent: str, payload: Any, site: str = "east", retained: bool = False) -> Seen:
        return Seen(site, agent, payload, now, retained)

    hours = ((to_iso(NOW - timedelta(hours=1)), to_iso(NOW + timedelta(hours=6))),)
    extra = {
        "lesson": LESSON,
        "recording": {"active": True, "lesson": "数学"},
        "sources": {"teacher": {"connected": True}, "students": {"connected": False}},
    }
    rows: list[Any] = [
        seen("main-1", Status("online", 1, now, "1.0")),
        seen("main-1", Info("高一(1)班", "pc-main", "1.0", (PANEL, CAMERA), sources=SOURCES, hours=hours)),
        seen("main-1", DeviceState("panel", True, now, {"power": "on", "volume": 30, "source": "hdmi1"})),
        seen("main-1", DeviceState("camera", False, now, {}, SERIAL, "device_unreachable")),
        seen("main-1", Telemetry(now, 12.5, 40.0, 50 * 10**9, 61.0, extra=extra)),
        seen("room-101", Status("online", 1, now, "1.0")),
        seen("room-101", Info("初二(3)班", "pc-101", "1.0", (PANEL,))),
        seen("room-101", Telemetry(now, 5.0, 30.0, 80 * 10**9, 20.0, extra={"lesson": {**LESSON, "role": "remote"}})),
        seen("room-102", Status("online", 1, now, "1.0")),
        seen("room-102", Info("初二(4)班", "pc-102", "1.0", (PANEL,))),
        seen("room-102", DeviceState("panel", True, now, {"power": "on", "volume": 20, "source": "ops"})),
        seen("room-102", Status("lost", 1, now, "1.0"), retained=True),
        seen("room-103", Status("online", 1, now, "1.0"), site="west"),
        seen("room-103", Info("物理实验室", "pc-103", "1.0", (PANEL,), hours=hours), site="west"),
        seen("room-103", Status("offline", 1, now, "1.0"), site="west"),
    ]
    for i, (kind, severity, device, message, params) in enumerate(ALARMS):
        event = Event(kind, severity, "raise", now, message, device, {"params": params} if params else {}, f"e{i}")
        rows.append(seen("main-1", event))
    for i, (name, args, status, result, error, code, params) in enumerate(COMMANDS):
        command = Command(f"c{i}", name, args, to_iso(NOW + timedelta(minutes=1)), "tech")
        rows.append(CommandSent("east", "main-1", command, to_iso(NOW - timedelta(seconds=len(COMMANDS) - i))))
        reply = CommandReply(f"c{i}", CommandStatus(status), result, error, name, code, params)
        rows.append(CommandReplied("main-1", reply, now))
    db.write_batch(rows)


@pytest.fixture
async def fleet(tmp_path: Path) -> Any:
    db = FleetDB(fleet_at(tmp_path))
    _rows(db)
    # The centre's own watch raises offline_in_hours for room-103 (offline inside its school hours).

    async def put(row: Any) -> None:
        db.write_batch([row])

    verdicts = await HoursWatch(HoursFleet(db.agents, lambda: db.alarms(open_only=True)), put).once()
    assert [(v.agent_id, v.raise_) for v in verdicts] == [("room-103", True)]
    Users(db.location).add("tech", PASSWORD, "technician")
    yield db
    db.close()


# The ids the pages show as they are (and the example id of 巡课's "other picture" hint).
IDS = [
    "room-2/students", "main-1", "room-101", "room-102", "room-103", "east", "west", "tech", "panel", "camera",
    "samsung-mdc", "sony-visca", "pc-main", "pc-101", "pc-102", "pc-103", "640x360", "teacher", "students",
    "courseware", "20261122-0800", "devices",
]  # fmt: skip


async def _login(page: Any, url: str) -> None:
    await page.goto(url)
    await log_in(page, "tech", PASSWORD)


async def test_every_page_of_the_dashboard_is_plain_chinese(fleet: FleetDB) -> None:
    skip_without_chromium()
    from playwright.async_api import expect

    app = create_app(fleet, Changes(), NoSender(), users=Users(fleet.location), secret=b"0" * 32)
    async with (
        TestServer(app) as server,
        chromium_page(viewport={"width": 1280, "height": 900}, locale="zh-CN") as page,
    ):
        errors = script_errors(page)
        await _login(page, str(server.make_url("/")))
        rows = page.locator("#fleet tbody tr")
        await expect(rows).to_have_count(4)

        # The fleet: problems first (the room away in school hours, then the lost one), live lesson and recording.
        order = await rows.evaluate_all("(rows) => rows.map((r) => r.dataset.agent)")
        assert order[:2] == ["room-103", "room-102"] and order[2] == "main-1", order
        main = page.locator('tr[data-agent="main-1"]')
        await expect(main.locator('[data-activity="lesson"]')).to_have_text("专递课堂 · 主讲教室")
        await expect(main.locator('[data-activity="recording"]')).to_have_text("录制中")
        await expect(main.locator(".alarm-count")).to_have_attribute("data-unacked", str(len(ALARMS)))
        lost = page.locator('tr[data-agent="room-102"]')
        await expect(lost.locator(".stale-mark")).to_contain_text("最后已知")
        await expect(lost.locator(".device-state")).to_have_text("电源 开 · 音量 20 · 信号源 电脑(OPS)")
        await expect(page.locator('tr[data-agent="room-103"] .alarm-count .unacked')).to_have_text("1 未确认")
        await assert_plain_chinese(page, IDS)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOTS / "dashboard-fleet-problems.png"), full_page=True)

        await page.goto(str(server.make_url("/room/room-103")))
        await expect(page.locator('[data-alarm-text="offline_in_hours"]')).to_contain_text("上课时间")
        await assert_plain_chinese(page, IDS)

        await page.goto(str(server.make_url("/room/main-1")))
        await expect(page.locator("#alarms tbody tr")).to_have_count(len(ALARMS))
        texts = await assert_plain_chinese(page, IDS)
        seen = "\n".join(item["text"] for item in texts)
        for words in (
            "音量：140 超出范围 0–100",  # the rejection, in words
            "连不上讲台摄像机（串口或网络），请检查连线和地址设置",  # the serial port that is gone
            "信号源：VGA 不在可选范围内（可选：HDMI 1、HDMI 2、电脑(OPS)）",
            "这间教室没有配置录制",
            "正在录制，没有执行",
            "专递课堂，本教室为主讲教室，40/40 间教室已连通",  # lesson.status summarised, not dumped
            "显示屏信号源（讲台大屏 · 信号源 电脑(OPS)）",
            "与 初二(3)班 的连线质量下降：丢包 8%，时延 300 毫秒",  # remote classrooms by room name
            "与听课教室 初二(4)班 的连线中断，正在重新连接",
            "老师特写的直播画面已降为 640x360、每秒 15 帧",
            "学生全景没有画面",
            "其他告警",
            "操作没有成功",
            "观看 学生全景（无信号）",
        ):
            assert words in seen, words
        peers = page.locator("#lesson [data-peer]")
        await expect(peers).to_have_text(["初二(3)班", "初二(4)班"])
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1280, f"the page is {width} px wide: something widens it past the window"
        await page.screenshot(path=str(SCREENSHOTS / "dashboard-alarms.png"), full_page=True)

        # The technician's detail is there, behind 技术信息; opened, it is the agent's English.
        toggle = page.locator("#commands details.detail").first
        await toggle.locator("summary").click()
        assert problems(await visible_texts(page), IDS), "an opened 技术信息 shows the technical text"
        assert await page.evaluate("document.documentElement.scrollWidth") <= 1280

        # The same codes in English for an English reader.
        await page.goto(str(server.make_url("/lang/en?next=%2Froom%2Fmain-1")))
        await expect(page.locator("#commands")).to_contain_text("level: 140 is out of range 0–100")
        await expect(page.locator("#alarms")).to_contain_text("Link to the remote classroom 初二(4)班 lost")
        assert errors == []


async def test_acknowledging_an_alarm_leaves_it_open_but_no_longer_unacknowledged(fleet: FleetDB) -> None:
    skip_without_chromium()
    from playwright.async_api import expect

    app = create_app(fleet, Changes(), NoSender(), users=Users(fleet.location), secret=b"0" * 32)
    async with TestServer(app) as server, chromium_page(locale="zh-CN") as page:
        await _login(page, str(server.make_url("/room/room-103")))
        await expect(page).to_have_url(re.compile(r"/room/room-103$"))
        counts = page.locator("#alarm-counts")
        await expect(counts).to_have_text("1 未恢复 · 1 未确认")
        await page.click('#alarms button[data-action="ack"]')
        await expect(page.locator("#alarms")).to_contain_text("已由 tech 确认")
        await expect(counts).to_have_text("1 未恢复 · 0 未确认")
        await page.click("a.brand")
        cell = page.locator('tr[data-agent="room-103"] .alarm-count')
        await expect(cell).to_have_text("1 未恢复")
        await expect(cell).to_have_attribute("data-unacked", "0")


async def test_every_page_has_a_favicon_even_before_login(fleet: FleetDB) -> None:
    from aiohttp.test_utils import TestClient

    app = create_app(fleet, Changes(), NoSender(), users=Users(fleet.location), secret=b"0" * 32)
    async with TestClient(TestServer(app)) as client:
        icon = await client.get("/favicon.ico")
        assert icon.status == 200 and icon.headers["Content-Type"] == "image/svg+xml"
        assert (await icon.read()).startswith(b"<svg")
        login = await (await client.get("/login")).text()
        assert '<link rel="icon" href="/static/favicon.svg"' in login
        assert (await client.get("/static/favicon.svg")).status == 200
