"""The room's video sources as agent services: started and stopped with the agent, watched for health.

`source_kind` is light (the config uses it to validate URLs); `make_source` and `SourceService`
load the media stack (PyAV, OpenCV, numpy) only when a source is actually built, so an agent
without sources never imports it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from agent.alarms import Alarms
from drivers.errors import ArgumentError

if TYPE_CHECKING:
    from streaming.source import Source

log = logging.getLogger(__name__)

# URL scheme -> source kind (an onvif camera's stream is RTSP, its URI asked of the camera)
SCHEMES = {"rtsp": "rtsp", "rtsps": "rtsp", "onvif": "rtsp", "synthetic": "synthetic", "screen": "screen", "usb": "usb"}
EXPECTED = "rtsp://..., onvif:DEVICE[/main|/sub|/TOKEN], synthetic[:LABEL], screen[:DISPLAY] or usb:INDEX|PATH"
# (device id, media profile) -> the camera's RTSP URI, asked from a reader thread
StreamUris = Callable[[str, str], "concurrent.futures.Future[str]"]
CHECK_S = 1.0
# A source that has never delivered is called offline after this long, even without an error.
OFFLINE_AFTER_S = 10.0


def source_kind(url: str) -> str | None:
    """``rtsp``, ``synthetic``, ``screen`` or ``usb`` for a source URL; None if the scheme is unknown."""
    scheme, sep, rest = url.partition(":")
    if scheme in ("rtsp", "rtsps") and not rest.startswith("//"):
        return None
    if scheme == "usb" and not rest:
        return None
    if scheme == "onvif" and onvif_camera(url) is None:
        return None
    return SCHEMES.get(scheme) if sep or scheme == "synthetic" else None


def onvif_camera(url: str) -> tuple[str, str] | None:
    """``onvif:DEVICE[/PROFILE]`` -> (DEVICE, PROFILE): a camera's device id and media profile (``main`` if none)."""
    scheme, _, rest = url.partition(":")
    device, slash, selector = rest.partition("/")
    if scheme != "onvif" or not device or not device.isprintable() or any(c in device for c in "+# "):
        return None
    if slash and not (selector and selector.isprintable() and len(selector) <= 64):
        return None
    return device, selector or "main"


def make_source(
    url: str, name: str, size: tuple[int, int], fps: float, *, stream_uris: StreamUris | None = None
) -> Source:
    """A source for one URL; the RTSP and capture modules load only when asked for.

    ``onvif:DEVICE[/PROFILE]`` needs `stream_uris` (the running device services), which the source
    asks for the camera's RTSP URI each time it connects.
    """
    scheme, _, rest = url.partition(":")
    if scheme == "onvif":
        camera = onvif_camera(url)
        if camera is None or stream_uris is None:
            raise ArgumentError(f"source {url!r}: an onvif source needs the agent's device services")
        try:
            from streaming.resolved import ResolvedRtspSource
        except ImportError as exc:
            raise ArgumentError(f"{url}: RTSP sources are not available in this build ({exc})") from exc
        device, selector = camera
        return ResolvedRtspSource(name, f"ONVIF camera {device} ({selector})", lambda: stream_uris(device, selector))
    if scheme == "synthetic":
        from streaming.synthetic import SyntheticSource

        return SyntheticSource(name, size, fps, label=rest or name)
    if scheme in ("rtsp", "rtsps"):
        try:
            from streaming.rtsp import RtspSource
        except ImportError as exc:
            raise ArgumentError(f"{url}: RTSP sources are not available in this build ({exc})") from exc
        return RtspSource(name, url)
    if scheme in ("screen", "usb"):
        try:
            from streaming.capture import ScreenSource, UsbCameraSource
        except ImportError as exc:
            raise ArgumentError(f"{url}: local capture is not available in this build ({exc})") from exc
        if scheme == "screen":
            return ScreenSource(name, rest or ":0")
        return UsbCameraSource(name, int(rest) if rest.isdigit() else rest, size, fps)
    raise ArgumentError(f"source {url!r}: expected {EXPECTED}")


class SourceService:
    """One source: its reader thread runs while the service runs; `source_offline` says when it is down."""

    def __init__(self, source_id: str, url: str, source: Source, alarms: Alarms) -> None:
        """`source` is built by `make_source`; nothing starts until `run`."""
        self.id = source_id
        self.url = url
        self.kind = source_kind(url) or "?"
        self.source = source
        self.alarms = alarms
        self._started: float | None = None

    async def run(self) -> None:
        """Start the reader, watch its health until cancelled, then stop it."""
        self.source.start()
        self._started = time.monotonic()
        try:
            while True:
                self.check()
                await asyncio.sleep(CHECK_S)
        finally:
            self._started = None
            await asyncio.to_thread(self.source.stop)

    def offline(self) -> str:
        """Why the source is offline ("" while it delivers)."""
        if self._started is None or self.source.connected:
            return ""
        if self.source.error:
            return self.source.error
        if time.monotonic() - self._started >= OFFLINE_AFTER_S:
            return f"no picture for {OFFLINE_AFTER_S:g} s"
        return ""

    def check(self) -> None:
        """Raise or clear this source's `source_offline` alarm."""
        reason = self.offline()
        if reason:
            self.alarms.raise_("source_offline", "warning", f"source {self.id}: {reason}", self.id, {"source": self.id})
        elif self.source.connected:
            self.alarms.clear("source_offline", self.id)

    def health(self) -> dict[str, object]:
        """Connected, fps, last frame age, reconnects and outages, for telemetry."""
        health = self.source.health().to_dict()
        health.pop("name", None)
        health["outages"] = int(getattr(self.source, "outage_count", 0))
        health["kind"] = self.kind
        return health

    def info(self) -> dict[str, str]:
        """Id, kind and the URL without its password, for ``info``."""
        url = self.url
        if self.kind == "rtsp":  # only camera URLs carry user:password@
            from streaming.rtsp import redact

            url = redact(url)
        return {"id": self.id, "kind": self.kind, "url": url}
