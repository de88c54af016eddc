"""The collector: the fleet's MQTT messages -> typed rows -> fleet.db, through one batched writer.

`to_row` is sans-IO (topic and payload in, a row out, PayloadError for anything off-contract);
`SilenceWatch` is sans-IO too (clock values in, silent agents out).  `BatchWriter` and
`Collector` add the asyncio: the flush loop, the broker connection with reconnects, the watchdog.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from central.fleet_rows import CommandReplied, Dropped, Payload, Row, Seen, Silent
from central.fleetdb import FleetDB
from central.live import Changes
from central.sender import BrokerLink, CommandSender
from contract import (
    CENTRAL_STATUS,
    FLEET,
    CommandReply,
    DeviceState,
    Event,
    Info,
    PayloadError,
    Status,
    Telemetry,
    Topic,
    decode,
    encode,
    now_iso,
)
from contract.drops import Drops
from contract.limits import for_kind
from contract.mqtt import BrokerAddress, Client, Message, MqttError, Will, make_client
from drivers.backoff import Backoff

log = logging.getLogger(__name__)

_IGNORED_KINDS = ("cmd", "rtc")  # the centre's own commands, and signalling between agents
_KINDS: dict[str, Callable[[dict[str, Any]], Payload]] = {
    "status": Status.from_dict,
    "info": Info.from_dict,
    "state": DeviceState.from_dict,
    "telemetry": Telemetry.from_dict,
    "event": Event.from_dict,
}
_KNOWN_KINDS = frozenset([*_KINDS, "reply"])
_NEVER_RETAINED = ("event", "reply")  # DESIGN.md: a retained one is a replay (or a forgery), never news


def never_retained(topic: str) -> bool:
    """Whether `topic` is an agent's event or reply topic, which the contract never retains."""
    return topic.count("/") == 4 and topic.rsplit("/", 1)[-1] in _NEVER_RETAINED


class ForeignTopic(PayloadError):
    """A topic under the fleet subscription that the contract does not define."""


def to_row(topic: str, payload: bytes | bytearray | str, retained: bool, received: str) -> Seen | CommandReplied | None:
    """The row one message becomes; None when it is none of the store's business."""
    if topic == CENTRAL_STATUS:
        return None
    try:
        where = Topic.parse(topic)
    except PayloadError as exc:
        raise ForeignTopic(str(exc)) from None
    if where.kind in _IGNORED_KINDS:
        return None
    if where.kind not in _KNOWN_KINDS or bool(where.rest) != (where.kind == "state") or "/" in where.rest:
        raise ForeignTopic(f"topic {topic!r}: no such topic in the contract")
    if not payload:
        return None  # a retained message being cleared
    data = decode(payload, for_kind(where.kind))
    agent, site = where.agent, where.site
    if where.kind == "reply":
        return CommandReplied(agent, CommandReply.from_dict(data), received)
    if where.kind == "state":
        state = DeviceState.from_dict(data)
        if state.device != where.rest:
            raise PayloadError(f"device: got {state.device!r}, but the topic names {where.rest!r}")
        return Seen(site, agent, state, received, retained)
    return Seen(site, agent, _KINDS[where.kind](data), received, retained)


class SilenceWatch:
    """Which agents have sent nothing for `intervals` telemetry intervals (clock values in, ids out)."""

    def __init__(self, intervals: float = 3.0, default_interval_s: float = 10.0) -> None:
        """An agent is silent after `intervals` times its telemetry interval without a live message."""
        self._intervals = intervals
        self._default = default_interval_s
        self._heard: dict[str, float] = {}
        self._interval: dict[str, float] = {}
        self._reported: set[str] = set()

    def known(self, agent_id: str, now: float) -> None:
        """The agent exists (a retained message): start its clock if it is not running."""
        self._heard.setdefault(agent_id, now)

    def heard(self, agent_id: str, now: float) -> None:
        """A live message came from the agent."""
        self._heard[agent_id] = now
        self._reported.discard(agent_id)

    def interval(self, agent_id: str, seconds: float) -> None:
        """The agent's telemetry interval (from its info)."""
        self._interval[agent_id] = seconds if seconds > 0 else self._default

    def due(self, now: float) -> list[str]:
        """Agents that just went silent (each reported once until heard again)."""
        out = []
        for agent_id, heard in self._heard.items():
            limit = self._intervals * self._interval.get(agent_id, self._default)
            if agent_id not in self._reported and now - heard > limit:
                self._reported.add(agent_id)
                out.append(agent_id)
        return out


