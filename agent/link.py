"""The agent's link to the broker: the MQTT contract, spoken from the classroom's side.

Retained status (Will: ``lost``), info and device states, re-published on every connect;
telemetry at QoS 0; events and replies through a persistent outbox, delivered in order once
the broker takes them; commands with ids and expiry, each run at most once.  WebRTC signalling
(``rtc/<peer>``) is ephemeral: sent at once or not at all, never through the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol

from contract import (
    Command,
    CommandReply,
    CommandStatus,
    DeviceState,
    Event,
    Info,
    PayloadError,
    Status,
    Telemetry,
    Topic,
    Topics,
    decode,
    encode,
    now_iso,
)
from contract.drops import Drops
from contract.errors import BrokerError
from contract.limits import COMMAND, PAYLOAD, RTC, Bounds
from contract.mqtt import BrokerAddress, Client, Message, MqttError, Will, make_client
from contract.rtc import RtcMessage
from contract.wire import salvage
from drivers.backoff import Backoff

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT = 10.0
# Commands running at once; more are rejected as busy (each has its own deadline, so they drain).
MAX_COMMANDS = 32


class PendingMessage(Protocol):
    """An outbox row."""

    @property
    def id(self) -> int:
        """Its place in the outbox."""

    @property
    def topic(self) -> str:
        """Where it goes."""

    @property
    def payload(self) -> bytes:
        """What it says."""


class LinkStore(Protocol):
    """What the link needs persisted (the agent's store implements it)."""

    def next_session(self) -> int:
        """Increment and return the persisted session counter."""

    def outbox_add(self, topic: str, payload: bytes) -> int:
        """Persist a message to deliver."""

    def outbox_peek(self, limit: int = 100) -> Sequence[PendingMessage]:
        """The oldest undelivered messages."""

    def outbox_remove(self, ids: list[int]) -> None:
        """Forget delivered messages."""

    def seen_reply(self, command_id: str) -> dict[str, object] | None:
        """The reply a command id already got."""

    def remember(self, command_id: str, reply: dict[str, object]) -> None:
        """Record a command's reply."""


CommandRunner = Callable[[Command], Awaitable[CommandReply]]
# (sender site, sender agent, message): called on the link's loop, so it must not block.
RtcHandler = Callable[[str, str, RtcMessage], None]


class AgentLink:
    """One agent's connection to the broker, kept up until cancelled."""

    def __init__(
        self,
        address: BrokerAddress,
        topics: Topics,
        store: LinkStore,
        *,
        version: str,
        info: Callable[[], Info],
        states: Callable[[], list[DeviceState]],
        run_command: CommandRunner,
        backoff: Backoff | None = None,
        on_rtc: RtcHandler | None = None,
    ) -> None:
        """`info` and `states` are read on every connect, so the broker always gets the truth."""
        self.address = address
        self.topics = topics
        self.store = store
        self.version = version
        self.info = info
        self.states = states
        self.run_command = run_command
        self.on_rtc = on_rtc
        self.backoff = backoff or Backoff(base=0.5, cap=30.0)
        self.client: Client | None = None
        self.session = 0
        self.since = now_iso()
        self.connects = 0
        self._outbox_ready = asyncio.Event()
        self._in_flight: set[str] = set()
        self._connected = asyncio.Event()
        self._states: dict[str, DeviceState] = {}
        # Messages dropped, in and out (malformed commands and signalling, unencodable payloads): in telemetry.
        self.drops = Drops(log)

    @property
    def connected(self) -> bool:
        """Whether the broker has us right now."""
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        """Wait until connected (callers bound it with a timeout)."""
        await self._connected.wait()

    # -- producing ---------------------------------------------------------------------

    def send_event(self, event: Event) -> None:
        """Queue an alarm or audit event (persisted first; delivered in order) under an id of its own.

        The id travels with the persisted payload, so a copy delivered twice (by the outbox after a
        crash, or by the broker to a restarted centre) is stored once.
        """
        self._queue(self.topics.event, (event if event.id else replace(event, id=uuid.uuid4().hex)).to_dict(), PAYLOAD)

    def send_reply(self, reply: CommandReply) -> None:
        """Queue a command reply (persisted first)."""
        self._queue(self.topics.reply, reply.to_dict(), COMMAND)

    def _queue(self, topic: str, payload: dict[str, Any], bounds: Bounds) -> None:
        if (wire := self._encoded(topic, payload, bounds)) is not None:
            self.store.outbox_add(topic, wire)
            self._outbox_ready.set()

    def _encoded(self, topic: str, data: dict[str, Any], bounds: Bounds = PAYLOAD) -> bytes | None:
        """The wire form within `bounds`, or None: dropped and counted, that message and not the link or the caller.

        A NaN a driver measured, a reply over the limit, an info the centre would refuse.
        """
        try:
            return encode(data, bounds)
        except PayloadError as exc:
            self.drops.drop(topic, f"not sent: {exc}")
            return None

    async def publish_state(self, state: DeviceState) -> None:
        """Publish a device's state, retained, if connected (it is re-published on connect)."""
        self._states[state.device] = state
        await self._publish_now(self.topics.state(state.device), state.to_dict(), qos=1, retain=True)

    async def publish_info(self) -> None:
        """Re-publish ``info`` (retained) if connected: something in it changed (every connect publishes it)."""
        await self._publish_now(self.topics.info, self.info().to_dict(), qos=1, retain=True)

    async def publish_telemetry(self, telemetry: Telemetry) -> None:
        """Publish telemetry at QoS 0 if connected; dropped otherwise (it is periodic)."""
        await self._publish_now(self.topics.telemetry, telemetry.to_dict(), qos=0, retain=False)

    async def send_rtc(self, peer: str, message: RtcMessage) -> None:
        """Send signalling to agent `peer` now (QoS 1, not retained); BrokerError when we cannot.

        It goes to ``rtc/<peer>`` in our own subtree (the ACL lets us write nowhere else); the
        peer's site does not appear: whoever reads it learns ours from the topic.
        """
        client = self.client
        if client is None:
            raise BrokerError(f"cannot send {message.type} to {peer}: not connected to {self.address.url}")
        try:
            payload = encode(message.to_dict(), RTC)
            await client.publish(self.topics.rtc(peer), payload, qos=1, retain=False, timeout=PUBLISH_TIMEOUT)
        except (MqttError, PayloadError) as exc:
            raise BrokerError(f"cannot send {message.type} to {peer}: {exc}") from exc

    async def _publish_now(self, topic: str, data: dict[str, Any], *, qos: int, retain: bool) -> None:
        client = self.client
        if client is None:  # not connected: the connect re-publishes the retained truth
            return
        if (payload := self._encoded(topic, data)) is None:
            return
        try:
            await client.publish(topic, payload, qos=qos, retain=retain, timeout=PUBLISH_TIMEOUT)
        except MqttError as exc:
            log.warning("publish to %s failed: %s", topic, exc)

    # -- the connection ------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, serve, reconnect with backoff; on cancellation publish ``offline`` first.

        Commands run in a task group of the link's whole life, not of one connection: a broker
        blip must not kill a command half done (its reply waits in the outbox for the reconnect).
        """
        # Leaving the group (cancelled: the agent stops) cancels the commands still running.
        async with asyncio.TaskGroup() as commands:
            await self._reconnecting(commands)

    async def _reconnecting(self, commands: asyncio.TaskGroup) -> None:
        while True:
            try:
                await self._connection(commands)
            except* MqttError as lost:  # `except*`: the connection's TaskGroup wraps what its tasks raise
                self._connected.clear()
                delay = self.backoff.next_delay()
                log.warning("broker %s: %s; retrying in %.1f s", self.address.url, lost.exceptions[0], delay)
                await asyncio.sleep(delay)

    async def _connection(self, commands: asyncio.TaskGroup) -> None:
        self.session = self.store.next_session()
        self.since = now_iso()
        will = Will(self.topics.status, self._status("lost"), qos=1, retain=True)
        identifier = f"agent-{self.topics.site}-{self.topics.agent}"
        async with make_client(self.address, identifier, will=will) as client:
            self.client = client
            try:
                await self._announce(client)
                self.connects += 1
                self.backoff.reset()
                self._connected.set()
                log.info("connected to %s (session %d)", self.address.url, self.session)
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._drain_outbox(client), name=f"link[{self.topics.agent}].outbox")
                    tg.create_task(self._commands(client, tg, commands), name=f"link[{self.topics.agent}].commands")
            except asyncio.CancelledError:
                await self._goodbye(client)
                raise
            finally:
                self._connected.clear()
                self.client = None

    def _status(self, state: str) -> bytes:
        return encode(Status(state, self.session, self.since, self.version).to_dict())

    async def _announce(self, client: Client) -> None:
        """Listen for commands and signalling, then re-publish every retained topic: ``online`` means ready."""
        await client.subscribe(self.topics.cmd(), qos=1, timeout=PUBLISH_TIMEOUT)
        if self.on_rtc is not None:
            await client.subscribe(self.topics.rtc_inbox, qos=1, timeout=PUBLISH_TIMEOUT)
        await client.publish(self.topics.status, self._status("online"), qos=1, retain=True, timeout=PUBLISH_TIMEOUT)
        if (info := self._encoded(self.topics.info, self.info().to_dict())) is not None:
            await client.publish(self.topics.info, info, qos=1, retain=True, timeout=PUBLISH_TIMEOUT)
        for seed in self.states():
            self._states.setdefault(seed.device, seed)
        for device in list(self._states):
            # Read the newest state right as it is sent, so a change racing this loop is not
            # overwritten by an older one (publishes go out in call order).
            if (payload := self._encoded(self.topics.state(device), self._states[device].to_dict())) is not None:
                await client.publish(self.topics.state(device), payload, qos=1, retain=True, timeout=PUBLISH_TIMEOUT)

    async def _goodbye(self, client: Client) -> None:
        """A clean stop: say ``offline`` (retained) so the Will never fires."""
        with contextlib.suppress(MqttError, TimeoutError):
            async with asyncio.timeout(3):
                await client.publish(self.topics.status, self._status("offline"), qos=1, retain=True, timeout=3)
        log.info("published offline (session %d)", self.session)

    async def _drain_outbox(self, client: Client) -> None:
        """Deliver queued events and replies in order; each leaves the outbox once acknowledged."""
        while True:
            pending = self.store.outbox_peek(100)
            if not pending:
                self._outbox_ready.clear()
                await self._outbox_ready.wait()
                continue
            for item in pending:
                await client.publish(item.topic, item.payload, qos=1, timeout=PUBLISH_TIMEOUT)
                self.store.outbox_remove([item.id])

    async def _commands(self, client: Client, tg: asyncio.TaskGroup, commands: asyncio.TaskGroup) -> None:
        """Dispatch what arrives: signalling within this connection, commands in the link's `commands` group."""
        async for message in client.messages:
            try:
                if _is_rtc(str(message.topic)):
                    self._signalling(message, tg)
                    continue
                command = self._parse_command(message)
            except Exception as exc:  # a reader's bug: this message is lost, the link is not
                log.exception("reading a message on %s failed", message.topic)
                self.drops.drop(str(message.topic), f"unreadable ({type(exc).__name__})")
                continue
            if command is not None:
                self._start(command, commands)

    def _start(self, command: Command, commands: asyncio.TaskGroup) -> None:
        """Run `command` in the link's `commands` group, unless it already runs or too many do."""
        if command.id in self._in_flight:
            return  # a redelivery of a command still running is answered when it ends
        if len(self._in_flight) >= MAX_COMMANDS:
            # Not remembered as its answer: the same id sent again later may still run.
            error = f"busy: {len(self._in_flight)} commands running, try again later"
            self.send_reply(CommandReply(command.id, CommandStatus.REJECTED, None, error, command.name, "agent_busy"))
            return
        self._in_flight.add(command.id)
        name = f"link[{self.topics.agent}].cmd[{command.id}]"
        commands.create_task(self._answer(command), name=name)

    def _parse_command(self, message: Message) -> Command | None:
        topic = str(message.topic)
        try:
            parsed = Topic.parse(topic)
            if (parsed.site, parsed.agent, parsed.kind) != (
                self.topics.site,
                self.topics.agent,
                "cmd",
            ) or not parsed.rest:
                raise PayloadError("not a command topic of this agent")
            payload = message.payload if isinstance(message.payload, (bytes, bytearray, str)) else b""
            return Command.from_dict(parsed.rest, decode(payload, COMMAND))
        except PayloadError as exc:
            self.drops.drop(topic, str(exc))
            ident = salvage(message.payload, COMMAND).get("id", "")
            if ident:
                self.send_reply(CommandReply(ident, CommandStatus.REJECTED, error=f"malformed command: {exc}"))
            return None

    def _signalling(self, message: Message, tg: asyncio.TaskGroup) -> None:
        """Hand signalling to `on_rtc`; garbage is logged and its sender told why, when it can be."""
        topic = str(message.topic)
        try:
            parsed = Topic.parse(topic)
        except PayloadError as exc:
            log.warning("ignored signalling on %s: %s", topic, exc)
            return
        if parsed.rest != self.topics.agent or self.on_rtc is None:
            return
        payload = message.payload if isinstance(message.payload, (bytes, bytearray, str)) else b""
        try:
            rtc = RtcMessage.from_dict(decode(payload, RTC))
        except PayloadError as exc:
            self.drops.drop(topic, f"bad signalling from {parsed.site}/{parsed.agent}: {exc}")
            salvaged = salvage(payload, RTC)
            if salvaged.get("type") != "reject":  # never answer a reject: two agents would ping-pong
                lesson = salvaged.get("lesson", "")
                reject = RtcMessage("reject", lesson, now_iso(), reason=f"malformed signalling: {exc}")
                name = f"link[{self.topics.agent}].rtc-reject[{parsed.agent}]"
                tg.create_task(self._reject_quietly(parsed.agent, reject), name=name)
            return
        try:
            self.on_rtc(parsed.site, parsed.agent, rtc)
        except Exception:  # a bug in the handler must not take the command path down with it
            log.exception("signalling handler failed on %s from %s", rtc.type, parsed.agent)

    async def _reject_quietly(self, agent: str, message: RtcMessage) -> None:
        try:
            await self.send_rtc(agent, message)
        except BrokerError as exc:
            log.warning("%s", exc)

    async def _answer(self, command: Command) -> None:
        try:
            previous = self.store.seen_reply(command.id)
            if previous is not None:
                log.info("command %s (%s) already ran: answering again", command.id, command.name)
                self._queue(self.topics.reply, previous, COMMAND)
                return
            if command.expired():
                error = f"expired at {command.expires}"
                reply = CommandReply(command.id, CommandStatus.EXPIRED, error=error, name=command.name)
            else:
                reply = _sendable(await self.run_command(command))
            self.store.remember(command.id, reply.to_dict())
            self.send_reply(reply)
        finally:
            self._in_flight.discard(command.id)


def _sendable(reply: CommandReply) -> CommandReply:
    """`reply`, or a failure saying why it cannot go on the wire (a NaN in its result, a result over the limit)."""
    try:
        encode(reply.to_dict(), COMMAND)
    except PayloadError as exc:
        return CommandReply(reply.id, CommandStatus.FAILED, None, f"result {exc}", reply.name, "result_too_large")
    return reply


def _is_rtc(topic: str) -> bool:
    parts = topic.split("/")
    return len(parts) == 6 and parts[4] == "rtc"
