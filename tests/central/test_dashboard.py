"""The technicians' dashboard: login, roles, escaping, filters, JSON shapes, live events.

The whole thing in real headless Chromium, against a real Mosquitto, the real collector and two real agents
on simulated devices, is in test_dashboard_chromium.py."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from fleet_stores import fleet_at

from central.fleet_rows import Seen
from central.fleetdb import FleetDB
from central.live import Changes
from central.users import Users
from central.web import create_app
from central.web_text import STRINGS
from contract import DeviceInfo, DeviceState, Event, Info, Status, Telemetry, now_iso

SECRET = b"0123456789abcdef0123456789abcdef"
PASSWORD = "pass-word-1"
HOSTILE = '</script><script>alert("x")</script><b>&amp;'
DEVICES = (DeviceInfo("panel", "display", "lg-rs232"), DeviceInfo("camera", "camera", "sony-visca"))


class RecordingSender:
    """Stands in for CommandSender: records every command and answers like an agent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any], str]] = []

    async def send(
        self, agent_id: str, name: str, args: dict[str, Any], by: str, *, timeout: float = 10.0, ttl: float = 60.0
    ) -> dict[str, Any]:
        self.sent.append((agent_id, name, args, by))
        return {"id": "c1", "status": "succeeded", "result": {"power": "off"}}


def _seen(site: str, agent: str, payload: Any) -> Seen:
    return Seen(site, agent, payload, now_iso())


def _fill(db: FleetDB) -> None:
    now = now_iso()
    rows = []
    for site, agent, room, state in [
        ("east", "a1", HOSTILE, "online"),
        ("east", "a2", "高一(2)班", "lost"),
        ("west", "b1", "物理实验室", "online"),
    ]:
        rows += [
            _seen(site, agent, Status("online", 1, now, "1.0")),
            _seen(site, agent, Info(room, f"pc-{agent}", "1.0", DEVICES)),
            _seen(site, agent, DeviceState("panel", True, now, {"power": "on", "volume": 30})),
            _seen(site, agent, DeviceState("camera", False, now, {}, "no answer on 10.0.0.9:52381")),
        ]
        if state != "online":
            rows.append(Seen(site, agent, Status(state, 1, now, "1.0"), now, retained=True))
    rows.append(_seen("west", "b1", Telemetry(now, 12.5, 40.0, 50 * 10**9, 61.0)))
    rows.append(_seen("west", "b1", Event("disk_low", "warning", "raise", now, "磁盘剩余 5 GB")))
    db.write_batch(rows)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[FleetDB]:
    db = FleetDB(fleet_at(tmp_path))
    _fill(db)
    yield db
    db.close()


@pytest.fixture
def users(fleet: FleetDB) -> Users:
    users = Users(fleet.location)
    users.add("wang", PASSWORD, "viewer")
    users.add("li", PASSWORD, "technician")
    return users


@pytest.fixture
def sender() -> RecordingSender:
    return RecordingSender()


@pytest.fixture
def changes() -> Changes:
    return Changes()


@pytest.fixture
async def client(fleet: FleetDB, users: Users, changes: Changes, sender: RecordingSender) -> AsyncIterator[TestClient]:
    app = create_app(fleet, changes, sender, users=users, secret=SECRET)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def login(client: TestClient, username: str, password: str = PASSWORD) -> int:
    form = {"username": username, "password": password, "next": "/"}
    response = await client.post("/login", data=form, allow_redirects=False)
    if response.status == 303:
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie, cookie
    return response.status


def boot(page: str) -> dict[str, Any]:
    """The JSON a page hands to its script."""
    found = re.search(r'<script type="application/json" id="boot">(.*?)</script>', page, re.S)
    assert found, "no boot data in the page"
    data: dict[str, Any] = json.loads(found.group(1))
    return data


# --- login ------------------------------------------------------------------------------------


async def test_everything_needs_a_login(client: TestClient) -> None:
    page = await client.get("/room/a1", allow_redirects=False)
    location = urlsplit(page.headers["Location"])
    assert page.status == 303 and location.path == "/login" and parse_qs(location.query) == {"next": ["/room/a1"]}
    for path in ("/api/fleet", "/api/agents/a1", "/api/events"):
        assert (await client.get(path)).status == 401, path
    command = await client.post("/api/agents/a1/commands", json={"name": "agent.ping", "args": {}})
    assert command.status == 401
    assert (await client.post("/api/alarms/1/ack", json={})).status == 401
    assert (await client.get("/static/style.css")).status == 200  # the login page needs its style


