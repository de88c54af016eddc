"""The simulated camera on the network.

Its ONVIF services and snapshots over HTTP (aiohttp), its WS-Discovery responder over UDP.

Every request body is bounded in size and in time before it is parsed; a silent camera
(`camera.silent = True`) accepts connections and requests and answers none of them until it
speaks again or the server closes.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from types import TracebackType

from aiohttp import web

from drivers.errors import ArgumentError, DriverError
from drivers.sim.onvif import dispatch, snapshot
from drivers.sim.onvif.camera import DEVICE_PATH, SNAPSHOT_PATH, STREAMS, Context, OnvifCamera
from drivers.sim.onvif.discovery import DiscoveryProtocol, Responder
from drivers.sim.onvif.httpdigest import DigestGuard
from drivers.sim.onvif.soap import MAX_MESSAGE_BYTES, SoapFault, envelope, fault_body

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 10.0
SOAP_TYPES = ("application/soap+xml", "application/xml", "text/xml")
SOAP_REPLY_TYPE = "application/soap+xml; charset=utf-8"
_HOST = re.compile(r"^[A-Za-z0-9.\-]{1,253}$|^[0-9A-Fa-f:]{2,39}$")
Report = Callable[[str], None]


class _TooLarge(DriverError):
    pass


class OnvifServer:
    """Serves one OnvifCamera on HTTP (and, if asked, WS-Discovery on UDP) until closed."""

    def __init__(
        self,
        camera: OnvifCamera,
        host: str = "127.0.0.1",
        port: int = 0,
        discovery_port: int | None = None,
        report: Report | None = None,
    ) -> None:
        """Nothing opens until `start` (or `async with`); port 0 picks a free port."""
        if not 0 <= port <= 65535 or (discovery_port is not None and not 0 <= discovery_port <= 65535):
            raise ArgumentError("ports must be 0..65535")
        self.camera, self.host = camera, host
        self.port = port
        self.discovery_port = discovery_port
        self.report = report or (lambda line: log.info("%s", line))
        self._runner: web.AppRunner | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._closing = asyncio.Event()
        self._digest = DigestGuard(camera.user, camera.auth.password, time.monotonic)

    @property
    def url(self) -> str:
        """The device service URL (what discovery announces as XAddrs)."""
        return f"{self._base(self.host)}{DEVICE_PATH}"

    def _base(self, host: str) -> str:
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}"

    async def start(self) -> None:
        """Listen on HTTP, then on UDP when a discovery port was given."""
        app = web.Application(client_max_size=MAX_MESSAGE_BYTES + 1)
        for path in dispatch.SERVICE_AT:
            app.router.add_route("*", path, self._soap)
        app.router.add_route("*", SNAPSHOT_PATH + "/{token}.jpg", self._snapshot)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = self._runner.addresses
        self.port = int(sockets[0][1]) if sockets else self.port
        if self.discovery_port is not None:
            loop = asyncio.get_running_loop()
            responder = Responder(self.camera)
            transport, _ = await loop.create_datagram_endpoint(
                lambda: DiscoveryProtocol(responder, lambda: self.url, self.report),
                local_addr=(self.host, self.discovery_port),
            )
            self._udp = transport
            self.discovery_port = int(transport.get_extra_info("sockname")[1])

    async def close(self) -> None:
        """Stop listening; requests hanging on a silent camera are dropped unanswered."""
        self._closing.set()
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> OnvifServer:
        """Start serving."""
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop serving."""
        await self.close()

    async def _answering(self, request: web.Request) -> bool:
        """Wait while the camera is silent; False if the server closed or the client left meanwhile.

        A request nobody waits for any more is never carried out.
        """
        if not self.camera.silent:
            return True
        waits = [asyncio.ensure_future(self.camera.answering()), asyncio.ensure_future(self._closing.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        gone = request.transport is None or request.transport.is_closing()
        if self._closing.is_set() and request.transport is not None:
            request.transport.abort()  # dropped unanswered, as a camera that died would
        return not (self._closing.is_set() or gone)

    def _context(self, request: web.Request) -> Context:
        host = self.host
        if host in ("", "0.0.0.0", "::"):  # a wildcard: answer with the address the client used
            asked = request.url.host or ""
            host = asked if _HOST.match(asked) else "127.0.0.1"
        return Context(self._base(host), host)

    async def _body(self, request: web.Request) -> bytes:
        if (request.content_length or 0) > MAX_MESSAGE_BYTES:
            raise _TooLarge
        chunks, size = [], 0
        async with asyncio.timeout(READ_TIMEOUT_S):
            while chunk := await request.content.read(16384):
                size += len(chunk)
                if size > MAX_MESSAGE_BYTES:
                    raise _TooLarge
                chunks.append(chunk)
        return b"".join(chunks)

    async def _soap(self, request: web.Request) -> web.StreamResponse:
        if not await self._answering(request):
            return web.Response(status=503)
        service = dispatch.SERVICE_AT[request.path]
        if request.method != "POST":
            self.report(f"onvif: {request.method} {request.path} -> 405")
            return web.Response(status=405, headers={"Allow": "POST"})
        if request.content_type not in SOAP_TYPES:
            self.report(f"onvif: {request.path} {request.content_type[:40]!r} -> 415")
            return web.Response(status=415, text="Unsupported Media Type: send application/soap+xml")
        try:
            data = await self._body(request)
        except _TooLarge:
            fault = SoapFault("Receiver", ("OutofMemory",), "Out of Memory: message too large", http_status=413)
            self.report(f"onvif: {request.path} body over {MAX_MESSAGE_BYTES} bytes -> 413")
            return self._reply(413, envelope(fault_body(fault)))
        except TimeoutError:
            self.report(f"onvif: {request.path} body not sent within {READ_TIMEOUT_S:g} s -> 408")
            return web.Response(status=408)
        reply = dispatch.answer(self.camera, service, data, self._context(request))
        self.report(f"onvif: {dispatch.SHORT[service]} {reply.line}")
        return self._reply(reply.status, reply.body)

    @staticmethod
    def _reply(status: int, body: bytes) -> web.Response:
        return web.Response(status=status, body=body, headers={"Content-Type": SOAP_REPLY_TYPE})

    async def _snapshot(self, request: web.Request) -> web.StreamResponse:
        if not await self._answering(request):
            return web.Response(status=503)
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405, headers={"Allow": "GET"})
        if self.camera.auth.password and not self._digest.check(
            request.method, request.path_qs, request.headers.get("Authorization")
        ):
            self.report(f"onvif: snapshot {request.path} -> 401")
            return web.Response(status=401, headers={"WWW-Authenticate": self._digest.challenge()})
        token = request.match_info["token"]
        stream = next((s for s in STREAMS if s.token == token), None)
        if stream is None:
            return web.Response(status=404)
        title = f"{self.camera.make} {self.camera.model} / {stream.token}"
        jpeg = await snapshot.render_async(
            stream.width, stream.height, self.camera.head.position(), title, self.camera.utc_now()
        )
        self.report(f"onvif: snapshot {stream.token} -> {len(jpeg)} bytes of JPEG")
        return web.Response(body=jpeg, content_type="image/jpeg")
