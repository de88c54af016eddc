"""The fleet demo: classroom-central and two classrooms' agents on simulated devices.

A local Mosquitto is started when no broker is given; the technicians' dashboard is served
with a demo login; commands go from the centre to the rooms over MQTT, as in a school; then
room-102 teaches room-101 live (a 专递课堂 over WebRTC on loopback, synthetic cameras).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from agent.config.site import parse_config
from agent.service import Agent
from central.app import Central
from central.errors import CentralError
from central.mosquitto import LocalBroker, free_port
from central.users import Users
from contract.mqtt import BrokerAddress

ROOMS = (("room-101", "初一(3)班 录播教室"), ("room-102", "高二(1)班 专递课堂"))
SITE = "demo-school"
PRESETS = {"1": "讲台", "2": "黑板", "3": "学生全景"}


def _peer(agent_id: str) -> str:
    return next(a for a, _ in ROOMS if a != agent_id)


def _power(agent_id: str) -> dict[str, Any]:
    """The demo PC is not the room's: its shutdown buttons print, and its wake-up packets stay on loopback."""
    say = f"import sys; print('demo: {agent_id} would ' + sys.argv[1] + ' in ' + sys.argv[2] + ' s')"
    number = [a for a, _ in ROOMS].index(agent_id) + 1
    return {
        "shutdown_command": [sys.executable, "-c", say, "shut down", "{delay_s}"],
        "reboot_command": [sys.executable, "-c", say, "restart", "{delay_s}"],
        "mac": f"02:de:00:00:00:{number:02x}",  # locally administered: no real card has it
        "broadcast": "127.0.0.1",
    }


def _room_config(agent_id: str, room: str, broker: str, data: Path) -> dict[str, Any]:
    camera = {"size": "640x360", "fps": 15, "bitrate_kbps": 700}
    return {
        "agent_id": agent_id,
        "site": SITE,
        "room": room,
        "data_dir": str(data / agent_id),
        "broker": {"url": broker},
        "intervals": {"telemetry_s": 5},
        "http": {"port": free_port()},
        "devices": [
            {"id": "panel", "profile": "samsung-mdc", "address": "sim"},
            {"id": "camera", "profile": "sony-visca", "address": "sim", "poll_s": 2, "presets": PRESETS},
        ],
        "sources": {
            "teacher": f"synthetic:{agent_id} teacher",
            "courseware": f"synthetic:{agent_id} courseware",
            "students": f"synthetic:{agent_id} students",
        },
        "lesson": {
            "trusted": [_peer(agent_id)],
            "send": ["teacher", "courseware"],
            "answer_with": ["students"],
            "audio": "tone:440",
            "ice_host_addresses": ["127.0.0.1"],  # the demo's media stays on loopback
            "video": {"camera": camera, "courseware": {"size": "960x540", "fps": 5, "bitrate_kbps": 700}},
        },
        # 开始录制 on the classroom page works: courseware with the teacher in a corner, small and light.
        "recording": {
            "layout": "pip",
            "sources": ["courseware", "teacher"],
            "size": "640x360",
            "fps": 15,
            "audio": "tone",
            "bitrate_mbps": 1,
            "planned_minutes": 10,
            "disk_min_free_gb": 0.2,
        },
        "power": _power(agent_id),
    }


@contextlib.asynccontextmanager
async def _broker(url: str | None, data: Path) -> AsyncIterator[str]:
    if url:
        yield url
        return
    embedded = LocalBroker(data / "broker")
    # A stop (Ctrl-C) while Mosquitto starts must still find it to stop: the start runs on to its end.
    starting = asyncio.ensure_future(asyncio.to_thread(embedded.start))
    try:
        await asyncio.shield(starting)
        yield embedded.url
    finally:
        with contextlib.suppress(Exception):  # a start that failed has said so already
            await starting
        await asyncio.to_thread(embedded.stop)


