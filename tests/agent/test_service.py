"""The agent service against a real Mosquitto: the MQTT contract, commands, the outbox."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rooms import site_toml

from agent.config.site import SiteConfig, load_config
from agent.service import Agent
from central.mosquitto import LocalBroker
from contract import Command, to_iso
from contract.mqtt import BrokerAddress, Client, make_client
from drivers.profile import find_profile
from drivers.sim.model import Simulator
from drivers.sim.runner import Faults, SimServer

SITE, AGENT = "test-school", "room-7"
ROOT = f"classroom/v1/{SITE}/{AGENT}"


def write_config(
    tmp: Path, broker: LocalBroker, camera: str = "sim", telemetry_s: float = 1.0, http_port: int = 0
) -> Path:
    return site_toml(
        tmp,
        broker.url,
        f"""[intervals]
telemetry_s = {telemetry_s}
[[devices]]
id = "panel"
profile = "samsung-mdc"
address = "sim"
[[devices]]
id = "camera"
profile = "sony-visca"
address = "{camera}"
poll_s = 0.5
""",
        agent_id=AGENT,
        site=SITE,
        http_port=http_port,
    )


class Inbox:
    """Everything a subscriber receives, with a way to wait for a condition on it."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any], bool]] = []
        self.changed = asyncio.Event()

    def add(self, topic: str, payload: bytes, retained: bool) -> None:
        self.messages.append((topic, json.loads(payload), retained))
        self.changed.set()

    def on(self, topic: str) -> list[dict[str, Any]]:
        return [p for t, p, _ in self.messages if t == topic]

    async def until(self, check: Callable[[], Any], timeout: float = 30.0) -> Any:
        async with asyncio.timeout(timeout):
            while not (found := check()):
                self.changed.clear()
                await self.changed.wait()
        return found


@asynccontextmanager
async def listen(broker: LocalBroker, topic: str = f"{ROOT}/#", **kw: Any) -> AsyncIterator[tuple[Inbox, Client]]:
    inbox = Inbox()
    client = make_client(BrokerAddress.parse(broker.url), kw.pop("identifier", f"test-{uuid.uuid4().hex[:8]}"), **kw)
    async with client:
        await client.subscribe(topic, qos=1)

        async def pump() -> None:
            async for message in client.messages:
                inbox.add(str(message.topic), bytes(message.payload), bool(message.retain))  # type: ignore[arg-type]

        task = asyncio.create_task(pump())
        try:
            yield inbox, client
        finally:
            task.cancel()


@asynccontextmanager
async def running(config: SiteConfig) -> AsyncIterator[Agent]:
    agent = Agent(config)
    task = asyncio.create_task(agent.run(), name="agent")
    try:
        async with asyncio.timeout(15):
            await agent.link.wait_connected()
        yield agent
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def command(name: str, args: dict[str, Any], *, ident: str | None = None, ttl: float = 60) -> bytes:
    expires = to_iso(datetime.now(UTC) + timedelta(seconds=ttl))
    return json.dumps(
        {"schema": 1, "id": ident or uuid.uuid4().hex, "args": args, "expires": expires, "by": "tech-li"}
    ).encode()


async def test_connect_publishes_retained_status_info_and_device_states(tmp_path: Path, broker: LocalBroker) -> None:
    config = load_config(write_config(tmp_path, broker))
    async with running(config), listen(broker) as (inbox, _):  # subscribing after the fact: retained truth only
        await inbox.until(lambda: len([m for m in inbox.messages if m[2]]) >= 4)
        retained = {t: p for t, p, r in inbox.messages if r}
        assert retained[f"{ROOT}/status"]["state"] == "online"
        assert retained[f"{ROOT}/status"]["schema"] == 1
        info = retained[f"{ROOT}/info"]
        assert info["room"] == "测试教室 7"
        assert {d["id"]: d["kind"] for d in info["devices"]} == {"panel": "display", "camera": "camera"}
        await inbox.until(lambda: any(p.get("online") for p in inbox.on(f"{ROOT}/state/camera")))
        await inbox.until(lambda: inbox.on(f"{ROOT}/telemetry"))
        telemetry = inbox.on(f"{ROOT}/telemetry")[-1]
        assert telemetry["disk_free_bytes"] > 0 and telemetry["devices_total"] == 2


