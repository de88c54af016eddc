"""``run --leave``: a collector leaves its group for good, with nothing of its share lost.

Mosquitto hands a group's messages in turn to every member's persistent session, connected or not
(measured with 2.0.11): a member stopped for good keeps its share queued at the broker forever,
and expiring its session drops that share.  Leaving does it in order: resume the member's session
(its client id), unsubscribe the group (from then on the broker queues nothing new for it),
publish a marker to itself (a session's queue is in order, so the marker comes back after every
message queued before it), store and acknowledge everything up to the marker, then end the session
(a clean-session connect under the same client id).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid

from central.collector import Collector
from central.errors import CentralError
from central.fleetdb import FleetDB
from central.group import REPLAY_MARK, shared
from central.store import Location
from central.writer import BatchWriter
from contract.mqtt import Batches, BrokerAddress, Client, Message, acknowledge, make_client

log = logging.getLogger(__name__)


async def leave_group(broker: BrokerAddress, location: Location, group: str, client_id: str, timeout: float) -> int:
    """Store what the broker kept for member `client_id` of `group`, then end its session; messages stored.

    CentralError when the store did not take everything (the session is kept then: run it again).
    """
    db = FleetDB(location)
    try:
        writer = BatchWriter(db)
        collector = Collector(broker, db, writer, identifier=client_id, group=group)
        async with asyncio.TaskGroup() as tg:
            flushing = tg.create_task(writer.run(), name=f"leave[{client_id}].writer")
            try:
                count = await _drain(collector, writer, broker, group, client_id, timeout)
            finally:
                flushing.cancel()
    finally:
        db.close()
    async with asyncio.timeout(timeout), make_client(broker, client_id, timeout=timeout, clean_session=True):
        pass  # a clean-session connect discards the member's session at the broker
    log.info("%s left group %s: %d queued messages stored, its session ended", client_id, group, count)
    return count


async def _drain(
    collector: Collector, writer: BatchWriter, broker: BrokerAddress, group: str, client_id: str, timeout: float
) -> int:
    token = uuid.uuid4().hex.encode()
    batches = Batches()
    client = make_client(broker, client_id, timeout=timeout, clean_session=False, manual_ack=True, batches=batches)
    count, marked = 0, False
    async with contextlib.AsyncExitStack() as stack:
        async with asyncio.timeout(timeout):
            await stack.enter_async_context(client)
            await client.unsubscribe(shared(group))
            await client.subscribe(REPLAY_MARK, qos=1)
            await client.publish(REPLAY_MARK, token, qos=1)
        while not marked:
            try:
                async with asyncio.timeout(timeout):  # the broker sends the queue a few messages at a time
                    messages = await batches.next(client)
            except TimeoutError:
                raise CentralError(
                    f"{client_id}: the broker sent nothing for {timeout:g} s; run --leave again"
                ) from None
            for message in messages:
                if message.topic.value == REPLAY_MARK:
                    marked = marked or message.payload == token  # (another member's marker: ignored)
                else:
                    await collector.handle(message)
                    count += 1
                writer.after_commit(functools.partial(_acknowledge, client, message))
            writer.flush_soon()
        writer.write_now()
        if writer.backlog:
            raise CentralError(f"{client_id}: the fleet store did not take {writer.backlog} rows; run --leave again")
        async with asyncio.timeout(timeout):
            await client.unsubscribe(REPLAY_MARK)  # (its answer also means every acknowledgement went out first)
    return count


def _acknowledge(client: Client, message: Message) -> None:
    acknowledge(client, message)
