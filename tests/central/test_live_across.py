"""A dashboard is live whichever process committed: PostgreSQL NOTIFY / LISTEN, SQLite's data_version.

The committing side is another FleetDB (its own connections) or a real second process; the dashboard
is the real web app (and, last, the whole of classroom-central in real headless Chromium).  The
tests run on the engine of tests/central/fleet_stores.py (SQLite, or PostgreSQL under
CLASSROOM_TEST_DB); those about NOTIFY alone take a scratch PostgreSQL database of their own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from fleet_stores import fleet_at
from rooms import CHROMIUM, CHROMIUM_ARGS, REPO, skip_without_chromium

from central.app import Central
from central.fleet_rows import Seen
from central.fleetdb import FleetDB
from central.live import Changes
from central.live_feed import APPLICATION_NAME, StoreFeed
from central.live_store import CHANNEL, MAX_PAYLOAD, decode, encode
from central.mosquitto import LocalBroker
from central.users import Users
from central.web import create_app
from central.writer import BatchWriter
from contract import DeviceInfo, DeviceState, Info, Status, now_iso
from contract.mqtt import BrokerAddress
from drivers.backoff import Backoff

SECRET = b"0123456789abcdef0123456789abcdef"
PASSWORD = "pass-word-1"
DEVICES = (DeviceInfo("panel", "display", "lg-rs232"),)

# Another process: one commit to the fleet store, through its own FleetDB.
COMMIT = """
import sys
from central.fleet_rows import Seen
from central.fleetdb import FleetDB
from contract import DeviceState, now_iso
db = FleetDB(sys.argv[1])
db.write_batch([Seen("east", sys.argv[2], DeviceState("panel", True, now_iso(), {"power": sys.argv[3]}), now_iso())])
db.close()
"""


def _status(agent: str, state: str = "online", session: int = 1) -> Seen:
    return Seen("east", agent, Status(state, session, now_iso(), "1.0"), now_iso())


def _room(db: FleetDB, agent: str, room: str) -> None:
    now = now_iso()
    db.write_batch(
        [
            _status(agent),
            Seen("east", agent, Info(room, f"pc-{agent}", "1.0", DEVICES), now),
            Seen("east", agent, DeviceState("panel", True, now, {"power": "on"}), now),
        ]
    )


async def _commit_elsewhere(location: Any, agent: str, power: str) -> None:
    """A DeviceState committed by a separate Python process."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", COMMIT, str(location), agent, power, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    assert await proc.wait() == 0


async def _next_event(response: Any) -> dict[str, Any]:
    """The next change event of an SSE stream (keepalives skipped)."""
    while True:
        block = await response.content.readuntil(b"\n\n")
        if block.startswith(b"data: "):
            event: dict[str, Any] = json.loads(block.removeprefix(b"data: "))
            return event


async def _until(queue: asyncio.Queue[dict[str, Any]], wanted: dict[str, Any]) -> list[dict[str, Any]]:
    """Every event from `queue` up to and including `wanted`."""
    seen = []
    async with asyncio.timeout(30):
        while not seen or seen[-1] != wanted:
            seen.append(await queue.get())
    return seen


# --- the payloads: compact, chunked, hostile-proof -------------------------------------------------


def test_payloads_fit_and_carry_every_change() -> None:
    changes = [(kind, f"{kind}-classroom-{n:05d}") for n in range(3000) for kind in ("agent", "device")]
    changes += [("alarm", "高一(2)班-" + "字" * 300), ("command", "x" * 9000)]  # the last fits in no payload
    payloads = encode("me", changes)
    assert len(payloads) > 1
    assert all(len(p.encode()) <= MAX_PAYLOAD for p in payloads)
    events = [e for p in payloads for e in decode(p, "someone-else")]
    assert sorted((e["kind"], e["agent_id"]) for e in events if "agent_id" in e) == sorted(changes[:-1])
    assert {"kind": "refresh"} in events  # the id too long to carry: pages fetch afresh instead
    assert [e for p in payloads for e in decode(p, "me")] == []  # our own: heard in-process already


@pytest.mark.parametrize(
    "payload",
    ["", "not json", "[]", '{"o": 1}', '{"o": "x"}', '{"o": "x", "k": []}', '{"o": "x", "k": {"agent": "a1"}}',
     '{"o": "x", "k": {"drop tables": ["a1"]}}', '{"o": "x", "k": {"agent": [1, null, ""]}}', "x" * 20000,
     '{"o": "x", "k": {"agent": [' + "[" * 3900 + "]" * 3900 + "]}}"],
)  # fmt: skip
def test_hostile_notifications_cost_nothing(payload: str) -> None:
    assert decode(payload, "me") == []


