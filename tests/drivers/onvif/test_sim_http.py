"""The ONVIF simulator's HTTP side under hostile input, its snapshot, and a camera gone silent.

Raw HTTP on loopback: what no SOAP library would send (entity bombs, deep nesting, huge or
endless bodies, SOAP 1.1, forbidden headers) must cost one fault each and never the camera.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import cv2
import numpy as np
import pytest
import requests
from lxml import etree
from requests.auth import HTTPDigestAuth

from drivers.sim.onvif import OnvifCamera, OnvifServer

ENV = "http://www.w3.org/2003/05/soap-envelope"
SOAP = {"Content-Type": "application/soap+xml; charset=utf-8"}
TIME = '<GetSystemDateAndTime xmlns="http://www.onvif.org/ver10/device/wsdl"/>'


def soap(body: str, header: str = "", ns: str = ENV) -> bytes:
    envelope = f'<s:Envelope xmlns:s="{ns}"><s:Header>{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>'
    return b'<?xml version="1.0"?>' + envelope.encode()


@pytest.fixture
async def server() -> AsyncIterator[OnvifServer]:
    async with OnvifServer(OnvifCamera(password="pw")) as running:
        yield running


async def post(server: OnvifServer, data: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    timeout = aiohttp.ClientTimeout(10)
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.url, data=data, headers=headers or SOAP, timeout=timeout) as r,
    ):
        return r.status, await r.read()


def fault_codes(body: bytes) -> list[str]:
    """The Code value and every Subcode value of a SOAP 1.2 fault, as written."""
    root = etree.fromstring(body)
    return [v.text for v in root.iterfind(f".//{{{ENV}}}Code//{{{ENV}}}Value")]


def resolve(node: etree._Element, qname: str) -> etree.QName:
    prefix, _, local = qname.partition(":")
    return etree.QName(node.nsmap[prefix], local)


async def still_answers(server: OnvifServer) -> None:
    status, body = await post(server, soap(TIME))
    assert status == 200 and b"UTCDateTime" in body


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>&lol4;</s:Body></s:Envelope>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE x [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><a>&secret;</a></s:Body></s:Envelope>"""


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(BOMB, id="entity-bomb"),
        pytest.param(XXE, id="external-entity"),
        pytest.param(soap("<a>" * 5000 + "</a>" * 5000), id="nested-5000-deep"),
        pytest.param(soap("<a/>" * 5000), id="5000-elements"),
        pytest.param(soap("<a>&undefined;</a>"), id="undefined-entity"),
        pytest.param(b"<?xml-stylesheet href='x'?>" + soap(TIME), id="processing-instruction"),
        pytest.param(b"not xml at all", id="not-xml"),
        pytest.param(b"", id="empty"),
        pytest.param(soap(TIME)[:-20], id="truncated"),
        pytest.param(b"\xff\xfe<\x00", id="bad-encoding"),
    ],
)
async def test_hostile_xml_is_a_well_formed_fault(server: OnvifServer, data: bytes) -> None:
    status, body = await post(server, data)
    assert status == 400
    assert fault_codes(body) == ["env:Sender", "ter:WellFormed"]
    assert b"root:" not in body and b"lollol" not in body
    await still_answers(server)


async def test_a_huge_body_is_refused_before_it_is_read_whole(server: OnvifServer) -> None:
    big = soap("<a>" + "x" * (2 * 1024 * 1024) + "</a>")
    status, body = await post(server, big)
    assert status == 413 and fault_codes(body) == ["env:Receiver", "ter:OutofMemory"]

    async def endless() -> AsyncIterator[bytes]:  # chunked, no Content-Length: counted as it comes
        for _ in range(200):
            yield b"<a>" + b"y" * 8192 + b"</a>"

    status, _ = await post(server, endless())  # type: ignore[arg-type]
    assert status == 413
    await still_answers(server)


