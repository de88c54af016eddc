"""One UDP datagram, sent and forgotten (Wake-on-LAN): broadcast allowed, errors raised at once."""

from __future__ import annotations

import asyncio
import socket

from drivers.errors import TransportError

SEND_TIMEOUT_S = 2.0


async def send_datagram(data: bytes, host: str, port: int, *, timeout: float = SEND_TIMEOUT_S) -> None:
    """Send `data` to ``host:port`` (an IPv4 address, broadcast allowed); TransportError naming both if it fails.

    A plain non-blocking socket rather than an asyncio datagram transport: the transport reports a
    refused send to its protocol later, where a caller would never see it.
    """
    name = f"udp://{host}:{port}"
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        async with asyncio.timeout(timeout):
            await asyncio.get_running_loop().sock_sendto(sock, data, (host, port))
    except TimeoutError:
        raise TransportError(f"{name}: could not send within {timeout:g} s") from None
    except OSError as exc:
        raise TransportError(f"{name}: cannot send: {exc.strerror or exc}") from exc
    finally:
        sock.close()