async def _wait_online(central: Central, count: int, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while sum(a["state"] == "online" for a in central.db.agents()) < count:
            await asyncio.sleep(0.1)


async def _send(central: Central, agent_id: str, name: str, args: dict[str, Any], pause: float) -> None:
    started = time.perf_counter()
    reply = await central.sender.send(agent_id, name, args, by="demo-technician")
    ms = (time.perf_counter() - started) * 1000
    outcome = reply.get("result") if reply["status"] == "succeeded" else reply.get("error")
    shown = " ".join(f"{k}={v}" for k, v in args.items())
    print(
        f"  {reply['status']:<9} {agent_id:<9} {name:<21} {shown:<32} -> "
        f"{json.dumps(outcome, ensure_ascii=False, allow_nan=False)}  ({ms:.0f} ms)",
        flush=True,
    )
    await asyncio.sleep(pause)


async def run_fleet(
    data: Path, *, broker_url: str | None, http: tuple[str, int], pause: float, duration: float | None
) -> int:
    """Run the fleet demo; keeps serving the dashboard for `duration` seconds (None: until Ctrl-C)."""
    data.mkdir(parents=True, exist_ok=True)
    async with _broker(broker_url, data) as url:
        central = Central(BrokerAddress.parse(url), data / "fleet.db", version="demo")
        password = secrets.token_urlsafe(9)
        users = Users(central.db.path)
        try:
            if users.role("demo") is None:
                users.add("demo", password, "admin")
            else:
                users.set_password("demo", password)
        finally:
            users.close()
        agents = [Agent(parse_config(_room_config(a, r, url, data), base=data)) for a, r in ROOMS]
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(central.run(http), name="demo.central")]
                tasks += [tg.create_task(a.run(), name=f"demo.agent[{a.config.agent_id}]") for a in agents]
                await _script(central, url, password, pause)
                await _lesson(central, agents, pause)
                later = f"（{duration:g} 秒后自动停止）" if duration is not None else ""
                print(f"\n演示运行中：按 Ctrl-C 停止{later}")
                print(f"The demo is running: press Ctrl-C (or kill -TERM {os.getpid()}) to stop it.", flush=True)
                await asyncio.sleep(duration if duration is not None else float("inf"))
                for task in tasks:
                    task.cancel()
        except CentralError as exc:
            print(f"demo: {exc}")
            return 1
        finally:
            central.close()
    return 0


async def _script(central: Central, broker: str, password: str, pause: float) -> None:
    async with asyncio.timeout(30):
        await central.http_ready.wait()
    print(f"\nbroker {broker}; classroom-central collecting into {central.db.path}")
    await _wait_online(central, len(ROOMS))
    print(f"dashboard: {central.http_url}   login: demo / {password}")
    print("\na technician fixes two rooms from the centre (commands travel over MQTT):")
    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("room-101", "agent.ping", {}),
        ("room-101", "panel.power", {"device": "panel", "on": True}),
        ("room-101", "panel.volume", {"device": "panel", "level": 25}),
        ("room-101", "camera.preset.recall", {"device": "camera", "preset": 1}),
        ("room-102", "panel.input", {"device": "panel", "source": "hdmi2"}),
        ("room-102", "panel.volume", {"device": "panel", "level": 140}),
        ("room-102", "camera.move", {"device": "camera", "direction": "left", "speed": 6}),
        ("room-102", "camera.stop", {"device": "camera"}),
    ]
    for agent_id, name, args in steps:
        await _send(central, agent_id, name, args, pause)
    await asyncio.sleep(1.0)  # the rooms' new states reach fleet.db
    print("\nthe fleet as the centre sees it:")
    for agent in central.db.agents():
        devices = ", ".join(
            f"{d['id']} {'online' if d['online'] else 'OFFLINE'} {d['state']}" for d in agent["devices"]
        )
        print(f"  {agent['agent_id']:<9} {agent['room']:<16} {agent['state']:<7} {devices}")


async def _lesson(central: Central, agents: list[Agent], pause: float) -> None:
    """Room-102 teaches room-101 live; print where to watch it and how the link is doing."""
    main, remote = "room-102", "room-101"
    print(f"\na 专递课堂: {main} teaches {remote} live (WebRTC on loopback; the centre sends the command):")
    await _send(central, main, "lesson.start", {"mode": "zhuandi", "remotes": [remote]}, 0)
    async with asyncio.timeout(30):
        while True:
            reply = await central.sender.send(main, "lesson.status", {}, by="demo-technician")
            peer = (reply.get("result") or {}).get("peers", {}).get(remote, {})
            if peer.get("state") == "connected" and peer.get("frames_received", 0) > 0:
                break
            await asyncio.sleep(0.5)
    await asyncio.sleep(max(pause, 2.0))
    reply = await central.sender.send(main, "lesson.status", {}, by="demo-technician")
    peer = reply["result"]["peers"][remote]
    print(
        f"  {remote}: {peer['state']}, frames sent {peer['frames_sent']} / received {peer['frames_received']}, "
        f"RTT {peer['rtt_ms']} ms, loss {peer['loss']}",
        flush=True,
    )
    for agent in agents:
        base = f"http://{agent.config.http_host}:{agent.config.http_port}"
        print(f"  classroom page {agent.config.agent_id}: {base}/   live teacher camera: {base}/watch/teacher")
