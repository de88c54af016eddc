"""``classroom-agent simulate ID --at ADDRESS``: a simulated device until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
from urllib.parse import urlsplit

from contract.args import parse_assignments
from drivers.errors import ArgumentError
from drivers.profile import find_profile
from drivers.sim.model import Simulator
from drivers.sim.onvif import OnvifCamera, OnvifServer
from drivers.sim.runner import Faults, SimServer

# The line faults of the byte-protocol simulators, which an ONVIF camera does not take.
LINE_FAULTS = ("drop_replies", "garbage", "delay_ms", "flood", "flood_unframed", "flood_after")


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C still raises
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _http_address(at: str) -> tuple[str, int]:
    parts = urlsplit(at)
    try:
        port = parts.port
    except ValueError as exc:
        raise ArgumentError(f"--at {at!r}: bad port") from exc
    if parts.scheme != "http" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ArgumentError(f"--at {at!r}: expected http://HOST:PORT for onvif (PORT 0 picks a free one)")
    return parts.hostname, port


async def simulate_onvif(args: argparse.Namespace) -> int:
    """Serve an ONVIF camera until interrupted, printing every request."""
    given = [f"--{name.replace('_', '-')}" for name in LINE_FAULTS if getattr(args, name, None)]
    if given:
        raise ArgumentError(f"{', '.join(given)}: line faults do not apply to onvif")
    host, port = _http_address(args.at)
    camera = OnvifCamera(
        user=args.user,
        password=args.password if args.password is not None else "admin",
        rtsp=args.rtsp,
        rtsp_sub=args.rtsp_sub,
        clock_offset_s=args.clock_offset,
        absolute_moves=not args.no_absolute,
    )
    server = OnvifServer(camera, host, port, args.discovery_port, report=lambda line: print(line, flush=True))
    try:
        await server.start()
    except OSError as exc:
        raise ArgumentError(f"--at {args.at}: {exc.strerror or exc}") from exc
    print(f"simulating onvif ({camera.make} {camera.model}, user {camera.user}) at {server.url}", flush=True)
    if server.discovery_port is not None:
        print(f"answering WS-Discovery Probes on udp://{host}:{server.discovery_port}", flush=True)
    try:
        await _until_stopped()
    finally:
        await server.close()
    return 0


async def simulate(args: argparse.Namespace) -> int:
    """Serve until interrupted, printing every exchange."""
    if args.id == "onvif":
        return await simulate_onvif(args)
    profile = find_profile(args.id)
    faults = Faults(
        args.drop_replies,
        args.garbage,
        args.delay_ms,
        random.Random(args.seed),
        flood_bytes=round(args.flood * 1024 * 1024),
        flood_unframed=args.flood_unframed,
        flood_after=args.flood_after,
    )
    sim = Simulator(profile)
    for name, value in parse_assignments(args.state).items():
        sim.set_field(name, value)
    sim.set("failed", args.failed)
    server = SimServer(
        sim,
        args.at,
        faults,
        report=lambda line: print(line, flush=True),
        password=args.password,
        idle_close_s=args.idle_close,
    )
    path = await server.start()
    print(f"simulating {profile.id} ({profile.name}) at {path}", flush=True)
    try:
        await _until_stopped()
    finally:
        await server.close()
    return 0
