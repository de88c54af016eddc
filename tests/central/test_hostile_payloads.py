"""Hostile payloads against a real Mosquitto and a real classroom-central: dropped, counted, never fatal."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from fleet_stores import fleet_at
from test_collector import SITE, agent_client, make_central, running, status, until

from central import broker_config
from central.app import Central
from central.broker_registry import AgentAccount, UserAccount
from central.fleet_rows import Seen
from central.fleetdb import FleetDB
from central.mosquitto import LocalBroker, free_port
from central.users import Users
from central.web import create_app
from contract import Status, Telemetry, Topics, encode, now_iso
from contract.limits import LARGEST
from contract.mqtt import BrokerAddress, make_client

AGENT = "room-9"
TOPICS = Topics(SITE, AGENT)


def telemetry(n: int) -> bytes:
    return encode(Telemetry(now_iso(), float(n), 1.0, 10, 2.0).to_dict())


def with_cpu(text: str) -> bytes:
    """A telemetry payload whose cpu_percent is `text`, as written (json would refuse to write most of these)."""
    good = json.loads(telemetry(0))
    return json.dumps({**good, "cpu_percent": "HOSTILE"}).replace('"HOSTILE"', text).encode()


# (topic, payload): each between two valid telemetry messages.
HOSTILE = [
    (TOPICS.telemetry, b"[" * 1000),
    (TOPICS.telemetry, with_cpu("9" * 400)),
    (TOPICS.status, b'{"schema":1,"state":"online","session":%d,"since":"2026-11-22T08:00:00Z"}' % 2**70),
    (TOPICS.telemetry, with_cpu("NaN")),
    (TOPICS.telemetry, with_cpu("1e999")),
    (TOPICS.telemetry, json.dumps({**json.loads(telemetry(0)), "pad": "x" * 100_000}).encode()),
    (TOPICS.state("panel"), b'{"schema":1,"device":"panel","online":true,"ts":"9999-12-31T23:59:59-23:59"}'),
    (TOPICS.event, b'{"schema":1,"type":"\\ud800","severity":"info","action":"log","ts":"2026-11-22T08:00:00Z"}'),
]


def strict_json(text: str) -> Any:
    """JSON as a browser reads it: NaN and Infinity are errors."""

    def refuse(name: str) -> None:
        raise ValueError(f"{name} in the API's JSON")

    return json.loads(text, parse_constant=refuse)


def telemetry_rows(central: Central) -> list[float]:
    return [t["cpu_percent"] for t in reversed(central.db.telemetry_history(AGENT, 100))]


async def test_hostile_payloads_between_valid_ones_are_dropped_and_counted_and_the_centre_carries_on(
    broker: LocalBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="central.collector")
    central = make_central(broker, tmp_path)
    async with running(central), agent_client(broker) as agent:
        task = next(t for t in asyncio.all_tasks() if t.get_name() == "test.central")
        await agent.publish(TOPICS.status, status("online", 1), qos=1, retain=True)
        await agent.publish(TOPICS.telemetry, telemetry(0), qos=1)
        for n, (topic, payload) in enumerate(HOSTILE * 2, start=1):
            await agent.publish(topic, payload, qos=1)
            await agent.publish(TOPICS.telemetry, telemetry(n), qos=1)
        await until(lambda: len(telemetry_rows(central)) == 2 * len(HOSTILE) + 1, "every valid telemetry row")
        agent_row = await until(
            lambda: (a := central.db.agent(AGENT)) and a["dropped"] == 2 * len(HOSTILE) and a, "drops"
        )
        assert not task.done()
        assert central.collector.stats.malformed == 2 * len(HOSTILE)
        assert telemetry_rows(central) == [float(n) for n in range(2 * len(HOSTILE) + 1)]
        assert agent_row["session"] == 1 and agent_row["dropped_reason"].startswith("event: ")
        users = Users(central.db.location)
        users.add("wang", "pw-wang-123", "viewer")
        app = create_app(central.db, central.changes, central.sender, users=users, secret=b"s" * 32)
        async with TestClient(TestServer(app)) as client:
            await client.post("/login", data={"username": "wang", "password": "pw-wang-123", "next": "/"})
            fleet = strict_json(await (await client.get("/api/fleet")).text())
        users.close()
    [listed] = [a for a in fleet["agents"] if a["agent_id"] == AGENT]
    assert listed["dropped"] == 2 * len(HOSTILE)
    # Logged once per topic per minute, with the reason: not once per message.
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("dropped a message on")]
    assert sorted(line.split(":")[0] for line in lines) == sorted(f"dropped a message on {t}" for t in {*dict(HOSTILE)})
    assert any("deeper than 16" in line for line in lines)


def test_a_row_the_store_refuses_is_set_aside_and_the_rest_of_its_batch_is_written(tmp_path: Path) -> None:
    db = FleetDB(fleet_at(tmp_path))
    now = now_iso()
    rows = [Seen(SITE, AGENT, Status("online", 1, now, "1.0"), now)]
    rows += [Seen(SITE, AGENT, Telemetry(now, float(n), 1.0, 10, 2.0), now) for n in range(3)]
    rows.insert(2, Seen(SITE, "room-big", Status("online", 2**70, now, "1.0"), now))  # neither engine holds 2**70
    rows.insert(4, Seen(SITE, AGENT, Telemetry(now, float("nan"), 1.0, 10, 2.0), now))  # JSON holds no NaN
    db.write_batch(rows)
    assert [t["cpu_percent"] for t in db.telemetry_history(AGENT)] == [2.0, 1.0, 0.0]
    assert db.agent(AGENT)["dropped"] == 1 and "ValueError" in db.agent(AGENT)["dropped_reason"]
    big = db.agent("room-big")
    # SQLite's driver says OverflowError, PostgreSQL's "bigint out of range": either way it is named.
    assert big["dropped"] == 1 and ("OverflowError" in big["dropped_reason"] or "out of range" in big["dropped_reason"])
    db.close()


class SnippetBroker(LocalBroker):
    """Mosquitto run from `classroom-central broker-config`'s snippet itself (plus where to log)."""

    def __init__(self, folder: Path, port: int, snippet: Path) -> None:
        super().__init__(folder, port)
        self.snippet = snippet

    def config(self) -> str:
        run_as = "user root\n" if getattr(os, "geteuid", lambda: -1)() == 0 else ""
        return f"{run_as}log_dest file {self.log_file}\n{self.snippet.read_text()}"


