"""``classroom-central send``: one command from the command line, its reply awaited and audited."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from central.errors import CentralError, ConfigError
from central.fleetdb import FleetDB
from central.sender import BrokerLink, CommandSender
from central.writer import BatchWriter
from contract.mqtt import BrokerAddress, Client

log = logging.getLogger("classroom-central")


async def send_once(
    broker: BrokerAddress, db: FleetDB, agent_id: str, name: str, args: dict[str, Any], by: str, timeout: float
) -> dict[str, Any]:
    """Connect, send one command, wait for its reply, record it all in fleet.db, disconnect."""
    from central.sender import CommandSender
    from central.writer import BatchWriter
    from contract import Topics
    from contract.mqtt import MqttError, make_client

    writer, link = BatchWriter(db), BrokerLink()
    sender = CommandSender(db, writer, link)
    site = db.site_of(agent_id)
    if site is None:
        raise ConfigError(f"unknown agent {agent_id!r}")
    client: Client = make_client(broker, f"classroom-central-send-{uuid.uuid4().hex[:12]}", timeout=timeout)
    try:
        async with asyncio.TaskGroup() as tg:
            flush = tg.create_task(writer.run(), name=f"writer[{db.location.name}].flush")
            async with contextlib.AsyncExitStack() as stack:
                async with asyncio.timeout(timeout):
                    await stack.enter_async_context(client)
                    await client.subscribe(Topics(site, agent_id).reply, qos=1)
                link.attach(client)
                reader = tg.create_task(_relay_replies(client, writer, sender), name=f"send[{agent_id}].replies")
                try:
                    return await sender.send(agent_id, name, args, by, timeout=timeout)
                finally:
                    reader.cancel()
                    flush.cancel()
    except* (MqttError, TimeoutError) as group:
        raise CentralError(f"broker {broker.url}: {group.exceptions[0] or 'no answer in time'}") from None


async def _relay_replies(client: Client, writer: BatchWriter, sender: CommandSender) -> None:
    """Replies on the subscribed topic: into the audit log, and to the waiting sender."""
    from central.collector import to_row
    from central.fleet_rows import CommandReplied
    from contract import PayloadError, now_iso

    async for message in client.messages:
        if message.retain:  # a reply is never retained: a retained one is a replay of an old answer
            log.warning("ignored a retained reply on %s", message.topic.value)
            continue
        payload = message.payload if isinstance(message.payload, bytes) else b""
        try:
            row = to_row(message.topic.value, payload, False, now_iso())
        except PayloadError as exc:
            log.warning("skipped a malformed reply on %s: %s", message.topic.value, exc)
            continue
        if isinstance(row, CommandReplied):
            await writer.put(row)
            sender.deliver(row.agent_id, row.reply)
