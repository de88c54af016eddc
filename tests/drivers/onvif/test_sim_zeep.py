"""The ONVIF simulator over real HTTP on loopback, driven by an independent client (zeep + ONVIF's
WSDLs, see onvif_sim_client.py): every operation, digest auth, clock skew, the spec's faults."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import zeep
from onvif_sim_client import Clients, DigestToken, FakeClock, call, camera_offset, subcodes

from drivers.sim.onvif import OnvifCamera, OnvifServer

RTSP_MAIN = "rtsp://127.0.0.1:8554/room101"
RTSP_SUB = "rtsp://127.0.0.1:8554/room101-sub"
PT_POSITION = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/PositionGenericSpace"


@pytest.fixture(scope="module")
def clients() -> Clients:
    return Clients.load()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def camera(clock: FakeClock) -> OnvifCamera:
    return OnvifCamera(user="admin", password="s3cret", rtsp=RTSP_MAIN, rtsp_sub=RTSP_SUB, clock=clock)


@pytest.fixture
async def server(camera: OnvifCamera) -> AsyncIterator[OnvifServer]:
    async with OnvifServer(camera) as running:
        yield running


class Cam:
    """The three services as zeep proxies, addressed from GetCapabilities as a client would."""

    def __init__(self, clients: Clients, server: OnvifServer, wsse: DigestToken | None) -> None:
        self.clients, self.server, self.wsse = clients, server, wsse
        self.device = clients.service("devicemgmt", server.url, wsse)

    async def services(self) -> tuple[Any, Any]:
        caps = await call(self.device, "GetCapabilities", ["All"])
        media = self.clients.service("media", caps.Media.XAddr, self.wsse)
        ptz = self.clients.service("ptz", caps.PTZ.XAddr, self.wsse)
        return media, ptz


async def fault_of(service: Any, operation: str, *args: Any, **kwargs: Any) -> tuple[str, list[str]]:
    with pytest.raises(zeep.exceptions.Fault) as caught:
        await call(service, operation, *args, **kwargs)
    return caught.value.code, subcodes(caught.value)


async def test_time_needs_no_credentials_and_identity_does(clients: Clients, server: OnvifServer) -> None:
    anonymous = Cam(clients, server, None)
    sysdate = await call(anonymous.device, "GetSystemDateAndTime")
    assert sysdate.DateTimeType == "Manual" and sysdate.TimeZone.TZ == "CST-8"
    assert abs(camera_offset(sysdate)) < timedelta(minutes=1)
    assert (sysdate.LocalDateTime.Time.Hour - sysdate.UTCDateTime.Time.Hour) % 24 == 8
    assert await fault_of(anonymous.device, "GetDeviceInformation") == ("env:Sender", ["NotAuthorized"])

    info = await call(Cam(clients, server, DigestToken("admin", "s3cret")).device, "GetDeviceInformation")
    assert (info.Manufacturer, info.Model) == ("Classroom", "SimPTZ")
    assert info.FirmwareVersion and info.SerialNumber and info.HardwareId


async def test_capabilities_and_services_name_every_service_address(clients: Clients, server: OnvifServer) -> None:
    cam = Cam(clients, server, DigestToken("admin", "s3cret"))
    caps = await call(cam.device, "GetCapabilities", ["All"])
    assert caps.Device.XAddr == server.url
    assert caps.Media.XAddr.endswith("/onvif/media_service") and caps.Media.StreamingCapabilities.RTP_RTSP_TCP
    assert caps.PTZ.XAddr.endswith("/onvif/ptz_service")
    only_ptz = await call(cam.device, "GetCapabilities", ["PTZ"])
    assert only_ptz.PTZ is not None and only_ptz.Media is None and only_ptz.Device is None
    assert await fault_of(cam.device, "GetCapabilities", ["Imaging"]) == (
        "env:Receiver",
        ["ActionNotSupported", "NoSuchService"],
    )

    services = await call(cam.device, "GetServices", True)
    by_namespace = {s.Namespace: s for s in services}
    assert by_namespace["http://www.onvif.org/ver10/device/wsdl"].XAddr == server.url
    assert by_namespace["http://www.onvif.org/ver10/media/wsdl"].XAddr == caps.Media.XAddr
    assert by_namespace["http://www.onvif.org/ver20/ptz/wsdl"].XAddr == caps.PTZ.XAddr
    assert all(s.Version.Major >= 2 and s.Capabilities is not None for s in services)
    assert all(s.Capabilities is None for s in await call(cam.device, "GetServices", False))
    scopes = [s.ScopeItem for s in await call(cam.device, "GetScopes")]
    assert "onvif://www.onvif.org/Profile/Streaming" in scopes


async def test_profiles_streams_and_snapshots(clients: Clients, server: OnvifServer) -> None:
    media, _ = await Cam(clients, server, DigestToken("admin", "s3cret")).services()
    profiles = await call(media, "GetProfiles")
    assert [p.token for p in profiles] == ["main", "sub"]
    main, sub = profiles
    sizes = [
        (p.VideoEncoderConfiguration.Resolution.Width, p.VideoEncoderConfiguration.Resolution.Height) for p in profiles
    ]
    assert sizes == [(1920, 1080), (640, 360)]
    assert main.VideoEncoderConfiguration.Encoding == "H264"
    assert main.PTZConfiguration.NodeToken == sub.PTZConfiguration.NodeToken
    assert main.PTZConfiguration.DefaultAbsolutePantTiltPositionSpace == PT_POSITION
    assert (await call(media, "GetProfile", "sub")).VideoEncoderConfiguration.Resolution.Width == 640

    setup = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}
    assert (await call(media, "GetStreamUri", setup, "main")).Uri == RTSP_MAIN
    assert (await call(media, "GetStreamUri", setup, "sub")).Uri == RTSP_SUB
    multicast = {"Stream": "RTP-Multicast", "Transport": {"Protocol": "UDP"}}
    assert await fault_of(media, "GetStreamUri", multicast, "main") == (
        "env:Sender",
        ["InvalidArgVal", "InvalidStreamSetup"],
    )
    assert await fault_of(media, "GetStreamUri", setup, "third") == ("env:Sender", ["InvalidArgVal", "NoProfile"])
    snapshot = await call(media, "GetSnapshotUri", "sub")
    assert snapshot.Uri == server.url.replace("device_service", "snapshot/sub.jpg")
    assert await fault_of(media, "GetSnapshotUri", "nope") == ("env:Sender", ["InvalidArgVal", "NoProfile"])


async def test_continuous_move_runs_until_stop(clients: Clients, server: OnvifServer, clock: FakeClock) -> None:
    _, ptz = await Cam(clients, server, DigestToken("admin", "s3cret")).services()
    await call(ptz, "ContinuousMove", "main", {"PanTilt": {"x": 0.5, "y": -0.25}, "Zoom": {"x": 0.5}})
    status = await call(ptz, "GetStatus", "main")
    assert (status.MoveStatus.PanTilt, status.MoveStatus.Zoom) == ("MOVING", "MOVING")
    clock.advance(1.0)
    status = await call(ptz, "GetStatus", "main")
    assert (status.Position.PanTilt.x, status.Position.PanTilt.y) == pytest.approx((0.5, -0.25))
    assert status.Position.Zoom.x == pytest.approx(0.25)
    assert status.Position.PanTilt.space == PT_POSITION and status.UtcTime is not None
    await call(ptz, "Stop", "main", True, False)  # pan/tilt only: zoom keeps going
    clock.advance(1.0)
    status = await call(ptz, "GetStatus", "main")
    assert (status.MoveStatus.PanTilt, status.MoveStatus.Zoom) == ("IDLE", "MOVING")
    assert status.Position.PanTilt.x == pytest.approx(0.5) and status.Position.Zoom.x == pytest.approx(0.5)
    await call(ptz, "Stop", "main")
    assert server.camera.moving is False


async def test_continuous_move_timeout_is_honoured(clients: Clients, server: OnvifServer, clock: FakeClock) -> None:
    _, ptz = await Cam(clients, server, DigestToken("admin", "s3cret")).services()
    await call(ptz, "ContinuousMove", "main", {"PanTilt": {"x": 0.25, "y": 0.0}}, timedelta(seconds=2))
    clock.advance(10)
    status = await call(ptz, "GetStatus", "main")
    assert status.MoveStatus.PanTilt == "IDLE" and status.Position.PanTilt.x == pytest.approx(0.5)
    for timeout in (timedelta(hours=1), timedelta(0)):
        assert await fault_of(ptz, "ContinuousMove", "main", {"Zoom": {"x": 0.1}}, timeout) == (
            "env:Sender",
            ["InvalidArgVal", "TimeoutNotSupported"],
        )
    assert await fault_of(ptz, "ContinuousMove", "main", {"PanTilt": {"x": 1.5, "y": 0}}) == (
        "env:Sender",
        ["InvalidArgVal", "InvalidVelocity"],
    )
    wrong_space = {"PanTilt": {"x": 0.1, "y": 0, "space": PT_POSITION}}
    assert await fault_of(ptz, "ContinuousMove", "main", wrong_space) == (
        "env:Sender",
        ["InvalidArgVal", "SpaceNotSupported"],
    )
    assert not server.camera.moving


async def test_absolute_and_relative_moves(clients: Clients, server: OnvifServer, clock: FakeClock) -> None:
    _, ptz = await Cam(clients, server, DigestToken("admin", "s3cret")).services()
    speed = {"PanTilt": {"x": 0.5, "y": 0.5}, "Zoom": {"x": 1.0}}
    await call(ptz, "AbsoluteMove", "main", {"PanTilt": {"x": 0.6, "y": -0.4}, "Zoom": {"x": 0.8}}, speed)
    clock.advance(0.4)  # half speed: 0.2 of the 0.6 pan so far
    moving = await call(ptz, "GetStatus", "main")
    assert moving.MoveStatus.PanTilt == "MOVING" and moving.Position.PanTilt.x == pytest.approx(0.2)
    clock.advance(10)
    assert (server.camera.pan, server.camera.tilt, server.camera.zoom) == pytest.approx((0.6, -0.4, 0.8))
    await call(ptz, "RelativeMove", "main", {"PanTilt": {"x": 0.6, "y": 0.1}, "Zoom": {"x": -0.3}})
    clock.advance(10)
    assert (server.camera.pan, server.camera.tilt, server.camera.zoom) == pytest.approx((1.0, -0.3, 0.5))
    assert await fault_of(ptz, "AbsoluteMove", "main", {"PanTilt": {"x": 1.5, "y": 0}}) == (
        "env:Sender",
        ["InvalidArgVal", "InvalidPosition"],
    )
    assert await fault_of(ptz, "RelativeMove", "main", {"Zoom": {"x": -2}}) == (
        "env:Sender",
        ["InvalidArgVal", "InvalidTranslation"],
    )
    assert await fault_of(ptz, "AbsoluteMove", "main", {"Zoom": {"x": 0.5}}, {"Zoom": {"x": 3}}) == (
        "env:Sender",
        ["InvalidArgVal", "InvalidSpeed"],
    )
    assert await fault_of(ptz, "AbsoluteMove", "wide", {"Zoom": {"x": 0.5}}) == (
        "env:Sender",
        ["InvalidArgVal", "NoProfile"],
    )


async def test_presets_and_home(clients: Clients, server: OnvifServer, clock: FakeClock) -> None:
    _, ptz = await Cam(clients, server, DigestToken("admin", "s3cret")).services()
    await call(ptz, "AbsoluteMove", "main", {"PanTilt": {"x": -0.5, "y": 0.25}, "Zoom": {"x": 0.5}})
    assert await fault_of(ptz, "SetPreset", "main", "讲台") == ("env:Receiver", ["Action", "MovingPTZ"])
    clock.advance(10)
    podium = await call(ptz, "SetPreset", "main", "讲台")
    board = await call(ptz, "SetPreset", "main", "黑板", "7")
    assert (podium, board) == ("1", "7")
    assert await fault_of(ptz, "SetPreset", "main", "讲台") == ("env:Sender", ["InvalidArgVal", "PresetExist"])
    assert await fault_of(ptz, "SetPreset", "main", None, "podium") == ("env:Sender", ["InvalidArgVal", "NoToken"])
    presets = await call(ptz, "GetPresets", "main")
    assert [(p.token, p.Name) for p in presets] == [("1", "讲台"), ("7", "黑板")]
    assert (presets[0].PTZPosition.PanTilt.x, presets[0].PTZPosition.Zoom.x) == pytest.approx((-0.5, 0.5))

    await call(ptz, "SetHomePosition", "main")
    await call(ptz, "AbsoluteMove", "main", {"PanTilt": {"x": 1.0, "y": 1.0}})
    clock.advance(10)
    await call(ptz, "GotoPreset", "main", "1")
    clock.advance(10)
    assert (server.camera.pan, server.camera.tilt) == pytest.approx((-0.5, 0.25))
    await call(ptz, "AbsoluteMove", "main", {"PanTilt": {"x": 0.0, "y": -1.0}, "Zoom": {"x": 0.0}})
    clock.advance(10)
    await call(ptz, "GotoHomePosition", "main")
    clock.advance(10)
    assert (server.camera.pan, server.camera.tilt, server.camera.zoom) == pytest.approx((-0.5, 0.25, 0.5))

    await call(ptz, "RemovePreset", "main", "7")
    assert list(server.camera.presets) == ["1"]
    assert await fault_of(ptz, "GotoPreset", "main", "7") == ("env:Sender", ["InvalidArgVal", "NoToken"])
    assert await fault_of(ptz, "RemovePreset", "main", "7") == ("env:Sender", ["InvalidArgVal", "NoToken"])
    assert await fault_of(ptz, "GetPresets", "nope") == ("env:Sender", ["InvalidArgVal", "NoProfile"])


async def test_node_and_configuration(clients: Clients, server: OnvifServer) -> None:
    _, ptz = await Cam(clients, server, DigestToken("admin", "s3cret")).services()
    (node,) = await call(ptz, "GetNodes")
    spaces = node.SupportedPTZSpaces
    assert node.HomeSupported and node.MaximumNumberOfPresets == 128
    assert spaces.AbsolutePanTiltPositionSpace[0].URI == PT_POSITION
    assert spaces.RelativePanTiltTranslationSpace and spaces.ContinuousZoomVelocitySpace
    assert (await call(ptz, "GetNode", node.token)).token == node.token
    assert await fault_of(ptz, "GetNode", "other") == ("env:Sender", ["InvalidArgVal", "NoEntity"])
    (config,) = await call(ptz, "GetConfigurations")
    assert config.NodeToken == node.token and config.DefaultPTZTimeout == timedelta(seconds=10)
    options = await call(ptz, "GetConfigurationOptions", config.token)
    assert options.PTZTimeout.Max == timedelta(minutes=10)
    assert (await call(ptz, "GetConfiguration", config.token)).token == config.token
    assert await fault_of(ptz, "GetConfiguration", "x") == ("env:Sender", ["InvalidArgVal", "NoConfig"])


async def test_a_camera_without_absolute_moves_refuses_them(clients: Clients, clock: FakeClock) -> None:
    camera = OnvifCamera(password="s3cret", absolute_moves=False, clock=clock)
    async with OnvifServer(camera) as server:
        _, ptz = await Cam(clients, server, DigestToken("admin", "s3cret")).services()
        (node,) = await call(ptz, "GetNodes")
        assert not node.SupportedPTZSpaces.AbsolutePanTiltPositionSpace
        assert not node.SupportedPTZSpaces.RelativePanTiltTranslationSpace
        for operation, vector in (
            ("AbsoluteMove", {"PanTilt": {"x": 0.1, "y": 0}}),
            ("RelativeMove", {"Zoom": {"x": 0.1}}),
        ):
            assert await fault_of(ptz, operation, "main", vector) == (
                "env:Sender",
                ["InvalidArgVal", "SpaceNotSupported"],
            )
        await call(ptz, "ContinuousMove", "main", {"PanTilt": {"x": -1.0, "y": 0.0}})
        clock.advance(0.5)
        status = await call(ptz, "GetStatus", "main")
        assert status.Position is None and status.MoveStatus.PanTilt == "MOVING"
        assert camera.pan == pytest.approx(-0.5)
        await call(ptz, "Stop", "main")
        assert await call(ptz, "SetPreset", "main", None, "3") == "3"  # presets need no absolute space


async def test_wrong_credentials_are_refused(clients: Clients, server: OnvifServer) -> None:
    refused = ("env:Sender", ["NotAuthorized"])
    for token in (
        DigestToken("admin", "wrong"),
        DigestToken("teacher", "s3cret"),
        DigestToken("admin", "s3cret", text=True),
    ):
        assert await fault_of(Cam(clients, server, token).device, "GetDeviceInformation") == refused
    media = clients.service("media", server.url.replace("device", "media"), None)
    assert await fault_of(media, "GetProfiles") == refused


async def test_clock_skew_of_hours_needs_the_offset(clients: Clients, clock: FakeClock) -> None:
    for hours in (3, -5):
        camera = OnvifCamera(password="s3cret", clock_offset_s=hours * 3600, clock=clock)
        async with OnvifServer(camera) as server:
            naive = Cam(clients, server, DigestToken("admin", "s3cret"))
            assert await fault_of(naive.device, "GetDeviceInformation") == ("env:Sender", ["NotAuthorized"])
            offset = camera_offset(await call(naive.device, "GetSystemDateAndTime"))
            assert abs(offset - timedelta(hours=hours)) < timedelta(minutes=1)
            synced = Cam(clients, server, DigestToken("admin", "s3cret", offset))
            assert (await call(synced.device, "GetDeviceInformation")).Model == "SimPTZ"


async def test_an_operation_at_another_service_address_is_not_supported(clients: Clients, server: OnvifServer) -> None:
    wsse = DigestToken("admin", "s3cret")
    ptz_at_media = clients.service("ptz", server.url.replace("device", "media"), wsse)
    assert await fault_of(ptz_at_media, "GetNodes") == ("env:Receiver", ["ActionNotSupported"])
    media = clients.service("media", server.url.replace("device", "media"), wsse)
    assert await fault_of(media, "GetVideoSources") == ("env:Receiver", ["ActionNotSupported"])


async def test_a_silent_camera_hangs_until_it_speaks_again(
    clients: Clients, server: OnvifServer, clock: FakeClock
) -> None:
    _, ptz = await Cam(clients, server, DigestToken("admin", "s3cret")).services()
    await call(ptz, "ContinuousMove", "main", {"PanTilt": {"x": 1.0, "y": 0.0}}, timedelta(seconds=1))
    server.camera.silent = True
    clients.set_timeout(1.0)
    try:
        with pytest.raises(Exception, match="(?i)timed out"):
            await call(ptz, "Stop", "main")
    finally:
        clients.set_timeout(10)
    clock.advance(5)  # the head went on to its timeout while nobody could reach it
    server.camera.silent = False
    status = await call(ptz, "GetStatus", "main")
    assert status.Position.PanTilt.x == pytest.approx(1.0) and status.MoveStatus.PanTilt == "IDLE"
