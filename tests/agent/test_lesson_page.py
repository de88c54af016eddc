"""The lesson on the classroom page, in real headless Chromium against two real agent processes
(a main and a remote classroom) over a real Mosquitto and WebRTC on loopback only (this file runs
in the loopback namespace: scripts/loopback-ns)."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from rooms import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, agent_process, skip_without_chromium

from central.mosquitto import LocalBroker, free_port

# Without the second flag Chromium offers no candidate at all in a loopback-only namespace (TRAPS.md).
RTC_ARGS = [*CHROMIUM_ARGS, "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns"]

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
[lesson]
trusted = ["{other}"]
send = ["teacher"]
answer_with = ["students"]
remotes = {remotes}
audio = "tone:440"
ice_host_addresses = ["127.0.0.1"]
[lesson.video.camera]
size = "320x180"
fps = 10
bitrate_kbps = 300
"""


def status(base: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base}/api/status", timeout=10) as response:
        data: dict[str, Any] = json.loads(response.read())
    return data


@asynccontextmanager
async def classroom(
    broker: LocalBroker, tmp: Path, agent: str, room: str, other: str, *, more: tuple[str, ...] = ()
) -> AsyncIterator[str]:
    """One agent process; `more`: remote classrooms in its lesson.remotes that are never started."""
    port = free_port()
    config = tmp / f"{agent}.toml"
    remotes = json.dumps([other, *more])
    config.write_text(
        CONFIG.format(agent=agent, room=room, data=tmp / agent, url=broker.url, port=port, other=other, remotes=remotes)
    )
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


async def _lesson(main: str, remote: str) -> None:
    from playwright.async_api import async_playwright, expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=RTC_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1920, "height": 1080})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(main + "/")
            await expect(page.locator("#live.on")).to_have_count(1)
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
            await page.screenshot(path=str(SCREENSHOTS / "page-picker.png"))
            await page.click('#picker button[data-action="go"]')
            await expect(page.locator("#outcomes li").first).to_have_text("开始上课：完成", timeout=60_000)

            lesson = page.locator("#lesson")
            await expect(lesson).to_be_visible()
            await expect(lesson.locator("h2")).to_have_text("专递课堂 · 主讲教室")
            link = lesson.locator('.peer[data-peer="room-remote"]')
            await expect(link).to_have_attribute("data-state", "connected", timeout=60_000)
            await playing(page, "teacher")  # the self view, played through WHEP
            await playing(page, "room-remote/students")  # the remote classroom's students, as video too
            snapshot = f"{main}/api/lesson/pictures/room-remote/students.png"  # still there for technicians
            assert (await page.request.get(snapshot)).headers["content-type"] == "image/png"
            await expect(link).to_contain_text("延迟")
            await expect(page.locator('button[data-action="zhuandi"]')).to_be_disabled()  # one lesson at a time
            await page.screenshot(path=str(SCREENSHOTS / "page-lesson.png"))

            # Mute this room's sound for every other classroom, and see it said on the page.
            mute = lesson.locator('button[data-action="mute"]')
            await expect(mute).to_have_text("本教室静音")
            await mute.click()
            await expect(page.locator("#outcomes li").first).to_have_text("本教室静音：完成")
            await expect(mute).to_have_text("取消静音")
            await expect(lesson.locator(".muted-note")).to_be_visible()
            await heard(remote, "room-main/audio", silent=True)  # the remote classroom now hears silence
            await mute.click()
            await expect(lesson.locator(".muted-note")).to_be_hidden()
            await heard(remote, "room-main/audio", silent=False)

            # The remote classroom's own page: the main classroom's picture, playing.
            other = await browser.new_page(viewport={"width": 1280, "height": 800})
            await other.goto(remote + "/")
            await expect(other.locator("#lesson h2")).to_have_text("专递课堂 · 听课教室", timeout=30_000)
            await playing(other, "room-main/teacher")
            await expect(other.locator('[data-picture="room-main/teacher"] .who')).to_have_text("主讲教室画面")

            await lesson.locator('button[data-action="stop-lesson"]').click()
            await expect(lesson).to_be_hidden(timeout=30_000)
            await expect(other.locator("#lesson")).to_be_hidden(timeout=30_000)

            # 双师: one remote classroom, so the picker offers a single choice.
            await page.click('button[data-action="dual"]')
            await expect(page.locator('#picker input[type="radio"][value="room-remote"]')).to_be_checked()
            await page.click('#picker button:not([data-action="go"])')
            await expect(page.locator("#picker")).to_be_hidden()
            assert errors == []
        finally:
            await browser.close()


async def test_lesson_page_zhuandi_from_one_touch_to_stop(broker: LocalBroker, tmp_path: Path) -> None:
    skip_without_chromium()
    async with AsyncExitStack() as stack:
        main = await stack.enter_async_context(
            classroom(broker, tmp_path, "room-main", "初二(1)班", "room-remote", more=("room-gone",))
        )
        remote = await stack.enter_async_context(classroom(broker, tmp_path, "room-remote", "村小 三年级", "room-main"))
        async with asyncio.timeout(240):
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
