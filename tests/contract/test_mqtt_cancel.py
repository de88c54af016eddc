"""A client stopped while it connects leaves no error behind (contract.mqtt over aiomqtt 2.5's private futures).

A stop that lands while ``async with client`` connects is how every service ends when it is
stopped as it starts (Ctrl-C on the demo, ``systemctl stop`` during boot).  aiomqtt 2.5 then
logs an error later, when the abandoned connection ends or a cancelled SUBSCRIBE's SUBACK comes;
`make_client`'s client must not.  The brokers here are loopback sockets that speak just enough
MQTT 3.1.1 to hold the client where the test wants it (CONNACK ``20 02 00 00`` only when told,
a SUBACK only when told).  And a stop that Python 3.11's wait_for swallowed is raised again.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from contract.mqtt import BrokerAddress, Client, make_client, stop_if_stopping

CONNACK_ACCEPTED = b"\x20\x02\x00\x00"


class SlowBroker:
    """Accepts one client, reads its CONNECT, answers when `answer` is set, hangs up when `hang_up` is."""

    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self.answer = asyncio.Event()
        self.hang_up = asyncio.Event()
        self.port = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)  # the CONNECT packet
        self.connected.set()
        done = asyncio.ensure_future(self.hang_up.wait())
        await asyncio.wait({done, asyncio.ensure_future(self.answer.wait())}, return_when=asyncio.FIRST_COMPLETED)
        if self.answer.is_set():
            writer.write(CONNACK_ACCEPTED)
            await writer.drain()
        await done
        writer.close()


@pytest.fixture
async def slow_broker() -> AsyncIterator[SlowBroker]:
    broker = SlowBroker()
    server = await asyncio.start_server(broker.serve, "127.0.0.1", 0)
    broker.port = server.sockets[0].getsockname()[1]
    async with server:
        yield broker
        broker.hang_up.set()


def loop_errors() -> list[dict[str, Any]]:
    """Install a handler that keeps what asyncio would log as an error; returns the list it fills."""
    found: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: found.append(context))
    return found


async def until(condition: Any, what: str) -> None:
    try:
        async with asyncio.timeout(10):
            while not condition():
                await asyncio.sleep(0.01)
    except TimeoutError:
        pytest.fail(f"not within 10 s: {what}")


async def test_a_stop_while_waiting_for_connack_logs_nothing_when_the_connection_ends(slow_broker: SlowBroker) -> None:
    errors = loop_errors()
    client = make_client(BrokerAddress("127.0.0.1", slow_broker.port), "stopped-early")

    async def connect() -> None:
        async with client:
            pytest.fail("the broker never accepted the connection")

    task = asyncio.create_task(connect())
    async with asyncio.timeout(10):
        await slow_broker.connected.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    slow_broker.hang_up.set()
    await until(lambda: client._client.socket() is None, "paho saw the connection end")  # noqa: SLF001
    await asyncio.sleep(0.1)
    assert errors == []


async def test_a_connection_that_completes_after_the_stop_logs_nothing_when_it_ends(slow_broker: SlowBroker) -> None:
    errors = loop_errors()
    client = make_client(BrokerAddress("127.0.0.1", slow_broker.port), "stopped-at-once")

    async def connect(stopped: Client) -> None:
        async with stopped:
            await asyncio.Event().wait()

    task = asyncio.create_task(connect(client))
    await asyncio.sleep(0)  # the task is now connecting in aiomqtt's executor thread
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with asyncio.timeout(10):
        await slow_broker.connected.wait()
    slow_broker.answer.set()  # the CONNACK arrives for a client that gave up
    await until(client._connected.done, "the late CONNACK was read")  # noqa: SLF001
    slow_broker.hang_up.set()
    await until(client._disconnected.done, "the connection's end was seen")  # noqa: SLF001
    del client, task
    gc.collect()
    await asyncio.sleep(0.1)
    assert [e.get("message") for e in errors] == []


class LateSubackBroker:
    """Accepts the client, holds its SUBSCRIBE's SUBACK until `answer` is set, then sends it and a message."""

    def __init__(self) -> None:
        self.subscribed = asyncio.Event()
        self.answer = asyncio.Event()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)  # CONNECT
        writer.write(CONNACK_ACCEPTED)
        subscribe = await reader.read(1024)  # 82 <len> <packet id: 2 bytes> <topic filter> <qos>
        packet_id = subscribe[2:4]
        self.subscribed.set()
        await self.answer.wait()
        topic, payload = b"room/late", b"after the SUBACK"
        writer.write(b"\x90\x03" + packet_id + b"\x00")  # SUBACK granting QoS 0, for a call already given up
        writer.write(bytes([0x30, 2 + len(topic) + len(payload)]) + len(topic).to_bytes(2, "big") + topic + payload)
        await writer.drain()
        await reader.read()  # until the client hangs up
        writer.close()


async def test_a_subscribe_stopped_before_its_suback_logs_no_error_when_the_suback_comes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = LateSubackBroker()
    server = await asyncio.start_server(broker.serve, "127.0.0.1", 0)
    client = make_client(BrokerAddress("127.0.0.1", server.sockets[0].getsockname()[1]), "late-suback")
    async with server, asyncio.timeout(20), client:
        subscribing = asyncio.create_task(client.subscribe("room/#"))
        await broker.subscribed.wait()
        subscribing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await subscribing
        broker.answer.set()
        async for message in client.messages:  # it came after the SUBACK: the SUBACK has been handled
            assert message.payload == b"after the SUBACK"
            break
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_stop_swallowed_by_wait_for_is_raised_again() -> None:
    # What Python 3.11's asyncio.wait_for does when the stop lands as its future completes: it
    # catches the CancelledError and returns the result, leaving the task marked as cancelled.
    reached_the_loop = asyncio.Event()

    async def collector() -> None:
        with contextlib.suppress(asyncio.CancelledError):  # swallowed, as wait_for does
            await asyncio.Event().wait()
        stop_if_stopping()
        reached_the_loop.set()  # a collector would now consume for ever
        await asyncio.Event().wait()

    task = asyncio.create_task(collector())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(10):
            await task
    assert not reached_the_loop.is_set()
