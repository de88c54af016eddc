"""Several collectors of one group on one PostgreSQL store (docs/scale.md, issue 15).

Real parts: the test's own Mosquitto (shared subscriptions), a scratch PostgreSQL database, the real
`Central` twice in this process (two MQTT sessions, two store connections each), agents publishing
the contract's messages.  Ends are waited for on what the store holds, never on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

from fleet_stores import rows

from central.app import Central
from central.mosquitto import LocalBroker
from contract import (
    CommandReply,
    CommandStatus,
    DeviceInfo,
    DeviceState,
    Event,
    Info,
    Status,
    Topic,
    Topics,
    decode,
    encode,
    now_iso,
)
from contract.mqtt import BrokerAddress, Client, make_client

SITE, AGENTS, EVENTS = "school-g", 6, 120
LIMIT = 30.0
RETAINED_PER_AGENT = 3  # status, info, state/panel


async def until(check: Callable[[], Any], what: str) -> Any:
    try:
        async with asyncio.timeout(LIMIT):
            while not (value := check()):
                await asyncio.sleep(0.05)
            return value
    except TimeoutError:
        raise AssertionError(f"gave up waiting for {what}") from None


def collector(broker: LocalBroker, store: str, name: str, *, housekeeping: bool = True, quiet: float = 30.0) -> Central:
    address = BrokerAddress.parse(broker.url)
    return Central(
        address, store, client_id=name, group="g", housekeeping=housekeeping, replay_quiet_s=quiet, silence_check_s=3600
    )


@contextlib.asynccontextmanager
async def running(central: Central) -> AsyncIterator[Central]:
    task = asyncio.create_task(central.run(), name=f"test.{central.collector.replay}")
    try:
        async with asyncio.timeout(LIMIT):
            await central.collector.connected.wait()
        yield central
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        central.close()


@contextlib.asynccontextmanager
async def agent(broker: LocalBroker, name: str = "fleet") -> AsyncIterator[Client]:
    async with make_client(BrokerAddress.parse(broker.url), f"test-{name}-{os.getpid()}") as client:
        yield client


async def announce(client: Client, session: int) -> None:
    """Every agent's retained truth: status, info, one device state."""
    for i in range(AGENTS):
        topics = Topics(SITE, f"room-{i}")
        status = Status("online", session, now_iso(), "1.0")
        info = Info(f"R{i}", f"pc-{i}", "1.0", (DeviceInfo("panel", "panel", "nec-p"),), 10.0)
        state = DeviceState("panel", True, now_iso(), {"power": "on", "session": session})
        await client.publish(topics.status, encode(status.to_dict()), qos=1, retain=True)
        await client.publish(topics.info, encode(info.to_dict()), qos=1, retain=True)
        await client.publish(topics.state("panel"), encode(state.to_dict()), qos=1, retain=True)


def count(store: str, sql: str) -> int:
    return int(rows(store, sql)[0][0])


def history(store: str) -> list[tuple[Any, ...]]:
    return rows(store, "SELECT agent_id, session, count(*) FROM status_history GROUP BY agent_id, session")


async def test_a_group_splits_the_fleet_and_each_retained_message_reaches_one_writer(
    broker: LocalBroker, pg_url: str
) -> None:
    async with agent(broker) as fleet:
        await announce(fleet, session=1)  # before any collector: only a replay can bring it in
        async with running(collector(broker, pg_url, "c1")) as one, running(
            collector(broker, pg_url, "c2", housekeeping=False)
        ) as two:
            for n in range(EVENTS):
                event = Event("load.test", "info", "log", now_iso(), f"event {n}", id=f"ev-{n}")
                await fleet.publish(Topics(SITE, f"room-{n % AGENTS}").event, encode(event.to_dict()), qos=1)
            await until(lambda: count(pg_url, "SELECT count(*) FROM events") == EVENTS, "every event stored")
            sql = "SELECT count(*) FROM devices WHERE online = 1"
            await until(lambda: count(pg_url, sql) == AGENTS, "every agent's replayed state")
            # The live stream went to both; the retained truth to one of them, once.
            assert one.collector.stats.messages > EVENTS // 4 and two.collector.stats.messages > EVENTS // 4
            retained = [one.collector.stats.retained_seen, two.collector.stats.retained_seen]
            assert sorted(retained) == [0, AGENTS * RETAINED_PER_AGENT], retained
    assert count(pg_url, "SELECT count(DISTINCT event_id) FROM events") == EVENTS
    assert {(a, s, n) for a, s, n in history(pg_url)} == {(f"room-{i}", 1, 1) for i in range(AGENTS)}


