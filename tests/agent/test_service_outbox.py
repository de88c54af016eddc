"""The outbox against a real Mosquitto: events outlive broker and agent restarts; a full outbox drops the oldest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from test_service import ROOT, listen, running, write_config

from agent.config.site import SiteConfig, load_config
from agent.service import Agent
from central.mosquitto import LocalBroker


async def test_events_survive_a_broker_restart_in_order_and_once(tmp_path: Path, broker: LocalBroker) -> None:
    config = load_config(write_config(tmp_path, broker))
    # A persistent subscriber: the broker keeps its QoS 1 messages while it is away.
    async with running(config) as agent:
        async with listen(broker, f"{ROOT}/event", identifier="audit-reader", clean_session=False):
            pass
        for n in range(150):
            agent.alarms.log("test", f"event {n}", n=n)
            if n == 50:
                broker.restart()
            await asyncio.sleep(0.002)
        async with listen(broker, f"{ROOT}/event", identifier="audit-reader", clean_session=False) as (inbox, _):
            await inbox.until(
                lambda: len([p for p in inbox.on(f"{ROOT}/event") if p["type"] == "test"]) >= 150, timeout=30
            )
            await asyncio.sleep(0.5)  # anything duplicated would arrive by now
            numbers = [p["n"] for p in inbox.on(f"{ROOT}/event") if p["type"] == "test"]
        # The link reconnected by itself (backoff), not by crashing into a supervisor restart.
        assert agent.link.connects >= 2
        assert "service_restarted" not in {a.type for a in agent.alarms.open.values()}
    assert numbers == list(range(150))


async def test_outbox_keeps_events_across_an_agent_restart_while_the_broker_is_down(
    tmp_path: Path, broker: LocalBroker
) -> None:
    config = load_config(write_config(tmp_path, broker))
    async with running(config) as agent:
        async with listen(broker, f"{ROOT}/event", identifier="reader-2", clean_session=False):
            pass
        broker.stop()
        for n in range(20):
            agent.alarms.log("offline-test", f"while the broker is down {n}", n=n)
        assert agent.store.outbox_size() >= 20
    broker.start()
    async with (
        running(config),
        listen(broker, f"{ROOT}/event", identifier="reader-2", clean_session=False) as (inbox, _),
    ):
        await inbox.until(lambda: len([p for p in inbox.on(f"{ROOT}/event") if p["type"] == "offline-test"]) >= 20)
        assert [p["n"] for p in inbox.on(f"{ROOT}/event") if p["type"] == "offline-test"] == list(range(20))


@pytest.fixture(autouse=True)
def _quiet_paho(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING")


async def test_a_full_outbox_drops_the_oldest_and_says_so(tmp_path: Path, broker: LocalBroker) -> None:
    path = write_config(tmp_path, broker)
    path.write_text(path.read_text() + "[outbox]\nmax_rows = 5\n")
    config = load_config(path)
    async with running(config) as agent, listen(broker, f"{ROOT}/event", identifier="reader-3", clean_session=False):
        pass
    broker.stop()
    async with running_offline(config) as agent:
        for n in range(12):
            agent.alarms.log("flood", f"event {n}", n=n)
        assert agent.trim_outbox() == 7
        assert ("outbox_dropped", "") in agent.alarms.open
    broker.start()
    async with (
        running(config),
        listen(broker, f"{ROOT}/event", identifier="reader-3", clean_session=False) as (
            inbox,
            _,
        ),
    ):
        await inbox.until(lambda: any(p["type"] == "outbox_dropped" for p in inbox.on(f"{ROOT}/event")))
        kept = [p["n"] for p in inbox.on(f"{ROOT}/event") if p["type"] == "flood"]
        # The newest five messages survive, in order: four events and the alarm that says so.
        assert kept == [8, 9, 10, 11]


@asynccontextmanager
async def running_offline(config: SiteConfig) -> AsyncIterator[Agent]:
    """An agent whose broker is down (it keeps retrying in the background)."""
    agent = Agent(config)
    task = asyncio.create_task(agent.run(), name="agent")
    try:
        await asyncio.sleep(0.2)
        yield agent
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
