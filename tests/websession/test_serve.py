"""Serving within limits: headers that never end are cut off, and idle sockets give way to real visitors."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from central.mosquitto import free_port
from websession.serve import ConnectionGuard, ServeLimits, serve_app


def app() -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    application = web.Application()
    application.router.add_get("/", hello)
    return application


async def test_a_connection_that_never_finishes_its_headers_is_closed() -> None:
    port = free_port()
    runner = await serve_app(app(), "127.0.0.1", port, ServeLimits(header_timeout_s=1.0, max_connections=8))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for _ in range(3):
            writer.write(b"X-Slow: 1\r\n")  # bytes trickling in do not keep it open
            await writer.drain()
            await asyncio.sleep(0.2)
        async with asyncio.timeout(20):
            assert await reader.read() == b""  # closed by the server, nothing answered
        writer.close()
    finally:
        await runner.cleanup()


async def test_at_the_cap_the_oldest_waiting_socket_gives_way() -> None:
    port = free_port()
    runner = await serve_app(app(), "127.0.0.1", port, ServeLimits(max_connections=5))
    idle = []
    try:
        for _ in range(20):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\n")
            idle.append(writer)
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as http, asyncio.timeout(20):
            for _ in range(3):
                async with http.get(f"http://127.0.0.1:{port}/") as response:
                    assert await response.text() == "hello"
    finally:
        for writer in idle:
            writer.close()
        await runner.cleanup()


def test_the_guard_keeps_connections_that_are_serving() -> None:
    class Transport(asyncio.Transport):
        aborted = False

        def abort(self) -> None:
            self.aborted = True

    guard = ConnectionGuard(2)
    first, second, third, fourth = Transport(), Transport(), Transport(), Transport()
    assert guard.opened(first) and guard.opened(second)
    guard.served(first)
    assert guard.opened(third)
    assert second.aborted and not first.aborted and len(guard) == 2
    guard.served(third)
    assert not guard.opened(fourth)  # every open one is busy: the newcomer goes
    guard.closed(first)
    assert guard.opened(fourth) and len(guard) == 2