class BatchWriter:
    """The single writer of fleet.db: rows queue up and are written every `interval` s or `max_rows` rows."""

    def __init__(
        self,
        db: FleetDB,
        changes: Changes | None = None,
        *,
        interval: float = 0.1,
        max_rows: int = 2000,
        high_water: int = 50_000,
    ) -> None:
        """`high_water`: `put` waits while this many rows are queued (back pressure on the reader)."""
        self._db = db
        self._changes = changes
        self._interval = interval
        self._max_rows = max_rows
        self._high_water = high_water
        self._rows: list[Row] = []
        self._has_rows = asyncio.Event()
        self._full = asyncio.Event()
        self._drained = asyncio.Event()
        self._backoff = Backoff(base=0.2, cap=5.0)
        self.written = 0

    @property
    def backlog(self) -> int:
        """Rows queued, not yet written."""
        return len(self._rows)

    async def put(self, row: Row) -> None:
        """Queue a row (waits only when the backlog is over the high-water mark)."""
        self._rows.append(row)
        self._has_rows.set()
        if len(self._rows) >= self._max_rows:
            self._full.set()
        while len(self._rows) >= self._high_water:
            self._drained.clear()
            await self._drained.wait()

    async def run(self) -> None:
        """Flush until cancelled; what is still queued then is written before returning."""
        try:
            while True:
                await self._has_rows.wait()
                if len(self._rows) < self._max_rows:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._interval):
                            await self._full.wait()
                await self._flush()
        finally:
            if self._rows:
                self._publish(self._db.write_batch(self._take()))  # shutting down: write, don't lose

    def _take(self) -> list[Row]:
        rows, self._rows = self._rows, []
        self._has_rows.clear()
        self._full.clear()
        self._drained.set()
        return rows

    async def _flush(self) -> None:
        rows = self._take()
        try:
            # On the loop, not in a worker thread: a thread fighting the busy loop for the GIL
            # at every sqlite call made the writer the bottleneck (bench/central_ingest.py:
            # 4.3k -> 7.2k msg/s).  A batch holds the loop for ~20 us a row.
            changes = self._db.write_batch(rows)
        except sqlite3.OperationalError as exc:  # locked, disk full: keep the rows and retry
            delay = self._backoff.next_delay()
            log.error("fleet.db: %d rows not written (%s); retrying in %.1f s", len(rows), exc, delay)
            self._rows[:0] = rows
            self._has_rows.set()
            await asyncio.sleep(delay)
            return
        self._backoff.reset()
        self.written += len(rows)
        self._publish(changes)

    def _publish(self, changes: list[tuple[str, str]]) -> None:
        if self._changes is not None:
            for kind, agent_id in changes:
                self._changes.publish({"kind": kind, "agent_id": agent_id})


@dataclass
class CollectorStats:
    """What the collector has seen since it started."""

    messages: int = 0
    rows: int = 0
    malformed: int = 0
    foreign: int = 0
    ignored: int = 0
    retained: int = 0
    connects: int = 0