async def test_wrong_password_then_login_then_logout(client: TestClient) -> None:
    assert await login(client, "li", "wrong-password") == 401
    assert (await client.get("/api/fleet")).status == 401
    assert await login(client, "li") == 303  # login() checks the cookie is HttpOnly, SameSite=Strict
    assert (await client.get("/api/fleet")).status == 200
    assert (await client.post("/logout", allow_redirects=False)).status == 303
    assert (await client.get("/api/fleet")).status == 401


async def test_forged_or_stale_session_is_refused(client: TestClient, users: Users) -> None:
    await login(client, "li")
    jar = client.session.cookie_jar
    value = jar.filter_cookies(client.make_url("/"))["classroom_session"].value
    body, signature = value.rsplit(".", 1)
    forged = body.replace(body[5], "A" if body[5] != "A" else "B") + "." + signature
    jar.update_cookies({"classroom_session": forged}, client.make_url("/"))
    assert (await client.get("/api/fleet")).status == 401
    jar.update_cookies({"classroom_session": value}, client.make_url("/"))
    assert (await client.get("/api/fleet")).status == 200
    users.remove("li")  # a removed user's cookie stops working at once
    assert (await client.get("/api/fleet")).status == 401


# --- roles ------------------------------------------------------------------------------------


async def test_viewer_sees_but_cannot_command_or_ack(
    client: TestClient, fleet: FleetDB, sender: RecordingSender
) -> None:
    await login(client, "wang")
    assert (await client.get("/api/agents/b1")).status == 200
    page = boot(await (await client.get("/room/b1")).text())
    assert page["role"] == "viewer" and page["can_command"] is False
    command = await client.post("/api/agents/b1/commands", json={"name": "panel.power", "args": {"on": False}})
    assert command.status == 403
    alarm = fleet.alarms(agent_id="b1")[0]
    assert (await client.post(f"/api/alarms/{alarm['id']}/ack", json={})).status == 403
    assert sender.sent == []
    assert fleet.alarms(agent_id="b1")[0]["acked_by"] is None


async def test_technician_sends_commands_as_himself(
    client: TestClient, sender: RecordingSender, changes: Changes, fleet: FleetDB
) -> None:
    await login(client, "li")
    body = {"name": "panel.power", "args": {"device": "panel", "on": False}}
    response = await client.post("/api/agents/a1/commands", json=body)
    assert response.status == 200
    assert await response.json() == {"id": "c1", "status": "succeeded", "result": {"power": "off"}}
    assert sender.sent == [("a1", "panel.power", {"device": "panel", "on": False}, "li")]

    events = changes.subscribe()
    alarm = fleet.alarms(agent_id="b1")[0]
    ack = await client.post(f"/api/alarms/{alarm['id']}/ack", json={})
    assert ack.status == 200 and await ack.json() == {"id": alarm["id"], "acked_by": "li"}
    assert fleet.alarms(agent_id="b1")[0]["acked_by"] == "li"
    assert events.get_nowait() == {"kind": "alarm", "agent_id": "b1"}  # other pages learn of it
    assert (await client.post(f"/api/alarms/{alarm['id']}/ack", json={})).status == 404  # already done


async def test_bad_command_requests_are_refused_before_sending(client: TestClient, sender: RecordingSender) -> None:
    await login(client, "li")
    cases = [
        ("/api/agents/nope/commands", {"name": "agent.ping", "args": {}}, 404),
        ("/api/agents/a1/commands", {"args": {}}, 400),
        ("/api/agents/a1/commands", {"name": "agent.ping", "args": [1]}, 400),
        ("/api/agents/a1/commands", ["agent.ping"], 400),
    ]
    for path, body, status in cases:
        assert (await client.post(path, json=body)).status == status, body
    form = await client.post("/api/agents/a1/commands", data={"name": "agent.ping"})
    assert form.status == 415  # only our own script posts JSON; a cross-site form cannot
    assert sender.sent == []


# --- escaping ---------------------------------------------------------------------------------


async def test_room_names_and_paths_are_escaped(client: TestClient) -> None:
    await login(client, "li")
    for path, scripts in (("/", 3), ("/room/a1", 4)):
        html = await (await client.get(path)).text()
        assert "<script>alert" not in html and "<b>" not in html, path
        assert html.count("</script>") == 1 + scripts  # the boot data and the page's own scripts, no more
    fleet_page = boot(await (await client.get("/")).text())
    assert HOSTILE in [a["room"] for a in fleet_page["data"]["agents"]]  # intact, only encoded
    response = await client.get("/room/<script>alert(1)<%2Fscript>")
    assert response.status == 404
    assert "<script>alert(1)" not in await response.text()
    assert boot(await response.text())["data"]["agent_id"] == "<script>alert(1)</script>"


