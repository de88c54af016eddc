"""The media service (ver10/media/wsdl): the two profiles, their stream and snapshot URIs."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from drivers.sim.onvif import args, ptz_service
from drivers.sim.onvif.camera import SNAPSHOT_PATH, STREAMS, Context, OnvifCamera, Operation, StreamProfile
from drivers.sim.onvif.soap import TRT, TT, element, sender

STREAM_TYPES = ("RTP-Unicast", "RTP-Multicast")
PROTOCOLS = ("UDP", "TCP", "RTSP", "HTTP")
SOURCE = (1920, 1080)


def _tt(name: str, text: object = None, attrs: dict[str, object] | None = None, *kids: ET.Element) -> ET.Element:
    return element(f"{{{TT}}}{name}", text, attrs, *kids)


def _trt(name: str, text: object = None, attrs: dict[str, object] | None = None, *kids: ET.Element) -> ET.Element:
    return element(f"{{{TRT}}}{name}", text, attrs, *kids)


def _video_source() -> ET.Element:
    width, height = SOURCE
    return _tt(
        "VideoSourceConfiguration",
        None,
        {"token": "vsconf0"},
        _tt("Name", "VideoSource"),
        _tt("UseCount", len(STREAMS)),
        _tt("SourceToken", "vsrc0"),
        _tt("Bounds", None, {"x": 0, "y": 0, "width": width, "height": height}),
    )


def _encoder(stream: StreamProfile) -> ET.Element:
    rate = _tt(
        "RateControl",
        None,
        None,
        _tt("FrameRateLimit", stream.fps),
        _tt("EncodingInterval", 1),
        _tt("BitrateLimit", stream.bitrate_kbps),
    )
    address = _tt("Address", None, None, _tt("Type", "IPv4"), _tt("IPv4Address", "0.0.0.0"))
    multicast = _tt("Multicast", None, None, address, _tt("Port", 0), _tt("TTL", 0), _tt("AutoStart", False))
    return _tt(
        "VideoEncoderConfiguration",
        None,
        {"token": stream.encoder_token},
        _tt("Name", f"{stream.token} stream"),
        _tt("UseCount", 1),
        _tt("Encoding", "H264"),
        _tt("Resolution", None, None, _tt("Width", stream.width), _tt("Height", stream.height)),
        _tt("Quality", 4.0),
        rate,
        _tt("H264", None, None, _tt("GovLength", stream.fps * 2), _tt("H264Profile", stream.h264_profile)),
        multicast,
        _tt("SessionTimeout", "PT60S"),
    )


def profile(camera: OnvifCamera, stream: StreamProfile, tag: str) -> ET.Element:
    """A tt:Profile under `tag`: video source, H.264 encoder, PTZ configuration."""
    return element(
        tag,
        None,
        {"token": stream.token, "fixed": True},
        _tt("Name", stream.token),
        _video_source(),
        _encoder(stream),
        ptz_service.configuration(camera, f"{{{TT}}}PTZConfiguration"),
    )


def capabilities() -> ET.Element:
    """trt:Capabilities: two profiles, RTSP over TCP, snapshots."""
    return _trt(
        "Capabilities",
        None,
        {"SnapshotUri": True, "Rotation": False, "OSD": False},
        _trt("ProfileCapabilities", None, {"MaximumNumberOfProfiles": len(STREAMS)}),
        _trt("StreamingCapabilities", None, {"RTPMulticast": False, "RTP_TCP": True, "RTP_RTSP_TCP": True}),
    )


def get_profiles(camera: OnvifCamera, op: ET.Element, ctx: Context) -> ET.Element:
    """Both profiles."""
    return _trt("GetProfilesResponse", None, None, *(profile(camera, s, f"{{{TRT}}}Profiles") for s in STREAMS))


def get_profile(camera: OnvifCamera, op: ET.Element, ctx: Context) -> ET.Element:
    """One profile by token (ter:NoProfile for another)."""
    stream = camera.profile(args.token(op, TRT, "ProfileToken"))
    return _trt("GetProfileResponse", None, None, profile(camera, stream, f"{{{TRT}}}Profile"))


def _media_uri(uri: str, invalid_after_connect: bool) -> ET.Element:
    return _trt(
        "MediaUri",
        None,
        None,
        _tt("Uri", uri),
        _tt("InvalidAfterConnect", invalid_after_connect),
        _tt("InvalidAfterReboot", False),
        _tt("Timeout", "PT0S"),
    )


def get_stream_uri(camera: OnvifCamera, op: ET.Element, ctx: Context) -> ET.Element:
    """The profile's RTSP URI, for unicast RTP (over UDP, TCP, RTSP or HTTP tunnelling)."""
    setup = args.child(op, TRT, "StreamSetup")
    if setup is None:
        raise args.invalid_args("missing argument StreamSetup")
    stream_type = args.text(setup, TT, "Stream")
    transport = args.child(setup, TT, "Transport")
    protocol = args.text(transport, TT, "Protocol") if transport is not None else None
    stream = camera.profile(args.token(op, TRT, "ProfileToken"))
    if stream_type not in STREAM_TYPES or protocol not in PROTOCOLS:
        raise args.invalid_args(f"StreamSetup {stream_type!r}/{protocol!r} is not a tt:StreamSetup")
    if stream_type == "RTP-Multicast":
        raise sender("InvalidArgVal", "InvalidStreamSetup", reason="Multicast streaming is not supported")
    return _trt("GetStreamUriResponse", None, None, _media_uri(camera.stream_uri(stream, ctx), False))


def get_snapshot_uri(camera: OnvifCamera, op: ET.Element, ctx: Context) -> ET.Element:
    """A JPEG of the profile's view, served by this camera over HTTP (digest-authenticated)."""
    stream = camera.profile(args.token(op, TRT, "ProfileToken"))
    uri = f"{ctx.base_url}{SNAPSHOT_PATH}/{stream.token}.jpg"
    return _trt("GetSnapshotUriResponse", None, None, _media_uri(uri, False))


def get_service_capabilities(camera: OnvifCamera, op: ET.Element, ctx: Context) -> ET.Element:
    """The media service's capabilities."""
    return _trt("GetServiceCapabilitiesResponse", None, None, capabilities())


OPERATIONS = {
    "GetServiceCapabilities": Operation(get_service_capabilities),
    "GetProfiles": Operation(get_profiles),
    "GetProfile": Operation(get_profile),
    "GetStreamUri": Operation(get_stream_uri),
    "GetSnapshotUri": Operation(get_snapshot_uri),
}
