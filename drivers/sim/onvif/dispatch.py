"""One SOAP request in, one SOAP reply out: routing to a service's operation, auth, faults.

Sans-IO: the HTTP server hands in the bytes and the service the path names; every failure,
including a bug in an operation, comes back as a SOAP fault, never as an exception.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from drivers.sim.onvif import device_service, media_service, ptz_service
from drivers.sim.onvif.camera import DEVICE_PATH, MEDIA_PATH, PTZ_PATH, Context, OnvifCamera, Operation
from drivers.sim.onvif.soap import TDS, TPTZ, TRT, SoapFault, envelope, fault_body, parse_request, receiver, sender

log = logging.getLogger(__name__)

SERVICES: dict[str, dict[str, Operation]] = {
    TDS: device_service.OPERATIONS,
    TRT: media_service.OPERATIONS,
    TPTZ: ptz_service.OPERATIONS,
}
SERVICE_AT = {DEVICE_PATH: TDS, MEDIA_PATH: TRT, PTZ_PATH: TPTZ}
SHORT = {TDS: "device", TRT: "media", TPTZ: "ptz"}


@dataclass(frozen=True)
class Reply:
    """An HTTP status, the SOAP envelope to send, and one line saying what happened."""

    status: int
    body: bytes
    line: str


def _operation(service: str, namespace: str, name: str) -> Operation:
    if namespace not in SERVICES:
        raise sender("UnknownAction", reason=f"Unknown Action: {name} in namespace {namespace[:80]!r}")
    found = SERVICES[service].get(name) if namespace == service else None
    if found is None:
        where = SHORT[service]
        raise receiver("ActionNotSupported", reason=f"Optional Action Not Implemented: {name} at the {where} service")
    return found


def answer(camera: OnvifCamera, service: str, data: bytes, ctx: Context) -> Reply:
    """The reply of `camera`'s `service` (a namespace) to the SOAP request in `data`."""
    name = "?"
    try:
        request = parse_request(data)
        name = request.name
        operation = _operation(service, request.namespace, name)
        if not operation.pre_auth:
            camera.auth.check(request.headers)
        body = operation.handler(camera, request.operation, ctx)
    except SoapFault as fault:
        return Reply(
            fault.http_status, envelope(fault_body(fault), fault.headers), f"{name} -> {fault.label} ({fault.reason})"
        )
    except Exception:  # a bug costs this request a fault, never the camera
        log.exception("onvif simulator: %s failed", name)
        failed = receiver("Action", reason="Action Failed")
        return Reply(failed.http_status, envelope(fault_body(failed)), f"{name} -> {failed.label}")
    line = f"{name} -> ok"
    if service == TPTZ:
        here = camera.head.position()
        state = "moving" if camera.moving else "idle"
        line += f" (pan {here.pan:+.2f} tilt {here.tilt:+.2f} zoom {here.zoom:.2f}, {state})"
    return Reply(200, envelope(body), line)
