"""The classroom page's PIN gate in-process: rate limits, signed sessions, who is local, WHEP and scripts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from test_page import PIN, app_for, room_table, site, status_of

from agent.timetable.model import Timetable
from agent.web.api import create_api
from agent.web.auth import PinGate, host_name, is_loopback
from agent.web.page import page_part


def test_pin_gate_rate_limits_and_signs_sessions() -> None:
    clock = [100.0]
    wall = [1_800_000_000.0]
    gate = PinGate(PIN, clock=lambda: clock[0], wall=lambda: wall[0])
    assert [gate.attempt("0000").left for _ in range(4)] == [4, 3, 2, 1]
    locked = gate.attempt("0000")
    assert (locked.ok, locked.wait_s) == (False, 30)
    assert gate.attempt(PIN).wait_s == 30  # even the right PIN waits: guessing gains nothing
    clock[0] += 30
    assert gate.attempt(PIN).ok
    cookie = gate.issue()
    assert gate.valid(cookie)
    body, signature = cookie.rsplit(".", 1)
    assert not gate.valid(body + "." + signature[::-1])
    assert not PinGate(PIN).valid(cookie)  # another process's (or PIN's) cookie
    wall[0] += 13 * 3600
    assert not gate.valid(cookie)  # expired
    assert not PinGate("").attempt("").ok  # no PIN configured: nobody gets in that way


def test_who_is_local() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("192.168.1.20") and not is_loopback(None) and not is_loopback("garbage")
    assert host_name("127.0.0.1:8765") == "127.0.0.1" and host_name("[::1]:8765") == "::1"
    assert host_name("evil.example") == "evil.example"


async def test_another_device_needs_the_pin(tmp_path: Path) -> None:
    app = app_for(site(tmp_path), pin=PIN, local=False)
    async with TestClient(TestServer(app)) as client:
        home = await client.get("/", allow_redirects=False)
        assert home.status == 303 and home.headers["Location"] in ("/page/login?next=%2F", "/page/login?next=/")
        for path in ("/api/status", "/page/state", "/page/events"):
            assert (await client.get(path)).status == 401, path
        assert (await client.post("/api/commands", json={"name": "agent.ping"})).status == 401
        wrong = await client.post("/page/login", data={"pin": "1111", "next": "/"}, allow_redirects=False)
        assert wrong.status == 401 and "PIN 码不对，还可以再试 4 次" in await wrong.text()
        right = await client.post("/page/login", data={"pin": PIN, "next": "/"}, allow_redirects=False)
        assert right.status == 303 and "HttpOnly" in right.headers["Set-Cookie"]
        assert "SameSite=Strict" in right.headers["Set-Cookie"]
        assert (await client.get("/api/status")).status == 200
        assert (await client.get("/")).status == 200


async def test_without_a_pin_other_devices_are_refused_with_the_reason(tmp_path: Path) -> None:
    async with TestClient(TestServer(app_for(site(tmp_path), local=False))) as client:
        page = await client.get("/")
        assert page.status == 403 and "[http]" in await page.text()  # for the technician, behind 技术信息
        api = await client.get("/api/status")
        assert api.status == 403 and "[http]" in (await api.json())["detail"]


async def test_whep_off_loopback_needs_the_pin_session(tmp_path: Path) -> None:
    from streaming.ice import IceSettings
    from streaming.whep import WhepService

    config = site(tmp_path)
    table = room_table(config)
    whep = WhepService(lambda name: None, IceSettings())
    part = page_part(table, status_of(config), config, Timetable, pin=PIN, is_local=lambda r: False)
    sdp = {"Content-Type": "application/sdp"}
    async with TestClient(TestServer(create_api(table, status_of(config), [part, whep.attach]))) as client:
        refused = await client.post("/whep/teacher", data="v=0", headers=sdp)
        assert refused.status == 401 and "PIN" in (await refused.json())["error"]
        assert (await client.post("/whip/master", data="v=0", headers=sdp)).status == 401
        await client.post("/page/login", data={"pin": PIN, "next": "/"}, allow_redirects=False)
        reached = await client.post("/whep/teacher", data="v=0", headers=sdp)
        assert reached.status == 404 and "no live source 'teacher'" in await reached.text()  # the WHEP service's


async def test_scripts_of_other_sites_are_refused_even_on_the_panel(tmp_path: Path) -> None:
    config = replace(site(tmp_path), http_allowed_origins=("https://central.example",))
    table = room_table(config)
    part = page_part(table, status_of(config), config, Timetable, is_local=lambda r: True)
    async with TestClient(TestServer(create_api(table, status_of(config), [part]))) as client:
        ping = {"name": "agent.ping", "args": {}}
        evil = await client.post("/api/commands", json=ping, headers={"Origin": "https://evil.example"})
        assert evil.status == 403 and "'https://evil.example' may not use this agent" in (await evil.json())["error"]
        assert (await client.get("/api/status", headers={"Origin": "https://evil.example"})).status == 403
        centre = await client.post("/api/commands", json=ping, headers={"Origin": "https://central.example"})
        assert (await centre.json())["status"] == "succeeded"
        own = f"http://{client.host}:{client.port}"
        assert (await client.post("/page/command", json=ping, headers={"Origin": own})).status == 200
        assert (await client.get("/", headers={"Origin": "https://evil.example"})).status == 200  # a link is fine
