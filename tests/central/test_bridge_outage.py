"""Bridged school brokers through outages: the WAN dropping and returning, the school broker crashing; no event lost."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path

from bridge_fixture import WAIT_S, Bridged, bridged, running_agent, running_centre, until

from agent.service import Agent
from contract import Event, now_iso

__all__ = ["bridged"]  # the fixture, used by name


def fleet_events(db_path: Path) -> dict[str, int]:
    """How many rows fleet.db holds of each test event (by its text)."""
    with contextlib.closing(sqlite3.connect(db_path, timeout=10)) as db:
        rows = db.execute("SELECT message, count(*) FROM events WHERE type = 'bridge.test' GROUP BY message")
        return dict(rows.fetchall())


def send_events(room: Agent, numbers: range) -> None:
    for i in numbers:
        room.link.send_event(Event("bridge.test", "info", "log", now_iso(), message=f"event {i:04d}"))


async def delivered_to_school(room: Agent, what: str) -> None:
    """The agent's outbox is empty: the school broker acknowledged every event."""
    await until(lambda: not room.store.outbox_peek(1), what)


def events_among(counts: dict[str, int], numbers: range) -> list[str]:
    return sorted(set(counts) & {f"event {i:04d}" for i in numbers})


async def test_the_bridge_dropping_and_returning_loses_no_event(bridged: Bridged, tmp_path: Path) -> None:
    db_path = tmp_path / "fleet.db"
    async with running_centre(bridged, db_path) as central, running_agent(bridged, tmp_path) as room:
        await until(lambda: (a := central.db.agent("room-101")) and a["state"] == "online", "room-101 online")
        send_events(room, range(0, 100))

        # The school's line to the district breaks: the school broker takes every event meanwhile,
        # and the district broker keeps a technician's command for the bridge's session.
        await bridged.wan.cut()
        send_events(room, range(100, 200))
        ping = asyncio.create_task(central.sender.send("room-101", "agent.ping", {}, "tech-li", timeout=WAIT_S))
        await delivered_to_school(room, "events 100-199 at the school broker")
        assert events_among(fleet_events(db_path), range(100, 200)) == []  # none could cross
        assert not ping.done()
        await bridged.wan.restore()
        assert (await ping)["status"] == "succeeded"

        # The district broker goes down; while it is down, the school broker restarts (cleanly) too.
        await asyncio.to_thread(bridged.district.stop)
        send_events(room, range(200, 300))
        await delivered_to_school(room, "events 200-299 at the school broker")
        await asyncio.to_thread(bridged.school.stop)
        send_events(room, range(300, 350))  # kept in the agent's outbox meanwhile
        await asyncio.to_thread(bridged.school.start)
        await delivered_to_school(room, "events 300-349 at the restarted school broker")
        assert events_among(fleet_events(db_path), range(200, 350)) == []
        await asyncio.to_thread(bridged.district.start)
        send_events(room, range(350, 400))

        expected = {f"event {i:04d}": 1 for i in range(400)}
        with contextlib.suppress(AssertionError):
            await until(lambda: len(fleet_events(db_path)) >= len(expected), "all 400 events in fleet.db", 90)
        counts = fleet_events(db_path)
        assert sorted(set(expected) - set(counts)) == [], "lost"
        assert counts == expected  # each exactly once
        # The retained truth crossed too: the room's newest session (it reconnected to the restarted school broker).
        await until(
            lambda: (a := central.db.agent("room-101")) and (a["state"], a["session"]) == ("online", room.link.session),
            "room-101's newest session online at the district",
        )
        assert room.link.connects == 2  # the school broker's one restart; the district's outages never reached it


async def test_a_crash_of_the_school_broker_loses_nothing_it_had_saved(bridged: Bridged, tmp_path: Path) -> None:
    """kill -9 (a power cut) of the school broker while the district is unreachable, after its autosave."""
    db_path = tmp_path / "fleet.db"
    async with running_centre(bridged, db_path) as central, running_agent(bridged, tmp_path) as room:
        await until(lambda: (a := central.db.agent("room-101")) and a["state"] == "online", "room-101 online")
        await asyncio.to_thread(bridged.district.stop)
        send_events(room, range(200))
        await delivered_to_school(room, "200 events at the school broker")
        accepted, saved = time.time(), bridged.school.folder / "mosquitto.db"
        # broker-config's autosave_interval: the queue reaches the disk within seconds, not at a clean stop only
        await until(lambda: saved.exists() and saved.stat().st_mtime > accepted, "the school broker's autosave")
        await asyncio.to_thread(bridged.school.kill)
        await asyncio.to_thread(bridged.school.start)
        await asyncio.to_thread(bridged.district.start)
        with contextlib.suppress(AssertionError):
            await until(lambda: len(fleet_events(db_path)) >= 200, "200 events in fleet.db", 90)
        assert fleet_events(db_path) == {f"event {i:04d}": 1 for i in range(200)}