async def test_after_a_restart_of_either_collector_nothing_is_missed_or_written_twice(
    broker: LocalBroker, pg_url: str
) -> None:
    quiet = 0.5
    async with agent(broker) as fleet, running(collector(broker, pg_url, "c2", housekeeping=False, quiet=quiet)) as two:
        async with running(collector(broker, pg_url, "c1", quiet=quiet)):
            await announce(fleet, session=1)
            await until(lambda: len(history(pg_url)) == AGENTS, "session 1 of every agent")
        await announce(fleet, session=2)  # c1 is stopped: its share waits in its session, or goes to c2
        async with running(collector(broker, pg_url, "c1", quiet=quiet)):
            await until(lambda: len(history(pg_url)) == 2 * AGENTS, "session 2 of every agent")
        replayed_by_two = two.collector.stats.retained_seen
        await asyncio.sleep(2 * quiet)  # (setup, not a check) the group's replay lease lapses
        async with running(collector(broker, pg_url, "c1", quiet=quiet)) as again:
            await until(lambda: again.collector.replay and again.collector.replay.replays, "c1's replay on return")
            # This time c1 replayed the retained truth on its return: it alone, every message once.
            assert again.collector.stats.retained_seen == AGENTS * RETAINED_PER_AGENT
            assert two.collector.stats.retained_seen == replayed_by_two
    assert sorted(history(pg_url)) == sorted((f"room-{i}", s, 1) for i in range(AGENTS) for s in (1, 2))
    assert count(pg_url, "SELECT count(*) FROM agents WHERE state = 'online' AND session = 2") == AGENTS


async def answer_commands(client: Client) -> None:
    """The agents' side: every command answered, on the reply topic of the agent it went to."""
    await client.subscribe(f"classroom/v1/{SITE}/+/cmd/#", qos=1)
    async for message in client.messages:
        where = Topic.parse(message.topic.value)
        command = decode(message.payload if isinstance(message.payload, bytes) else b"")
        reply = CommandReply(str(command["id"]), CommandStatus.SUCCEEDED, {"pong": True}, name=where.rest)
        await client.publish(Topics(SITE, where.agent).reply, encode(reply.to_dict()), qos=1)


async def test_a_command_sent_from_either_collector_gets_its_reply(broker: LocalBroker, pg_url: str) -> None:
    async with agent(broker) as fleet, agent(broker, "answers") as answers:
        await announce(fleet, session=1)
        async with running(collector(broker, pg_url, "c1")) as one, running(
            collector(broker, pg_url, "c2", housekeeping=False)
        ) as two:
            await until(lambda: len(history(pg_url)) == AGENTS, "every agent known")
            task = asyncio.create_task(answer_commands(answers), name="test.answers")
            try:
                # The shared subscription hands each reply to one collector or the other; the sender
                # follows the reply topic while it waits, so each command gets its answer.
                for n in range(8):
                    sender = (one, two)[n % 2].sender
                    reply = await sender.send(f"room-{n % AGENTS}", "agent.ping", {}, "tech", timeout=10.0)
                    assert reply["status"] == "succeeded", reply
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await until(lambda: count(pg_url, "SELECT count(*) FROM commands WHERE status = 'succeeded'") == 8, "audit")