# --- SQLite: another connection's commit moves data_version; our own does not -------------------------


def test_sqlite_notices_other_connections_only(tmp_path: Path) -> None:
    ours, theirs = FleetDB(tmp_path / "fleet.db"), FleetDB(tmp_path / "fleet.db")
    try:
        before = ours.commits.data_version()
        ours.write_batch([_status("a1")])
        assert ours.commits.data_version() == before
        theirs.write_batch([_status("a2")])
        assert ours.commits.data_version() != before
    finally:
        ours.close()
        theirs.close()


# --- the dashboard's event stream hears another process ------------------------------------------------


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[FleetDB]:
    db = FleetDB(fleet_at(tmp_path))
    _room(db, "r1", "高一(1)班")
    users = Users(db.location)
    users.add("wang", PASSWORD, "viewer")
    users.close()
    yield db
    db.close()


class NoSender:
    """This dashboard sends no commands."""

    async def send(self, *_: Any, **__: Any) -> dict[str, Any]:
        raise AssertionError("no command is sent here")


async def test_a_commit_by_another_process_reaches_the_event_stream(fleet: FleetDB) -> None:
    changes = Changes()  # the real web app, fed by its own writer in-process and by the store's other writers
    app = create_app(fleet, changes, NoSender(), secret=SECRET)
    async with asyncio.TaskGroup() as tg, TestClient(TestServer(app)) as client:
        feed, task = await _feeding(fleet, changes, tg, poll_s=0.05)
        form = {"username": "wang", "password": PASSWORD, "next": "/"}
        assert (await client.post("/login", data=form, allow_redirects=False)).status == 303
        response = await client.get("/api/events?agent=r1")  # one room's page
        assert await response.content.readuntil(b"\n\n") == b"retry: 2000\nevent: ready\ndata: {}\n\n"
        await _commit_elsewhere(fleet.location.target, "r1", "off")
        async with asyncio.timeout(30):
            event = await _next_event(response)
        # PostgreSQL says what changed; SQLite only that something did, and the page fetches afresh.
        assert event == ({"kind": "refresh"} if fleet.location.is_sqlite else {"kind": "device", "agent_id": "r1"})
        assert fleet.agent("r1")["devices"][0]["state"] == {"power": "off"}
        assert feed.heard == 1
        response.close()
        task.cancel()


# --- PostgreSQL: own changes once, a killed listener comes back, a flood blocks nobody ------------------


@pytest.fixture
async def pg_fleets(pg_url: str) -> AsyncIterator[tuple[FleetDB, FleetDB]]:
    ours, theirs = FleetDB(pg_url), FleetDB(pg_url)
    try:
        yield ours, theirs
    finally:
        ours.close()
        theirs.close()


async def _feeding(
    db: FleetDB, changes: Changes, tg: asyncio.TaskGroup, **options: Any
) -> tuple[StoreFeed, asyncio.Task[None]]:
    """A StoreFeed running in `tg` (cancel its task to end it), listening already on PostgreSQL."""
    feed = StoreFeed(db, changes, **options)
    task = tg.create_task(feed.run(), name="live[test].listen")
    if not db.location.is_sqlite:
        async with asyncio.timeout(15):
            await feed.listening.wait()
    return feed, task


async def test_own_changes_are_delivered_once_and_acks_travel(pg_fleets: tuple[FleetDB, FleetDB]) -> None:
    ours, theirs = pg_fleets
    changes = Changes()
    events = changes.subscribe()
    writer = BatchWriter(ours, changes)
    async with asyncio.TaskGroup() as tg:
        feed, task = await _feeding(ours, changes, tg)
        await writer.put(_status("mine"))
        writer.write_now()  # committed, NOTIFY sent, published in-process
        with psycopg.connect(ours.location.target, autocommit=True) as stranger:  # anyone may NOTIFY: hostile
            for junk in ("not json", '{"o": "x", "k": {"agent": [' + "[" * 3900 + "]" * 3900 + "]}}"):
                stranger.execute("SELECT pg_notify(%s, %s)", [CHANNEL, junk])
        theirs.write_batch([_status("theirs")])  # committed after ours: heard after ours would be
        seen = await _until(events, {"kind": "agent", "agent_id": "theirs"})
        assert seen == [{"kind": "agent", "agent_id": "mine"}, {"kind": "agent", "agent_id": "theirs"}]
        theirs.write_batch([Seen("east", "mine", _alarm_event(), now_iso())])
        await _until(events, {"kind": "alarm", "agent_id": "mine"})
        alarm_id = ours.alarms(agent_id="mine")[0]["id"]
        assert theirs.ack_alarm(alarm_id, "li")  # a technician on another process's dashboard
        await _until(events, {"kind": "alarm", "agent_id": "mine"})
        assert feed.heard == 3
        task.cancel()


