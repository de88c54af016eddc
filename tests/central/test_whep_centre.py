"""巡课: a technician watches a classroom live from classroom-central's dashboard.

Real Mosquitto, the real centre (collector, sender, dashboard), a real agent process with
synthetic sources and ``[lesson]``, and real headless Chromium speaking WHEP to the centre,
which relays the signalling to the agent as ``media.watch``/``media.unwatch`` commands while the
media flows browser <-> agent by ICE on loopback (this file runs in a loopback-only namespace).
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import signal
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import rooms
from browser import RTC_ARGS, chromium, chromium_page, log_in, script_errors
from fleet_stores import fleet_at
from rooms import REPO, Room, skip_without_chromium

from central.app import Central
from central.mosquitto import LocalBroker, free_port
from central.users import Users
from contract.mqtt import BrokerAddress

PASSWORD = "pass-word-1"
AGENT = "room-101"
FRAMES_DECODED_JS = """async () => {
  let frames = 0;
  if (!window.whep) return -1;
  (await window.whep.pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "video") frames = r.framesDecoded || 0;
  });
  return frames;
}"""
AGENT_CONFIG = """
agent_id = "{agent}"
site = "east"
room = "高一(1)班"
data_dir = "{data}"
[broker]
url = "{url}"
[http]
port = {port}
[[devices]]
id = "panel"
profile = "samsung-mdc"
address = "sim"
[sources]
teacher = "synthetic:teacher"
courseware = "synthetic:courseware"
students = {{ url = "rtsp://127.0.0.1:9/dead", name = "学生全景" }}
[lesson]
audio = "tone:440"
ice_host_addresses = ["127.0.0.1"]
[lesson.video.camera]
size = "640x360"
fps = 15
bitrate_kbps = 600
[lesson.video.courseware]
size = "640x360"
fps = 5
bitrate_kbps = 400
"""


# The shared poll, every 0.2 s; on timeout an AssertionError says what never came.
until = functools.partial(rooms.until, every=0.2)


class Classroom(Room):
    """The agent process and its local API (which the test reads to see what the agent holds)."""

    def command(self, name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"name": name, "args": args or {}}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/commands", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return dict(json.loads(response.read()))

    def viewers(self) -> int:
        outcome = self.command("media.viewers")
        assert outcome["status"] == "succeeded", outcome
        return int(outcome["result"]["viewers"])


@dataclass
class Stack:
    central: Central
    room: Classroom

    @property
    def url(self) -> str:
        return self.central.http_url.rstrip("/")


def start_classroom(broker: LocalBroker, tmp: Path) -> Classroom:
    port = free_port()
    config = tmp / f"{AGENT}.toml"
    config.write_text(AGENT_CONFIG.format(agent=AGENT, data=tmp / AGENT, url=broker.url, port=port), encoding="utf-8")
    room = Classroom(config, port, tmp / f"{AGENT}.log", cwd=REPO)
    room.start()
    return room


def online_with_sources(central: Central) -> bool:
    agent = central.db.agent(AGENT)
    return bool(agent and agent["state"] == "online" and (agent["telemetry"] or {}).get("sources"))


@pytest.fixture
async def stack(broker: LocalBroker, tmp_path: Path) -> AsyncIterator[Stack]:
    skip_without_chromium()
    db_path = fleet_at(tmp_path)
    users = Users(db_path)
    users.add("wang", PASSWORD, "viewer")
    users.add("li", PASSWORD, "technician")
    users.close()
    central = Central(BrokerAddress.parse(broker.url), db_path)
    service = asyncio.create_task(central.run(("127.0.0.1", 0)), name="central[test].run")
    room: Classroom | None = None
    try:
        async with asyncio.timeout(15):
            await central.http_ready.wait()
            await central.collector.connected.wait()
        room = start_classroom(broker, tmp_path)
        await until(lambda: online_with_sources(central), "the classroom online with its sources")
        await until(lambda: room.command("media.viewers")["status"] == "succeeded", "the agent's local API")
        yield Stack(central, room)
    finally:
        if room is not None:
            room.stop()
        service.cancel()
        await asyncio.gather(service, return_exceptions=True)
        central.close()


async def open_room(page: Any, url: str, user: str) -> None:
    """Log `user` in on the way to the room page."""
    from playwright.async_api import expect

    await page.goto(f"{url}/room/{AGENT}")
    await log_in(page, user, PASSWORD)
    await expect(page).to_have_url(re.compile(rf"/room/{AGENT}$"))


async def frames_grow(page: Any, by: int) -> None:
    first = await page.evaluate(FRAMES_DECODED_JS)
    await page.wait_for_function(f"async () => ({FRAMES_DECODED_JS})().then((n) => n > {first} + {by})", timeout=30_000)


def audit(central: Central, name: str) -> list[dict[str, Any]]:
    return [c for c in central.db.commands(agent_id=AGENT) if c["name"] == name]


async def test_a_viewer_watches_the_classroom_live_from_the_dashboard(stack: Stack, tmp_path: Path) -> None:
    from playwright.async_api import expect

    room, central = stack.room, stack.central
    async with chromium(RTC_ARGS) as browser:
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        errors = script_errors(page)
        await open_room(page, stack.url, "wang")
        status = page.locator("#watch-status")
        await expect(page.locator("#watch-sources button[data-source]")).to_have_count(3)

        # 巡课 teacher: the picture plays (frames keep being decoded), the agent counts one viewer.
        await page.click('#watch-sources button[data-source="teacher"]')
        await expect(status).to_have_attribute("data-state", "playing", timeout=30_000)
        await expect(status).to_have_text("正在播放 teacher")
        await frames_grow(page, 30)
        assert await page.evaluate("document.querySelector('#watch-video').videoWidth") == 640
        assert await asyncio.to_thread(room.viewers) == 1
        await page.screenshot(path=str(tmp_path / "watch-room.png"), full_page=True)

        # Watching is not commanding: a viewer still cannot send a command.
        assert await page.locator('button[data-action="ping"]').count() == 0
        refused = await page.evaluate(
            """(url) => fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                                   body: JSON.stringify({name: "agent.ping", args: {}})}).then((r) => r.status)""",
            f"/api/agents/{AGENT}/commands",
        )
        assert refused == 403

        # Stop: the DELETE is relayed as media.unwatch and the agent lets the viewer go.
        await page.click('button[data-action="watch-stop"]')
        await expect(status).to_have_text("已停止观看")
        await until(lambda: room.viewers() == 0, "the agent to count no viewer")
        # The reply reaches the audit row a moment after the agent acted: wait for it, not just for the row.
        answered = lambda name: [r for r in audit(central, name) if r["status"] != "sent"]  # noqa: E731
        watched = await until(lambda: answered("media.watch"), "media.watch answered in the audit log")
        assert watched[0]["by"] == "wang" and watched[0]["status"] == "succeeded"
        assert watched[0]["args"]["source"] == "teacher"
        # The audit keeps the SDP's size, not the SDP (a few KB of addresses per watch).
        assert re.fullmatch(r"<\d+ bytes>", watched[0]["args"]["offer"])
        assert re.fullmatch(r"<\d+ bytes>", watched[0]["result"]["answer"])
        unwatched = await until(lambda: answered("media.unwatch"), "media.unwatch answered in the audit log")
        assert unwatched[0]["by"] == "wang" and unwatched[0]["status"] == "succeeded"
        await expect(page.locator("#commands")).to_contain_text("巡课观看")
        assert "v=0" not in await page.locator("#commands").inner_text()  # the SDP is not shown

        # A picture the room does not have: the page says so, in the agent's own words.
        await page.fill("#watch-other", "nobody")
        await page.click('button[data-action="watch-other"]')
        await expect(status).to_have_attribute("data-state", "failed", timeout=30_000)
        await expect(status).to_contain_text("无法观看 nobody：找不到这个画面")
        await expect(status).to_contain_text("expected one of courseware, students, teacher")

        # Leaving the page while watching hangs up too.
        await page.click('#watch-sources button[data-source="courseware"]')
        await expect(status).to_have_attribute("data-state", "playing", timeout=30_000)
        await until(lambda: room.viewers() == 1, "the agent to count the courseware viewer")
        await page.close(run_before_unload=True)
        await until(lambda: room.viewers() == 0, "the page's session to end when the page is left")

        # The classroom goes offline: the page says why it cannot play.
        await asyncio.to_thread(room.stop)
        await until(lambda: (central.db.agent(AGENT) or {}).get("state") == "offline", "the classroom offline")
        page = await context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(f"{stack.url}/room/{AGENT}")
        status = page.locator("#watch-status")
        await page.click('#watch-sources button[data-source="teacher"]')
        await expect(status).to_have_attribute("data-state", "failed", timeout=30_000)
        await expect(status).to_contain_text("无法观看 teacher：教室终端没有应答")
        await expect(status).to_contain_text(f"{AGENT} is offline")
        assert errors == []


async def test_a_dead_camera_s_tile_says_no_signal_in_the_viewer_s_language(stack: Stack) -> None:
    from playwright.async_api import expect

    async with chromium_page(RTC_ARGS, viewport={"width": 1280, "height": 900}) as page:
        await open_room(page, stack.url, "wang")
        dead = page.locator('#watch-sources button[data-source="students"]')
        await expect(dead).to_have_text("观看 学生全景（无信号）", timeout=30_000)  # its telemetry says so
        await dead.click()
        await expect(page.locator("#watch-status")).to_have_attribute("data-state", "playing", timeout=30_000)
        await expect(page.locator("#watch-no-signal")).to_be_visible()
        await expect(page.locator("#watch-no-signal")).to_have_text("无信号")
        await page.click('#watch-sources button[data-source="teacher"]')  # a live one: no such tile
        await expect(page.locator("#watch-status")).to_have_text("正在播放 teacher", timeout=30_000)
        await expect(page.locator("#watch-no-signal")).to_be_hidden()
        await page.goto(f"{stack.url}/lang/en?next=/room/{AGENT}")
        await expect(page.locator('#watch-sources button[data-source="students"]')).to_contain_text("No signal")


async def test_the_relay_refuses_bad_requests_with_the_reason(stack: Stack) -> None:
    room, central = stack.room, stack.central
    jar = aiohttp.CookieJar(unsafe=True)  # the centre is on an IP address
    async with aiohttp.ClientSession(cookie_jar=jar) as http, asyncio.timeout(90):
        sdp = {"Content-Type": "application/sdp"}
        async with http.post(f"{stack.url}/whep/{AGENT}/teacher", data="v=0", headers=sdp, allow_redirects=False) as r:
            assert r.status == 401  # not logged in: a status for the WHEP client, and nothing relayed
        form = {"username": "wang", "password": PASSWORD, "next": "/"}
        async with http.post(f"{stack.url}/login", data=form, allow_redirects=False) as r:
            assert r.status == 303
        base = f"{stack.url}/whep/{AGENT}"

        async def post(path: str, body: str, headers: dict[str, str] = sdp) -> tuple[int, str]:
            async with http.post(base + path, data=body.encode(), headers=headers) as response:
                return response.status, await response.text()

        assert await post("/teacher", "v=0", {"Content-Type": "application/json"}) == (
            415,
            "expected Content-Type application/sdp, got 'application/json'\n",
        )
        status, text = await post("/teacher", "v=0\r\n" + "a=x\r\n" * 20_000)
        assert status == 413 and "over 65536 bytes" in text
        status, text = await post("/teacher", "this is not sdp")
        assert status == 400 and "bad offer" in text and "not SDP" in text  # the agent's own words
        async with http.post(f"{stack.url}/whep/nobody/teacher", data="v=0", headers=sdp) as r:
            assert r.status == 404 and "no agent 'nobody'" in await r.text()
        async with http.delete(f"{base}/teacher/no-such-session") as r:
            assert r.status == 404 and "no viewer session 'no-such-session'" in await r.text()
        async with http.patch(f"{base}/teacher/no-such-session", data="a=candidate") as r:
            assert r.status == 405
        # Online, but not answering (the process hangs): 504 with the reason once the wait is over.
        assert room.proc is not None
        room.proc.send_signal(signal.SIGSTOP)
        try:
            async with http.delete(f"{base}/teacher/some-session") as r:
                assert r.status == 504 and f"no reply from {AGENT} within 10 s" in await r.text()
        finally:
            room.proc.send_signal(signal.SIGCONT)
    # The agent bounds the offer itself too (whoever sends the command).
    huge = await central.sender.send(AGENT, "media.watch", {"source": "teacher", "offer": "v=0" + "x" * 70_000}, "t")
    assert huge["status"] == "rejected" and "at most 65536" in huge["error"], huge
    assert await asyncio.to_thread(room.viewers) == 0
