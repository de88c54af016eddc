"""The ``classroom-agent`` command line.

Bad arguments (unknown profile or command, a value out of range, malformed hex) print one
line naming the problem and exit with status 2; a device that fails exits with status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from agent.errors import ConfigError
from contract.errors import AddressError, PayloadError
from drivers.errors import ArgumentError, DriverError, ProfileError
from hosting import InstallError, package_version
from hosting.logs import configure_logging

log = logging.getLogger("classroom-agent")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="classroom-agent", description="Classroom device controller.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every exchange")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="cmd", required=True)

    profiles = sub.add_parser("profiles", help="inspect hardware profiles").add_subparsers(dest="action", required=True)
    profiles.add_parser("list", help="list shipped profiles")
    show = profiles.add_parser("show", help="show one profile's commands")
    show.add_argument("id")
    enc = profiles.add_parser("encode", help="print a command's frame as hex")
    enc.add_argument("id")
    enc.add_argument("command")
    enc.add_argument("args", nargs="*", metavar="NAME=VALUE")
    dec = profiles.add_parser("decode", help="parse reply bytes (hex) as JSON")
    dec.add_argument("id")
    dec.add_argument("command")
    dec.add_argument("hex", nargs="+", metavar="HEX")

    dev = sub.add_parser("device", help="send one command to a device and print the result")
    dev.add_argument("--profile", required=True)
    dev.add_argument("--at", required=True, metavar="ADDRESS", help="/dev/ttyUSB0, tcp://HOST:PORT, udp://HOST:PORT")
    dev.add_argument("command")
    dev.add_argument("args", nargs="*", metavar="NAME=VALUE")

    sim = sub.add_parser("simulate", help="run a simulated device")
    sim.add_argument("id", help="a profile id, or onvif for an ONVIF camera")
    sim.add_argument(
        "--at",
        required=True,
        metavar="ADDRESS",
        help="pty, /dev/..., tcp://HOST:PORT, udp://HOST:PORT; http://HOST:PORT for onvif",
    )
    onvif = sim.add_argument_group("onvif", "options of `simulate onvif`")
    onvif.add_argument("--user", default="admin", help="the camera's user name (default admin)")
    onvif.add_argument("--rtsp", default="", metavar="URL", help="the RTSP stream GetStreamUri points at")
    onvif.add_argument("--rtsp-sub", default="", metavar="URL", help="a second stream for the sub profile")
    onvif.add_argument(
        "--discovery-port", type=int, default=None, metavar="N", help="answer WS-Discovery Probes on UDP port N"
    )
    onvif.add_argument(
        "--clock-offset", type=float, default=0.0, metavar="S", help="run the camera's clock S seconds off"
    )
    onvif.add_argument(
        "--no-absolute", action="store_true", help="a camera without absolute and relative moves"
    )
    sim.add_argument("--drop-replies", type=float, default=0.0, metavar="P", help="drop each reply with probability P")
    sim.add_argument(
        "--garbage", type=float, default=0.0, metavar="P", help="send noise before a reply with probability P"
    )
    sim.add_argument("--delay-ms", type=int, default=0, metavar="N", help="answer N ms late")
    sim.add_argument("--seed", type=int, default=None, help="seed the fault generator (repeatable runs)")
    sim.add_argument(
        "--flood", type=float, default=0.0, metavar="MIB", help="send MIB MiB of noise on each new connection"
    )
    sim.add_argument(
        "--flood-unframed", action="store_true", help="flood without the profile's frame markers (frames never end)"
    )
    sim.add_argument(
        "--flood-after", type=int, default=0, metavar="N", help="start the flood after answering N requests"
    )

    sim.add_argument(
        "--password", metavar="P", help="a device with a login asks for this password (PJLink; onvif: default admin)"
    )
    sim.add_argument(
        "--state",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="start with this state value, e.g. fan_status=error or lamp_hours=2990 (repeatable)",
    )
    sim.add_argument("--failed", action="store_true", help="a failed device: commands get its failure reply (ERR4)")
    sim.add_argument(
        "--idle-close", type=float, default=None, metavar="S", help="hang up after S s without a command (0 never)"
    )

    run = sub.add_parser("run", help="run the agent service for one classroom")
    run.add_argument("--config", required=True, metavar="FILE", help="the site config (see examples/site.toml)")
    run.add_argument("--broker", metavar="URL", help="mqtt://HOST:PORT or mqtts://HOST:PORT, overrides the config")

    call = sub.add_parser("call", help="send a command to the running agent and print its reply")
    call.add_argument("--config", metavar="FILE", help="the running agent's site config (for its local address)")
    call.add_argument("--by", default="", help="who is asking (for the audit log)")
    call.add_argument("command")
    call.add_argument("args", nargs="*", metavar="NAME=VALUE")

    demo = sub.add_parser("demo", help="drive a simulated panel and camera through a short lesson setup")
    demo.add_argument("--pause", type=float, default=0.3, help="seconds between steps")
    demo.add_argument("--broker", metavar="URL", help="use this broker (default: start a local Mosquitto)")
    demo.add_argument(
        "--http", default="127.0.0.1:0", metavar="HOST:PORT", help="the dashboard's address (default: a free port)"
    )
    demo.add_argument("--data", default="var/demo", metavar="DIR", help="where fleet.db and the rooms' agent.db go")
    demo.add_argument(
        "--duration", type=float, default=None, metavar="S", help="stop after S seconds (default: run until Ctrl-C)"
    )

    from agent.cli import discover as cli_discover
    from agent.cli import install as cli_install
    from agent.cli import record as cli_record  # argparse only: the media stack loads when the command runs

    cli_record.add_parser(sub)
    cli_discover.add_parser(sub)
    cli_install.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = _parser().parse_args(argv)
    configure_logging(logging.INFO if args.verbose else logging.WARNING)
    try:
        if args.cmd == "profiles":
            from agent.cli import profiles as cli_profiles

            return cli_profiles.run(args)
        if args.cmd == "device":
            from agent.cli import device as cli_device

            return asyncio.run(cli_device.run(args))
        if args.cmd in ("run", "call"):
            from agent.cli import service as cli_service

            return cli_service.run(args)
        if args.cmd == "record":
            from agent.cli import record as cli_record

            return cli_record.run(args)
        if args.cmd == "discover":
            from agent.cli import discover as cli_discover

            return asyncio.run(cli_discover.run(args))
        if args.cmd == "simulate":
            from agent.cli import simulate as cli_simulate

            return asyncio.run(cli_simulate.simulate(args))
        if args.cmd == "install-service":
            from agent.cli import install as cli_install

            return cli_install.run(args)
        from agent.demo import run as demo

        return demo.main(args)
    except (ArgumentError, ProfileError, ConfigError, AddressError, PayloadError, InstallError) as exc:
        print(f"classroom-agent: error: {exc}", file=sys.stderr)
        return 2
    except DriverError as exc:
        print(f"classroom-agent: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