async def test_envelope_rules_of_soap_1_2(server: OnvifServer) -> None:
    status, body = await post(server, soap(TIME, ns="http://schemas.xmlsoap.org/soap/envelope/"))
    assert (status, fault_codes(body)) == (500, ["env:VersionMismatch"])
    supported = etree.fromstring(body).find(f"{{{ENV}}}Header/{{{ENV}}}Upgrade/{{{ENV}}}SupportedEnvelope")
    assert supported is not None and resolve(supported, supported.get("qname", "")) == etree.QName(ENV, "Envelope")
    must = '<x:Secret xmlns:x="urn:x" s:mustUnderstand="true"/>'
    status, body = await post(server, soap(TIME, header=must))
    assert (status, fault_codes(body)) == (500, ["env:MustUnderstand"])
    named = etree.fromstring(body).find(f"{{{ENV}}}Header/{{{ENV}}}NotUnderstood")
    assert named is not None and resolve(named, named.get("qname", "")) == etree.QName("urn:x", "Secret")
    status, body = await post(server, soap(TIME + TIME))
    assert (status, fault_codes(body)) == (400, ["env:Sender", "ter:InvalidArgs"])
    status, body = await post(server, soap('<Reboot xmlns="urn:not-onvif"/>'))
    assert (status, fault_codes(body)) == (400, ["env:Sender", "ter:UnknownAction"])
    status, body = await post(server, soap('<SystemReboot xmlns="http://www.onvif.org/ver10/device/wsdl"/>'))
    assert (status, fault_codes(body)) == (500, ["env:Receiver", "ter:ActionNotSupported"])
    info = '<GetDeviceInformation xmlns="http://www.onvif.org/ver10/device/wsdl"/>'
    status, body = await post(server, soap(info))
    assert (status, fault_codes(body)) == (400, ["env:Sender", "ter:NotAuthorized"])


async def test_http_errors_for_what_is_not_a_soap_request(server: OnvifServer) -> None:
    status, _ = await post(server, soap(TIME), {"Content-Type": "image/png"})
    assert status == 415
    async with aiohttp.ClientSession() as session:
        async with session.get(server.url) as reply:
            assert reply.status == 405
        async with session.get(server.url.replace("device_service", "nowhere")) as reply:
            assert reply.status == 404


async def test_the_snapshot_is_a_jpeg_behind_digest_auth(server: OnvifServer) -> None:
    url = server.url.replace("device_service", "snapshot/sub.jpg")
    server.camera.head.move_to((0.5, 0.0), None)
    plain = await asyncio.to_thread(requests.get, url, timeout=10)
    assert plain.status_code == 401 and plain.headers["WWW-Authenticate"].startswith("Digest ")
    wrong = await asyncio.to_thread(requests.get, url, auth=HTTPDigestAuth("admin", "nope"), timeout=10)
    assert wrong.status_code == 401
    good = await asyncio.to_thread(requests.get, url, auth=HTTPDigestAuth("admin", "pw"), timeout=10)
    assert good.status_code == 200 and good.headers["Content-Type"] == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(good.content, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == (360, 640, 3)
    missing = await asyncio.to_thread(
        requests.get, url.replace("sub", "third"), auth=HTTPDigestAuth("admin", "pw"), timeout=10
    )
    assert missing.status_code == 404


async def test_a_silent_camera_takes_the_connection_and_never_answers(server: OnvifServer) -> None:
    server.camera.silent = True
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    request = soap(TIME)
    writer.write(
        b"POST /onvif/device_service HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/soap+xml\r\nContent-Length: %d\r\n\r\n%s" % (len(request), request)
    )
    await writer.drain()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(1), timeout=0.5)
    server.camera.silent = False
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    assert head.startswith(b"HTTP/1.1 200")
    writer.close()
    await writer.wait_closed()


async def test_closing_the_server_drops_requests_hanging_on_a_silent_camera() -> None:
    camera = OnvifCamera()
    camera.silent = True
    async with OnvifServer(camera) as server:
        pending = asyncio.ensure_future(post(server, soap(TIME)))
        await asyncio.sleep(0.2)  # let the request reach the camera
    with pytest.raises(aiohttp.ClientError):
        await asyncio.wait_for(pending, timeout=10)