async def test_failed_login_echoes_the_name_escaped(client: TestClient) -> None:
    response = await client.post("/login", data={"username": '"><script>x()</script>', "password": "nope-nope"})
    text = await response.text()
    assert response.status == 401
    assert "<script>x()" not in text and "&quot;&gt;&lt;script&gt;x()" in text
    assert "用户名或密码错误" in text


async def test_pages_forbid_inline_scripts(client: TestClient) -> None:
    await login(client, "li")
    policy = (await client.get("/")).headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy


# --- filters and JSON shapes ------------------------------------------------------------------


async def _agents(client: TestClient, query: str) -> list[str]:
    data = await (await client.get("/api/fleet" + query)).json()
    return sorted(a["agent_id"] for a in data["agents"])


async def test_filters(client: TestClient) -> None:
    await login(client, "wang")
    assert await _agents(client, "") == ["a1", "a2", "b1"]
    assert await _agents(client, "?site=east") == ["a1", "a2"]
    assert await _agents(client, "?offline=1") == ["a2"]
    assert await _agents(client, "?alarms=1") == ["b1"]
    assert await _agents(client, "?site=east&alarms=1") == []
    page = boot(await (await client.get("/?site=west")).text())
    assert [a["agent_id"] for a in page["data"]["agents"]] == ["b1"]
    assert page["data"]["filters"] == {"site": "west", "offline_only": False, "alarms_only": False}


async def test_json_shapes(client: TestClient) -> None:
    await login(client, "wang")
    fleet = await (await client.get("/api/fleet")).json()
    assert set(fleet) == {"agents", "sites", "filters"}
    assert fleet["sites"] == ["east", "west"]
    b1 = next(a for a in fleet["agents"] if a["agent_id"] == "b1")
    assert {"agent_id", "site", "room", "hostname", "version", "state", "last_seen", "devices", "open_alarms"} <= set(
        b1
    )
    assert (b1["room"], b1["state"], b1["open_alarms"]) == ("物理实验室", "online", 1)
    panel, camera = sorted(b1["devices"], key=lambda d: d["id"] != "panel")
    assert panel == panel | {"id": "panel", "kind": "display", "online": True, "state": {"power": "on", "volume": 30}}
    assert camera["online"] is False and camera["error"] == "no answer on 10.0.0.9:52381"

    room = await (await client.get("/api/agents/b1")).json()
    paging = {"commands_more", "alarms_more"}  # the rest a page at a time (test_paging.py)
    names = {"rooms"}  # other classrooms the page names (its lesson's peers), by their room names
    assert set(room) == {"agent", "status_history", "telemetry", "commands", "alarms", "recordings"} | paging | names
    assert room["agent"]["agent_id"] == "b1" and room["telemetry"][0]["cpu_percent"] == 12.5
    assert [(a["type"], a["severity"]) for a in room["alarms"]] == [("disk_low", "warning")]
    assert room["status_history"][0]["state"] == "online"
    assert await (await client.get("/api/agents/b1?brief=1")).json() == {"agent": room["agent"]}
    missing = await client.get("/api/agents/nope")
    assert missing.status == 404 and "nope" in (await missing.json())["error"]


# --- language ---------------------------------------------------------------------------------


def test_every_language_has_every_string() -> None:
    assert set(STRINGS["zh"]) == set(STRINGS["en"])


async def test_chinese_by_default_english_on_request(client: TestClient) -> None:
    await login(client, "wang")
    page = await (await client.get("/")).text()
    assert '<html lang="zh-CN">' in page and "教室设备集中管理" in page
    switched = await client.get("/lang/en?next=%2F%3Fsite%3Deast", allow_redirects=False)
    assert switched.status == 303 and switched.headers["Location"] == "/?site=east"
    page = await (await client.get("/")).text()
    assert '<html lang="en">' in page and boot(page)["t"]["fleet"] == "All classrooms"
    away = await client.get("/lang/zh?next=//evil.example/", allow_redirects=False)
    assert away.headers["Location"] == "/"  # never sends anyone to another site


# --- live events ------------------------------------------------------------------------------


async def test_events_stream_the_changes_of_the_agent_asked_for(client: TestClient, changes: Changes) -> None:
    await login(client, "wang")
    response = await client.get("/api/events?agent=a1")
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert await response.content.readuntil(b"\n\n") == b"retry: 2000\nevent: ready\ndata: {}\n\n"
    changes.publish({"kind": "device", "agent_id": "a2"})
    changes.publish({"kind": "device", "agent_id": "a1"})
    async with asyncio.timeout(5):
        line = await response.content.readuntil(b"\n\n")
    assert json.loads(line.removeprefix(b"data: ")) == {"kind": "device", "agent_id": "a1"}
    response.close()
