"""Who may say what: replies touch only their own agent's commands; retained events and replies are ignored."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from fleet_stores import fleet_at
from test_collector import (
    SITE,
    agent_client,
    event,
    make_central,
    replying_agent,
    running,
    status,
    telemetry,
    until,
)

from central.app import Central
from central.mosquitto import LocalBroker
from contract import Topics, encode
from contract.mqtt import BrokerAddress


def succeed(name: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"status": "succeeded", "result": {"ok": True}}


def telemetry_count(central: Any, agent: str) -> int:
    return len(central.db.telemetry_history(agent))


async def test_a_reply_from_another_agent_does_not_rewrite_the_audit_row(broker: LocalBroker, tmp_path: Path) -> None:
    async with (
        running(make_central(broker, tmp_path)) as central,
        replying_agent(broker, "a8", succeed),
        agent_client(broker, "forger") as forger,
    ):
        await forger.publish(Topics(SITE, "a9").status, status("online", 1), qos=1, retain=True)
        await until(lambda: central.db.agent("a8") and central.db.agent("a9"), "a8 and a9 known")
        reply = await central.sender.send("a8", "panel.power", {"on": True}, "tech1", timeout=5)
        await until(lambda: [c["status"] for c in central.db.commands()] == ["succeeded"], "the genuine reply")
        forged = encode({"id": reply["id"], "status": "failed", "error": "forged by a9"})
        await forger.publish(Topics(SITE, "a9").reply, forged, qos=1)
        await forger.publish(Topics(SITE, "a9").telemetry, telemetry(), qos=1)  # written after the forged reply
        await until(lambda: telemetry_count(central, "a9"), "a9's telemetry, after its forged reply")
        [row] = central.db.commands()
        counted = {a: central.db.agent(a)["dropped"] for a in ("a8", "a9")}
    assert (row["agent_id"], row["status"], row["error"], row["result"]) == ("a8", "succeeded", "", {"ok": True})
    assert counted == {"a8": 0, "a9": 1}  # the forgery is counted against the agent that sent it


async def test_retained_events_and_replies_are_ignored_after_a_centre_restart(
    broker: LocalBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    topics = Topics(SITE, "a7")
    async with agent_client(broker, "a7") as agent, replying_agent(broker, "a6", succeed):
        async with running(make_central(broker, tmp_path)) as central:
            await agent.publish(topics.status, status("online", 1), qos=1, retain=True)
            await agent.publish(topics.event, event("projector.lamp", "raise"), qos=1, retain=True)
            await agent.publish(topics.event, event("projector.lamp", "clear"), qos=1)
            await until(lambda: central.db.alarms(open_only=False) and not central.db.alarms(), "raised, cleared")
            await until(lambda: central.db.agent("a6"), "a6 known")
            reply = await central.sender.send("a6", "agent.ping", {}, "tech1", timeout=5)
        # While the centre is away, a6 leaves a retained reply rewriting its own command's outcome.
        retained_reply = encode({"id": reply["id"], "status": "failed", "error": "replayed"})
        await agent.publish(Topics(SITE, "a6").reply, retained_reply, qos=1, retain=True)
        with caplog.at_level(logging.INFO, logger="central.collector"):
            # A centre with a session of its own (a new collector; the first one's session holds the live
            # copy of a6's second reply, a6 answering its own command again) gets only the retained replay.
            fresh = Central(BrokerAddress.parse(broker.url), fleet_at(tmp_path), client_id="another-collector")
            async with running(fresh) as central:
                await agent.publish(topics.telemetry, telemetry(), qos=1)  # after the retained replay
                await until(lambda: telemetry_count(central, "a7"), "a7's telemetry")
                open_alarms, all_alarms = central.db.alarms(), central.db.alarms(open_only=False)
                [command] = central.db.commands()
                retained = central.collector.stats.retained
                await until(lambda: central.db.agent("a6")["dropped"], "a6's retained reply counted")
                counted = {a: central.db.agent(a)["dropped"] for a in ("a6", "a7")}
    assert open_alarms == [] and len(all_alarms) == 1
    assert (command["status"], command["error"]) == ("succeeded", "")
    assert retained == 2 and counted == {"a6": 1, "a7": 1}  # each counted against the agent whose topic it was
    assert sum("events and replies are never retained" in r.getMessage() for r in caplog.records) == 2
