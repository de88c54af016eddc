"""An independent ONVIF client for the simulator's tests: zeep driven by ONVIF's own WSDLs.

Why zeep and not our driver's onvif-zeep-async: the point is a second opinion. zeep is a
general SOAP library that builds every request and parses every reply from the WSDL/XSD
(strict mode: an element the schema does not allow at that place is an error), so the
simulator's names, namespaces, order and types are checked against the ONVIF schemas rather
than against our reading of them. Everything ONVIF-specific — which binding sits at which
XAddr, the UsernameToken digest with a clock offset, when to authenticate — is written here
from the Core spec, independently of onvif-zeep-async (whose package we only read the WSDL
files from: they are ONVIF's published WSDLs). zeep is synchronous, so tests call it in a
thread while the simulator serves on the test's event loop.
"""

from __future__ import annotations

import asyncio
import importlib.resources
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import zeep
from lxml import etree
from zeep.transports import Transport
from zeep.wsse.username import UsernameToken

WSDL = importlib.resources.files("onvif") / "wsdl"
TER = "http://www.onvif.org/ver10/error"
BINDINGS = {
    "devicemgmt": "{http://www.onvif.org/ver10/device/wsdl}DeviceBinding",
    "media": "{http://www.onvif.org/ver10/media/wsdl}MediaBinding",
    "ptz": "{http://www.onvif.org/ver20/ptz/wsdl}PTZBinding",
}


class FakeClock:
    """A monotonic clock the test moves by hand (the simulated PTZ head reads it)."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class DigestToken:
    """zeep WS-Security plugin: a fresh UsernameToken PasswordDigest per request, its Created
    shifted by `offset` (what a client learnt from GetSystemDateAndTime; zero when it ignores it)."""

    def __init__(self, user: str, password: str, offset: timedelta = timedelta(0), text: bool = False) -> None:
        self.user, self.password, self.offset, self.text = user, password, offset, text

    def apply(self, envelope: Any, headers: Any) -> Any:
        created = datetime.now(UTC) + self.offset
        token = UsernameToken(self.user, self.password, use_digest=not self.text, created=created)
        return token.apply(envelope, headers)

    def verify(self, envelope: Any) -> Any:
        return envelope


@dataclass
class Clients:
    """One zeep Client per WSDL, parsed once per test module (parsing the XSDs takes seconds)."""

    clients: dict[str, zeep.Client]

    @classmethod
    def load(cls) -> Clients:
        transport = Transport(timeout=10, operation_timeout=10)
        settings = zeep.Settings(strict=True)
        return cls(
            {name: zeep.Client(str(WSDL / f"{name}.wsdl"), transport=transport, settings=settings) for name in BINDINGS}
        )

    def service(self, name: str, address: str, wsse: DigestToken | None) -> Any:
        client = self.clients[name]
        client.wsse = wsse
        return client.create_service(BINDINGS[name], address)

    def set_timeout(self, seconds: float) -> None:
        for client in self.clients.values():
            client.transport.operation_timeout = seconds


async def call(service: Any, operation: str, *args: Any, **kwargs: Any) -> Any:
    """One ONVIF call in a worker thread (zeep blocks), so the simulator keeps serving."""
    method: Callable[..., Any] = getattr(service, operation)
    return await asyncio.to_thread(method, *args, **kwargs)


def subcodes(fault: zeep.exceptions.Fault) -> list[str]:
    """The fault's subcodes as ter: local names (each must resolve to ONVIF's error namespace)."""
    names = []
    for qname in fault.subcodes or []:
        q = etree.QName(qname)
        assert q.namespace == TER, f"subcode {q} is not in {TER}"
        names.append(q.localname)
    return names


def camera_offset(sysdate: Any) -> timedelta:
    """The camera clock's offset from ours, from a GetSystemDateAndTime reply (Core spec 5.12)."""
    utc = sysdate.UTCDateTime
    camera = datetime(
        utc.Date.Year, utc.Date.Month, utc.Date.Day, utc.Time.Hour, utc.Time.Minute, utc.Time.Second, tzinfo=UTC
    )
    return camera - datetime.now(UTC)