class Collector:
    """Subscribes to the fleet and feeds the writer; reconnects with backoff; marks silent agents."""

    def __init__(
        self,
        broker: BrokerAddress,
        db: FleetDB,
        writer: BatchWriter,
        *,
        link: BrokerLink | None = None,
        sender: CommandSender | None = None,
        identifier: str = "",
        version: str = "",
        silence_check_s: float = 0.25,
        connect_timeout: float = 10.0,
    ) -> None:
        """`link` gets the connected client (for the sender); `sender` gets the replies."""
        self._broker = broker
        self._db = db
        self._writer = writer
        self._link = link or BrokerLink()
        self._sender = sender
        self._identifier = identifier or f"classroom-central-{uuid.uuid4().hex[:12]}"
        self._version = version
        self._check = silence_check_s
        self._connect_timeout = connect_timeout
        self._watch = SilenceWatch()
        self.stats = CollectorStats()
        self.drops = Drops(log)
        self.ignored = Drops(log)  # retained events/replies: logged like drops, counted in stats.retained
        self.connected = asyncio.Event()

    async def run(self) -> None:
        """Run until cancelled."""
        now = time.monotonic()
        for agent_id, interval in self._db.telemetry_intervals().items():
            self._watch.interval(agent_id, interval)
            self._watch.known(agent_id, now)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._connection_loop(), name=f"collector[{self._identifier}].link")
            tg.create_task(self._silence_loop(), name=f"collector[{self._identifier}].silence")

    async def _connection_loop(self) -> None:
        backoff = Backoff()
        while True:
            try:
                await self._connect_once(backoff)
            except MqttError as exc:
                log.warning("broker %s: %s", self._broker.url, exc)
            except TimeoutError:
                log.warning("broker %s: no answer within %g s", self._broker.url, self._connect_timeout)
            delay = backoff.next_delay()
            log.info("reconnecting to %s in %.1f s", self._broker.url, delay)
            await asyncio.sleep(delay)

    def _status(self, state: str, session: int, since: str) -> bytes:
        return encode({"state": state, "session": session, "since": since, "version": self._version})

    async def _connect_once(self, backoff: Backoff) -> None:
        session, since = await asyncio.to_thread(self._db.next_session), now_iso()
        will = Will(CENTRAL_STATUS, self._status("offline", session, since), qos=1, retain=True)
        client = make_client(self._broker, self._identifier, will=will, timeout=self._connect_timeout)
        async with contextlib.AsyncExitStack() as stack:
            async with asyncio.timeout(self._connect_timeout):
                await stack.enter_async_context(client)
                await client.subscribe(FLEET, qos=1)
                await client.publish(CENTRAL_STATUS, self._status("online", session, since), qos=1, retain=True)
            log.info("collecting from %s (session %d)", self._broker.url, session)
            backoff.reset()
            self.stats.connects += 1
            self._link.attach(client)
            self.connected.set()
            try:
                await self._consume(client)
            except asyncio.CancelledError:
                await self._say_offline(client, session)
                raise
            finally:
                self._link.detach()
                self.connected.clear()

    async def _say_offline(self, client: Client, session: int) -> None:
        """A clean stop says so, as the Will would."""
        with contextlib.suppress(MqttError, TimeoutError):
            async with asyncio.timeout(2.0):
                await client.publish(CENTRAL_STATUS, self._status("offline", session, now_iso()), qos=1, retain=True)

    async def _consume(self, client: Client) -> None:
        async for message in client.messages:
            await self.handle(message)

    async def handle(self, message: Message) -> None:
        """One message: parse, queue its row, wake the sender waiting for a reply.

        A message that breaks the contract is dropped, logged (once per topic a minute) and counted
        against its agent in fleet.db; nothing it holds can stop the collector.
        """
        self.stats.messages += 1
        topic, payload = message.topic.value, message.payload
        if message.retain and never_retained(topic):
            # Else every restart of the centre would replay it: a cleared alarm re-opened, a reply re-applied.
            self.stats.retained += 1
            self.ignored.drop(topic, "retained, but events and replies are never retained: ignored")
            return
        try:
            if not isinstance(payload, bytes | bytearray | str):
                raise PayloadError(f"payload of type {type(payload).__name__}")
            row = to_row(topic, payload, message.retain, now_iso())
        except ForeignTopic as exc:
            self.stats.foreign += 1
            self.drops.drop(topic, f"foreign topic: {exc}")
            return
        except PayloadError as exc:
            await self._malformed(topic, str(exc))
            return
        except Exception as exc:  # a reader's bug: this message is lost, the collector is not
            log.exception("reading a message on %s failed", topic[:300])
            await self._malformed(topic, f"unreadable ({type(exc).__name__})")
            return
        if row is None:
            self.stats.ignored += 1
            return
        self._observe(row, message.retain)
        self.stats.rows += 1
        await self._writer.put(row)
        if isinstance(row, CommandReplied) and self._sender is not None:
            self._sender.deliver(row.agent_id, row.reply)

    async def _malformed(self, topic: str, reason: str) -> None:
        """Drop a message that broke the contract: log it (rate-limited) and count it against its agent."""
        self.stats.malformed += 1
        self.drops.drop(topic, reason)
        try:
            where = Topic.parse(topic)
        except PayloadError:
            return  # no agent to count it against
        await self._writer.put(Dropped(where.site, where.agent, f"{where.kind}: {reason}", now_iso()))

    def _observe(self, row: Seen | CommandReplied, retained: bool) -> None:
        now = time.monotonic()
        if retained:
            self._watch.known(row.agent_id, now)
        else:
            self._watch.heard(row.agent_id, now)
        if isinstance(row, Seen) and isinstance(row.payload, Info):
            self._watch.interval(row.agent_id, row.payload.telemetry_interval_s)

    async def _silence_loop(self) -> None:
        while True:
            await asyncio.sleep(self._check)
            for agent_id in self._watch.due(time.monotonic()):
                log.info("%s: nothing heard for 3 telemetry intervals", agent_id)
                await self._writer.put(Silent(agent_id, now_iso()))
