"""The lesson on the classroom page, in real headless Chromium against two real agent processes
(a main and a remote classroom) over a real Mosquitto and WebRTC on loopback only (this file runs
in the loopback namespace: scripts/loopback-ns): every picture on a 1920x1080 panel without
scrolling, one button that ends the lesson, and every visible word in Chinese."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from browser import RTC_ARGS, chromium, script_errors
from rooms import SCREENSHOTS, agent_process, skip_without_chromium
from visible_text import assert_plain_chinese

from central.mosquitto import LocalBroker, free_port

# Without the second flag Chromium offers no candidate at all in a loopback-only namespace (TRAPS.md).

CONFIG = """
agent_id = "{agent}"
site = "no1-school"
room = "{room}"
data_dir = "{data}"
[broker]
url = "{url}"
[intervals]
telemetry_s = 60
[http]
port = {port}
[[devices]]
id = "panel"
profile = "samsung-mdc"
address = "sim"
[[devices]]
id = "camera"
profile = "sony-visca"
address = "sim"
[sources]
teacher = "synthetic:teacher"
students = "synthetic:students"
courseware = "synthetic:courseware"
[lesson]
trusted = ["{other}"]
send = {send}
answer_with = ["students"]
remotes = {remotes}
audio = "tone:440"
ice_host_addresses = ["127.0.0.1"]
[lesson.video.camera]
size = "320x180"
fps = 10
bitrate_kbps = 300
"""


RECORDING = """
[recording]
dir = "{data}/recordings"
layout = "pip"
sources = ["teacher", "students"]
size = "320x240"
fps = 10
fragment_s = 0.5
bitrate_mbps = 1
planned_minutes = 1
disk_min_free_gb = 0
"""


def status(base: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base}/api/status", timeout=10) as response:
        data: dict[str, Any] = json.loads(response.read())
    return data


@asynccontextmanager
async def classroom(
    broker: LocalBroker,
    tmp: Path,
    agent: str,
    room: str,
    other: str,
    *,
    remotes: tuple[str, ...],
    send: tuple[str, ...] = ("teacher",),
    recording: bool = False,
) -> AsyncIterator[str]:
    """One agent process that trusts `other`; `remotes`: its lesson.remotes (some never started)."""
    port = free_port()
    config = tmp / f"{agent}.toml"
    values = {"remotes": json.dumps(list(remotes)), "send": json.dumps(list(send))}
    text = CONFIG.format(agent=agent, room=room, data=tmp / agent, url=broker.url, port=port, other=other, **values)
    config.write_text(text + (RECORDING.format(data=tmp / agent) if recording else ""))
    base = f"http://127.0.0.1:{port}"

    def connected() -> bool:
        return bool(status(base)["broker"]["connected"])

    async with agent_process(config, connected, f"agent {agent}", timeout=40, every=0.3):
        yield base


# The newest frame count of a tile: a playing <video>'s decoded frames, or a snapshot's frame
# number.  Functions, not strings: the page's CSP forbids eval.
FRAMES = """(name) => {
  const tile = document.querySelector(`[data-picture="${name}"]`);
  if (!tile) return -1;
  const video = tile.querySelector("video");
  if (video) return video.getVideoPlaybackQuality().totalVideoFrames;
  const img = tile.querySelector("img");
  return img && img.dataset.frame ? Number(img.dataset.frame) : -1;
}"""
ABOVE = "([name, above]) => (" + FRAMES + ")(name) > above"
# Frames decoded by a tile's <video> once it is what the tile shows (-1 while only a snapshot is).
DECODED = """(name) => {
  const video = document.querySelector(`[data-picture="${name}"] video`);
  if (!video || video.hidden || !video.srcObject) return -1;
  return video.getVideoPlaybackQuality().totalVideoFrames;
}"""
DECODED_ABOVE = "([name, above]) => (" + DECODED + ")(name) > above"


async def advancing(page: Any, name: str) -> None:
    """The picture `name` keeps changing on the page (its frame count goes up after it first shows)."""
    await page.wait_for_function(ABOVE, arg=[name, 0], timeout=45_000)
    start = await page.evaluate(FRAMES, name)
    await page.wait_for_function(ABOVE, arg=[name, start], timeout=20_000)


async def playing(page: Any, name: str) -> None:
    """The picture `name` plays as video: its decoded frames go up, and no snapshot is left in its tile."""
    await page.wait_for_function(DECODED_ABOVE, arg=[name, 0], timeout=45_000)
    start = await page.evaluate(DECODED, name)
    await page.wait_for_function(DECODED_ABOVE, arg=[name, start + 10], timeout=20_000)
    assert await page.locator(f'[data-picture="{name}"] img').count() == 0


# Each picture's box on the screen, and the window's size: every picture the teacher needs must be
# inside it at the top of the page, without scrolling.
BOXES = """() => ({
  width: window.innerWidth, height: window.innerHeight, scrolled: window.scrollY,
  boxes: [...document.querySelectorAll("#lesson [data-picture]")].map((tile) => {
    const r = tile.getBoundingClientRect();
    return { name: tile.dataset.picture, top: r.top, left: r.left, bottom: r.bottom, right: r.right };
  }),
})"""


async def all_pictures_on_screen(page: Any, names: set[str]) -> None:
    """Every picture in `names` (and no other) is on the page, each wholly inside the window at scroll 0."""
    await page.evaluate("window.scrollTo(0, 0)")
    # As painted: the page fits its pictures before the next frame (a ResizeObserver runs before paint).
    await page.evaluate("new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
    seen = await page.evaluate(BOXES)
    assert seen["scrolled"] == 0
    assert {b["name"] for b in seen["boxes"]} == names, seen["boxes"]
    for box in seen["boxes"]:
        inside = box["top"] >= 0 and box["left"] >= 0
        inside = inside and box["bottom"] <= seen["height"] and box["right"] <= seen["width"]
        assert inside, f"{box['name']} is not wholly on the {seen['width']}x{seen['height']} screen: {box}"
        assert box["bottom"] - box["top"] >= 120, f"{box['name']} is too small to see: {box}"


def sound_level(base: str, name: str) -> float:
    with urllib.request.urlopen(f"{base}/api/lesson/sounds", timeout=10) as response:
        sound = json.loads(response.read())["sounds"].get(name)
    return -1.0 if sound is None else float(sound["level"])


async def heard(base: str, name: str, *, silent: bool) -> None:
    """The agent at `base` receives sound `name`: silence (muted at the sender) or the tone (RMS ~0.07)."""
    async with asyncio.timeout(20):
        while True:
            level = await asyncio.to_thread(sound_level, base, name)
            if (silent and 0 <= level < 0.002) or (not silent and level > 0.03):
                return
            await asyncio.sleep(0.2)


# What the zh-CN pages may show as it is: the configs' ids (agents, devices, sources).
IDS = ("room-main", "room-remote", "room-gone", "panel", "camera", "teacher", "students", "courseware")
MAIN_PICTURES = {"teacher", "room-remote/students"}
REMOTE_PICTURES = {"students", "room-main/teacher", "room-main/courseware"}


async def _pick(page: Any) -> None:
    """The picker: the config's remote classroom ticked, who is online, and no 开始 with nothing ticked."""
    from playwright.async_api import expect

    await page.click('button[data-action="zhuandi"]')
    box = page.locator('#picker input[value="room-remote"]')
    await expect(box).to_be_checked()  # the default remote classroom, from the config
    # Each candidate's presence over signalling: its room name and 在线, or 离线 and left out.
    online = page.locator('#picker label[data-agent="room-remote"]')
    await expect(online).to_have_attribute("data-presence", "online", timeout=15_000)
    await expect(online.locator(".who")).to_have_text("村小 三年级 (room-remote)")
    await expect(online.locator(".presence")).to_have_text("在线")
    gone = page.locator('#picker label[data-agent="room-gone"]')
    await expect(gone).to_have_attribute("data-presence", "offline", timeout=15_000)
    await expect(gone.locator(".presence")).to_have_text("离线")
    await expect(gone.locator("input")).not_to_be_checked()  # in lesson.remotes, but not there
    go = page.locator('#picker button[data-action="go"]')
    await box.uncheck()
    await expect(go).to_be_disabled()  # nothing ticked: 开始 says why instead of sending a bad request
    await expect(go.locator(".why-not")).to_have_text("请先选择要连线的教室")
    await box.check()
    await expect(go).to_be_enabled()
    await assert_plain_chinese(page, IDS)
    await page.screenshot(path=str(SCREENSHOTS / "page-picker.png"))
    await go.click()
    await expect(page.locator("#outcomes li").first).to_have_text("开始上课：完成", timeout=60_000)


