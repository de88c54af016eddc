"""The simulator's WS-Discovery responder: a unicast Probe on loopback UDP, as the WS-Discovery
2005/04 spec and the ONVIF Core spec write it, and the ProbeMatches it earns (or not)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from lxml import etree

from drivers.sim.onvif import OnvifCamera, OnvifServer

ENV = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
DN = "http://www.onvif.org/ver10/network/wsdl"
TDS = "http://www.onvif.org/ver10/device/wsdl"


def probe(message_id: str, types: str = "dn:NetworkVideoTransmitter", scopes: str = "", match_by: str = "") -> bytes:
    scope = f"<d:Scopes{f' MatchBy={match_by!r}' if match_by else ''}>{scopes}</d:Scopes>" if scopes else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="{ENV}" xmlns:a="{WSA}" xmlns:d="{WSD}" xmlns:dn="{DN}">
 <s:Header>
  <a:Action s:mustUnderstand="1">{WSD}/Probe</a:Action>
  <a:MessageID>{message_id}</a:MessageID>
  <a:ReplyTo><a:Address>{WSA}/role/anonymous</a:Address></a:ReplyTo>
  <a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>
 </s:Header>
 <s:Body><d:Probe><d:Types>{types}</d:Types>{scope}</d:Probe></s:Body>
</s:Envelope>""".encode()


def declare(data: bytes, prefix: str, namespace: str) -> bytes:
    """The probe with one more namespace prefix declared on its envelope."""
    return data.replace(b"xmlns:dn=", f'xmlns:{prefix}="{namespace}" xmlns:dn='.encode(), 1)


class Inbox(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait(data)


class Prober:
    def __init__(self, transport: asyncio.DatagramTransport, inbox: Inbox, port: int) -> None:
        self.transport, self.inbox, self.port = transport, inbox, port

    def send(self, data: bytes) -> None:
        self.transport.sendto(data, ("127.0.0.1", self.port))

    async def next_reply(self) -> etree._Element:
        return etree.fromstring(await asyncio.wait_for(self.inbox.queue.get(), timeout=10))


@pytest.fixture
async def camera_and_prober() -> AsyncIterator[tuple[OnvifServer, Prober]]:
    camera = OnvifCamera(model="SimPTZ 2", name="Room 101")
    async with OnvifServer(camera, discovery_port=0) as server:
        assert server.discovery_port
        loop = asyncio.get_running_loop()
        transport, inbox = await loop.create_datagram_endpoint(Inbox, local_addr=("127.0.0.1", 0))
        try:
            yield server, Prober(transport, inbox, server.discovery_port)
        finally:
            transport.close()


def relates_to(reply: etree._Element) -> str:
    return reply.findtext(f"{{{ENV}}}Header/{{{WSA}}}RelatesTo") or ""


async def test_a_unicast_probe_gets_a_probe_match(camera_and_prober: tuple[OnvifServer, Prober]) -> None:
    server, prober = camera_and_prober
    message_id = f"urn:uuid:{uuid.uuid4()}"
    prober.send(probe(message_id))
    reply = await prober.next_reply()
    header = reply.find(f"{{{ENV}}}Header")
    assert header is not None
    assert header.findtext(f"{{{WSA}}}Action") == f"{WSD}/ProbeMatches"
    assert relates_to(reply) == message_id
    assert header.findtext(f"{{{WSA}}}To") == f"{WSA}/role/anonymous"
    match = reply.find(f"{{{ENV}}}Body/{{{WSD}}}ProbeMatches/{{{WSD}}}ProbeMatch")
    assert match is not None
    assert match.findtext(f"{{{WSD}}}XAddrs") == server.url
    assert match.findtext(f"{{{WSA}}}EndpointReference/{{{WSA}}}Address") == server.camera.endpoint
    types_node = match.find(f"{{{WSD}}}Types")
    assert types_node is not None and types_node.text
    resolved = {etree.QName(types_node.nsmap[q.split(":")[0]], q.split(":")[1]) for q in types_node.text.split()}
    assert resolved == {etree.QName(DN, "NetworkVideoTransmitter"), etree.QName(TDS, "Device")}
    scopes = (match.findtext(f"{{{WSD}}}Scopes") or "").split()
    assert "onvif://www.onvif.org/Profile/Streaming" in scopes
    assert "onvif://www.onvif.org/type/video_encoder" in scopes
    assert "onvif://www.onvif.org/hardware/SimPTZ%202" in scopes
    assert "onvif://www.onvif.org/name/Room%20101" in scopes


async def test_only_matching_probes_are_answered(camera_and_prober: tuple[OnvifServer, Prober]) -> None:
    _, prober = camera_and_prober
    unanswered = [
        declare(probe("urn:uuid:other-type", types="p:Printer"), "p", "urn:printers"),
        declare(probe("urn:uuid:one-type-of-two", types="dn:NetworkVideoTransmitter p:Printer"), "p", "urn:printers"),
        probe("urn:uuid:profile-g", scopes="onvif://www.onvif.org/Profile/G"),
        probe("urn:uuid:bad-rule", scopes="onvif://www.onvif.org/Profile", match_by="urn:my-rule"),
        probe("urn:uuid:unbound-prefix", types="zz:NetworkVideoTransmitter"),
        b"\x00garbage",
        probe("urn:uuid:bomb").replace(b"<?xml", b'<!DOCTYPE x [<!ENTITY a "aaaa">]><?xml'),
    ]
    for datagram in unanswered:
        prober.send(datagram)
    answered = ["urn:uuid:all", "urn:uuid:device-type", "urn:uuid:scope-prefix", "urn:uuid:strcmp"]
    prober.send(probe(answered[0], types=""))
    prober.send(declare(probe(answered[1], types="tds:Device"), "tds", TDS))
    prober.send(probe(answered[2], scopes="onvif://www.onvif.org/Profile onvif://www.onvif.org/type"))
    strcmp = f"{WSD}/strcmp0"
    prober.send(probe(answered[3], scopes="onvif://www.onvif.org/Profile/Streaming", match_by=strcmp))
    # Datagrams on loopback arrive in order: had any earlier probe been answered, it would come first.
    assert [relates_to(await prober.next_reply()) for _ in answered] == answered


async def test_a_retransmitted_probe_is_answered_once(camera_and_prober: tuple[OnvifServer, Prober]) -> None:
    _, prober = camera_and_prober
    prober.send(probe("urn:uuid:once"))
    prober.send(probe("urn:uuid:once"))
    prober.send(probe("urn:uuid:then"))
    assert [relates_to(await prober.next_reply()) for _ in range(2)] == ["urn:uuid:once", "urn:uuid:then"]


async def test_a_silent_camera_does_not_answer_probes(camera_and_prober: tuple[OnvifServer, Prober]) -> None:
    server, prober = camera_and_prober
    server.camera.silent = True
    prober.send(probe("urn:uuid:while-silent"))
    await asyncio.sleep(0.2)  # let it arrive while the camera is silent
    server.camera.silent = False
    prober.send(probe("urn:uuid:after"))
    assert relates_to(await prober.next_reply()) == "urn:uuid:after"
