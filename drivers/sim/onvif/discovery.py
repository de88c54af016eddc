"""WS-Discovery (2005/04, as ONVIF uses it) for the simulated camera: Probe in, ProbeMatches out.

The responder answers a Probe sent to its UDP port (unicast; it joins no multicast group) when
the Probe's Types are all the camera's (dn:NetworkVideoTransmitter, tds:Device) and each of
its Scopes matches one of the camera's (rfc3986 or strcmp0 rules). Anything else, malformed
or not, gets no answer, as SOAP-over-UDP receivers do.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import xml.etree.ElementTree as ET
from collections import OrderedDict
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

from drivers.sim.onvif.camera import OnvifCamera
from drivers.sim.onvif.soap import DN, ENV, TDS, WSA, WSD, SoapFault, element, envelope, parse_xml

log = logging.getLogger(__name__)

PROBE = f"{WSD}/Probe"
PROBE_MATCHES = f"{WSD}/ProbeMatches"
ANONYMOUS = f"{WSA}/role/anonymous"
RFC3986 = f"{WSD}/rfc3986"
STRCMP0 = f"{WSD}/strcmp0"
TYPES = frozenset({(DN, "NetworkVideoTransmitter"), (TDS, "Device")})
MAX_REMEMBERED = 256


def scope_matches(wanted: str, offered: str, rule: str) -> bool:
    """Whether the probe's scope `wanted` matches the camera's `offered` under `rule`."""
    if rule == STRCMP0:
        return wanted == offered
    w, o = urlsplit(wanted), urlsplit(offered)
    if (w.scheme.lower(), w.netloc.lower()) != (o.scheme.lower(), o.netloc.lower()):
        return False
    w_segments = [s for s in w.path.split("/") if s]
    o_segments = [s for s in o.path.split("/") if s]
    return o_segments[: len(w_segments)] == w_segments


def _types(text: str, namespaces: dict[str, str]) -> set[tuple[str, str]] | None:
    found = set()
    for qname in text.split():
        prefix, _, local = qname.rpartition(":")
        namespace = namespaces.get(prefix)
        if namespace is None:
            return None
        found.add((namespace, local))
    return found


class Responder:
    """Sans-IO: a Probe's bytes in, the ProbeMatches' bytes (or None) out."""

    def __init__(self, camera: OnvifCamera) -> None:
        """Answers for `camera`, numbering its messages from 1 within one instance."""
        self.camera = camera
        self.instance_id = 1
        self.message_number = 0
        self._seen: OrderedDict[str, None] = OrderedDict()

    def reply(self, data: bytes, xaddr: str) -> bytes | None:
        """The ProbeMatches for this datagram, or None when it is not a Probe the camera matches."""
        namespaces: dict[str, str] = {}
        try:
            root = parse_xml(data, namespaces)
        except SoapFault:
            return None
        probe = root.find(f"{{{ENV}}}Body/{{{WSD}}}Probe")
        header = root.find(f"{{{ENV}}}Header")
        if root.tag != f"{{{ENV}}}Envelope" or probe is None or header is None:
            return None
        action = (header.findtext(f"{{{WSA}}}Action") or "").strip()
        message_id = (header.findtext(f"{{{WSA}}}MessageID") or "").strip()
        if action != PROBE or not message_id or len(message_id) > 256 or message_id in self._seen:
            return None  # not a Probe, or a retransmission of one already answered
        self._seen[message_id] = None
        while len(self._seen) > MAX_REMEMBERED:
            self._seen.popitem(last=False)
        if not self._matches(probe, namespaces):
            return None
        return self._probe_matches(message_id, xaddr)

    def _matches(self, probe: ET.Element, namespaces: dict[str, str]) -> bool:
        types_text = probe.findtext(f"{{{WSD}}}Types")
        if types_text and types_text.strip():
            wanted = _types(types_text, namespaces)
            if wanted is None or not wanted <= TYPES:
                return False
        scopes = probe.find(f"{{{WSD}}}Scopes")
        if scopes is None or not (scopes.text or "").strip():
            return True
        rule = scopes.get("MatchBy", RFC3986)
        if rule not in (RFC3986, STRCMP0):
            return False
        offered = self.camera.scopes()
        return all(any(scope_matches(w, o, rule) for o in offered) for w in (scopes.text or "").split())

    def _probe_matches(self, relates_to: str, xaddr: str) -> bytes:
        self.message_number += 1
        headers = (
            element(f"{{{WSA}}}MessageID", f"urn:uuid:{uuid.uuid4()}"),
            element(f"{{{WSA}}}RelatesTo", relates_to),
            element(f"{{{WSA}}}To", ANONYMOUS),
            element(f"{{{WSA}}}Action", PROBE_MATCHES),
            element(
                f"{{{WSD}}}AppSequence",
                None,
                {"InstanceId": self.instance_id, "MessageNumber": self.message_number},
            ),
        )
        match = element(
            f"{{{WSD}}}ProbeMatch",
            None,
            None,
            element(f"{{{WSA}}}EndpointReference", None, None, element(f"{{{WSA}}}Address", self.camera.endpoint)),
            element(f"{{{WSD}}}Types", "dn:NetworkVideoTransmitter tds:Device"),
            element(f"{{{WSD}}}Scopes", " ".join(self.camera.scopes())),
            element(f"{{{WSD}}}XAddrs", xaddr),
            element(f"{{{WSD}}}MetadataVersion", 1),
        )
        return envelope(element(f"{{{WSD}}}ProbeMatches", None, None, match), headers)


class DiscoveryProtocol(asyncio.DatagramProtocol):
    """The UDP side: one datagram in, at most one datagram back to its sender."""

    def __init__(self, responder: Responder, xaddr: Callable[[], str], report: Callable[[str], None]) -> None:
        """`xaddr` gives the device service URL to announce."""
        self.responder, self.xaddr, self.report = responder, xaddr, report
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport to answer on."""
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        """Answer a matching Probe; drop everything else (and everything while the camera is silent)."""
        if self.responder.camera.silent or self.transport is None:
            return
        try:
            reply = self.responder.reply(data, self.xaddr())
        except Exception:  # a hostile datagram costs that datagram, never the responder
            log.exception("onvif discovery: datagram from %s", addr)
            return
        if reply is None:
            self.report(f"onvif: discovery: {len(data)} bytes from {addr[0]}:{addr[1]} not answered")
            return
        self.transport.sendto(reply, addr)
        self.report(f"onvif: discovery: Probe from {addr[0]}:{addr[1]} -> ProbeMatches")

    def error_received(self, exc: Exception) -> None:
        """An ICMP error for an earlier reply: nothing to do but note it."""
        log.debug("onvif discovery: %s", exc)