async def _one_way_to_end(page: Any, words: str) -> None:
    """During a lesson the start buttons give way to one button that ends it, saying `words`."""
    from playwright.async_api import expect

    enders = page.locator("button:visible", has_text=re.compile("结束|退出"))
    await expect(enders).to_have_count(1)
    await expect(enders).to_have_attribute("data-action", "stop-lesson")
    await expect(enders).to_have_text(words)
    for start in ("zhuandi", "dual"):
        await expect(page.locator(f'button[data-action="{start}"]')).to_be_hidden()


async def _lesson(main: str, remote: str) -> None:
    from playwright.async_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with chromium(RTC_ARGS) as browser:
        page = await browser.new_page(viewport={"width": 1920, "height": 1080})
        errors = script_errors(page)
        await page.goto(main + "/")
        await expect(page.locator("#live.on")).to_have_count(1)
        await _pick(page)

        lesson = page.locator("#lesson")
        await expect(lesson).to_be_visible()
        await expect(lesson.locator("h2")).to_have_text("专递课堂 · 主讲教室")
        link = lesson.locator('.peer[data-peer="room-remote"]')
        await expect(link).to_have_attribute("data-state", "connected", timeout=60_000)
        await expect(link).to_contain_text("村小 三年级 已连通 · 延迟")  # the room's name, not its id
        await playing(page, "teacher")  # the self view, played through WHEP
        await playing(page, "room-remote/students")  # the remote classroom's students, as video too
        students = page.locator('[data-picture="room-remote/students"] .who')
        await expect(students).to_have_text("村小 三年级 的画面")
        snapshot = f"{main}/api/lesson/pictures/room-remote/students.png"  # still there for technicians
        assert (await page.request.get(snapshot)).headers["content-type"] == "image/png"
        await _one_way_to_end(page, "结束上课")

        # Recording during the lesson: the banner and the outcome line take room, the pictures still fit.
        await page.click('button[data-action="record"]')
        await expect(page.locator("#recording")).to_contain_text("正在录制 · 已录", timeout=60_000)
        await all_pictures_on_screen(page, MAIN_PICTURES)
        await assert_plain_chinese(page, IDS)
        await page.screenshot(path=str(SCREENSHOTS / "page-lesson.png"))

        # Mute this room's sound for every other classroom, and see it said on the page.
        mute = page.locator('#actions button[data-action="mute"]')
        await expect(mute).to_have_text("本教室静音")
        await mute.click()
        await expect(page.locator("#outcomes li").first).to_have_text("本教室静音：完成")
        await expect(mute).to_have_text("取消静音")
        await expect(lesson.locator(".muted-note")).to_be_visible()
        await all_pictures_on_screen(page, MAIN_PICTURES)  # the note pushed them down: they fit again
        await heard(remote, "room-main/audio", silent=True)  # the remote classroom now hears silence
        await mute.click()
        await expect(lesson.locator(".muted-note")).to_be_hidden()
        await heard(remote, "room-main/audio", silent=False)

        # The remote classroom's own page: the main classroom's pictures, playing, all on its screen.
        other = await browser.new_page(viewport={"width": 1280, "height": 800})
        await other.goto(remote + "/")
        await expect(other.locator("#lesson h2")).to_have_text("专递课堂 · 听课教室", timeout=30_000)
        await playing(other, "room-main/teacher")
        await expect(other.locator('[data-picture="room-main/teacher"] .who')).to_have_text("主讲教室画面")
        await expect(other.locator('[data-picture="room-main/courseware"] .who')).to_have_text("课件")
        await all_pictures_on_screen(other, REMOTE_PICTURES)
        await other.screenshot(path=str(SCREENSHOTS / "page-lesson-remote.png"))
        await _one_way_to_end(other, "退出课堂")
        record = other.locator('button[data-action="record"]')  # this room has no [recording]
        await expect(record).to_be_disabled()
        await expect(record.locator(".why-not")).to_have_text("本教室没有配置录制")
        await assert_plain_chinese(other, IDS)

        await page.click('#actions button[data-action="stop-lesson"]')
        await expect(lesson).to_be_hidden(timeout=30_000)
        await expect(other.locator("#lesson")).to_be_hidden(timeout=30_000)
        await expect(page.locator('#actions button[data-action="zhuandi"]')).to_be_visible()
        await page.click('button[data-action="record"]')
        await expect(page.locator("#recording")).to_be_hidden(timeout=60_000)

        # 双师: one remote classroom, so the picker offers a single choice.
        await page.click('button[data-action="dual"]')
        await expect(page.locator('#picker input[type="radio"][value="room-remote"]')).to_be_checked()
        await page.click('#picker button:not([data-action="go"])')
        await expect(page.locator("#picker")).to_be_hidden()
        # A room with no lesson.remotes and one classroom it may link: that one is ticked already.
        await other.click('button[data-action="zhuandi"]')
        await expect(other.locator('#picker input[value="room-main"]')).to_be_checked()
        await expect(other.locator('#picker button[data-action="go"]')).to_be_enabled()
        assert errors == []


