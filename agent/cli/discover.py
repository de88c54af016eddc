"""``classroom-agent discover``: find the ONVIF cameras on the LAN and print the site config lines for them.

WS-Discovery finds them (a multicast Probe on every interface, or ``--probe HOST:PORT`` to ask one
device directly); with ``--user`` and a password each camera is also asked for its make, model,
firmware, serial and every media profile's RTSP URI.  The output is the ``[[devices]]`` and
``[sources]`` lines to paste into the site config, with what was found as comments.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

from drivers.errors import ArgumentError, DriverError
from drivers.onvif.media import MAIN, SUB, MediaProfile, choose

if TYPE_CHECKING:
    from drivers.onvif.driver import OnvifDriver

PASSWORD_ENV = "CLASSROOM_ONVIF_PASSWORD"
MAX_TIMEOUT_S = 60.0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``discover`` subcommand's arguments."""
    found = sub.add_parser("discover", help="find ONVIF cameras (WS-Discovery) and print their site config lines")
    found.add_argument("--timeout", type=float, default=3.0, metavar="S", help="wait S seconds for answers (3)")
    found.add_argument("--user", default="", help="the cameras' user name: also list make, model and RTSP URIs")
    found.add_argument("--password", default=None, help=f"their password (or the environment variable {PASSWORD_ENV})")
    found.add_argument(
        "--probe", default="", metavar="HOST:PORT", help="send the Probe to this one device instead of multicast"
    )


@dataclass
class Camera:
    """What discovery and (with credentials) the camera itself said about one device."""

    host: str
    port: int
    make: str = ""
    model: str = ""
    firmware: str = ""
    serial: str = ""
    streams: list[tuple[str, str, str]] = field(default_factory=list)  # (selector, profile description, URI)
    error: str = ""


async def run(args: argparse.Namespace) -> int:
    """Probe, ask each camera when credentials are given, print; 1 when nobody answered."""
    from drivers.onvif.discovery import discover

    if not 0 < args.timeout <= MAX_TIMEOUT_S:
        raise ArgumentError(f"--timeout {args.timeout:g}: expected 0 < S <= {MAX_TIMEOUT_S:g}")
    password = args.password if args.password is not None else os.environ.get(PASSWORD_ENV, "")
    if bool(args.user) != bool(password):
        raise ArgumentError(f"--user and --password (or {PASSWORD_ENV}) go together")
    found = await discover(args.timeout, _target(args.probe) if args.probe else None)
    cameras = [Camera(*hp, make=f.make, model=f.model) for f in found if (hp := f.host_port) is not None]
    if not cameras:
        where = args.probe or "the LAN (239.255.255.250:3702)"
        print(f"classroom-agent: no ONVIF device answered on {where} within {args.timeout:g} s")
        return 1
    if args.user:
        await asyncio.gather(*(_ask(camera, args.user, password, args.timeout) for camera in cameras))
    print(render(cameras, args.user, password))
    return 0


def _target(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ArgumentError(f"--probe {text!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


async def _ask(camera: Camera, user: str, password: str, timeout_s: float) -> None:
    """Fill in make, model, firmware, serial and the streams from the camera itself."""
    from drivers.onvif.address import OnvifAddress
    from drivers.onvif.driver import OnvifDriver
    from drivers.profile import find_profile

    driver = OnvifDriver(
        find_profile("onvif"), OnvifAddress(camera.host, camera.port, user, password), timeout_s=max(timeout_s, 2.0)
    )
    try:
        info = (await driver.call("get_info")).fields
        camera.make, camera.model = str(info.get("make", camera.make)), str(info.get("model", camera.model))
        camera.firmware, camera.serial = str(info.get("firmware", "")), str(info.get("serial", ""))
        for selector, profile in _selectors(driver):
            uri = await driver.stream_uri(profile.token)
            what = f"{profile.token} {profile.width}x{profile.height} {profile.encoding}".strip()
            camera.streams.append((selector, what, _without_credentials(uri)))
    except (DriverError, ArgumentError) as exc:
        camera.error = str(exc)
    finally:
        await driver.close()


def _selectors(driver: OnvifDriver) -> list[tuple[str, MediaProfile]]:
    """Each media profile with the name a source gives it: ``main``, ``sub``, or its token."""
    main, sub = choose(driver.profiles, MAIN), choose(driver.profiles, SUB)
    return [(MAIN if p is main else SUB if p is sub else p.token, p) for p in driver.profiles]


def _without_credentials(uri: str) -> str:
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def render(cameras: list[Camera], user: str, password: str) -> str:
    """The report: each camera as comments, then the config lines to paste."""
    lines = [f"# {len(cameras)} ONVIF device(s) found", ""]
    who = f"{quote(user, safe='')}:{quote(password, safe='')}" if user else "USER:PASSWORD"
    for i, camera in enumerate(cameras, 1):
        device = f"camera{i}"
        what = " ".join(_plain(x) for x in (camera.make, camera.model) if x) or "(make and model unknown)"
        lines.append(f"# {device}: {camera.host}:{camera.port}  {what}")
        if camera.firmware or camera.serial:
            lines.append(f"#   firmware {_plain(camera.firmware) or '?'}, serial {_plain(camera.serial) or '?'}")
        for selector, profile, uri in camera.streams:
            lines.append(f"#   {selector:<5} {_plain(profile)}  {_plain(uri)}")
        if camera.error:
            lines.append(f"#   could not ask the camera: {_plain(camera.error)}")
        elif not user:
            lines.append("#   (give --user and --password to list its make, model and RTSP streams)")
        host = f"[{camera.host}]" if ":" in camera.host else camera.host
        lines += [
            "[[devices]]",
            f'id = "{device}"',
            'profile = "onvif"',
            f'address = "onvif://{who}@{host}:{camera.port}"',
            "",
        ]
    lines.append("[sources]")
    for i, _ in enumerate(cameras, 1):
        lines.append(f'camera{i} = "onvif:camera{i}"          # main stream; onvif:camera{i}/sub for the sub stream')
    return "\n".join(lines)


def _plain(text: str) -> str:
    """One line of printable text (a camera's name must not end a comment and start a TOML line)."""
    return "".join(c for c in " ".join(str(text).split()) if c.isprintable())[:200]
