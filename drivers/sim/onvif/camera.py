"""The simulated camera's state: identity, credentials, clock, media profiles and PTZ head."""

from __future__ import annotations

import asyncio
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from drivers.errors import ArgumentError
from drivers.sim.onvif.ptz import Clock, Preset, PtzHead
from drivers.sim.onvif.soap import sender
from drivers.sim.onvif.wsse import Authenticator, utc

DEVICE_PATH = "/onvif/device_service"
MEDIA_PATH = "/onvif/media_service"
PTZ_PATH = "/onvif/ptz_service"
SNAPSHOT_PATH = "/onvif/snapshot"  # + "/{profile token}.jpg"
DEFAULT_TIMEOUT_S = 10.0  # DefaultPTZTimeout: how long a ContinuousMove without Timeout runs
MAX_TIMEOUT_S = 600.0  # the longest ContinuousMove Timeout the node accepts
RTSP_DEFAULT_PORT = 554


@dataclass(frozen=True)
class Context:
    """Where the request came in: the base URL the camera's own addresses are built from."""

    base_url: str  # http://HOST:PORT
    host: str


Handler = Callable[["OnvifCamera", ET.Element, Context], ET.Element]


@dataclass(frozen=True)
class Operation:
    """One operation of a service: what answers it, and whether it needs no authentication."""

    handler: Handler
    pre_auth: bool = False  # Core spec access class PRE_AUTH


@dataclass(frozen=True)
class StreamProfile:
    """One media profile: its token and its video encoder's settings."""

    token: str
    encoder_token: str
    width: int
    height: int
    fps: int
    bitrate_kbps: int
    h264_profile: str


STREAMS = (
    StreamProfile("main", "venc_main", 1920, 1080, 25, 4096, "Main"),
    StreamProfile("sub", "venc_sub", 640, 360, 25, 512, "Baseline"),
)


class OnvifCamera:
    """An ONVIF Profile S PTZ camera's state, shared by its HTTP server and discovery responder."""

    def __init__(
        self,
        user: str = "admin",
        password: str = "admin",
        rtsp: str = "",
        clock_offset_s: float = 0.0,
        absolute_moves: bool = True,
        make: str = "Classroom",
        model: str = "SimPTZ",
        clock: Clock = time.monotonic,
        *,
        rtsp_sub: str = "",
        wall_clock: Callable[[], float] = time.time,
        firmware: str = "1.0.0",
        serial: str = "",
        name: str = "",
    ) -> None:
        """A camera at home position with no presets; its clock runs `clock_offset_s` off `wall_clock`."""
        for label, value in (("user", user), ("make", make), ("model", model)):
            if not value or len(value) > 64 or not value.isprintable():
                raise ArgumentError(f"{label} must be 1..64 printable characters")
        for label, url in (("rtsp", rtsp), ("rtsp_sub", rtsp_sub)):
            if url and not url.startswith(("rtsp://", "rtsps://")):
                raise ArgumentError(f"{label} {url!r}: expected rtsp://HOST[:PORT]/PATH")
        self.user, self.make, self.model, self.firmware = user, make, model, firmware
        self.rtsp, self.rtsp_sub = rtsp, rtsp_sub
        self.clock_offset_s = clock_offset_s
        self.absolute_moves = absolute_moves
        self.wall_clock = wall_clock
        self.endpoint = f"urn:uuid:{uuid.uuid4()}"
        self.serial = serial or self.endpoint[-12:].upper()
        self.name = name or f"{make}-{model}"
        self.head = PtzHead(clock)
        self.auth = Authenticator(user, password, self.utc_now)
        self._answering = asyncio.Event()
        self._answering.set()

    def utc_now(self) -> datetime:
        """The camera's own clock: the wall clock plus its offset (classroom cameras drift)."""
        return utc(self.wall_clock()) + timedelta(seconds=self.clock_offset_s)

    @property
    def silent(self) -> bool:
        """Whether the camera has stopped answering (requests hang until this turns False)."""
        return not self._answering.is_set()

    @silent.setter
    def silent(self, value: bool) -> None:
        if value:
            self._answering.clear()
        else:
            self._answering.set()

    async def answering(self) -> None:
        """Return once the camera answers again (at once when it is not silent)."""
        await self._answering.wait()

    @property
    def pan(self) -> float:
        """Pan now, -1..1 (generic position space)."""
        return self.head.position().pan

    @property
    def tilt(self) -> float:
        """Tilt now, -1..1 (generic position space)."""
        return self.head.position().tilt

    @property
    def zoom(self) -> float:
        """Zoom now, 0 (wide) .. 1 (tele)."""
        return self.head.position().zoom

    @property
    def moving(self) -> bool:
        """Whether any axis is moving now."""
        return self.head.pan_tilt_moving() or self.head.zoom_moving()

    @property
    def presets(self) -> dict[str, Preset]:
        """The stored presets by token (a copy)."""
        return dict(self.head.presets)

    def profile(self, token: str) -> StreamProfile:
        """The media profile with this token, or the spec's ter:NoProfile fault."""
        found = next((s for s in STREAMS if s.token == token), None)
        if found is None:
            raise sender("InvalidArgVal", "NoProfile", reason=f"The requested profile token {token!r} does not exist")
        return found

    def stream_uri(self, profile: StreamProfile, ctx: Context) -> str:
        """The RTSP URI for a profile: the given stream, or the camera's own (nothing serves it)."""
        if profile.token == "sub" and self.rtsp_sub:
            return self.rtsp_sub
        return self.rtsp or f"rtsp://{ctx.host}:{RTSP_DEFAULT_PORT}/{profile.token}"

    def scopes(self) -> tuple[str, ...]:
        """The ONVIF scopes this camera announces (Core spec, Discovery: scopes)."""
        return (
            "onvif://www.onvif.org/type/video_encoder",
            "onvif://www.onvif.org/type/ptz",
            "onvif://www.onvif.org/Profile/Streaming",
            f"onvif://www.onvif.org/hardware/{_scope_safe(self.model)}",
            f"onvif://www.onvif.org/name/{_scope_safe(self.name)}",
            "onvif://www.onvif.org/location/country/china",
        )


def _scope_safe(value: str) -> str:
    """A scope path segment: percent-encoded like a URI path segment (spaces as %20)."""
    return quote(value, safe="")