async def test_lesson_page_zhuandi_from_one_touch_to_stop(broker: LocalBroker, tmp_path: Path) -> None:
    skip_without_chromium()
    async with AsyncExitStack() as stack:
        main = await stack.enter_async_context(
            classroom(
                broker, tmp_path, "room-main", "初二(1)班", "room-remote",
                remotes=("room-remote", "room-gone"), send=("teacher", "courseware"), recording=True,
            )
        )  # fmt: skip
        remote = await stack.enter_async_context(
            classroom(broker, tmp_path, "room-remote", "村小 三年级", "room-main", remotes=())
        )
        async with asyncio.timeout(300):
            await _lesson(main, remote)
        assert (await asyncio.to_thread(status, main))["lesson"]["active"] is False


def test_received_pictures_get_one_encoder_each_until_they_are_gone() -> None:
    import av
    import numpy as np

    from agent.commands.table import Rejected
    from agent.config.lesson import LessonConfig
    from agent.lesson.media import LessonMedia
    from streaming.remote import RemoteVideo

    media = LessonMedia(LessonConfig(audio="tone:440"), {}, {})
    try:
        students = RemoteVideo("students")
        students.push(av.VideoFrame.from_ndarray(np.zeros((180, 322, 3), np.uint8), format="bgr24"))
        first = media.picture_encoder("room-2/students", students)
        assert media.picture_encoder("room-2/students", students) is first  # every viewer shares it
        assert first.size == (322, 180)  # sent on at the size it arrived
        renegotiated = RemoteVideo("students")
        second = media.picture_encoder("room-2/students", renegotiated)
        assert second is not first
        assert media.retire({"room-2/students": renegotiated}) == ([], [first])  # the old one is closed
        assert media.retire({}) == (["room-2/students"], [second])  # the lesson ended
        media.mute(True)
        assert media.encoder("audio").muted
        with pytest.raises(Rejected, match="sends no sound"):
            LessonMedia(LessonConfig(audio="none"), {}, {}).mute(True)
    finally:
        media.close()
