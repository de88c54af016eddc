"""``classroom-agent simulate ID --at ADDRESS``: a simulated device until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal

from contract.args import parse_assignments
from drivers.profile import find_profile
from drivers.sim.model import Simulator
from drivers.sim.runner import Faults, SimServer


async def simulate(args: argparse.Namespace) -> int:
    """Serve until interrupted, printing every exchange."""
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
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C still raises
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.close()
    return 0
