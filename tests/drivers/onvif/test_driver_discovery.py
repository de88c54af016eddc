"""WS-Discovery against the simulated camera's unicast responder (loopback only: a Probe to HOST:PORT)."""

from __future__ import annotations

import socket

from drivers.onvif.discovery import discover
from drivers.sim.onvif import OnvifCamera, OnvifServer


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_probe_finds_the_camera_its_address_make_and_model() -> None:
    camera = OnvifCamera(user="admin", password="pw", name="HIKVISION", model="DS-2DE4A425IW-DE")
    async with OnvifServer(camera, host="127.0.0.1", port=0, discovery_port=0, report=lambda line: None) as server:
        assert server.discovery_port
        found = await discover(1.0, ("127.0.0.1", server.discovery_port))
    assert len(found) == 1  # the Probe goes out twice; the camera is listed once
    (one,) = found
    assert one.xaddrs == (server.url,) and one.host_port == ("127.0.0.1", server.port)
    assert (one.make, one.model, one.endpoint) == ("HIKVISION", "DS-2DE4A425IW-DE", camera.endpoint)


async def test_nobody_answering_is_an_empty_list_after_the_deadline() -> None:
    assert await discover(0.3, ("127.0.0.1", free_udp_port())) == []


async def test_answers_that_are_not_ours_are_ignored() -> None:
    """A ProbeMatches for somebody else's Probe, and noise, from a fake responder: nothing is listed."""
    import asyncio

    from drivers.sim.onvif.discovery import Responder

    camera = OnvifCamera(user="admin", password="pw")
    responder = Responder(camera)
    probe = (
        b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        b'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        b'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"><s:Header>'
        b"<a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action>"
        b"<a:MessageID>urn:uuid:someone-else</a:MessageID></s:Header><s:Body><d:Probe/></s:Body></s:Envelope>"
    )
    foreign = responder.reply(probe, "http://127.0.0.1:1/onvif/device_service")
    assert foreign is not None

    class Liar(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            for answer in (foreign, b"\x00garbage<<<", b"<not-soap/>", b"x" * 60000):
                self.transport.sendto(answer, addr)  # type: ignore[attr-defined]

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Liar, local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        assert await discover(0.5, ("127.0.0.1", port)) == []
    finally:
        transport.close()
