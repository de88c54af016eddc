"""contract.mqtt's manual acks (a private attribute of aiomqtt 2.5) against a real Mosquitto.

If an aiomqtt upgrade moves its paho client, `make_client(manual_ack=True)` raises and these tests
fail loudly; if acks stop reaching the broker, the redelivery test says so.
"""

from __future__ import annotations

import asyncio
import os

from central.mosquitto import LocalBroker
from contract.mqtt import BrokerAddress, Client, Message, acknowledge, make_client

TOPIC = "test/acks"
LIMIT_S = 10.0


async def next_message(client: Client) -> Message:
    async with asyncio.timeout(LIMIT_S):
        async for message in client.messages:
            return message
    raise AssertionError("the subscription ended")


async def test_a_message_not_acknowledged_comes_again_and_an_acknowledged_one_does_not(broker: LocalBroker) -> None:
    address = BrokerAddress.parse(broker.url)
    identity = f"test-acks-{os.getpid()}"

    def subscriber() -> Client:
        return make_client(address, identity, clean_session=False, manual_ack=True)

    async with subscriber() as client:
        await client.subscribe(TOPIC, qos=1)
    async with make_client(address, f"test-acks-pub-{os.getpid()}") as publisher:
        await publisher.publish(TOPIC, b"first", qos=1)
        async with subscriber() as client:
            assert (await next_message(client)).payload == b"first"  # ... and not acknowledged
        async with subscriber() as client:
            again = await next_message(client)
            assert again.payload == b"first", "an unacknowledged message must be delivered again"
            acknowledge(client, again)
            await publisher.publish(TOPIC, b"second", qos=1)
            assert (await next_message(client)).payload == b"second"
        await publisher.publish(TOPIC, b"third", qos=1)
        async with subscriber() as client:
            # "second" was never acknowledged: it comes first; "first" was, and does not come back.
            assert [(await next_message(client)).payload for _ in range(2)] == [b"second", b"third"]


async def test_without_manual_ack_the_client_acknowledges_on_receipt(broker: LocalBroker) -> None:
    address = BrokerAddress.parse(broker.url)
    identity = f"test-autoack-{os.getpid()}"
    async with make_client(address, identity, clean_session=False) as client:
        await client.subscribe(TOPIC, qos=1)
        async with make_client(address, f"test-autoack-pub-{os.getpid()}") as publisher:
            await publisher.publish(TOPIC, b"first", qos=1)
            assert (await next_message(client)).payload == b"first"
    async with make_client(address, f"test-autoack-pub-{os.getpid()}") as publisher:
        await publisher.publish(TOPIC, b"second", qos=1)
    async with make_client(address, identity, clean_session=False) as client:
        assert (await next_message(client)).payload == b"second"
