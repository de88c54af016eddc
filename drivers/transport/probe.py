"""One datagram out, every answer within a deadline back: the socket side of a discovery probe.

A probe is sent either to one host (unicast, ``HOST:PORT``) or to a multicast group on each of
this machine's IPv4 interfaces (TTL 1: it never leaves the LAN); whoever answers, answers to the
socket the probe left from.  Answers are bounded in number and size, and the wait always ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass

import psutil

from drivers.errors import TransportError

log = logging.getLogger(__name__)

# The most answers one probe collects (a school LAN has dozens of cameras, not thousands).
MAX_ANSWERS = 512
# A datagram larger than this is not a discovery answer.
MAX_DATAGRAM = 16 * 1024
# Sent twice (SOAP-over-UDP repeats a multicast message: UDP may lose it), this far apart.
REPEAT_AFTER_S = 0.25


@dataclass(frozen=True, slots=True)
class Answer:
    """One datagram that came back, and from where."""

    data: bytes
    host: str
    port: int


class _Collector(asyncio.DatagramProtocol):
    def __init__(self, answers: list[Answer]) -> None:
        self.answers = answers

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if len(self.answers) < MAX_ANSWERS and len(data) <= MAX_DATAGRAM:
            self.answers.append(Answer(data, str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.debug("probe: %s", exc)  # ICMP unreachable from a unicast target: nobody listens there


def lan_addresses() -> list[str]:
    """The IPv4 addresses of this machine, loopback and link-local left out (where a multicast probe goes)."""
    out = []
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith(("127.", "169.254.")):
                out.append(address.address)
    return sorted(set(out))


async def probe(
    payload: bytes, *, seconds: float, unicast: tuple[str, int] | None, group: tuple[str, int]
) -> list[Answer]:
    """Send `payload` to `unicast`, or else to `group` on every LAN interface; the answers within `seconds`."""
    loop = asyncio.get_running_loop()
    answers: list[Answer] = []
    sockets: list[asyncio.DatagramTransport] = []
    try:
        if unicast is not None:
            sockets.append(await _endpoint(loop, answers, None))
            targets = [unicast]
        else:
            for address in lan_addresses():
                with contextlib.suppress(TransportError):  # an interface that is down: the others still go
                    sockets.append(await _endpoint(loop, answers, address))
            if not sockets:
                raise TransportError("discovery: no network interface with an IPv4 address to probe from")
            targets = [group]
        for attempt in range(2):
            for sock in sockets:
                for target in targets:
                    with contextlib.suppress(OSError):
                        sock.sendto(payload, target)
            if attempt == 0:
                await asyncio.sleep(min(REPEAT_AFTER_S, seconds))
        await asyncio.sleep(max(0.0, seconds - REPEAT_AFTER_S))
    finally:
        for sock in sockets:
            sock.close()
    return answers


async def _endpoint(
    loop: asyncio.AbstractEventLoop, answers: list[Answer], interface: str | None
) -> asyncio.DatagramTransport:
    """A UDP socket bound to `interface` (any, for unicast), sending multicast out of it with TTL 1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        if interface is not None:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface))
        sock.bind((interface or "0.0.0.0", 0))
        sock.setblocking(False)
        transport, _ = await loop.create_datagram_endpoint(lambda: _Collector(answers), sock=sock)
    except OSError as exc:
        sock.close()
        raise TransportError(f"discovery: cannot open a UDP socket on {interface or 'any address'}: {exc}") from exc
    return transport