async def test_the_generated_broker_config_drops_an_oversized_publish_and_the_centre_stays_up(tmp_path: Path) -> None:
    room, centre = AgentAccount(SITE, AGENT, "pw-room-9"), UserAccount("central", "pw-central", "central")
    out, port = tmp_path / "conf", free_port()
    parser = broker_config.add_parser(argparse.ArgumentParser().add_subparsers())
    accounts = ["--agent", f"{SITE}/{AGENT}:{room.password}", "--user", "central:pw-central:central"]
    args = parser.parse_args([*accounts, "--out", str(out), "--port", str(port), "--bind", "127.0.0.1"])
    assert broker_config.run(args) == 0
    with SnippetBroker(tmp_path / "broker", port, out / broker_config.CONF_FILE) as broker:
        address = BrokerAddress.parse(broker.url, username=centre.username, password=centre.password)
        central = Central(address, fleet_at(tmp_path), silence_check_s=0.05)
        agent = BrokerAddress.parse(broker.url, username=room.username, password=room.password)
        async with running(central):
            async with make_client(agent, "test-room-9") as client:
                await client.publish(TOPICS.telemetry, telemetry(1), qos=1)
                await client.publish(TOPICS.telemetry, with_cpu("2" + " " * (LARGEST + 1)), qos=1)
            async with make_client(agent, "test-room-9b") as client:
                await client.publish(TOPICS.telemetry, telemetry(3), qos=1)
            await until(lambda: len(telemetry_rows(central)) == 2, "the two valid telemetry rows")
            assert central.collector.stats.messages - central.collector.stats.ignored == 2
            assert telemetry_rows(central) == [1.0, 3.0]
