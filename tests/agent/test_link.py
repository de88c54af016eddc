"""The link against a real Mosquitto: commands in flight outlive a reconnect, and only so many run at once."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# The agent-against-a-broker helpers live with the service's tests (pytest puts this folder on the path).
from test_service import ROOT, command, listen, running, write_config

from agent.commands.table import CommandDef
from agent.config.site import load_config
from agent.link import MAX_COMMANDS
from central.mosquitto import LocalBroker


class SlowCommand:
    """A command that answers when the test says so, like a device finishing a recording."""

    def __init__(self) -> None:
        self.started = 0
        self.running = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, args: Mapping[str, Any]) -> dict[str, Any]:
        self.started += 1
        self.running.set()
        await self.release.wait()
        return {"done": True}


async def test_a_command_running_through_a_broker_restart_is_answered_once_after_the_reconnect(
    tmp_path: Path, broker: LocalBroker
) -> None:
    config = load_config(write_config(tmp_path, broker))
    slow = SlowCommand()
    centre = {"identifier": "centre", "clean_session": False}  # keeps its replies while the broker is away
    async with running(config) as agent:
        agent.table.add(CommandDef("test.slow", (), slow))
        async with listen(broker, f"{ROOT}/reply", **centre) as (_, client):
            await client.publish(f"{ROOT}/cmd/test.slow", command("test.slow", {}, ident="slow-1"), qos=1)
            async with asyncio.timeout(15):
                await slow.running.wait()
        broker.restart()
        async with asyncio.timeout(30):
            while agent.link.connects < 2:  # the link noticed, backed off and is back
                await asyncio.sleep(0.05)
        slow.release.set()
        async with listen(broker, f"{ROOT}/reply", **centre) as (inbox, client):
            replies = lambda ident: [p for p in inbox.on(f"{ROOT}/reply") if p["id"] == ident]  # noqa: E731
            answer = await inbox.until(lambda: replies("slow-1"), timeout=15)
            # A command sent afterwards is answered afterwards (the outbox keeps order): no second answer is due.
            await client.publish(f"{ROOT}/cmd/agent.ping", command("agent.ping", {}, ident="after"), qos=1)
            await inbox.until(lambda: replies("after"), timeout=15)
    assert answer[0]["status"] == "succeeded" and answer[0]["result"] == {"done": True}
    assert len(replies("slow-1")) == 1


async def test_more_commands_than_the_link_runs_at_once_are_rejected_as_busy_and_the_rest_answered(
    tmp_path: Path, broker: LocalBroker
) -> None:
    config = load_config(write_config(tmp_path, broker))
    slow = SlowCommand()
    async with running(config) as agent, listen(broker, f"{ROOT}/reply") as (inbox, client):
        agent.table.add(CommandDef("test.slow", (), slow))
        for n in range(MAX_COMMANDS + 1):
            await client.publish(f"{ROOT}/cmd/test.slow", command("test.slow", {}, ident=f"slow-{n}"), qos=1)
        busy = await inbox.until(lambda: inbox.on(f"{ROOT}/reply"), timeout=15)
        assert [(p["id"], p["status"]) for p in busy] == [(f"slow-{MAX_COMMANDS}", "rejected")]
        assert "busy" in busy[0]["error"] and slow.started == MAX_COMMANDS
        slow.release.set()
        await inbox.until(lambda: len(inbox.on(f"{ROOT}/reply")) == MAX_COMMANDS + 1, timeout=15)
        # Not remembered as its answer: sent again once there is room, the same id runs.
        await client.publish(f"{ROOT}/cmd/test.slow", command("test.slow", {}, ident=f"slow-{MAX_COMMANDS}"), qos=1)
        again = await inbox.until(
            lambda: [p for p in inbox.on(f"{ROOT}/reply") if p["status"] == "succeeded"][MAX_COMMANDS:]
        )
    assert again[0]["id"] == f"slow-{MAX_COMMANDS}" and slow.started == MAX_COMMANDS + 1
