"""Hostile payloads on an agent's rtc inbox and cmd topics: dropped and counted, the link never restarts."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

from agent.link import AgentLink
from agent.store import AgentStore
from central.mosquitto import LocalBroker
from contract import Command, CommandReply, CommandStatus, Info, Topics, encode, now_iso
from contract.mqtt import BrokerAddress, make_client
from contract.rtc import RtcMessage

SITE, AGENT, PEER = "school-1", "room-1", "room-2"
OURS, THEIRS = Topics(SITE, AGENT), Topics(SITE, PEER)
HOSTILE = [
    b"[" * 1000,
    b'{"schema":1,"type":"bye","lesson":"L","ts":"2026-11-22T08:00:00Z","seq":' + b"9" * 400 + b"}",
    b'{"schema":1,"type":"bye","lesson":"L","ts":"2026-11-22T08:00:00Z","seq":%d}' % 2**70,
    b'{"schema":1,"type":"bye","lesson":"L","ts":"2026-11-22T08:00:00Z","seq":NaN}',
    b'{"schema":1,"id":"x","args":{"a":' + b"[" * 1000 + b"]" * 1000 + b'},"expires":"2026-11-22T08:00:00Z"}',
    b'{"schema":1,"type":"bye","lesson":"L","ts":"9999-12-31T23:59:59-23:59"}',
    json.dumps({"schema": 1, "type": "bye", "lesson": "L", "ts": now_iso(), "pad": "x" * 300_000}).encode(),
]


async def test_hostile_signalling_and_commands_never_restart_the_link(tmp_path: Path, broker: LocalBroker) -> None:
    got: list[RtcMessage] = []
    answered: list[str] = []

    async def run_command(command: Command) -> CommandReply:
        answered.append(command.id)
        return CommandReply(command.id, CommandStatus.SUCCEEDED, {"pong": True}, name=command.name)

    address = BrokerAddress.parse(broker.url)
    link = AgentLink(
        address,
        OURS,
        AgentStore(tmp_path / "agent.db"),
        version="1.0",
        info=lambda: Info("room 1", "pc-1", "1.0", ()),
        states=list,
        run_command=run_command,
        on_rtc=lambda site, agent, message: got.append(message),
    )
    task = asyncio.create_task(link.run(), name="test.link")
    try:
        async with asyncio.timeout(10):
            await link.wait_connected()
        async with make_client(address, "test-peer") as peer:
            for payload in HOSTILE:
                await peer.publish(THEIRS.rtc(AGENT), payload, qos=1)
                await peer.publish(OURS.cmd("agent.ping"), payload, qos=1)
            bye = RtcMessage("bye", "L1", now_iso())
            await peer.publish(THEIRS.rtc(AGENT), encode(bye.to_dict()), qos=1)
            ping = Command("c-1", "agent.ping", {}, "2099-01-01T00:00:00Z")
            await peer.publish(OURS.cmd("agent.ping"), encode(ping.to_dict()), qos=1)
            async with asyncio.timeout(10):
                while not (got and answered):
                    assert not task.done(), task
                    await asyncio.sleep(0.02)
        assert got == [bye] and answered == ["c-1"]
        assert not task.done() and link.connects == 1
        assert link.drops.count == 2 * len(HOSTILE)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
