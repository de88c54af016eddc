"""The classroom page in-process: what it shows, errors in plain words, escaping (the PIN gate: test_page_gate.py).

The command table here is the room's real one over real (not started) device services, so a
command reaches a device that does not answer; the browser tests (test_page_browser.py) run a
real agent process with simulated devices.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agent.alarms import Alarms
from agent.commands.room import RoomCommands
from agent.commands.table import CommandTable
from agent.config.lesson import LessonConfig
from agent.config.site import SiteConfig, parse_config
from agent.devices import DeviceService
from agent.timetable.model import Lesson, Timetable
from agent.web.api import create_api
from agent.web.page import page_part
from agent.web.plain import WORDS, plain_error
from agent.web.text import STRINGS
from agent.web.view import device_light, device_link, live_view, room_layout, source_light, timetable_now

HOSTILE = '</script><script>alert("x")</script><b>&amp;'
PIN = "2468"


def site(tmp: Path, room: str = "高一(3)班", **camera: Any) -> SiteConfig:
    return parse_config(
        {
            "agent_id": "room-3",
            "site": "no1",
            "room": room,
            "data_dir": str(tmp),
            "devices": [
                {"id": "panel", "profile": "samsung-mdc", "address": "sim"},
                {"id": "camera", "profile": "sony-visca", "address": "sim", **camera},
            ],
        }
    )


def room_table(config: SiteConfig) -> CommandTable:
    alarms = Alarms(lambda event: None)

    async def on_state(state: Any) -> None:
        return None

    devices = {d.id: DeviceService(d, on_state, alarms) for d in config.devices}
    return RoomCommands(devices, version="t", restart_service=lambda n: None, services=lambda: []).table()


def status_of(config: SiteConfig, **extra: Any) -> Callable[[], dict[str, Any]]:
    def status() -> dict[str, Any]:
        return {
            "agent_id": config.agent_id,
            "room": config.room,
            "devices": [
                {
                    "device": "panel",
                    "online": True,
                    "ts": "2026-11-22T08:00:00Z",
                    "state": {"power": "on", "volume": 30},
                },
                {"device": "camera", "online": False, "ts": "2026-11-22T08:00:00Z", "state": {}, "error": "no reply"},
            ],
            "sources": {},
            "recording": {"active": False, "lesson": "", "seconds": 0.0, "frames": 0},
            **extra,
        }

    return status


def app_for(config: SiteConfig, *, pin: str = "", local: bool = True, **status: Any) -> web.Application:
    table = room_table(config)
    part = page_part(table, status_of(config, **status), config, Timetable, pin=pin, is_local=lambda r: local)
    return create_api(table, status_of(config, **status), [part])


@pytest.fixture
async def panel_client(tmp_path: Path) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(app_for(site(tmp_path)))) as client:
        yield client


def boot(page: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="boot">(.*?)</script>', page, re.S)
    assert found, "no boot data in the page"
    data: dict[str, Any] = json.loads(found.group(1))
    return data


# --- what the page shows ------------------------------------------------------------------------


def test_lights_say_green_amber_red_with_the_reason() -> None:
    assert device_light("display", {"online": True, "state": {"power": "on"}}).level == "green"
    standby = device_light("display", {"online": True, "state": {"power": "standby"}})
    assert (standby.level, standby.why) == ("amber", "standby")
    assert device_light("camera", {"online": False, "error": "not polled yet"}).level == "amber"
    down = device_light(
        "display", {"online": False, "error": "tcp://10.0.0.5:1515: cannot connect: refused"}, "network"
    )
    assert (down.level, down.why, down.detail, down.link) == (
        "red",
        "panel_offline",
        "tcp://10.0.0.5:1515: cannot connect: refused",
        "network",
    )
    assert STRINGS["zh"][f"why_{down.why}_{down.link}"] == "大屏没有响应，请检查电源和网线"
    serial = device_light("camera", {"online": False, "error": "no reply"}, "serial")
    assert STRINGS["zh"][f"why_{serial.why}_{serial.link}"] == "摄像机没有响应，请检查电源和连线"
    assert source_light({"connected": True}).level == "green"
    assert source_light({"connected": False, "error": "rtsp: 401"}).to_dict() == {
        "level": "red",
        "why": "source_offline",
        "detail": "rtsp: 401",
    }
    assert source_light({"connected": False}).level == "amber"


def test_an_offline_device_names_the_cable_it_is_wired_by(tmp_path: Path) -> None:
    from agent.config.site import DeviceConfig
    from drivers.profile import find_profile

    visca, mdc, onvif = find_profile("sony-visca"), find_profile("samsung-mdc"), find_profile("onvif")
    wired = {
        "/dev/ttyUSB7": "serial",
        "COM3": "serial",
        "serial:///dev/ttyS0": "serial",
        "tcp://10.0.0.5:1515": "network",
        "udp://10.0.0.6:52381": "network",
        "sim": "serial",  # a simulated VISCA camera stands for one on its RS-232 line
    }
    for address, link in wired.items():
        assert device_link(DeviceConfig("cam", visca, address, 1.0)) == link, address
    assert device_link(DeviceConfig("panel", mdc, "TCP://10.0.0.5", 1.0)) == "network"
    assert device_link(DeviceConfig("ptz", onvif, "onvif://10.0.0.7", 1.0)) == "network"
    kinds, links = {"panel": "display", "camera": "camera"}, {"panel": "network", "camera": "serial"}
    status = {"devices": [{"device": d, "online": False, "error": "no reply"} for d in kinds]}
    view = live_view(status, kinds, Timetable(), datetime.now(UTC), links)
    assert [d["light"]["link"] for d in view["devices"]] == ["network", "serial"]


def test_current_and_next_lesson_from_the_timetable() -> None:
    maths = Lesson(time(8, 0), time(8, 45), "数学", "王老师", days=(1,))
    art = Lesson(time(9, 0), time(9, 45), "美术", days=(1,))
    music = Lesson(time(8, 0), time(8, 45), "音乐", days=(3,))
    table = Timetable((maths, art, music), timezone="+08:00")
    monday_810 = datetime(2026, 11, 23, 0, 10, tzinfo=UTC)  # 08:10 in +08:00
    now = timetable_now(table, monday_810)
    assert now["current"]["name"] == "数学" and now["current"]["teacher"] == "王老师"
    assert (now["next"]["name"], now["next"]["start"], now["next"]["day"]) == ("美术", "09:00", "")
    evening = timetable_now(table, datetime(2026, 11, 23, 12, 0, tzinfo=UTC))  # 20:00 Monday
    assert evening["current"] is None
    assert (evening["next"]["name"], evening["next"]["day"], evening["next"]["in_days"]) == ("音乐", "2026-11-25", 2)
    assert timetable_now(Timetable(), monday_810) == {"current": None, "next": None}


def test_layout_offers_named_presets_panel_inputs_and_only_what_the_table_has(tmp_path: Path) -> None:
    config = site(tmp_path)
    layout = room_layout(config.devices, room_table(config).names())
    assert layout["cameras"] == [{"id": "camera", "presets": {1: "讲台", 2: "黑板", 3: "学生全景"}}]
    assert "hdmi1" in layout["panels"][0]["inputs"]
    assert layout["can_record"] is False and layout["can_lesson"] is False
    assert room_layout(config.devices, ["record.start"])["can_record"] is True
    assert room_layout(config.devices, ["record.start"], recording=False)["can_record"] is False  # no [recording]
    assert room_layout(config.devices, ["record.start", "lesson.start"])["can_lesson"] is True
    sound, silent = LessonConfig(audio="tone:440"), LessonConfig(audio="none")
    assert room_layout(config.devices, ["lesson.mute"], sound)["can_mute"] is True
    assert room_layout(config.devices, ["lesson.mute"], silent)["can_mute"] is False  # nothing to mute


def test_the_lesson_picker_offers_trusted_and_remotes_and_defaults_to_the_timetable_lesson(tmp_path: Path) -> None:
    config = site(tmp_path)
    lesson = LessonConfig(trusted=("room-a", "school-b/room-201"), remotes=("room-a", "room-gone"))
    layout = room_layout(config.devices, ["lesson.start", "lesson.peers"], lesson)
    assert layout["candidates"] == ["room-a", "room-201", "room-gone"]  # as lesson.peers asks them, each once
    assert layout["default_remotes"] == ["room-a", "room-gone"]
    live = Lesson(time(8, 0), time(8, 45), "数学", days=(1,), live="zhuandi", remotes=("room-201",))
    table = Timetable((live,), timezone="+08:00")
    status = status_of(config)()
    monday_810 = datetime(2026, 11, 23, 0, 10, tzinfo=UTC)  # 08:10 in +08:00: the live lesson is on
    assert live_view(status, {}, table, monday_810)["lead"] == {"mode": "zhuandi", "remotes": ["room-201"]}
    assert live_view(status, {}, table, datetime(2026, 11, 23, 2, 0, tzinfo=UTC))["lead"] is None  # 10:00


def test_live_view_keeps_device_state_only_while_online(tmp_path: Path) -> None:
    config = site(tmp_path)
    view = live_view(status_of(config)(), {"panel": "display", "camera": "camera"}, Timetable(), datetime.now(UTC))
    panel, camera = view["devices"]
    assert panel["state"] == {"power": "on", "volume": 30} and panel["light"]["level"] == "green"
    assert camera["state"] == {} and camera["light"]["why"] == "camera_offline"


def test_device_errors_in_plain_words_name_the_device_and_the_cable() -> None:
    timeout = "panel: get_power: no reply within 1000 ms (3 attempts); device=panel"
    assert plain_error(timeout, "display", "zh", "serial") == "大屏没有响应，请检查电源和连线"
    assert plain_error(timeout, "display", "zh", "network") == "大屏没有响应，请检查电源和网线"
    refused = "camera: tcp://x:1: cannot connect: refused"
    assert plain_error(refused, "camera", "zh", "network") == "摄像机没有响应，请检查电源和网线"
    assert plain_error("beamer: no PJLink greeting within 5 s", "projector", "zh", "network").startswith(
        "投影机没有响应"
    )
    assert plain_error("panel: not started yet", "display", "en").startswith("The panel does not answer")
    unplugged = "board: /dev/ttyUSB7: cannot open: [Errno 2] could not open port /dev/ttyUSB7: No such file"
    assert (
        plain_error(unplugged, "display", "zh", "serial") == "连接大屏的串口打不开，请检查串口线是否插好，或联系管理员"
    )
    nak = "panel: set_input: device answered nak; device=panel; last bytes: aa ff 01 03 4e 14 01 66"
    assert plain_error(nak, "display", "zh", "serial") == "大屏拒绝了这个操作（可能正在开机、待机或不支持）"
    garbled = "camera: get_zoom: only unreadable bytes came back; device=camera; last bytes: ff ff"
    assert plain_error(garbled, "camera", "zh", "serial").startswith("摄像机的回答无法识别")
    driver_range = "panel: set_volume: level=140: out of range 0..100"
    assert plain_error(driver_range, "display", "zh") == "音量只能在 0 到 100 之间"
    cannot = "board (pjlink) cannot set_volume (its source publishes no code for it)"
    assert plain_error(cannot, "projector", "zh") == "这台设备不支持这个操作"
    assert plain_error("panel.power: no result within 30 s", "display", "zh") == "等待太久没有结果，请再试一次"


def test_rejections_in_plain_words() -> None:
    busy = "现在正忙（正在上课或录制），请稍后再试"
    said = {
        "level: 140 is out of range 0..100": "音量只能在 0 到 100 之间",
        "preset: 999 is out of range 0..255": "预置位号只能在 0 到 255 之间",
        "level: missing (required by panel.volume)": "缺少音量",
        "remotes: missing (the remote classrooms' agent ids, or lesson.remotes)": "请至少选择一个要连线的教室",
        "device: got 'ghost', expected one of panel, board": "本教室没有这台设备",
        "source: got 'hdmi9', expected one of hdmi1, hdmi2": "信号源的值不正确",
        "remotes: dual_teacher takes exactly one remote classroom, got 2": "双师课堂只能连线一个教室",
        "unknown command 'agent.format_disk'; known: agent.ping": "本教室不支持这个功能",
        "volume: unknown argument for panel.volume (takes device, level)": "请求不正确",
        "already recording 'x' since 08:00; record.stop first": "已经在录制了",
        "already in lesson l-1 as main; lesson.stop first": "已经在上课了，请先结束上课",
        "force: refused during a recording; send force=true to shut down anyway": busy,
        "busy: 9 commands running, try again later": busy,
        "recording is not configured: add [sources] and [recording] to the site config": "本教室没有配置录制",
        "directing is not configured: add [director] to the site config": "本教室没有配置导播",
        "the lesson service is not running": "互动课堂服务没有运行，请联系管理员",
        "not recording": "现在没有在录制",
        "no lesson is running": "现在没有在上课",
        "not enough disk space to record: 0.5 GiB free on /": "磁盘空间不够，不能开始录制，请联系管理员",
        "room-2 refused: busy": "对方教室拒绝了连线",
        "cannot reach room-2: timed out": "连不上其他教室，请检查网络，或联系管理员",
        "something odd": "操作没有成功",
    }
    for error, words in said.items():
        assert plain_error(error, "", "zh") == words, error
        english = plain_error(error, "", "en")
        assert english.isascii() and "{" not in english, error


def test_every_language_has_every_string() -> None:
    assert set(STRINGS["zh"]) == set(STRINGS["en"])
    assert set(WORDS["zh"]) == set(WORDS["en"])
    for lang, words in WORDS.items():  # every error word a rule can name exists in each language
        assert {
            f"err_{noun}_offline_{link}" for noun in ("panel", "camera", "device") for link in ("serial", "network")
        } <= set(words), lang


# --- the page over HTTP -------------------------------------------------------------------------


async def test_home_is_chinese_by_default_and_escapes_the_room_name(tmp_path: Path) -> None:
    async with TestClient(TestServer(app_for(site(tmp_path, HOSTILE)))) as client:
        response = await client.get("/")
        page = await response.text()
        assert response.status == 200 and '<html lang="zh-CN">' in page
        assert "<script>alert" not in page and "<b>" not in page
        assert page.count("</script>") == 4  # the boot data and the three page scripts, no more
        data = boot(page)
        assert data["view"]["room"] == HOSTILE and data["t"]["start_zhuandi"] == "开始专递课堂"
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        assert (await client.get("/page/static/page.js")).status == 200
        await client.get("/page/lang/en?next=%2F")
        assert boot(await (await client.get("/")).text())["t"]["start_record"] == "Start recording"


async def test_the_page_offers_the_configured_preset_names(tmp_path: Path) -> None:
    config = site(tmp_path, presets={"5": "实验台", "1": "讲台"})
    async with TestClient(TestServer(app_for(config))) as client:
        cameras = boot(await (await client.get("/")).text())["layout"]["cameras"]
    assert cameras == [{"id": "camera", "presets": {"1": "讲台", "5": "实验台"}}]  # JSON keys, in number order


async def test_a_command_that_fails_says_why_in_plain_words(panel_client: TestClient) -> None:
    response = await panel_client.post(
        "/page/command", json={"name": "panel.power", "args": {"device": "panel", "on": True}}
    )
    reply = await response.json()
    assert reply["status"] == "failed" and reply["words"] == "大屏没有响应，请检查电源和连线"  # a serial panel
    assert "not started" in reply["error"]  # the technical reason stays beside the words
    bad = await (
        await panel_client.post(
            "/page/command", json={"name": "camera.preset.recall", "args": {"device": "camera", "preset": 999}}
        )
    ).json()
    assert bad["status"] == "rejected" and "preset" in bad["error"] and bad["words"] == "预置位号只能在 0 到 255 之间"
    unknown = await (await panel_client.post("/page/command", json={"name": "agent.format_disk", "args": {}})).json()
    assert unknown["status"] == "rejected" and unknown["words"] == "本教室不支持这个功能"
    malformed = await panel_client.post("/page/command", json=["panel.power"])
    assert malformed.status == 400 and (await malformed.json())["words"] == "请求不正确"


async def test_a_form_posted_from_another_site_cannot_run_commands(panel_client: TestClient) -> None:
    for path in ("/page/command", "/api/commands"):
        response = await panel_client.post(path, data='{"name": "agent.ping", "args": {}}')
        assert response.status == 415, path
    # The CLI's JSON still works as before.
    ping = await (await panel_client.post("/api/commands", json={"name": "agent.ping", "args": {}})).json()
    assert ping["status"] == "succeeded"


async def test_events_push_the_view_at_once(panel_client: TestClient) -> None:
    response = await panel_client.get("/page/events")
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert await response.content.readuntil(b"\n\n") == b"retry: 2000\n\n"
    async with asyncio.timeout(10):
        line = await response.content.readuntil(b"\n\n")
    view = json.loads(line.removeprefix(b"data: "))
    assert view["room"] == "高一(3)班" and [d["id"] for d in view["devices"]] == ["panel", "camera"]
    response.close()
