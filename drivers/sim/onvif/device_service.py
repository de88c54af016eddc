"""The device management service (ver10/device/wsdl): time, identity, capabilities, services."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

from drivers.sim.onvif import args, media_service, ptz_service
from drivers.sim.onvif.camera import DEVICE_PATH, MEDIA_PATH, PTZ_PATH, Context, OnvifCamera, Operation
from drivers.sim.onvif.soap import TDS, TPTZ, TRT, TT, element, receiver

SERVICE_PATHS = {TDS: DEVICE_PATH, TRT: MEDIA_PATH, TPTZ: PTZ_PATH}
SERVICE_VERSION = (16, 12)
LOCAL_TZ = ("CST-8", timedelta(hours=8))  # POSIX TZ of China Standard Time, and its offset
CATEGORIES = ("All", "Analytics", "Device", "Events", "Imaging", "Media", "PTZ")


def _tds(name: str, text: object = None, attrs: dict[str, object] | None = None, *kids: ET.Element) -> ET.Element:
    return element(f"{{{TDS}}}{name}", text, attrs, *kids)


def _tt(name: str, text: object = None, attrs: dict[str, object] | None = None, *kids: ET.Element) -> ET.Element:
    return element(f"{{{TT}}}{name}", text, attrs, *kids)


def _date_time(name: str, when: datetime) -> ET.Element:
    time = _tt("Time", None, None, _tt("Hour", when.hour), _tt("Minute", when.minute), _tt("Second", when.second))
    date = _tt("Date", None, None, _tt("Year", when.year), _tt("Month", when.month), _tt("Day", when.day))
    return _tt(name, None, None, time, date)


def get_system_date_and_time(camera: OnvifCamera, op: ET.Element, ctx: Context) -> ET.Element:
    """The camera's clock in UTC and local time (Manual: a classroom camera is rarely on NTP)."""
    now = camera.utc_now()
    tz, offset = LOCAL_TZ
    body = [
        _tt("DateTimeType", "Manual"),
        _tt("DaylightSavings", False),
        _tt("TimeZone", None, None, _tt("TZ", tz)),
        _date_time("UTCDateTime", now),
        _date_time("LocalDateTime", now + offset),
    ]
    return _tds("GetSystemDateAndTimeResponse", None, None, _tds("SystemDateAndTime", None, None, *body))


def get_device_information(camera: OnvifCamera, op: ET.Element, ctx: Context) -> ET.Element:
    """Make, model, firmware, serial number, hardware id."""
    return _tds(
        "GetDeviceInformationResponse",
        None,
        None,
        _tds("Manufacturer", camera.make),
        _tds("Model", camera.model),
        _tds("FirmwareVersion", camera.firmware),
        _tds("SerialNumber", camera.serial),
        _tds("HardwareId", f"{camera.model}-HW1"),
    )


def _device_capabilities(ctx: Context) -> ET.Element:
    system = [
        _tt(name, False)
        for name in (
            "DiscoveryResolve",
            "DiscoveryBye",
            "RemoteDiscovery",
            "SystemBackup",
            "SystemLogging",
            "FirmwareUpgrade",
        )
    ]
    major, minor = SERVICE_VERSION
    system.append(_tt("SupportedVersions", None, None, _tt("Major", major), _tt("Minor", minor)))
    security = [
        _tt(name, False)
        for name in (
            "TLS1.1",
            "TLS1.2",
            "OnboardKeyGeneration",
            "AccessPolicyConfig",
            "X.509Token",
            "SAMLToken",
            "KerberosToken",
            "RELToken",
        )
    ]
    return _tt(
        "Device",
        None,
        None,
        _tt("XAddr", ctx.base_url + DEVICE_PATH),
        _tt("Network", None, None, _tt("IPFilter", False), _tt("ZeroConfiguration", False), _tt("IPVersion6", False)),
        _tt("System", None, None, *system),
        _tt("Security", None, None, *security),
    )


