"""Issue 11: `kill -9` of the centre mid-stream, restarted 2 s later, loses nothing and doubles nothing.

Real parts only: the test's own Mosquitto, ``python -m central.cli run`` as a real process killed with
SIGKILL, an agent-like publisher sending QoS 1 events (each with a unique id in its text and, from
agents that have it, in ``id``), replies to commands the centre sent, and status changes, at ~200/s.
The end is not guessed by waiting: a last event (the sentinel) is published after everything
else, and the broker delivers one publisher's messages to the centre in order, so once the
sentinel is in fleet.db everything that will ever arrive has arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fleet_stores import fleet_at, rows

from central.fleet_rows import CommandReplied, CommandSent, Seen
from central.fleetdb import FleetDB
from central.mosquitto import LocalBroker
from contract import (
    CENTRAL_STATUS,
    Command,
    CommandReply,
    CommandStatus,
    Event,
    Status,
    Topics,
    decode,
    encode,
    now_iso,
)
from contract.limits import PAYLOAD
from contract.mqtt import BrokerAddress, Client, make_client

ROOT = Path(__file__).resolve().parents[2]
SITE, AGENT = "school-a", "room-101"
TOPICS = Topics(SITE, AGENT)
EVENTS = 2000
RATE = 200.0  # messages a second
KILL_AT = 600  # the centre is killed once this many events are published ...
DOWN_S = 2.0  # ... and started again this long after
REPLY_EVERY = 10  # one reply to a command the centre sent every 10 events
STATUS_EVERY = 100  # a new agent session every 100 events
LIMIT_S = 60.0


class CentreProcess:
    """``python -m central.cli run`` as a real process, with its log in a file."""

    def __init__(self, broker: LocalBroker, db: Any, log: Path, *extra: str) -> None:
        self.args = [sys.executable, "-m", "central.cli", "run", "--broker", broker.url, "--db", str(db), *extra]
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        """SIGKILL: no clean stop, no last batch written, no offline published (the Will speaks)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def centre(broker: LocalBroker, tmp_path: Path) -> Iterator[CentreProcess]:
    process = CentreProcess(broker, fleet_at(tmp_path), tmp_path / "central.log")
    try:
        yield process
    finally:
        process.stop()


class CentreWatch:
    """The centre's retained status, as the broker tells it: which session is online."""

    def __init__(self) -> None:
        self.online: set[int] = set()
        self.changed = asyncio.Event()

    async def follow(self, client: Client) -> None:
        async for message in client.messages:
            if message.topic.value != CENTRAL_STATUS or not isinstance(message.payload, bytes):
                continue
            status = Status.from_dict(decode(message.payload, PAYLOAD))
            if status.state == "online":
                self.online.add(status.session)
                self.changed.set()

    async def wait_online(self, session: int) -> None:
        async with asyncio.timeout(LIMIT_S):
            while session not in self.online:
                self.changed.clear()
                await self.changed.wait()


@contextlib.asynccontextmanager
async def watching(broker: LocalBroker) -> AsyncIterator[CentreWatch]:
    watch = CentreWatch()
    async with make_client(BrokerAddress.parse(broker.url), f"test-watch-{os.getpid()}") as client:
        await client.subscribe(CENTRAL_STATUS, qos=1)
        task = asyncio.create_task(watch.follow(client), name="test[restart].watch")
        try:
            yield watch
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def command_id(i: int) -> str:
    return f"cmd-{i:05d}"


def seed_commands(db_path: Any, count: int) -> None:
    """Commands the centre sent before the test: the agent's replies to them arrive in the stream."""
    db = FleetDB(db_path)
    try:
        expires, sent = "2099-01-01T00:00:00Z", now_iso()  # sent now: retention prunes old commands at start
        db.write_batch(
            [CommandSent(SITE, AGENT, Command(command_id(i), "agent.ping", {}, expires), sent) for i in range(count)]
        )
    finally:
        db.close()


