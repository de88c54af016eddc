"""``classroom-agent device``: one command to a device, straight through its profile; NAME=VALUE arguments."""

from __future__ import annotations

import argparse
import json

from contract.args import parse_assignments


async def run(args: argparse.Namespace) -> int:
    """``classroom-agent device``: send one command to a device and print the result as JSON."""
    from drivers.driver import open_driver
    from drivers.profile import find_profile

    profile = find_profile(args.profile)
    values = parse_assignments(args.args)
    profile.resolve_args(profile.command(args.command), values)  # bad input never opens the port
    device = open_driver(profile, args.at)
    try:
        result = await device.call(args.command, values)
    finally:
        await device.close()
    print(json.dumps(result.to_dict(), ensure_ascii=False, allow_nan=False))
    return 0