async def test_a_freshly_built_agent_answers_its_callbacks_before_it_runs(tmp_path: Path, broker: LocalBroker) -> None:
    agent = Agent(load_config(write_config(tmp_path, broker)))
    try:
        # What the link reads on connect and on a command, and what alarms report through it.
        assert [d.id for d in agent.link.info().devices] == ["panel", "camera"]
        assert {s.device: s.online for s in agent.link.states()} == {"panel": False, "camera": False}
        agent.alarms.raise_("disk_low", "warning", "disk 91% full")
        assert agent.store.outbox_size() == 1
        expires = to_iso(datetime.now(UTC) + timedelta(seconds=60))
        reply = await agent.link.run_command(Command("early-1", "agent.ping", {}, expires, "tech-li"))
        assert reply.status == "succeeded" and reply.name == "agent.ping"
        status = agent.status()
        assert [a["message"] for a in status["alarms"]] == ["disk 91% full"] and status["lesson"] is None
        assert [e for e in agent.store.outbox_peek() if b'"command"' in e.payload]  # the ping was audited
    finally:
        agent.store.close()
        agent.schedule.store.close()


async def test_commands_over_mqtt(tmp_path: Path, broker: LocalBroker) -> None:
    silent = SimServer(Simulator(find_profile("sony-visca")), "pty", Faults(drop_replies=1.0))
    config = load_config(write_config(tmp_path, broker, camera=await silent.start()))
    try:
        async with running(config), listen(broker, f"{ROOT}/reply") as (inbox, client):

            async def ask(name: str, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
                payload = command(name, args, **kw)
                ident = json.loads(payload)["id"]
                await client.publish(f"{ROOT}/cmd/{name}", payload, qos=1)
                reply = lambda: next((p for p in inbox.on(f"{ROOT}/reply") if p["id"] == ident), None)  # noqa: E731
                return await inbox.until(reply, timeout=40)

            ok = await ask("panel.volume", {"device": "panel", "level": 35})
            assert ok["status"] == "succeeded" and ok["result"]["volume"] == 35
            unknown = await ask("panel.explode", {"device": "panel"})
            assert unknown["status"] == "rejected" and "unknown command 'panel.explode'" in unknown["error"]
            bad = await ask("panel.volume", {"device": "panel", "level": 101})
            assert bad["status"] == "rejected" and "level" in bad["error"]
            wrong_device = await ask("panel.power", {"device": "camera", "on": True})
            assert wrong_device["status"] == "rejected" and "device" in wrong_device["error"]
            expired = await ask("panel.power", {"device": "panel", "on": True}, ttl=-5)
            assert expired["status"] == "expired"
            timeout = await ask("camera.zoom", {"device": "camera", "direction": "stop"})
            assert timeout["status"] == "failed" and "no reply" in timeout["error"]
            # The same id again: answered again, not run again (the audit log shows one run).
            first = await ask("panel.volume", {"device": "panel", "level": 20}, ident="dup-1")
            await client.publish(
                f"{ROOT}/cmd/panel.volume",
                command("panel.volume", {"device": "panel", "level": 60}, ident="dup-1"),
                qos=1,
            )
            await inbox.until(lambda: len([p for p in inbox.on(f"{ROOT}/reply") if p["id"] == "dup-1"]) == 2)
            replies = [p for p in inbox.on(f"{ROOT}/reply") if p["id"] == "dup-1"]
            assert replies[0] == replies[1] == first
            ping = await ask("agent.ping", {})
            assert ping["status"] == "succeeded"
            volume = await ask("panel.volume", {"device": "panel", "level": 20})  # still 20, not 60
            assert volume["result"]["volume"] == 20
    finally:
        await silent.close()


async def test_malformed_commands_are_answered_or_logged_and_the_agent_carries_on(
    tmp_path: Path, broker: LocalBroker
) -> None:
    config = load_config(write_config(tmp_path, broker))
    async with running(config), listen(broker, f"{ROOT}/reply") as (inbox, client):
        for payload in [
            b"not json",
            b"[1,2]",
            b'{"schema": 2, "id": "x"}',
            b"\xff\xfe",
            json.dumps({"schema": 1, "id": "no-expiry", "args": {}}).encode(),
            json.dumps({"schema": 1, "id": "bad-args", "args": [], "expires": "2099-01-01T00:00:00Z"}).encode(),
        ]:
            await client.publish(f"{ROOT}/cmd/panel.power", payload, qos=1)
        await inbox.until(lambda: {p["id"] for p in inbox.on(f"{ROOT}/reply")} >= {"no-expiry", "bad-args"})
        rejected = {p["id"]: p for p in inbox.on(f"{ROOT}/reply")}
        assert rejected["no-expiry"]["status"] == "rejected" and "expires" in rejected["no-expiry"]["error"]
        assert rejected["bad-args"]["status"] == "rejected" and "args" in rejected["bad-args"]["error"]
        await client.publish(f"{ROOT}/cmd/agent.ping", command("agent.ping", {}, ident="alive"), qos=1)
        await inbox.until(
            lambda: any(p["id"] == "alive" and p["status"] == "succeeded" for p in inbox.on(f"{ROOT}/reply"))
        )


def test_kill_9_turns_the_status_lost_and_a_restart_starts_a_newer_session(tmp_path: Path, broker: LocalBroker) -> None:
    config_path = write_config(tmp_path, broker)

    async def main() -> None:
        async with listen(broker, f"{ROOT}/status") as (inbox, _):
            proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--config", str(config_path)])
            try:
                online = await inbox.until(lambda: [p for p in inbox.on(f"{ROOT}/status") if p["state"] == "online"])
                os.kill(proc.pid, signal.SIGKILL)
                lost = await inbox.until(lambda: [p for p in inbox.on(f"{ROOT}/status") if p["state"] == "lost"])
                assert lost[-1]["session"] == online[-1]["session"]
            finally:
                proc.kill()
                proc.wait(10)
            log = open(tmp_path / "agent2.log", "w")  # noqa: SIM115
            proc = subprocess.Popen(
                [sys.executable, "-m", "agent.cli", "-v", "run", "--config", str(config_path)], stderr=log
            )
            try:
                again = await inbox.until(
                    lambda: [
                        p
                        for p in inbox.on(f"{ROOT}/status")
                        if p["state"] == "online" and p["session"] > online[-1]["session"]
                    ]
                )
                assert again
                proc.send_signal(signal.SIGTERM)  # a clean stop says offline; no Will follows
                try:
                    await inbox.until(lambda: inbox.on(f"{ROOT}/status")[-1]["state"] == "offline")
                except TimeoutError:
                    print(inbox.on(f"{ROOT}/status"), (tmp_path / "agent2.log").read_text()[-3000:])
                    raise
                code = proc.wait(30)
                assert code == 0, (tmp_path / "agent2.log").read_text()[-5000:]
            finally:
                proc.kill()
                proc.wait(10)

    asyncio.run(main())


def test_config_problems_are_all_reported_at_once(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        """
agent_id = "a/b"
site = "s"
[broker]
url = "http://x"
[[devices]]
id = "panel"
profile = "sony-vsca"
address = "sim"
[[devices]]
id = "panel"
profile = "samsung-mdc"
"""
    )
    result = subprocess.run(
        [sys.executable, "-m", "agent.cli", "run", "--config", str(bad)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    for expected in [
        "agent_id: got 'a/b'",
        "room: missing",
        "broker.url",
        "devices[0].profile: unknown profile 'sony-vsca'",
        "devices[1].id: duplicate device id 'panel'",
        "devices[1].address: missing",
    ]:
        assert expected in result.stderr, result.stderr


@pytest.fixture(autouse=True)
def _quiet_paho(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING")


async def test_cli_call_goes_through_the_same_command_table(tmp_path: Path, broker: LocalBroker) -> None:
    config_path = write_config(tmp_path, broker)
    config = load_config(config_path)

    def call(*words: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "agent.cli", "call", "--config", str(config_path), "--by", "teacher", *words]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60)

    async with running(config), listen(broker, f"{ROOT}/event") as (inbox, _):
        ok = await asyncio.to_thread(call, "panel.volume", "device=panel", "level=33")
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout)["result"]["volume"] == 33
        bad = await asyncio.to_thread(call, "panel.mute", "device=panel", "on=maybe")
        assert bad.returncode == 2
        assert json.loads(bad.stdout) == {
            "command": "panel.mute",
            "status": "rejected",
            "error": "on: got 'maybe', expected true or false",
            "code": "arg_bool",  # what the dashboard words in the viewer's language
            "params": {"arg": "on", "value": "maybe"},
        }
        # Both requests are in the audit trail the centre receives, with who asked and how.
        audit = await inbox.until(lambda: [p for p in inbox.on(f"{ROOT}/event") if p["type"] == "command"][1:])
        assert {(p["command"], p["status"], p["by"], p["door"]) for p in audit} >= {
            ("panel.mute", "rejected", "teacher", "local")
        }
    gone = await asyncio.to_thread(call, "agent.ping")
    assert gone.returncode == 2 and "no agent answers" in gone.stderr


async def test_a_command_sent_the_moment_the_agent_says_online_is_answered(tmp_path: Path, broker: LocalBroker) -> None:
    config = load_config(write_config(tmp_path, broker))
    async with listen(broker) as (inbox, client):
        agent = Agent(config)
        task = asyncio.create_task(agent.run())
        try:
            await inbox.until(lambda: any(p["state"] == "online" for p in inbox.on(f"{ROOT}/status")))
            await client.publish(f"{ROOT}/cmd/agent.ping", command("agent.ping", {}, ident="first"), qos=1)
            reply = await inbox.until(lambda: [p for p in inbox.on(f"{ROOT}/reply") if p["id"] == "first"], 15)
            assert reply[0]["status"] == "succeeded"
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
