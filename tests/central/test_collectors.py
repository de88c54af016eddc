"""``classroom-central run --collectors N``: real processes, the test's Mosquitto, a scratch PostgreSQL database.

The parent starts its helpers (``<id>-1`` …), keeps them (one killed is started again, and stores
its share), and stops them with it; the store's URL never shows on a helper's command line.  A
collector killed with SIGKILL while messages flow loses nothing and stores nothing twice (QoS 1,
persistent sessions, acknowledgement after commit).  Ends are waited for on what the store and the
broker's log hold, never on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

from group_processes import (
    Fleet,
    alive,
    clean_stops,
    connects,
    helpers,
    kill_group,
    start,
    stop,
    stored,
    subscribed,
    until,
    with_password,
)

from central.mosquitto import LocalBroker
from contract import CENTRAL_STATUS
from contract.mqtt import BrokerAddress, Client, make_client

DB_PASSWORD = "pg-secret-7c1e"


@contextlib.asynccontextmanager
async def client(broker: LocalBroker, name: str) -> AsyncIterator[Client]:
    async with make_client(BrokerAddress.parse(broker.url), f"test-{name}-{os.getpid()}") as c:
        yield c


async def centre_states(c: Client, into: list[dict[str, object]]) -> None:
    """Every status the group's processes publish (retained or live), in order."""
    await c.subscribe(CENTRAL_STATUS, qos=1)
    async for message in c.messages:
        into.append(json.loads(bytes(message.payload) if isinstance(message.payload, bytes) else b"{}"))


async def test_collectors_start_keep_and_stop_their_helpers(broker: LocalBroker, pg_url: str, tmp_path: Path) -> None:
    db = with_password(pg_url, DB_PASSWORD)
    words = ["--broker", broker.url, "--db", db, "--group", "g", "--collectors", "2", "--client-id", "c"]
    words += ["--recordings", str(tmp_path / "recordings")]
    log = tmp_path / "central.log"
    parent = await start(log, *words)
    try:
        await until(lambda: connects(broker, "c") and connects(broker, "c-1"), "both collectors connected")
        await until(lambda: subscribed(log) == 2, "both subscribed")  # (their sessions are new: nothing before is kept)
        [helper] = await until(lambda: helpers(parent.pid), "the helper process")
        command = Path(f"/proc/{helper}/cmdline").read_bytes()
        assert DB_PASSWORD.encode() not in command and b"postgresql" not in command, command  # what `ps` shows
        async with client(broker, "fleet") as c:
            fleet = Fleet(c)
            await fleet.publish(200)
            await until(lambda: len(stored(pg_url)) == fleet.sent, "the first 200 events")

            os.kill(helper, signal.SIGKILL)
            await fleet.publish(200)  # the helper's share waits in its persistent session meanwhile
            await until(lambda: connects(broker, "c-1") == 2, "the helper started again by its parent")
            assert helpers(parent.pid) != [helper]
            await until(lambda: len(stored(pg_url)) == fleet.sent, "all 400 events")
            assert sorted(stored(pg_url)) == sorted(fleet.expected())  # each exactly once

        async with client(broker, "watch") as watcher:
            states: list[dict[str, object]] = []
            task = asyncio.create_task(centre_states(watcher, states), name="test.watch")
            await until(lambda: states, "the centre's retained status")
            [restarted] = helpers(parent.pid)
            assert await stop(parent) == 0
            assert not alive(restarted)
            await until(lambda: len([s for s in states if s.get("state") == "offline"]) == 2, "two offline statuses")
            task.cancel()
        offline = {s["session"] for s in states if s.get("state") == "offline"}
        assert len(offline) == 2, states  # each process said so, for its own session
        assert clean_stops(broker, "c") == 1 and clean_stops(broker, "c-1") == 1  # DISCONNECT, not a dropped line
    finally:
        await kill_group(parent)


async def test_a_collector_killed_while_messages_flow_loses_nothing_and_stores_nothing_twice(
    broker: LocalBroker, pg_url: str, tmp_path: Path
) -> None:
    words = ["--broker", broker.url, "--db", pg_url, "--group", "g", "--collectors", "2", "--client-id", "k"]
    words += ["--recordings", str(tmp_path / "recordings")]
    log = tmp_path / "central.log"
    parent = await start(log, *words)
    try:
        await until(lambda: subscribed(log) == 2, "both collectors subscribed")
        async with client(broker, "fleet") as c:
            fleet = Fleet(c)
            flowing = asyncio.create_task(fleet.flow(0.005), name="test.fleet")
            try:
                [helper] = await until(lambda: connects(broker, "k-1") and helpers(parent.pid), "the helper")
                await until(lambda: len(stored(pg_url)) >= 100, "a stream being stored")
                os.kill(helper, signal.SIGKILL)  # mid-batch: what it took and had not committed is not acknowledged
                await until(lambda: connects(broker, "k-1") == 2, "the helper back")
                mark = fleet.sent
                await until(lambda: len(stored(pg_url)) >= mark, "the stream stored past the kill")

                # The parent killed: its helper notices (its stdin closes), stops cleanly, and a new
                # parent's helper takes the same session without a second process fighting for it.
                [orphan] = helpers(parent.pid)
                parent.kill()
                await parent.wait()
                await until(lambda: not alive(orphan), "the orphaned helper stopped")
                assert clean_stops(broker, "k-1") == 1
                parent = await start(log, *words)
                await until(lambda: connects(broker, "k") == 2 and connects(broker, "k-1") == 3, "a new group")
                mark = fleet.sent
                await until(lambda: len(stored(pg_url)) >= mark, "the stream stored past the parent's kill")
            finally:
                flowing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await flowing
        await until(lambda: len(stored(pg_url)) >= fleet.sent, "every event published")
        assert sorted(stored(pg_url)) == sorted(fleet.expected())  # none lost, none twice
        assert await stop(parent) == 0
    finally:
        await kill_group(parent)


async def test_a_store_in_the_environment_that_is_no_store_is_one_line_without_its_value(tmp_path: Path) -> None:
    env = {"CLASSROOM_CENTRAL_DB": "mysql://central:pw-not-shown@db/fleet"}
    proc = await start(tmp_path / "central.log", "--broker", "mqtt://127.0.0.1:1", env=env)
    async with asyncio.timeout(60):
        assert await proc.wait() == 2
    said = (tmp_path / "central.log").read_text()
    assert "CLASSROOM_CENTRAL_DB: expected a SQLite file or postgresql://" in said and "pw-not-shown" not in said
    assert len(said.strip().splitlines()) == 1, said