def stream() -> Iterator[tuple[int, str, bytes, bool]]:
    """(event number, topic, payload, retain): events, with replies and status changes among them."""
    for i in range(EVENTS):
        if i % STATUS_EVERY == 0:
            session = 1 + i // STATUS_EVERY
            status = Status("online", session, f"2026-01-01T00:{session:02d}:00Z", "1.0")
            yield i, TOPICS.status, encode(status.to_dict()), True
        ident = f"ev-{i:05d}"
        event = Event("load.test", "info", "log", "2026-01-01T00:00:00Z", f"event {ident}", id=ident)
        yield i, TOPICS.event, encode(event.to_dict()), False
        if i % REPLY_EVERY == 0:
            reply = CommandReply(
                command_id(i // REPLY_EVERY), CommandStatus.SUCCEEDED, {"pong": True}, name="agent.ping"
            )
            yield i, TOPICS.reply, encode(reply.to_dict()), False


async def publish_all(broker: LocalBroker, centre: CentreProcess, watch: CentreWatch) -> None:
    """Publish the stream at RATE; kill the centre at KILL_AT, start it again DOWN_S later."""
    loop = asyncio.get_running_loop()
    restart: asyncio.Task[None] | None = None

    async def kill_and_restart() -> None:
        centre.kill()
        await asyncio.sleep(DOWN_S)  # the downtime the issue measured, not a wait for a result
        centre.start()

    async with make_client(BrokerAddress.parse(broker.url), f"agent-{SITE}-{AGENT}") as agent:
        start = loop.time()
        for n, (i, topic, payload, retain) in enumerate(stream()):
            if i == KILL_AT and restart is None:
                restart = asyncio.create_task(kill_and_restart(), name="test[restart].kill")
            await asyncio.sleep(max(0.0, start + n / RATE - loop.time()))  # pacing the load, not a check
            await agent.publish(topic, payload, qos=1, retain=retain)
        assert restart is not None
        await restart
        await watch.wait_online(2)
        sentinel = Event("load.sentinel", "info", "log", "2026-01-01T00:00:00Z", "the end", id="end")
        await agent.publish(TOPICS.event, encode(sentinel.to_dict()), qos=1)


def fleet(db_path: Any, sql: str) -> tuple[int, ...]:
    return rows(db_path, sql)[0]


async def until_sentinel(db_path: Any) -> None:
    async with asyncio.timeout(LIMIT_S):
        while not fleet(db_path, "SELECT count(*) FROM events WHERE type = 'load.sentinel'")[0]:
            await asyncio.sleep(0.05)


async def test_kill_9_of_the_centre_mid_stream_loses_nothing_and_doubles_nothing(
    broker: LocalBroker, centre: CentreProcess, tmp_path: Path
) -> None:
    db_path = fleet_at(tmp_path)
    seed_commands(db_path, EVENTS // REPLY_EVERY)
    async with watching(broker) as watch:
        centre.start()
        await watch.wait_online(1)
        await publish_all(broker, centre, watch)
        await until_sentinel(db_path)
    total, distinct = fleet(db_path, "SELECT count(*), count(DISTINCT message) FROM events WHERE type = 'load.test'")
    (replied,) = fleet(db_path, "SELECT count(*) FROM commands WHERE status = 'succeeded'")
    sessions, onlines = fleet(
        db_path, f"SELECT count(DISTINCT session), count(*) FROM status_history WHERE agent_id = '{AGENT}'"
    )
    seen = {"events": total, "distinct events": distinct, "replies": replied, "sessions": sessions, "onlines": onlines}
    want_sessions = EVENTS // STATUS_EVERY
    wanted = {
        "events": EVENTS,
        "distinct events": EVENTS,
        "replies": EVENTS // REPLY_EVERY,
        "sessions": want_sessions,
        "onlines": want_sessions,
    }
    assert seen == wanted, f"fleet.db after kill -9 and restart: {seen}, expected {wanted}"


def test_fleet_db_stores_an_event_once_per_agent_and_id_and_never_reopens_its_alarm(tmp_path: Path) -> None:
    db = FleetDB(fleet_at(tmp_path))
    try:

        def seen(agent: str, event: Event) -> Seen:
            return Seen(SITE, agent, event, now_iso())

        raise_ = Event("panel.offline", "warning", "raise", "2026-11-22T08:00:00Z", "no answer", "panel", id="e-1")
        clear = Event("panel.offline", "warning", "clear", "2026-11-22T08:01:00Z", "back", "panel", id="e-2")
        db.write_batch([seen(AGENT, raise_), seen(AGENT, clear)])
        # The broker delivers both again (committed, not yet acknowledged when the centre died), then news.
        db.write_batch([seen(AGENT, raise_), seen(AGENT, clear), seen("room-102", raise_)])
        old = Event("audit", "info", "log", "2026-11-22T08:00:00Z", "an older agent: no id")
        db.write_batch([seen(AGENT, old), seen(AGENT, old)])
        events = fleet(fleet_at(tmp_path), f"SELECT count(*) FROM events WHERE agent_id = '{AGENT}'")
        assert events == (4,)  # raise, clear, and the old agent's two copies (nothing tells them apart)
        assert [a["agent_id"] for a in db.alarms()] == ["room-102"]  # room-101's alarm stays cleared
    finally:
        db.close()


def test_the_same_reply_delivered_again_changes_nothing_in_the_audit_log(tmp_path: Path) -> None:
    seed_commands(fleet_at(tmp_path), 1)
    db = FleetDB(fleet_at(tmp_path))
    try:
        reply = CommandReply(command_id(0), CommandStatus.SUCCEEDED, {"pong": True})
        db.write_batch([CommandReplied(AGENT, reply, "2026-11-22T08:00:00Z")])
        assert db.write_batch([CommandReplied(AGENT, reply, "2026-11-22T09:00:00Z")]) == []
        command = db.command(command_id(0))
        assert command is not None and (command["status"], command["replied_ts"]) == (
            "succeeded",
            "2026-11-22T08:00:00Z",
        )
    finally:
        db.close()
