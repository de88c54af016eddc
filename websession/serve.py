"""Serving a web app so that slow or idle clients cannot starve it of connections or descriptors.

Two limits both web apps share.  A connection must deliver each request's headers within
`header_timeout_s` (aiohttp's keep-alive timer closes a connection whose handler is still waiting
for a request when it fires, whether or not bytes trickle in).  And at most `max_connections` are
open at once, never more than the process's descriptor limit leaves room for: when a new one
arrives at the cap, the oldest connection that has not yet sent a whole request is closed to make
room (a half-open socket loses its place to a real visitor), and if every open one is serving a
request, the newcomer is closed instead.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

log = logging.getLogger(__name__)

HEADER_TIMEOUT_S = 15.0

# Why a listening socket could not be opened, in words a person can act on.
_BIND_REASONS = {
    errno.EADDRINUSE: "the port is already in use by another program",
    errno.EADDRNOTAVAIL: "that address is not one of this machine's",
    errno.EACCES: "ports below 1024 need root or CAP_NET_BIND_SERVICE",
}


class BindError(OSError):
    """The web app cannot listen on HOST:PORT: choose another address (the caller names its setting)."""

    def __init__(self, host: str, port: int, code: int | None, detail: str = "") -> None:
        """`code` is the errno the operating system gave."""
        self.host, self.port = host, port
        self.reason = _BIND_REASONS.get(code or 0) or detail or "cannot listen there"
        super().__init__(code, f"cannot listen on {host}:{port}: {self.reason}")

    def __str__(self) -> str:
        """One line: the address and why."""
        return f"cannot listen on {self.host}:{self.port}: {self.reason}"


def bind_error_in(exc: BaseException) -> BindError | None:
    """The BindError behind `exc`, also from inside (nested) TaskGroup exception groups; None when there is none."""
    if isinstance(exc, BindError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        return next((found for inner in exc.exceptions if (found := bind_error_in(inner)) is not None), None)
    return None


@dataclass(frozen=True, slots=True)
class ServeLimits:
    """How long a request's headers may take, and how many connections may be open at once."""

    header_timeout_s: float = HEADER_TIMEOUT_S
    max_connections: int = 512


def connection_cap(wanted: int) -> int:
    """`wanted`, lowered so that the open connections leave a quarter of the descriptor limit (at least 64) free."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - max(64, soft // 4)))


class ConnectionGuard:
    """The open connections, oldest first, and whether each has sent a whole request yet."""

    def __init__(self, cap: int) -> None:
        """At most `cap` connections open at once."""
        self.cap = cap
        self._open: dict[asyncio.Transport, bool] = {}  # transport -> has it sent a request
        self.evicted = 0

    def opened(self, transport: asyncio.Transport) -> bool:
        """Make room for a new connection; False when it must be closed (every open one is busy)."""
        if len(self._open) >= self.cap:
            idle = next((t for t, served in self._open.items() if not served), None)
            if idle is None:
                return False
            self._open.pop(idle)
            idle.abort()
            self.evicted += 1
            if self.evicted in (1, 10, 100) or self.evicted % 1000 == 0:
                log.warning("%d connections open, the cap: %d waiting ones closed so far", self.cap, self.evicted)
        self._open[transport] = False
        return True

    def served(self, transport: asyncio.BaseTransport | None) -> None:
        """The connection delivered a whole request: it keeps its place."""
        if isinstance(transport, asyncio.Transport) and transport in self._open:
            self._open[transport] = True

    def closed(self, transport: asyncio.Transport) -> None:
        """The connection ended."""
        self._open.pop(transport, None)

    def __len__(self) -> int:
        """How many are open."""
        return len(self._open)


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, counted by the guard."""

    def __init__(self, inner: Any, guard: ConnectionGuard) -> None:
        self._inner, self._guard = inner, guard
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # a TCP connection
        self._transport = transport
        if not self._guard.opened(transport):
            transport.abort()
            return
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return bool(self._inner.eof_received())

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._guard.closed(self._transport)
        if self._inner.transport is not None:
            self._inner.connection_lost(exc)


class GuardedSite(web.BaseSite):
    """A TCP site whose connections go through a `ConnectionGuard`."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, guard: ConnectionGuard) -> None:
        """Serve `runner` on ``host:port``."""
        super().__init__(runner)
        self._host, self._port, self.guard = host, port, guard

    @property
    def name(self) -> str:
        """The site's URL."""
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        """Listen."""
        await super().start()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: _Guarded(server(), self.guard), self._host, self._port, reuse_address=True
            )
        except OSError as exc:  # taken, not this machine's address, or a privileged port
            raise BindError(self._host, self._port, exc.errno, exc.strerror or str(exc)) from None


async def serve_app(
    app: web.Application, host: str, port: int, limits: ServeLimits = ServeLimits(), **runner_args: Any
) -> web.AppRunner:
    """Start serving `app` within `limits`; the caller cleans up with ``await runner.cleanup()``."""
    guard = ConnectionGuard(connection_cap(limits.max_connections))

    @web.middleware
    async def mark_served(request: web.Request, handler: Handler) -> web.StreamResponse:
        guard.served(request.transport)
        return await handler(request)

    app.middlewares.insert(0, mark_served)
    runner = web.AppRunner(app, keepalive_timeout=limits.header_timeout_s, **runner_args)
    await runner.setup()
    try:
        await GuardedSite(runner, host, port, guard).start()
    except BindError:
        await runner.cleanup()
        raise
    return runner


__all__ = ["BindError", "ConnectionGuard", "GuardedSite", "ServeLimits", "bind_error_in", "connection_cap", "serve_app"]
