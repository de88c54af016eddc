"""What an agent sends is held to the contract's bounds before it leaves: never a message the centre must drop.

A reply over the limit becomes a `failed` saying why (the technician's command does not wait for its
timeout); telemetry, state, info and events over the limit are dropped at the agent, counted and
logged, and the link carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from agent.link import AgentLink
from agent.store import AgentStore
from central.mosquitto import LocalBroker
from contract import (
    Command,
    CommandReply,
    CommandStatus,
    DeviceState,
    Event,
    Info,
    Telemetry,
    Topics,
    decode,
    encode,
    now_iso,
)
from contract.limits import COMMAND, PAYLOAD
from contract.mqtt import BrokerAddress, make_client

SITE, AGENT = "school-1", "room-1"
TOPICS = Topics(SITE, AGENT)


async def test_nothing_over_the_contracts_bounds_leaves_the_agent(tmp_path: Path, broker: LocalBroker) -> None:
    async def run_command(command: Command) -> CommandReply:
        size = int(command.args["size"])
        return CommandReply(command.id, CommandStatus.SUCCEEDED, {"blob": "x" * size}, name=command.name)

    huge_state = DeviceState("panel", True, now_iso(), {"name": "y" * (PAYLOAD.string + 1)}, "")
    address = BrokerAddress.parse(broker.url)
    link = AgentLink(
        address,
        TOPICS,
        AgentStore(tmp_path / "agent.db"),
        version="1.0",
        info=lambda: Info("教室" * (PAYLOAD.size // 2), "pc-1", "1.0", ()),  # a room name no centre would take
        states=lambda: [huge_state],
        run_command=run_command,
    )
    seen: dict[str, list[bytes]] = {}
    async with make_client(address, "test-centre") as centre:
        await centre.subscribe(f"classroom/v1/{SITE}/{AGENT}/#", qos=1)

        async def collect() -> None:
            async for message in centre.messages:
                seen.setdefault(str(message.topic), []).append(bytes(message.payload))

        reader = asyncio.create_task(collect(), name="test.collect")
        task = asyncio.create_task(link.run(), name="test.link")
        try:
            async with asyncio.timeout(10):
                await link.wait_connected()
            big = Command("c-big", "agent.dump", {"size": COMMAND.string + 10}, "2099-01-01T00:00:00Z")
            small = Command("c-small", "agent.dump", {"size": 10}, "2099-01-01T00:00:00Z")
            for command in (big, small):
                await centre.publish(TOPICS.cmd(command.name), encode(command.to_dict()), qos=1)
            link.send_event(Event("note", "info", "raise", now_iso(), message="z" * (PAYLOAD.string + 1)))
            link.send_event(Event("note", "info", "raise", now_iso(), message="fits"))
            await link.publish_telemetry(Telemetry(now_iso(), 1.0, 2.0, 3, 4.0, extra={"pad": "t" * PAYLOAD.size}))
            async with asyncio.timeout(10):
                while len(seen.get(TOPICS.reply, [])) < 2 or not seen.get(TOPICS.event):
                    assert not task.done(), task
                    await asyncio.sleep(0.05)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            reader.cancel()
    replies = {r["id"]: r for r in map(decode, seen[TOPICS.reply])}
    assert replies["c-big"]["status"] == "failed" and "over the limit" in replies["c-big"]["error"], replies
    assert replies["c-small"]["status"] == "succeeded"
    assert [decode(e)["message"] for e in seen[TOPICS.event]] == ["fits"]
    assert TOPICS.telemetry not in seen and TOPICS.info not in seen and TOPICS.state("panel") not in seen
    assert decode(seen[TOPICS.status][0])["state"] == "online"  # the link itself came up and stayed
    assert link.connects == 1 and link.drops.count == 4  # info, state, event, telemetry
