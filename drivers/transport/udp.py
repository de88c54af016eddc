"""UDP control: plain datagrams, and VISCA over IP (header, sequence numbers, RESET)."""

from __future__ import annotations

import asyncio
import logging

from drivers.errors import TransportError
from drivers.noise import NoiseLog, preview
from drivers.protocol import visca_ip
from drivers.transport.base import Transport

log = logging.getLogger(__name__)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, owner: UdpTransport) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.owner._datagram(data)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable on a connected socket: nobody listens there (yet).
        log.debug("%s: %s", self.owner.name, exc)


class UdpTransport(Transport):
    """Datagrams to and from one peer; each datagram's payload joins the byte stream."""

    def __init__(self, host: str, port: int) -> None:
        """Bind lazily, on `open`."""
        super().__init__(f"udp://{host}:{port}")
        self.host, self.port = host, port
        self._socket: asyncio.DatagramTransport | None = None

    async def open(self) -> None:
        """Create the socket, connected to the peer."""
        await self.close()
        loop = asyncio.get_running_loop()
        try:
            self._socket, _ = await loop.create_datagram_endpoint(
                lambda: _Datagrams(self), remote_addr=(self.host, self.port)
            )
        except OSError as exc:
            raise TransportError(f"{self.name}: cannot open: {exc}") from exc
        self._opened()

    async def close(self) -> None:
        """Close the socket."""
        self.is_open = False
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()

    async def write(self, data: bytes) -> None:
        """Send one datagram."""
        self._send(data)

    def _send(self, data: bytes) -> None:
        if self._socket is None or not self.is_open:
            self._raise_if_failed()
            raise TransportError(f"{self.name}: not open")
        self._socket.sendto(data)

    def _datagram(self, data: bytes) -> None:
        self._received(data)


class ViscaIpTransport(UdpTransport):
    """VISCA over IP: each VISCA packet travels in a datagram with an 8-byte header.

    Only replies carrying the sequence number of the request in flight are passed on, so a
    late reply to an earlier request can never be taken for the current one.
    """

    resend_is_same_request = True

    def __init__(self, host: str, port: int, reset_timeout: float = 1.0) -> None:
        """`reset_timeout` bounds the wait for the camera's answer to RESET."""
        super().__init__(host, port)
        self.reset_timeout = reset_timeout
        self.sequence = visca_ip.SequenceCounter()
        self._in_flight: visca_ip.Datagram | None = None
        self._reset_done = asyncio.Event()
        self._needs_reset = False
        self._noise_log = NoiseLog(log, self.name)

    async def open(self) -> None:
        """Open the socket and RESET the camera's sequence number."""
        await super().open()
        await self.reset()

    async def reset(self) -> None:
        """Send the control RESET and wait briefly for its reply."""
        self._needs_reset = False
        self._reset_done.clear()
        self._send(bytes(visca_ip.Datagram(visca_ip.CONTROL, self.sequence.reset(), visca_ip.RESET)))
        try:
            async with asyncio.timeout(self.reset_timeout):
                await self._reset_done.wait()
        except TimeoutError:
            # Some VISCA-over-IP cameras ignore control messages; commands will tell.
            log.warning("%s: no reply to RESET within %.1f s", self.name, self.reset_timeout)

    async def write(self, data: bytes) -> None:
        """Send a VISCA packet with the next sequence number."""
        if self._needs_reset:
            await self.reset()
        self._in_flight = visca_ip.Datagram(visca_ip.payload_type(data), self.sequence.next(), data)
        self._send(bytes(self._in_flight))

    async def resend(self, data: bytes) -> None:
        """Send the same packet again with the same sequence number."""
        if self._in_flight is not None and self._in_flight.payload == data and not self._needs_reset:
            self._send(bytes(self._in_flight))
        else:
            await self.write(data)

    def _datagram(self, data: bytes) -> None:
        try:
            msg = visca_ip.Datagram.parse(data)
        except ValueError as exc:
            self._noise_log.report(data, f"dropped a malformed datagram ({exc})")
            return
        if msg.type in (visca_ip.CONTROL_REPLY, visca_ip.CONTROL):  # Sony lists 0F yy under both
            if msg.payload == visca_ip.RESET:
                self._reset_done.set()
            elif msg.payload in (visca_ip.SEQUENCE_ERROR, visca_ip.MESSAGE_ERROR):
                kind = "sequence" if msg.payload == visca_ip.SEQUENCE_ERROR else "message"
                self._noise_log.report(msg.payload, f"camera reports a {kind} error")
                self._needs_reset = True
            return
        if msg.type == visca_ip.REPLY and self._in_flight and msg.sequence == self._in_flight.sequence:
            self._received(msg.payload)
        else:
            log.debug(
                "%s: ignored datagram type %04x seq %d: %s", self.name, msg.type, msg.sequence, preview(msg.payload)
            )