def _alarm_event() -> Any:
    from contract import Event

    return Event("disk_low", "warning", "raise", now_iso(), "磁盘剩余 5 GB")


async def test_listener_survives_its_connection_being_killed(
    pg_fleets: tuple[FleetDB, FleetDB], caplog: pytest.LogCaptureFixture
) -> None:
    ours, theirs = pg_fleets
    changes = Changes()
    events = changes.subscribe()
    async with asyncio.TaskGroup() as tg:
        _, task = await _feeding(ours, changes, tg, backoff=Backoff(base=0.05, cap=0.5))
        with caplog.at_level(logging.INFO, logger="central.live_feed"):
            # An administrator, a failover, a restart of the server: the listener's backend goes.
            sql = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            sql += " WHERE application_name = %s AND datname = current_database()"
            with psycopg.connect(ours.location.target, autocommit=True) as admin:
                assert admin.execute(sql, [APPLICATION_NAME]).fetchone() == (1,)
            await _until(events, {"kind": "refresh"})  # back, and pages fetch what was missed
        lines = [r for r in caplog.records if r.name == "central.live_feed"]
        assert lines[0].levelname == "WARNING" and "change feed" in lines[0].message, lines
        assert "listening to" in lines[-1].message and "again" in lines[-1].message, lines
        theirs.write_batch([_status("after")])
        await _until(events, {"kind": "agent", "agent_id": "after"})
        task.cancel()


async def test_a_flood_blocks_neither_the_writer_nor_later_changes(pg_fleets: tuple[FleetDB, FleetDB]) -> None:
    ours, theirs = pg_fleets
    changes = Changes()
    stuck = changes.subscribe()  # a page that reads nothing: its oldest events go
    batches, agents = 4, 2500
    # A listener that never reads (a frozen dashboard process) holds nothing up either.
    frozen = psycopg.connect(ours.location.target, autocommit=True)
    frozen.execute(f"LISTEN {CHANNEL}")
    try:
        async with asyncio.TaskGroup() as tg:
            feed, task = await _feeding(ours, changes, tg)
            for b in range(batches):  # every agent changes in each batch: thousands of changes per commit
                rows = [_status(f"room-{n:05d}", "online", session=b + 1) for n in range(agents)]
                async with asyncio.timeout(120):
                    assert len(await asyncio.to_thread(theirs.write_batch, rows)) == agents
            fresh = changes.subscribe()
            theirs.write_batch([_status("last")])
            await _until(fresh, {"kind": "agent", "agent_id": "last"})
            assert feed.heard == batches * agents + 1  # every change of every chunk arrived
            assert stuck.qsize() == stuck.maxsize
            task.cancel()
    finally:
        frozen.close()


# --- the whole thing: a room's state changes live in Chromium, committed by another process -----------


async def test_room_page_in_chromium_follows_another_process(broker: LocalBroker, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect

    skip_without_chromium()
    location = fleet_at(tmp_path)
    seed = FleetDB(location)
    _room(seed, "r1", "高一(1)班")
    seed.close()
    users = Users(location)
    users.add("tech", PASSWORD, "technician")
    users.close()
    central = Central(BrokerAddress.parse(broker.url), location)
    try:
        async with asyncio.TaskGroup() as tg:
            service = tg.create_task(central.run(("127.0.0.1", 0)), name="central[test].run")
            async with asyncio.timeout(15):
                await central.http_ready.wait()
            async with async_playwright() as pw, asyncio.timeout(90):
                browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                try:
                    page = await browser.new_page()
                    errors: list[str] = []
                    page.on("pageerror", lambda error: errors.append(str(error)))
                    await page.goto(central.http_url + "room/r1")
                    await page.fill('input[name="username"]', "tech")
                    await page.fill('input[name="password"]', PASSWORD)
                    await page.click('button[type="submit"]')
                    await expect(page).to_have_url(re.compile(r"/room/r1$"))
                    state = page.locator('[data-device="panel"] .device-state')
                    await expect(state).to_contain_text("电源 开")
                    await expect(page.locator("#live.on")).to_have_count(1)
                    if not central.db.location.is_sqlite:
                        await central.feed.listening.wait()
                    await page.evaluate("window.notReloaded = true")
                    await _commit_elsewhere(location, "r1", "off")
                    await expect(state).to_contain_text("电源 关")
                    assert await page.evaluate("window.notReloaded") is True
                    assert errors == []
                finally:
                    await browser.close()
            service.cancel()
    finally:
        central.close()
