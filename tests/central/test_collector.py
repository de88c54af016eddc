"""classroom-central's collector, store and command sender against a real Mosquitto and real SQLite files."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from fleet_stores import fleet_at

from central.app import Central
from central.collector import ForeignTopic, SilenceWatch, to_row
from central.fleet_rows import CommandReplied, PruneTelemetry, Seen
from central.fleetdb import FleetDB
from central.live import Changes
from central.mosquitto import LocalBroker
from contract import (
    CENTRAL_STATUS,
    DeviceInfo,
    DeviceState,
    Event,
    Info,
    PayloadError,
    Status,
    Telemetry,
    Topics,
    encode,
    now_iso,
)
from contract.mqtt import BrokerAddress, Client, make_client

SITE = "school-1"
LIMIT = 10.0


async def until(check: Callable[[], Any], what: str, timeout: float = LIMIT) -> Any:
    """Poll `check` until it returns something truthy (bounded)."""
    try:
        async with asyncio.timeout(timeout):
            while not (value := check()):
                await asyncio.sleep(0.02)
            return value
    except TimeoutError:
        raise AssertionError(f"gave up waiting for {what}") from None


@contextlib.asynccontextmanager
async def running(central: Central) -> AsyncIterator[Central]:
    task = asyncio.create_task(central.run(), name="test.central")
    try:
        async with asyncio.timeout(LIMIT):
            await central.collector.connected.wait()
        yield central
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        central.close()


def make_central(broker: LocalBroker, tmp_path: Path) -> Central:
    return Central(BrokerAddress.parse(broker.url), fleet_at(tmp_path), silence_check_s=0.05)


@contextlib.asynccontextmanager
async def agent_client(broker: LocalBroker, name: str = "agent") -> AsyncIterator[Client]:
    async with make_client(BrokerAddress.parse(broker.url), f"test-{name}-{os.getpid()}") as client:
        yield client


def status(state: str, session: int) -> bytes:
    return encode(Status(state, session, now_iso(), "1.0").to_dict())


def info(room: str = "101", interval: float = 10.0) -> bytes:
    devices = (DeviceInfo("panel", "display", "lg-rs232"), DeviceInfo("camera", "camera", "sony-visca"))
    return encode(Info(room, "pc-101", "1.0", devices, interval).to_dict())


def device_state(device: str, online: bool = True, **state: Any) -> bytes:
    return encode(DeviceState(device, online, now_iso(), state).to_dict())


def telemetry(cpu: float = 12.5) -> bytes:
    return encode(Telemetry(now_iso(), cpu, 40.0, 50_000_000_000, 61.0).to_dict())


def event(type_: str, action: str, device: str = "", severity: str = "warning") -> bytes:
    return encode(Event(type_, severity, action, now_iso(), f"{type_} {action}", device).to_dict())


async def announce(client: Client, agent: str, session: int = 1, interval: float = 10.0) -> None:
    """What an agent publishes on connect: retained status, info and every device state."""
    topics = Topics(SITE, agent)
    await client.publish(topics.status, status("online", session), qos=1, retain=True)
    await client.publish(topics.info, info(interval=interval), qos=1, retain=True)
    await client.publish(topics.state("panel"), device_state("panel", power="on", input="hdmi1"), qos=1, retain=True)
    await client.publish(topics.state("camera"), device_state("camera", False), qos=1, retain=True)


# ---- sans-IO pieces ------------------------------------------------------------------


def test_to_row_reads_every_kind_and_refuses_what_breaks_the_contract() -> None:
    t = Topics(SITE, "a1")
    row = to_row(t.status, status("online", 3), True, now_iso())
    assert isinstance(row, Seen) and row.payload == Status.from_dict(json.loads(status("online", 3))) and row.retained
    assert isinstance(
        to_row(t.reply, encode({"id": "x", "status": "failed", "error": "no"}), False, now_iso()), CommandReplied
    )
    assert to_row(t.cmd("panel.power"), b"{}", False, now_iso()) is None  # our own commands
    assert to_row(t.status, b"", True, now_iso()) is None  # a retained message being cleared
    assert to_row(CENTRAL_STATUS, status("online", 1), True, now_iso()) is None
    with pytest.raises(ForeignTopic):
        to_row("classroom/v1/school-1/a1/bogus", b"{}", False, now_iso())
    with pytest.raises(ForeignTopic):
        to_row("classroom/v2/x", b"{}", False, now_iso())
    with pytest.raises(PayloadError, match="camera"):
        to_row(t.state("camera"), device_state("panel"), False, now_iso())
    with pytest.raises(PayloadError, match="yesterday"):
        to_row(t.status, encode({"state": "online", "session": 1, "since": "yesterday"}), False, now_iso())


def test_silence_watch_reports_each_silent_agent_once_until_heard_again() -> None:
    watch = SilenceWatch()
    watch.interval("a", 1.0)
    watch.heard("a", 100.0)
    watch.known("b", 100.0)  # default interval 10 s
    assert watch.due(102.9) == []
    assert watch.due(103.1) == ["a"]
    assert watch.due(104.0) == []
    watch.heard("a", 104.0)
    assert watch.due(131.0) == ["a", "b"]


async def test_changes_drop_the_oldest_event_of_a_slow_subscriber() -> None:
    changes = Changes(maxsize=2)
    slow = changes.subscribe()
    for n in range(3):
        changes.publish({"kind": "agent", "agent_id": f"a{n}"})
    assert [slow.get_nowait()["agent_id"] for _ in range(2)] == ["a1", "a2"]
    changes.unsubscribe(slow)
    changes.publish({"kind": "agent", "agent_id": "a3"})
    assert slow.empty()


def test_retention_deletes_only_old_telemetry(tmp_path: Path) -> None:
    db = FleetDB(fleet_at(tmp_path))
    sample = Telemetry.from_dict(json.loads(telemetry()))
    db.write_batch(
        [
            Seen(SITE, "a1", sample, "2020-01-01T00:00:00Z"),
            Seen(SITE, "a1", sample, now_iso()),
            PruneTelemetry("2021-01-01T00:00:00Z"),
        ]
    )
    assert len(db.telemetry_history("a1")) == 1
    db.close()


# ---- against the broker --------------------------------------------------------------


async def test_retained_status_info_and_state_land_in_fleet_db(broker: LocalBroker, tmp_path: Path) -> None:
    async with agent_client(broker) as agent:
        await announce(agent, "a1", session=4)  # before the centre runs: it gets them retained
    async with running(make_central(broker, tmp_path)) as central:
        found = await until(lambda: (a := central.db.agent("a1")) and len(a["devices"]) == 2 and a, "a1 with devices")
        assert found["state"] == "online" and found["session"] == 4
        assert (found["site"], found["room"], found["hostname"], found["version"]) == (SITE, "101", "pc-101", "1.0")
        panel = next(d for d in found["devices"] if d["id"] == "panel")
        assert panel["online"] is True and panel["state"] == {"power": "on", "input": "hdmi1"}
        assert panel["kind"] == "display" and panel["profile"] == "lg-rs232"
        assert central.db.sites() == [SITE]
        async with agent_client(broker, "watcher") as watcher:
            await watcher.subscribe(CENTRAL_STATUS, qos=1)
            async with asyncio.timeout(LIMIT):
                message = await anext(aiter(watcher.messages))
        assert message.retain and json.loads(message.payload)["state"] == "online"
        # A live update replaces the device's state; telemetry becomes the agent's latest.
        changes = central.changes.subscribe()
        async with agent_client(broker) as agent:
            await agent.publish(Topics(SITE, "a1").state("panel"), device_state("panel", power="off"), qos=1)
            await agent.publish(Topics(SITE, "a1").telemetry, telemetry(cpu=77.0), qos=1)
        await until(lambda: (central.db.agent("a1") or {}).get("telemetry"), "telemetry")
        agent_now = central.db.agent("a1") or {}
        assert agent_now["telemetry"]["cpu_percent"] == 77.0
        assert next(d for d in agent_now["devices"] if d["id"] == "panel")["state"] == {"power": "off"}
        async with asyncio.timeout(LIMIT):
            assert (await changes.get())["agent_id"] == "a1"


async def test_kill_9_of_an_agent_turns_it_lost(broker: LocalBroker, tmp_path: Path) -> None:
    topics = Topics(SITE, "a2")
    async with running(make_central(broker, tmp_path)) as central:
        # A real client with a Will, killed with SIGKILL: the broker publishes the Will.
        stand_in = await asyncio.create_subprocess_exec(
            *["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-i", "agent-a2", "-t", topics.cmd()],
            *["--will-topic", topics.status, "--will-payload", status("lost", 7).decode(), "--will-retain"],
            *["--will-qos", "1"],
            stdout=asyncio.subprocess.PIPE,
        )
        assert stand_in.stdout is not None
        try:
            async with agent_client(broker) as agent:
                await agent.publish(topics.status, status("online", 7), qos=1, retain=True)
                await agent.publish(topics.cmd("probe"), b"connected?", qos=1, retain=True)
                async with asyncio.timeout(LIMIT):
                    assert await stand_in.stdout.readline() == b"connected?\n"  # it is connected, its Will set
                await agent.publish(topics.cmd("probe"), b"", qos=1, retain=True)
            await until(lambda: (central.db.agent("a2") or {}).get("state") == "online", "a2 online")
            stand_in.send_signal(signal.SIGKILL)
        finally:
            with contextlib.suppress(ProcessLookupError):
                stand_in.kill()
            async with asyncio.timeout(LIMIT):
                await stand_in.wait()
        await until(lambda: (central.db.agent("a2") or {}).get("state") == "lost", "a2 lost")
        assert [h["state"] for h in central.db.status_history("a2")][:2] == ["lost", "online"]
        assert [a["agent_id"] for a in central.db.agents(offline_only=True)] == ["a2"]


async def test_a_late_will_from_an_older_session_does_not_overwrite_a_newer_session(
    broker: LocalBroker, tmp_path: Path
) -> None:
    topics = Topics(SITE, "a3")
    async with running(make_central(broker, tmp_path)) as central, agent_client(broker) as agent:
        await agent.publish(topics.status, status("online", 1), qos=1, retain=True)
        await agent.publish(topics.status, status("online", 2), qos=1, retain=True)
        await agent.publish(topics.status, status("lost", 1), qos=1, retain=True)  # the old connection's Will
        await agent.publish(topics.info, info(room="late-will-marker"), qos=1)
        await until(lambda: (central.db.agent("a3") or {}).get("room") == "late-will-marker", "info after the Will")
        a3 = central.db.agent("a3") or {}
        assert (a3["state"], a3["session"]) == ("online", 2)
        assert [(h["state"], h["session"]) for h in central.db.status_history("a3")] == [("online", 2), ("online", 1)]
        await agent.publish(topics.status, status("lost", 2), qos=1, retain=True)  # the current session's Will
        await until(lambda: (central.db.agent("a3") or {}).get("state") == "lost", "a3 lost")


async def test_an_agent_silent_for_three_telemetry_intervals_is_marked_silent(
    broker: LocalBroker, tmp_path: Path
) -> None:
    topics = Topics(SITE, "a4")
    async with running(make_central(broker, tmp_path)) as central, agent_client(broker) as agent:
        await announce(agent, "a4", interval=0.2)
        await agent.publish(topics.telemetry, telemetry(), qos=1)
        await until(lambda: (central.db.agent("a4") or {}).get("state") == "online", "a4 online")
        await until(lambda: (central.db.agent("a4") or {}).get("state") == "silent", "a4 silent")
        assert [a["agent_id"] for a in central.db.agents(offline_only=True)] == ["a4"]
        assert central.db.status_history("a4")[0]["state"] == "silent"
        await agent.publish(topics.telemetry, telemetry(), qos=1)  # news from it: online again
        await until(lambda: (central.db.agent("a4") or {}).get("state") == "online", "a4 back online")


async def test_alarms_raise_clear_and_ack(broker: LocalBroker, tmp_path: Path) -> None:
    topics = Topics(SITE, "a5")
    async with running(make_central(broker, tmp_path)) as central, agent_client(broker) as agent:
        await announce(agent, "a5")
        await agent.publish(topics.event, event("disk_low", "raise", severity="critical"), qos=1)
        await agent.publish(topics.event, event("device_offline", "raise", device="panel"), qos=1)
        await agent.publish(topics.event, event("device_offline", "raise", device="panel"), qos=1)  # again
        await agent.publish(topics.event, event("lesson_started", "log", severity="info"), qos=1)
        await until(lambda: len(central.db.alarms()) == 2, "two open alarms")
        assert (central.db.agent("a5") or {})["open_alarms"] == 2
        assert [a["agent_id"] for a in central.db.agents(alarms_only=True)] == ["a5"]
        await agent.publish(topics.event, event("disk_low", "clear"), qos=1)
        await until(lambda: len(central.db.alarms()) == 1, "one alarm left open")
        [still_open] = central.db.alarms(agent_id="a5")
        assert (still_open["type"], still_open["device"], still_open["site"]) == ("device_offline", "panel", SITE)
        cleared = next(a for a in central.db.alarms(open_only=False) if a["type"] == "disk_low")
        assert cleared["cleared_ts"] and cleared["severity"] == "critical"
        assert central.db.ack_alarm(still_open["id"], "tech1") is True
        assert central.db.ack_alarm(still_open["id"], "tech2") is False
        [acked] = central.db.alarms()
        assert acked["acked_by"] == "tech1" and acked["acked_ts"]
        assert central.db.ack_alarm(9999, "tech1") is False


async def test_malformed_payloads_on_every_topic_are_logged_skipped_and_counted(
    broker: LocalBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    t = Topics(SITE, "a6")
    bad: list[tuple[str, bytes]] = [
        (t.status, b"not json {"),
        (t.status, json.dumps({"schema": 2, "state": "online", "session": 1, "since": now_iso()}).encode()),
        (t.status, encode({"state": "asleep", "session": 1, "since": now_iso()})),
        (t.info, b"[1, 2, 3]"),
        (t.info, encode({"devices": [{"kind": "camera"}]})),
        (t.state("panel"), encode({"online": True})),
        (t.state("panel"), encode({"device": "panel", "online": "yes", "ts": now_iso()})),
        (t.telemetry, encode({"ts": "22/11/2026 08:00", "cpu_percent": 1, "memory_percent": 1})),
        (t.telemetry, "\udcff".encode("utf-8", "surrogateescape")),
        (t.event, encode({"type": "disk_low", "severity": "apocalyptic", "action": "raise", "ts": now_iso()})),
        (t.reply, encode({"status": "succeeded"})),
    ]
    foreign = ["classroom/v1/school-1/a6/bogus", "classroom/v1/school-1/a6/state", "classroom/v1/_central/x"]
    caplog.set_level(logging.WARNING, logger="central.collector")
    async with running(make_central(broker, tmp_path)) as central, agent_client(broker) as agent:
        for topic, payload in bad:
            await agent.publish(topic, payload, qos=1)
        for topic in foreign:
            await agent.publish(topic, b"{}", qos=1)
        await agent.publish(t.status, status("online", 1), qos=1)  # the same client: delivered after the bad ones
        a6 = await until(
            lambda: (a := central.db.agent("a6")) and a["state"] == "online" and a,
            "the good message after the bad ones",
        )
        assert central.collector.stats.malformed == len(bad) == a6["dropped"]
        assert central.collector.stats.foreign == len(foreign)
    # Logged once per topic (a minute), with the first reason; every one of them is counted.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for topic, _ in bad:
        assert logged.count(f"on {topic}:") == 1
    assert a6["dropped_reason"].startswith("reply: ")
    assert "not JSON" in logged and "severity: got 'apocalyptic'" in logged and "id: missing" in logged


async def test_the_collector_reconnects_after_a_broker_restart(broker: LocalBroker, tmp_path: Path) -> None:
    async with running(make_central(broker, tmp_path)) as central:
        broker.restart()
        await until(lambda: central.collector.stats.connects >= 2 and central.collector.connected.is_set(), "reconnect")
        async with agent_client(broker) as agent:
            await agent.publish(Topics(SITE, "a7").status, status("online", 1), qos=1)
        await until(lambda: central.db.agent("a7"), "a7 after the restart")


# ---- commands --------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def replying_agent(
    broker: LocalBroker, agent: str, answer: Callable[[str, dict[str, Any]], dict[str, Any]]
) -> AsyncIterator[list[dict[str, Any]]]:
    """An agent stand-in: answers every command on its cmd/# with `answer(name, payload)`."""
    topics = Topics(SITE, agent)
    seen: list[dict[str, Any]] = []

    async def serve(client: Client) -> None:
        async for message in client.messages:
            payload = json.loads(message.payload)
            name = message.topic.value.rsplit("/", 1)[-1]
            seen.append({"name": name, **payload})
            await client.publish(topics.reply, encode({"id": payload["id"], **answer(name, payload)}), qos=1)

    async with agent_client(broker, f"{agent}-cmd") as client:
        await client.subscribe(topics.cmd(), qos=1)
        await client.publish(topics.status, status("online", 1), qos=1, retain=True)
        task = asyncio.create_task(serve(client))
        try:
            yield seen
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_send_returns_the_reply_and_the_audit_log_records_it(broker: LocalBroker, tmp_path: Path) -> None:
    def answer(name: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {"status": "succeeded", "result": {"power": payload["args"]["on"]}}

    async with running(make_central(broker, tmp_path)) as central, replying_agent(broker, "a8", answer) as seen:
        await until(lambda: central.db.agent("a8"), "a8 known")
        reply = await central.sender.send("a8", "panel.power", {"device": "panel", "on": True}, "tech1", timeout=5)
        assert reply["status"] == "succeeded" and reply["result"] == {"power": True}
        [command] = seen
        assert command["name"] == "panel.power" and command["by"] == "tech1" and command["id"] == reply["id"]
        assert command["expires"] > now_iso()
        await until(lambda: [c["status"] for c in central.db.commands(agent_id="a8")] == ["succeeded"], "audit row")
        [row] = central.db.commands()
        assert (row["id"], row["name"], row["by"]) == (reply["id"], "panel.power", "tech1")
        assert row["args"] == {"device": "panel", "on": True} and row["result"] == {"power": True}
        assert row["sent_ts"] and row["replied_ts"] and row["expires"] > row["sent_ts"]


async def test_a_command_without_reply_times_out_and_is_recorded(broker: LocalBroker, tmp_path: Path) -> None:
    async with running(make_central(broker, tmp_path)) as central, agent_client(broker) as agent:
        await agent.publish(Topics(SITE, "a9").status, status("online", 1), qos=1, retain=True)
        await until(lambda: central.db.agent("a9"), "a9 known")
        reply = await central.sender.send("a9", "agent.ping", {}, "tech1", timeout=0.3)
        assert reply["status"] == "timeout" and "a9" in reply["error"]
        await until(lambda: [c["status"] for c in central.db.commands()] == ["timeout"], "timeout recorded")
        with pytest.raises(ValueError, match="nobody"):
            await central.sender.send("nobody", "agent.ping", {}, "tech1")
