"""The simulator's SOAP layer without sockets: UsernameToken freshness and replay on a fake clock,
and a fuzz of the request decoder (whatever comes in, a reply goes out, never an exception)."""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from drivers.sim.onvif.camera import Context, OnvifCamera
from drivers.sim.onvif.dispatch import answer
from drivers.sim.onvif.soap import TDS, TPTZ, TRT, SoapFault, parse_request
from drivers.sim.onvif.wsse import PASSWORD_DIGEST, TOLERANCE_S

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
ENV = "http://www.w3.org/2003/05/soap-envelope"
NOW = datetime(2026, 9, 1, 8, 0, 0, tzinfo=UTC)
CTX = Context("http://127.0.0.1:8080", "127.0.0.1")


def token(password: str, created: str, nonce: bytes | None = None, *, kind: str = PASSWORD_DIGEST) -> str:
    nonce = nonce or os.urandom(16)
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()
    return (
        f'<w:Security xmlns:w="{WSSE}" xmlns:u="{WSU}"><w:UsernameToken><w:Username>admin</w:Username>'
        f'<w:Password Type="{kind}">{digest}</w:Password><w:Nonce>{base64.b64encode(nonce).decode()}</w:Nonce>'
        f"<u:Created>{created}</u:Created></w:UsernameToken></w:Security>"
    )


def request(header: str, body: str = f'<GetDeviceInformation xmlns="{TDS}"/>') -> bytes:
    return f'<s:Envelope xmlns:s="{ENV}"><s:Header>{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>'.encode()


@pytest.fixture
def camera() -> OnvifCamera:
    return OnvifCamera(password="pw", wall_clock=NOW.timestamp)


def outcome(camera: OnvifCamera, data: bytes) -> str:
    reply = answer(camera, TDS, data, CTX)
    return "ok" if reply.status == 200 else reply.line.split(" -> ")[1].split()[0]


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_created_must_be_within_the_tolerance_of_the_cameras_clock(camera: OnvifCamera) -> None:
    edge = timedelta(seconds=TOLERANCE_S)
    assert outcome(camera, request(token("pw", stamp(NOW - edge)))) == "ok"
    assert outcome(camera, request(token("pw", stamp(NOW + edge)))) == "ok"
    assert outcome(camera, request(token("pw", stamp(NOW - edge - timedelta(seconds=1))))) == "ter:NotAuthorized"
    assert outcome(camera, request(token("pw", stamp(NOW + edge + timedelta(seconds=1))))) == "ter:NotAuthorized"
    beijing = (NOW + timedelta(hours=8)).replace(tzinfo=None).isoformat(timespec="milliseconds")
    assert outcome(camera, request(token("pw", beijing + "+08:00"))) == "ok"  # the same instant
    assert outcome(camera, request(token("pw", beijing + "Z"))) == "ter:NotAuthorized"  # local time as UTC


def test_the_offset_clock_is_what_counts(camera: OnvifCamera) -> None:
    camera.clock_offset_s = -4 * 3600
    assert outcome(camera, request(token("pw", stamp(NOW)))) == "ter:NotAuthorized"
    assert outcome(camera, request(token("pw", stamp(NOW - timedelta(hours=4))))) == "ok"


def test_a_replayed_nonce_is_refused(camera: OnvifCamera) -> None:
    nonce = os.urandom(16)
    once = request(token("pw", stamp(NOW), nonce))
    assert outcome(camera, once) == "ok"
    assert outcome(camera, once) == "ter:NotAuthorized"
    assert outcome(camera, request(token("pw", stamp(NOW), nonce))) == "ter:NotAuthorized"


@pytest.mark.parametrize(
    "header",
    [
        token("pw", "2026-09-01T08:00:00"),  # no zone
        token("pw", "yesterday"),
        token("pw", stamp(NOW)).replace("<w:Nonce>", "<w:Nonce>!!"),
        token("pw", stamp(NOW), kind="urn:plain-text"),
        token("pw", stamp(NOW)).replace("admin", "a" * 300),
        "",
    ],
    ids=["no-zone", "not-a-date", "nonce-not-base64", "not-a-digest", "huge-username", "no-token"],
)
def test_malformed_tokens_are_refused(camera: OnvifCamera, header: str) -> None:
    assert outcome(camera, request(header)) == "ter:NotAuthorized"


VALID = [
    request(token("pw", stamp(NOW)), f'<GetSystemDateAndTime xmlns="{TDS}"/>'),
    request("", f'<GetCapabilities xmlns="{TDS}"><Category>PTZ</Category></GetCapabilities>'),
    request("", f'<GetServices xmlns="{TDS}"><IncludeCapability>true</IncludeCapability></GetServices>'),
]


def check_reply(camera: OnvifCamera, service: str, data: bytes) -> None:
    reply = answer(camera, service, data, CTX)
    assert reply.status in (200, 400, 500)
    root = etree.fromstring(reply.body)  # always a well-formed SOAP 1.2 envelope
    assert root.tag == f"{{{ENV}}}Envelope"


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2048), service=st.sampled_from([TDS, TRT, TPTZ]))
def test_fuzz_random_bytes_always_get_an_envelope(data: bytes, service: str) -> None:
    check_reply(OnvifCamera(password="pw", wall_clock=NOW.timestamp), service, data)


@settings(max_examples=300, deadline=None)
@given(
    which=st.integers(0, len(VALID) - 1),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_fuzz_mutated_requests_always_get_an_envelope(which: int, edits: list[tuple[int, int]]) -> None:
    data = bytearray(VALID[which])
    for position, value in edits:
        data[position % len(data)] = value
    check_reply(OnvifCamera(password="pw", wall_clock=NOW.timestamp), TDS, bytes(data))


def test_a_valid_request_parses_to_its_operation() -> None:
    parsed = parse_request(VALID[1])
    assert (parsed.namespace, parsed.name) == (TDS, "GetCapabilities")
    with pytest.raises(SoapFault) as caught:
        parse_request(b"<s:Envelope xmlns:s='" + ENV.encode() + b"'/>")
    assert caught.value.subcodes == ("Tag",)