def get_capabilities(camera: OnvifCamera, op: ET.Element, ctx: Context) -> ET.Element:
    """The backward-compatible capability tree for the categories asked (Device, Media, PTZ)."""
    asked = {(node.text or "").strip() for node in op.findall(f"{{{TDS}}}Category")} or {"All"}
    unknown = asked - set(CATEGORIES)
    if unknown:
        raise args.invalid_args(f"Category {sorted(unknown)[0][:20]!r} is not a tt:CapabilityCategory")
    unserved = asked & {"Analytics", "Events", "Imaging"}
    if unserved:
        raise receiver(
            "ActionNotSupported",
            "NoSuchService",
            reason=f"Optional Action Not Implemented: no {sorted(unserved)[0]} service",
        )
    every = "All" in asked
    parts = []
    if every or "Device" in asked:
        parts.append(_device_capabilities(ctx))
    if every or "Media" in asked:
        streaming = _tt("StreamingCapabilities", None, None, _tt("RTPMulticast", False), _tt("RTP_TCP", True))
        streaming.append(_tt("RTP_RTSP_TCP", True))
        parts.append(_tt("Media", None, None, _tt("XAddr", ctx.base_url + MEDIA_PATH), streaming))
    if every or "PTZ" in asked:
        parts.append(_tt("PTZ", None, None, _tt("XAddr", ctx.base_url + PTZ_PATH)))
    return _tds("GetCapabilitiesResponse", None, None, _tds("Capabilities", None, None, *parts))


def device_service_capabilities() -> ET.Element:
    """tds:Capabilities: WS-Security UsernameToken only, no discovery extras."""
    return _tds(
        "Capabilities",
        None,
        None,
        _tds("Network", None, {"IPFilter": False, "ZeroConfiguration": False, "IPVersion6": False, "DynDNS": False}),
        _tds("Security", None, {"UsernameToken": True, "HttpDigest": False, "TLS1.2": False}),
        _tds("System", None, {"DiscoveryResolve": False, "DiscoveryBye": False, "RemoteDiscovery": False}),
    )


def get_services(camera: OnvifCamera, op: ET.Element, ctx: Context) -> ET.Element:
    """Each service's namespace, address and version (with its capabilities when asked)."""
    include = args.boolean(op, TDS, "IncludeCapability", False)
    capabilities = {
        TDS: device_service_capabilities(),
        TRT: media_service.capabilities(),
        TPTZ: ptz_service.capabilities(camera),
    }
    major, minor = SERVICE_VERSION
    services = []
    for namespace, path in SERVICE_PATHS.items():
        parts = [_tds("Namespace", namespace), _tds("XAddr", ctx.base_url + path)]
        if include:
            parts.append(_tds("Capabilities", None, None, capabilities[namespace]))
        parts.append(_tds("Version", None, None, _tt("Major", major), _tt("Minor", minor)))
        services.append(_tds("Service", None, None, *parts))
    return _tds("GetServicesResponse", None, None, *services)


def get_service_capabilities(camera: OnvifCamera, op: ET.Element, ctx: Context) -> ET.Element:
    """The device service's own capabilities."""
    return _tds("GetServiceCapabilitiesResponse", None, None, device_service_capabilities())


def get_scopes(camera: OnvifCamera, op: ET.Element, ctx: Context) -> ET.Element:
    """The scopes discovery announces, all fixed."""
    scopes = [
        _tds("Scopes", None, None, _tt("ScopeDef", "Fixed"), _tt("ScopeItem", scope)) for scope in camera.scopes()
    ]
    return _tds("GetScopesResponse", None, None, *scopes)


OPERATIONS = {
    "GetSystemDateAndTime": Operation(get_system_date_and_time, pre_auth=True),
    "GetCapabilities": Operation(get_capabilities, pre_auth=True),
    "GetServices": Operation(get_services, pre_auth=True),
    "GetServiceCapabilities": Operation(get_service_capabilities, pre_auth=True),
    "GetDeviceInformation": Operation(get_device_information),
    "GetScopes": Operation(get_scopes),
}
