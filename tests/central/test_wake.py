"""Waking a sleeping classroom PC from the centre, through another agent of its site.

Real Mosquitto, the real centre (collector, sender, dashboard over HTTP), real agents in this
process; the magic packets go to 127.0.0.1 (the rooms report it as their LAN's broadcast), where
a real UDP socket reads them back byte for byte.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agent.config.site import load_config
from agent.service import Agent
from central.app import Central
from central.fleet_rows import Seen
from central.mosquitto import LocalBroker, free_port
from central.users import Users
from central.wake import neighbours, packets
from contract import Info, now_iso, parse_iso
from contract.mqtt import BrokerAddress

SITE = "wake-school"
PASSWORD = "pass-word-1"
MACS = {"room-a": "02:00:00:00:0a:01", "room-b": "02:00:00:00:0b:01"}


def agent_config(tmp: Path, broker: LocalBroker, agent_id: str, power: str = "") -> Path:
    path = tmp / f"{agent_id}.toml"
    path.write_text(
        f"""
agent_id = "{agent_id}"
site = "{SITE}"
room = "教室 {agent_id}"
data_dir = "{tmp / agent_id}"
[broker]
url = "{broker.url}"
[http]
port = {free_port()}
[power]
mac = "{MACS[agent_id]}"
broadcast = "127.0.0.1"
wake_before_min = 20
{power}
""",
        encoding="utf-8",
    )
    return path


@asynccontextmanager
async def running_agent(tmp: Path, broker: LocalBroker, agent_id: str, power: str = "") -> AsyncIterator[Agent]:
    agent = Agent(load_config(agent_config(tmp, broker, agent_id, power)))
    task = asyncio.create_task(agent.run(), name=f"agent[{agent_id}]")
    try:
        async with asyncio.timeout(20):
            await agent.link.wait_connected()
        yield agent
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@asynccontextmanager
async def running_centre(tmp: Path, broker: LocalBroker, wake_port: int) -> AsyncIterator[Central]:
    db_path = tmp / "fleet.db"
    Users(db_path).add("tech", PASSWORD, "technician")
    Users(db_path).add("look", PASSWORD, "viewer")
    central = Central(BrokerAddress.parse(broker.url), db_path, wake_port=wake_port)
    task = asyncio.create_task(central.run(("127.0.0.1", 0)), name="central[test].run")
    try:
        async with asyncio.timeout(20):
            await central.http_ready.wait()
            await central.collector.connected.wait()
        yield central
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        central.close()


async def until(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    async with asyncio.timeout(timeout):
        while not (found := check()):
            await asyncio.sleep(0.05)
    return found


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    yield sock
    sock.close()


async def received(sock: socket.socket) -> bytes:
    data, _ = await asyncio.to_thread(sock.recvfrom, 2048)
    return data


def magic(mac: str) -> bytes:
    return b"\xff" * 6 + bytes.fromhex(mac.replace(":", "")) * 16


async def logged_in(central: Central, user: str) -> aiohttp.ClientSession:
    session = aiohttp.ClientSession(central.http_url, cookie_jar=aiohttp.CookieJar(unsafe=True))
    form = {"username": user, "password": PASSWORD, "next": "/"}
    async with session.post("/login", data=form, allow_redirects=False) as response:
        assert response.status == 303
    return session


async def wake(session: aiohttp.ClientSession, agent_id: str) -> tuple[int, dict[str, Any]]:
    async with session.post(f"/api/agents/{agent_id}/wake", json={}) as response:
        return response.status, await response.json()


def state(central: Central, agent_id: str) -> str | None:
    agent = central.db.agent(agent_id)
    return agent["state"] if agent else None


async def test_a_technician_wakes_a_sleeping_room_through_its_neighbour(
    tmp_path: Path, broker: LocalBroker, listener: socket.socket
) -> None:
    async with running_centre(tmp_path, broker, listener.getsockname()[1]) as central:
        async with running_agent(tmp_path, broker, "room-b") as sleeper:
            await until(lambda: state(central, "room-b") == "online")
            # A timetable set from afar: the agent re-publishes info with its wake times at once.
            lessons = [{"day": [1, 2, 3, 4, 5, 6, 7], "start": "08:00", "end": "08:45", "name": "语文"}]
            outcome = await sleeper.table.execute("schedule.set", {"timetable": {"lessons": lessons}})
            assert outcome.status == "succeeded"
            plan = await until(lambda: (central.db.agent("room-b") or {}).get("wake"))
            assert [parse_iso(t).strftime("%H:%M") for t in plan][:3] == ["23:40"] * 3  # 07:40 at +08:00
        await until(lambda: state(central, "room-b") == "offline")  # the PC went to sleep: its info stays
        assert central.db.agent("room-b")["nics"] == [
            {"name": "config", "mac": MACS["room-b"], "address": "", "broadcast": "127.0.0.1"}
        ]
        tech = await logged_in(central, "tech")
        try:
            status, body = await wake(tech, "room-b")
            assert (status, body["status"], body["code"]) == (503, "failed", "no_neighbour")
            assert "no other agent of site 'wake-school' is online" in body["error"]
            async with running_agent(tmp_path, broker, "room-a") as neighbour:
                await until(lambda: state(central, "room-a") == "online")
                same = await neighbour.table.execute("schedule.set", {"timetable": {"lessons": lessons}})
                assert same.status == "succeeded"
                status, body = await wake(tech, "room-b")
                assert status == 200 and body["status"] == "succeeded" and body["via"] == "room-a", body
                assert await received(listener) == magic(MACS["room-b"])
                [packet] = body["packets"]
                assert packet["result"]["target"] == "room-b" and packet["result"]["mac"] == MACS["room-b"]
                row = await until(lambda: [c for c in central.db.commands(agent_id="room-a") if c["status"] != "sent"])
                assert (row[0]["name"], row[0]["by"], row[0]["status"]) == ("power.wake", "tech", "succeeded")
                args = {"mac": MACS["room-b"], "port": listener.getsockname()[1], "target": "room-b"}
                assert row[0]["args"] == {**args, "broadcast": "127.0.0.1"}

                # The timetable's wake time comes: the centre wakes the sleeping room by itself, once.
                instant = parse_iso(central.db.agent("room-b")["wake"][0])
                [scheduled] = await central.wake_schedule.tick(instant)
                assert scheduled["status"] == "succeeded" and scheduled["via"] == "room-a"
                assert await received(listener) == magic(MACS["room-b"])
                assert await central.wake_schedule.tick(instant.replace(second=30)) == []
                by = await until(lambda: [c["by"] for c in central.db.commands(agent_id="room-a")])
                assert by[0] == "timetable"
                # The awake neighbour has the same wake times, but it is online: never woken.
                await until(lambda: {p["agent_id"] for p in central.db.wake_plans()} == {"room-a", "room-b"})
                assert central.wake_schedule.due(instant) == []
        finally:
            await tech.close()


async def test_wake_refusals(tmp_path: Path, broker: LocalBroker, listener: socket.socket) -> None:
    async with running_centre(tmp_path, broker, listener.getsockname()[1]) as central:
        # An agent older than power.wake: its info says nothing of its cards.
        await central.writer.put(Seen(SITE, "room-old", Info("老教室", "pc-old", "0.0.9", ()), now_iso()))
        await until(lambda: central.db.agent("room-old"))
        tech, look = await logged_in(central, "tech"), await logged_in(central, "look")
        try:
            status, body = await wake(tech, "room-old")
            assert (status, body["code"]) == (409, "no_mac") and "room-old has reported no MAC address" in body["error"]
            status, body = await wake(tech, "room-nowhere")
            assert (status, body["code"], body["error"]) == (404, "unknown_agent", "no agent 'room-nowhere'")
            status, body = await wake(look, "room-old")
            assert status == 403
            async with tech.post("/api/agents/room-old/wake", data="{}") as response:
                assert response.status == 415  # not JSON: a form from another site
        finally:
            await tech.close()
            await look.close()


def test_neighbours_on_the_sleeping_pcs_lan_come_first_then_the_most_recently_heard() -> None:
    def agent(agent_id: str, state: str, seen: str, lan: str = "", site: str = SITE) -> dict[str, Any]:
        nics = [{"mac": "02:00:00:00:00:01", "broadcast": lan}] if lan else []
        return {"agent_id": agent_id, "site": site, "state": state, "last_seen": seen, "nics": nics}

    target = agent("room-b", "offline", "2026-03-02T00:00:00Z", "10.1.1.255")
    target["nics"].append({"mac": "02:00:00:00:00:02", "broadcast": "10.1.2.255"})
    target["nics"].append({"mac": "02:00:00:00:00:01", "broadcast": "10.1.1.255"})  # the same card twice
    fleet = [
        target,
        agent("room-c", "online", "2026-03-02T07:00:09Z", "10.2.2.255"),
        agent("room-d", "online", "2026-03-02T07:00:01Z", "10.1.2.255"),
        agent("room-e", "lost", "2026-03-02T07:00:10Z", "10.1.1.255"),
        agent("room-f", "online", "2026-03-02T07:00:05Z"),
        agent("room-g", "online", "2026-03-02T07:00:08Z", "10.1.1.255"),
        agent("room-h", "online", "2026-03-02T07:00:11Z", "10.1.1.255", site="other-school"),
    ]
    assert neighbours(target, fleet) == ["room-g", "room-d", "room-c", "room-f"]
    assert packets(target) == [("02:00:00:00:00:01", "10.1.1.255"), ("02:00:00:00:00:02", "10.1.2.255")]


def test_a_bad_wake_port_is_refused_before_anything_starts() -> None:
    for port in ("0", "65536", "nine"):
        argv = [sys.executable, "-m", "central.cli", "run", "--broker", "mqtt://127.0.0.1:1", "--wake-port", port]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and f"--wake-port: got {port!r}, expected a port 1..65535" in done.stderr
