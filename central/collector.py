"""The collector: the fleet's MQTT messages -> typed rows -> fleet.db, through one batched writer.

`to_row` is sans-IO (topic and payload in, a row out, PayloadError for anything off-contract);
`SilenceWatch` is sans-IO too (clock values in, silent agents out).  `Collector` adds the asyncio:
the broker connection (a persistent session, acknowledged after commit) with reconnects, the
watchdog; `central.writer.BatchWriter` writes the rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from central.fleet_rows import CommandReplied, Dropped, Payload, Seen, Silent
from central.fleetdb import FleetDB
from central.sender import BrokerLink, CommandSender
from central.writer import BatchWriter
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
from contract.errors import BrokerError
from contract.limits import for_kind
from contract.mqtt import BrokerAddress, Client, Message, MqttError, Will, acknowledge, make_client
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


DEFAULT_CLIENT_ID = "classroom-central"


def default_client_id(broker: BrokerAddress) -> str:
    """The centre's MQTT client id unless told otherwise: its broker user name, else ``classroom-central``.

    With ``use_username_as_clientid`` (broker-config) the broker uses the user name anyway.
    """
    return broker.username or DEFAULT_CLIENT_ID


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
        """`link` gets the connected client (for the sender); `sender` gets the replies.

        `identifier` is the MQTT client id of the centre's persistent session (default: the broker
        user name, else ``classroom-central``): one per collector process, stable across restarts.
        """
        self._broker = broker
        self._db = db
        self._writer = writer
        self._link = link or BrokerLink()
        self._sender = sender
        self._identifier = identifier or default_client_id(broker)
        self._acking: Client | None = None  # the connection whose messages are acknowledged after commit
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
            why = ""
            try:
                await self._connect_once(backoff)
            except MqttError as exc:
                why = str(exc)
            except TimeoutError:
                why = f"no answer within {self._connect_timeout:g} s"
            delay = backoff.next_delay()
            if why:  # one line per failed attempt: what went wrong and when the next one is
                log.warning("broker %s: %s; reconnecting in %.1f s", self._broker.url, why, delay)
            else:
                log.info("reconnecting to %s in %.1f s", self._broker.url, delay)
            await asyncio.sleep(delay)

    def _status(self, state: str, session: int, since: str) -> bytes:
        """The centre's own status message."""
        return encode({"state": state, "session": session, "since": since, "version": self._version})

    async def _connect_once(self, backoff: Backoff) -> None:
        session, since = await asyncio.to_thread(self._db.next_session), now_iso()
        will = Will(CENTRAL_STATUS, self._status("offline", session, since), qos=1, retain=True)
        # A persistent session, acknowledged only once committed: what arrives while the centre is
        # down, or sits in the writer's batch when it dies, is delivered again by the broker.
        client = make_client(
            self._broker,
            self._identifier,
            will=will,
            timeout=self._connect_timeout,
            clean_session=False,
            manual_ack=True,
        )
        async with contextlib.AsyncExitStack() as stack:
            async with asyncio.timeout(self._connect_timeout):
                await stack.enter_async_context(client)
            try:  # from here on a clean stop says `offline`, even one that comes while saying `online`
                async with asyncio.timeout(self._connect_timeout):
                    await client.subscribe(FLEET, qos=1)
                    await client.publish(CENTRAL_STATUS, self._status("online", session, since), qos=1, retain=True)
                log.info("collecting from %s (session %d)", self._broker.url, session)
                backoff.reset()
                self.stats.connects += 1
                self._link.attach(client)
                self._acking = client
                self.connected.set()
                await self._consume(client)
            except asyncio.CancelledError:
                self._writer.write_now()  # a clean stop commits (and acknowledges) what it has received
                await self._say_offline(client, session)
                raise
            finally:
                self._acking = None
                self._link.detach()
                self.connected.clear()

    async def _say_offline(self, client: Client, session: int) -> None:
        """A clean stop says so, as the Will would."""
        with contextlib.suppress(MqttError, TimeoutError):
            async with asyncio.timeout(5.0):  # a loaded machine may take a while to hear the PUBACK
                await client.publish(CENTRAL_STATUS, self._status("offline", session, now_iso()), qos=1, retain=True)

    async def _consume(self, client: Client) -> None:
        async for message in client.messages:
            await self.handle(message)
            self._writer.after_commit(functools.partial(self._acknowledge, client, message))
            if not len(client.messages):
                # The broker sends only a few unacknowledged messages at a time (Mosquitto:
                # max_inflight_messages, 20): waiting out the batch interval would throttle it.
                self._writer.flush_soon()

    def _acknowledge(self, client: Client, message: Message) -> None:
        """`message` is committed (or was none of fleet.db's business): let the broker forget it."""
        if client is not self._acking:
            return  # that connection is gone: the broker delivers the message again, and it is recognised
        try:
            acknowledge(client, message)
        except BrokerError as exc:
            log.warning("broker %s: %s (it will be delivered again)", self._broker.url, exc)

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
            reason = "retained, but events and replies are never retained: ignored"
            self.ignored.drop(topic, reason)
            await self._count_against(topic, reason)
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
        await self._count_against(topic, reason)

    async def _count_against(self, topic: str, reason: str) -> None:
        """Count a dropped message against the agent whose topic it came on (shown per agent on the dashboard)."""
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

