"""Commands from the centre to one agent: publish, audit, wait for the reply."""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from central.fleet_rows import CommandReplied, CommandSent, CommandTimedOut, Row
from central.fleetdb import FleetDB
from contract import Command, CommandReply, CommandStatus, Topics, encode, now_iso, to_iso
from contract.errors import BrokerError, PayloadError
from contract.limits import for_kind
from contract.mqtt import Client, MqttError

log = logging.getLogger(__name__)


class Recorder(Protocol):
    """Where rows for fleet.db go: the batched writer."""

    async def put(self, row: Row) -> None:
        """Queue one row."""


class BrokerLink:
    """The broker client that is connected right now, if any: what the sender publishes through.

    The collector (or the CLI's one-shot link) attaches its client after connecting and detaches it
    when the connection ends, so a sender never holds a dead client.
    """

    def __init__(self, publish_timeout: float = 5.0) -> None:
        """`publish_timeout`: the deadline of one publish."""
        self._client: Client | None = None
        self._timeout = publish_timeout

    def attach(self, client: Client) -> None:
        """Publish through `client` from now on."""
        self._client = client

    def detach(self) -> None:
        """The connection ended."""
        self._client = None

    @property
    def connected(self) -> bool:
        """Whether a client is attached."""
        return self._client is not None

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Publish; BrokerError when not connected, refused or late."""
        client = self._client
        if client is None:
            raise BrokerError(f"cannot publish to {topic}: not connected to the broker")
        try:
            async with asyncio.timeout(self._timeout):
                await client.publish(topic, payload, qos=qos, retain=retain)
        except TimeoutError:
            raise BrokerError(f"publish to {topic}: no acknowledgement within {self._timeout} s") from None
        except MqttError as exc:
            raise BrokerError(f"publish to {topic}: {exc}") from exc


@dataclass
class _Pending:
    agent_id: str
    reply: asyncio.Future[CommandReply]


def _expiry(ttl: float) -> str:
    """Now + `ttl`, rounded up to the next whole second (the contract's precision)."""
    moment = datetime.now(UTC) + timedelta(seconds=ttl)
    return to_iso(datetime.fromtimestamp(math.ceil(moment.timestamp()), UTC))


def reply_dict(reply: CommandReply) -> dict[str, Any]:
    """The reply as `CommandSender.send` returns it: ``id``, ``status``, ``result`` or ``error`` (and ``code``)."""
    out: dict[str, Any] = {"id": reply.id, "status": reply.status}
    if reply.status == CommandStatus.SUCCEEDED:
        out["result"] = reply.result
    else:
        out["error"] = reply.error
        if reply.code:  # the dashboard words it in the viewer's language
            out |= {"code": reply.code, "params": dict(reply.params)}
    return out


class CommandSender:
    """Send a command to an agent and wait for its reply; every command goes in the audit log."""

    def __init__(self, db: FleetDB, recorder: Recorder, link: BrokerLink) -> None:
        """`db` tells where an agent lives; `recorder` takes the audit rows; `link` publishes."""
        self._db = db
        self._recorder = recorder
        self._link = link
        self._pending: dict[str, _Pending] = {}

    async def send(
        self, agent_id: str, name: str, args: dict[str, Any], by: str, *, timeout: float = 10.0, ttl: float = 60.0
    ) -> dict[str, Any]:
        """Publish ``cmd/<name>`` and return the reply (status ``timeout`` when none came in time)."""
        site = self._db.site_of(agent_id)
        if site is None:
            raise ValueError(f"unknown agent {agent_id!r}")
        command = Command(uuid.uuid4().hex, name, dict(args), _expiry(ttl), by)
        future: asyncio.Future[CommandReply] = asyncio.get_running_loop().create_future()
        self._pending[command.id] = _Pending(agent_id, future)
        try:
            # Recorded before publishing: the writer keeps order, so the reply never precedes it.
            payload, refusal = _wire_form(command)
            kept = command if not refusal else replace(command, args=_storable(command.args))
            await self._recorder.put(CommandSent(site, agent_id, kept, now_iso()))
            if refusal:  # the agent (and the broker) would drop it unanswered: say why now
                reply = CommandReply(command.id, CommandStatus.REJECTED, error=refusal, code="command_too_large")
                await self._recorder.put(CommandReplied(agent_id, reply, now_iso()))
                return reply_dict(reply)
            try:
                await self._link.publish(Topics(site, agent_id).cmd(name), payload, qos=1)
            except BrokerError as exc:
                reply = CommandReply(command.id, CommandStatus.FAILED, error=f"not sent: {exc}", code="not_sent")
                await self._recorder.put(CommandReplied(agent_id, reply, now_iso()))
                return reply_dict(reply)
            async with asyncio.timeout(timeout):
                return reply_dict(await future)
        except TimeoutError:
            await self._recorder.put(CommandTimedOut(command.id, now_iso()))
            error = f"no reply from {agent_id} within {timeout:g} s"
            return {"id": command.id, "status": CommandStatus.TIMEOUT, "error": error}
        finally:
            self._pending.pop(command.id, None)

    def deliver(self, agent_id: str, reply: CommandReply) -> bool:
        """Hand a reply to the `send` waiting for it; False when nobody waits (or the wrong agent answered)."""
        pending = self._pending.get(reply.id)
        if pending is None or pending.reply.done():
            return False
        if pending.agent_id != agent_id:
            log.warning(
                "reply %s came from %s, but the command went to %s: ignored", reply.id, agent_id, pending.agent_id
            )
            return False
        pending.reply.set_result(reply)
        return True

    @property
    def waiting(self) -> int:
        """Commands waiting for their reply."""
        return len(self._pending)


def _wire_form(command: Command) -> tuple[bytes, str]:
    """The command's payload, or why it cannot be sent: not encodable (NaN) or over the contract's cmd size."""
    try:
        payload = encode(command.to_dict())
    except PayloadError as exc:
        return b"", f"args: {exc}"
    limit = for_kind("cmd").size
    if len(payload) > limit:
        return b"", f"command of {len(payload)} bytes: at most {limit} (contract limit for cmd)"
    return payload, ""


def _storable(value: Any) -> Any:
    """`value` with each NaN or infinity written as text, so the audit log keeps what was asked."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    return value
