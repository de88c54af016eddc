"""TCP control ports (Samsung MDC 1515, NEC 7142, BenQ 4660, ...)."""

from __future__ import annotations

import asyncio
import socket

from drivers.errors import TransportError
from drivers.transport.base import Transport


class _Stream(asyncio.Protocol):
    def __init__(self, owner: TcpTransport) -> None:
        self.owner = owner

    def data_received(self, data: bytes) -> None:
        self.owner._received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.owner.is_open:
            self.owner._failed(exc or ConnectionResetError("connection closed by the device"))


class TcpTransport(Transport):
    """One TCP connection to a device's control port."""

    reconnect_when_silent = True

    def __init__(self, host: str, port: int, connect_timeout: float = 3.0) -> None:
        """Connect lazily, on `open`."""
        super().__init__(f"tcp://{host}:{port}")
        self.host, self.port = host, port
        self.connect_timeout = connect_timeout
        self._socket: asyncio.Transport | None = None

    async def open(self) -> None:
        """Connect; bytes then arrive through the protocol callbacks."""
        await self.close()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                sock, _ = await loop.create_connection(lambda: _Stream(self), self.host, self.port)
        except (OSError, TimeoutError) as exc:
            raise TransportError(f"{self.name}: cannot connect: {exc or 'timed out'}") from exc
        raw = sock.get_extra_info("socket")
        if raw is not None:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self._socket = sock
        self._opened()

    async def close(self) -> None:
        """Close the connection."""
        self.is_open = False
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()

    async def write(self, data: bytes) -> None:
        """Queue bytes on the socket (asyncio writes without blocking)."""
        if self._socket is None or not self.is_open:
            self._raise_if_failed()
            raise TransportError(f"{self.name}: not open")
        self._socket.write(data)
