"""What the agent needs of any device driver, and the one place that picks a driver for a profile.

Most device models are data: a TOML profile run by the generic engine (``drivers.device.Device``).
A protocol that is more than frames in and frames out (SOAP over HTTP, a login handshake) gets a
driver of its own, named by the profile's ``[profile] driver`` key; `open_driver` and `simulated`
are the only places that know the list.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Protocol, runtime_checkable
from urllib.parse import quote

from drivers.device import Device, Health, Result
from drivers.profile_model import Profile
from drivers.sim.model import Simulator
from drivers.sim.runner import SimServer
from drivers.transport import make_transport

Report = Callable[[str], None]


class Driver(Protocol):
    """One device behind one link: calls, polling, health (``Device`` is the reference)."""

    id: str
    health: Health

    async def call(self, command: str, args: Mapping[str, object] | None = None) -> Result:
        """Run one command of the profile's vocabulary; raises DriverError subclasses."""
        ...

    async def poll(self) -> dict[str, object]:
        """Ask the device for its state once; returns it."""
        ...

    async def run(self, on_update: Callable[[Health], Awaitable[None]] | None = None) -> None:
        """Keep the link up and poll until cancelled, reporting health after each round."""
        ...

    async def close(self) -> None:
        """Let go of the link."""
        ...


@runtime_checkable
class MediaDriver(Protocol):
    """A camera that serves its own video (ONVIF): where its RTSP stream is, and a still picture."""

    async def stream_uri(self, selector: str = "") -> str:
        """The RTSP URI of media profile `selector` (``main``, ``sub`` or the camera's token), credentials included."""
        ...

    async def snapshot(self, selector: str = "", max_bytes: int = ...) -> bytes:
        """A still picture (the camera's JPEG) of media profile `selector`."""
        ...


@runtime_checkable
class PollsSoon(Protocol):
    """A driver whose own poll loop can report a command's effect at once: the caller need not poll."""

    def poll_soon(self) -> None:
        """Poll now rather than at the next interval."""
        ...


def open_driver(profile: Profile, address: str, *, device_id: str = "", poll_interval: float | None = None) -> Driver:
    """The driver for `profile` at `address` (nothing opens until it is used); ArgumentError for a bad address."""
    if profile.driver == "onvif":
        from drivers.onvif.address import parse_address
        from drivers.onvif.driver import OnvifDriver

        where = parse_address(address, default_port=profile.transport.tcp_port)
        return OnvifDriver(profile, where, device_id=device_id, poll_interval=poll_interval)
    return Device(profile, make_transport(address, profile), device_id=device_id, poll_interval=poll_interval)


@asynccontextmanager
async def simulated(profile: Profile, report: Report = lambda line: None) -> AsyncIterator[str]:
    """Run `profile`'s simulator in this process on loopback; yields the address to give `open_driver`."""
    if profile.driver == "onvif":
        from drivers.sim.onvif import OnvifCamera, OnvifServer

        password = secrets.token_urlsafe(12)  # nobody else on this machine can steer the simulated camera
        camera = OnvifCamera(user="admin", password=password)
        async with OnvifServer(camera, host="127.0.0.1", port=0, report=report) as camera_server:
            yield f"onvif://admin:{quote(password, safe='')}@127.0.0.1:{camera_server.port}"
        return
    async with SimServer(Simulator(profile), "tcp://127.0.0.1:0", report=report) as server:
        yield server.device_path
