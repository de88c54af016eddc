"""WS-Discovery of ONVIF cameras: a Probe for NetworkVideoTransmitter, the ProbeMatches read back.

The messages are WSDiscovery's (PyPI ``WSDiscovery``: its Probe builder and its parser); the socket
side is `drivers.transport.probe`, so that a probe has a deadline and bounded answers, and can go
to one host (``--probe HOST:PORT``) as well as to the multicast group 239.255.255.250:3702.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from wsdiscovery import QName
from wsdiscovery.actions import NS_ACTION_PROBE_MATCH, constructProbe
from wsdiscovery.message import createSOAPMessage, parseSOAPMessage

from drivers.transport.probe import probe

log = logging.getLogger(__name__)

GROUP = ("239.255.255.250", 3702)
# ONVIF Core, 7.3.2: a device announces (and is probed for) the type dn:NetworkVideoTransmitter.
NVT = QName("http://www.onvif.org/ver10/network/wsdl", "NetworkVideoTransmitter", "dn")
_SCOPE = "onvif://www.onvif.org/"
MAX_TEXT = 128


@dataclass(frozen=True, slots=True)
class Found:
    """One camera that answered: its device service address(es) and what its scopes say about it."""

    endpoint: str  # the EndpointReference address (a urn:uuid: that stays the same across addresses)
    xaddrs: tuple[str, ...]
    make: str = ""  # from the scope onvif://www.onvif.org/mfr/..., else /name/... (Hikvision: HIKVISION)
    model: str = ""  # from onvif://www.onvif.org/hardware/...
    answered_from: str = ""

    @property
    def host_port(self) -> tuple[str, int] | None:
        """HOST and PORT of the first http XAddr (where `onvif://` addresses point)."""
        for xaddr in self.xaddrs:
            parts = urlsplit(xaddr)
            try:
                port = parts.port
            except ValueError:
                continue
            if parts.scheme in ("http", "https") and parts.hostname:
                return parts.hostname, port or (443 if parts.scheme == "https" else 80)
        return None


async def discover(seconds: float, target: tuple[str, int] | None = None) -> list[Found]:
    """Probe (to `target`, else the multicast group) and read every ProbeMatch that answers our Probe."""
    envelope = constructProbe([NVT], [])
    message_id = envelope.getMessageId()
    payload = createSOAPMessage(envelope).encode("utf-8")
    found: dict[str, Found] = {}
    for answer in await probe(payload, seconds=seconds, unicast=target, group=GROUP):
        for camera in _matches(answer.data, answer.host, message_id):
            found.setdefault(camera.endpoint, camera)
    return sorted(found.values(), key=lambda f: (f.host_port or ("", 0), f.endpoint))


def _matches(data: bytes, host: str, message_id: str) -> list[Found]:
    """The cameras one datagram lists, if it is a ProbeMatches answering `message_id`; [] for anything else."""
    try:
        envelope = parseSOAPMessage(data, host)
    except Exception as exc:  # a hostile datagram: the parser's own exceptions are many and undocumented
        log.debug("discovery: unreadable answer from %s: %s", host, exc)
        return []
    if envelope is None or envelope.getAction() != NS_ACTION_PROBE_MATCH or envelope.getRelatesTo() != message_id:
        return []
    out = []
    for match in envelope.getProbeResolveMatches():
        xaddrs = tuple(str(x)[: MAX_TEXT * 4] for x in (match.getXAddrs() or []) if isinstance(x, str))
        scopes = [s.getValue() for s in (match.getScopes() or [])]
        out.append(
            Found(
                endpoint=str(match.getEPR())[:MAX_TEXT],
                xaddrs=xaddrs,
                make=_scope(scopes, "mfr") or _scope(scopes, "name"),
                model=_scope(scopes, "hardware"),
                answered_from=host,
            )
        )
    return out


def _scope(scopes: list[str], key: str) -> str:
    prefix = f"{_SCOPE}{key}/"
    for scope in scopes:
        if isinstance(scope, str) and scope.startswith(prefix):
            return unquote(scope[len(prefix) :])[:MAX_TEXT]
    return ""
