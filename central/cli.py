"""The ``classroom-central`` command line: run the centre, look at the fleet, send commands.

Bad arguments print one line naming the problem and exit with status 2; a command that did not
succeed (failed, rejected, expired, timeout, broker unreachable) exits with status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from wcwidth import wcswidth

from central.errors import CentralError, ConfigError
from central.terminal import shown
from contract.args import parse_args_list
from contract.errors import AddressError, BrokerError, PayloadError
from hosting import InstallError, package_version
from hosting.install import add_install_options
from hosting.logs import configure_logging

if TYPE_CHECKING:
    from central.retention import Retention
    from central.store import Location
    from contract.mqtt import BrokerAddress

log = logging.getLogger("classroom-central")

# Retention's fields, the flags that set them, and what each keeps (besides --retention-days: telemetry).
_KEEP_FLAGS = {
    "events_days": ("--keep-events-days", "events and cleared alarms"),
    "audit_days": ("--keep-audit-days", "the command audit log"),
    "history_days": ("--keep-history-days", "status history"),
}

PASSWORD_ENV = "CLASSROOM_BROKER_PASSWORD"  # the broker password when neither --password nor --password-file is given
DB_ENV = "CLASSROOM_CENTRAL_DB"  # run's fleet store when --db is not given (central.collectors hands it on so)


def _broker_config() -> ModuleType | None:
    """Another engineer's ``broker-config`` module, if it is installed."""
    try:
        from central import broker_config
    except ImportError:
        return None
    return broker_config


def _broker_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", required=True, metavar="URL", help="mqtt://HOST:PORT or mqtts://HOST:PORT")
    parser.add_argument("--username", default="", help="broker user name")
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument("--password-file", type=Path, metavar="FILE", help="read the broker password from FILE")
    secret.add_argument(
        "--password",
        default="",
        help=f"broker password (visible to every user in `ps`: prefer --password-file or {PASSWORD_ENV})",
    )
    parser.add_argument("--ca-file", default="", metavar="FILE", help="CA certificate that signed the broker's")


def _parser(broker_config: ModuleType | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="classroom-central", description="The technicians' side of the fleet.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="cmd", required=True)

    _run_options(sub.add_parser("run", help="collect the fleet into fleet.db and serve the dashboard"))
    install = sub.add_parser("install-service", help="write a systemd unit that runs `run` with these options")
    _run_options(install)
    add_install_options(install)
    _add_commands(sub, broker_config)
    return parser


def _run_options(run: argparse.ArgumentParser) -> None:
    """``run``'s options (``install-service`` takes them too, for the unit's command line)."""
    _broker_options(run)
    run.add_argument(
        "--db", type=_location,
        help=f"fleet store: SQLite file or postgresql://… (default: ${DB_ENV}, else fleet.db; a URL with a password"
        " is safer there than here, where `ps` shows it)",
    )  # fmt: skip
    run.add_argument("--http", metavar="HOST:PORT", help="serve the dashboard here")
    run.add_argument("--retention-days", type=float, default=30.0, help="keep telemetry this many days")
    for flag, what in _KEEP_FLAGS.values():
        run.add_argument(flag, type=float, default=180.0, metavar="DAYS", help=f"keep {what} this many days (180)")
    run.add_argument("--recordings", type=Path, metavar="DIR", help="uploaded recordings (default: beside --db)")
    run.add_argument(
        "--max-recording-gib", type=_positive, default=32.0, metavar="GIB",
        help="refuse to take an uploaded recording larger than this (default: 32 GiB)",
    )  # fmt: skip
    run.add_argument(
        "--client-id",
        default="",
        metavar="ID",
        help="MQTT client id of the centre's persistent session, one per collector process"
        " (default: the broker user name, else classroom-central)",
    )
    run.add_argument(
        "--wake-port", type=_port, default=9, metavar="PORT",
        help="UDP port of the Wake-on-LAN packets that wake a room's PC through a neighbour (default: 9)",
    )  # fmt: skip
    # City scale (docs/scale.md): collectors of one group split the fleet's topics (shared subscription).
    run.add_argument("--group", default="", metavar="NAME", help="share the fleet's topics with this group")
    run.add_argument("--collectors", type=int, default=1, metavar="N", help="run N collector processes (PostgreSQL)")
    run.add_argument("--collector-only", action="store_true", help="collect only: no retention, wake or hours watch")
    run.add_argument(
        "--leave", action="store_true",
        help="leave --group for good: store what the broker kept for --client-id, end its session, exit",
    )  # fmt: skip


def _add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], broker_config: ModuleType | None) -> None:
    token = sub.add_parser("upload-token", help="let an agent upload recordings with this token (its [upload] token)")
    token.add_argument("agent", help="the agent id")
    token.add_argument("token", nargs="?", help="the token (default: a new random one, printed)")
    token.add_argument("--db", default="fleet.db", type=_location)

    fleet = sub.add_parser("fleet", help="print the fleet as a table")
    fleet.add_argument("--db", default="fleet.db", type=_location)
    fleet.add_argument("--site", help="only this site")
    fleet.add_argument("--offline", action="store_true", help="only agents that are not online")
    fleet.add_argument("--alarms", action="store_true", help="only agents with open alarms")

    send = sub.add_parser("send", help="send a command to an agent and print its reply as JSON")
    send.add_argument("agent")
    send.add_argument("command")
    send.add_argument("args", nargs="*", metavar="NAME=VALUE", help="values are JSON when they parse, else text")
    _broker_options(send)
    send.add_argument("--db", default="fleet.db", type=_location)
    send.add_argument("--by", default="", metavar="USER", help="who sends it (default: the login name)")
    send.add_argument("--timeout", type=float, default=10.0, metavar="S", help="seconds to wait for the reply")

    sub.add_parser("users", help="manage dashboard users: users --db fleet.db add NAME --role technician")
    alarms = sub.add_parser("alarms", help="print alarms (open ones unless --all)")
    alarms.add_argument("--db", default="fleet.db", type=_location)
    alarms.add_argument("--all", action="store_true", help="cleared alarms too")

    if broker_config is not None:
        broker_config.add_parser(sub)
    else:
        sub.add_parser("broker-config", help="(unavailable in this installation)")


def _location(text: str) -> Location:
    """An argparse type: the fleet store, a SQLite file or ``postgresql://…``."""
    from central.store import Location

    try:
        return Location.parse(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _db_from_environment() -> Location:
    """``run``'s store without --db: $CLASSROOM_CENTRAL_DB, else fleet.db (ConfigError not showing the value)."""
    from central.store import Location

    try:
        return Location.parse(os.environ.get(DB_ENV) or "fleet.db")
    except ConfigError:
        raise ConfigError(f"{DB_ENV}: expected a SQLite file or postgresql://…") from None


def _port(text: str) -> int:
    """An argparse type: a UDP port 1..65535."""
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"got {text!r}, expected a port 1..65535")
    return int(text)


def _positive(text: str) -> float:
    """An argparse type: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"got {text!r}, expected a number above 0")
    return value


def parse_http(text: str) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port); ConfigError otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--http {text!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns padded to their widest cell, two spaces apart, by display width (高一(1)班 takes 9 columns).

    Every cell is `shown`: rooms, alarm messages and devices come from agents.
    """
    cells = [[shown(str(c)) for c in headers], *[["" if c is None else shown(str(c)) for c in row] for row in rows]]
    widths = [max(_width(row[i]) for row in cells) for i in range(len(headers))]
    lines = ("  ".join(c + " " * (w - _width(c)) for c, w in zip(row, widths, strict=True)) for row in cells)
    return "\n".join(line.rstrip() for line in lines)


def _width(text: str) -> int:
    """Columns `text` takes in a terminal; a control character (`shown` escapes them) counts as one."""
    width = wcswidth(text)
    return width if width >= 0 else len(text)


def _existing_db(location: Location) -> Location:
    if not location.exists():
        where = location.display
        raise ConfigError(f"no fleet database at {where} (classroom-central run --db {where} creates it)")
    return location


def _fleet(args: argparse.Namespace) -> int:
    from central.fleetdb import FleetDB

    db = FleetDB(_existing_db(args.db))
    try:
        agents = db.agents(site=args.site, offline_only=args.offline, alarms_only=args.alarms)
    finally:
        db.close()
    rows = [
        (
            a["site"],
            a["agent_id"],
            a["room"],
            a["state"],
            a["last_seen"] or "-",
            f"{sum(1 for d in a['devices'] if d['online'])}/{len(a['devices'])}",
            a["open_alarms"],
        )
        for a in agents
    ]
    print(format_table(("SITE", "AGENT", "ROOM", "STATE", "LAST SEEN", "DEVICES", "ALARMS"), rows))
    return 0


def _alarms(args: argparse.Namespace) -> int:
    from central.fleetdb import FleetDB

    db = FleetDB(_existing_db(args.db))
    try:
        alarms = db.alarms(open_only=not args.all)
    finally:
        db.close()
    headers = ("ID", "SITE", "AGENT", "SEVERITY", "TYPE", "DEVICE", "RAISED", "CLEARED", "ACKED BY", "MESSAGE")
    keys = ("id", "site", "agent_id", "severity", "type", "device", "raised_ts", "cleared_ts", "acked_by", "message")
    print(format_table(headers, [[a[k] or ("-" if k != "message" else "") for k in keys] for a in alarms]))
    return 0


def _address(args: argparse.Namespace) -> BrokerAddress:
    from contract.mqtt import BrokerAddress

    password = _broker_password(args.password, args.password_file)
    return BrokerAddress.parse(args.broker, username=args.username, password=password, ca_file=args.ca_file)


def _broker_password(given: str, path: Path | None) -> str:
    """The broker password: ``--password``, else the first line of ``--password-file``, else the environment."""
    if given:
        return given
    if path is not None:
        try:
            return path.read_text(encoding="utf-8").partition("\n")[0].rstrip("\r")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--password-file {path}: cannot read it ({exc})") from None
    return os.environ.get(PASSWORD_ENV, "")


async def _send(args: argparse.Namespace) -> int:
    from central.fleetdb import FleetDB

    values = parse_args_list(args.args)
    broker = _address(args)
    db = FleetDB(_existing_db(args.db))
    try:
        if db.site_of(args.agent) is None:
            raise ConfigError(f"unknown agent {args.agent!r} (not in {args.db.display})")
        from central.send_once import send_once

        reply = await send_once(broker, db, args.agent, args.command, values, args.by or _login(), args.timeout)
    finally:
        db.close()
    print(shown(json.dumps(reply, ensure_ascii=False, allow_nan=False)))  # JSON leaves DEL, C1 and bidi as they are
    return 0 if reply.get("status") == "succeeded" else 1


def _login() -> str:
    with contextlib.suppress(Exception):
        return getpass.getuser()
    return "cli"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["users"]:  # user management has its own parser
        from central import users

        return users.main(argv[1:])
    broker_config = _broker_config()
    args = _parser(broker_config).parse_args(argv)
    configure_logging(logging.INFO if args.verbose or args.cmd == "run" else logging.WARNING)
    try:
        return _dispatch(args, broker_config)
    except (ConfigError, AddressError, PayloadError, InstallError) as exc:
        print(f"classroom-central: error: {exc}", file=sys.stderr)
        return 2
    except (CentralError, BrokerError) as exc:
        print(f"classroom-central: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace, broker_config: ModuleType | None) -> int:
    if args.cmd == "fleet":
        return _fleet(args)
    if args.cmd == "alarms":
        return _alarms(args)
    if args.cmd == "send":
        return asyncio.run(_send(args))
    if args.cmd == "upload-token":
        return _upload_token(args)
    if args.cmd == "broker-config":
        if broker_config is None:
            print("classroom-central: broker-config is unavailable in this installation", file=sys.stderr)
            return 2
        return int(broker_config.run(args))
    from central import service

    if args.db is None:
        args.db = _db_from_environment()
    http = parse_http(args.http) if args.http else None
    if args.cmd == "install-service":
        defaults = vars(_parser(broker_config).parse_args(["run", "--broker", ""]))
        return service.install_service(args, defaults, http)
    return service.run(args, http, _address(args), _retention(args))


def _retention(args: argparse.Namespace) -> Retention:
    """The run's retention; ConfigError names every bad flag."""
    from central.retention import Retention

    flags = {"telemetry_days": "--retention-days", **{name: flag for name, (flag, _) in _KEEP_FLAGS.items()}}
    retention = Retention(**{name: getattr(args, flag[2:].replace("-", "_")) for name, flag in flags.items()})
    if found := retention.problems():
        raise ConfigError("; ".join(flags[p.split(":")[0]] + p[p.index(":") :] for p in found))
    return retention


def _upload_token(args: argparse.Namespace) -> int:
    import secrets

    from central.upload_store import Uploads

    token = args.token or secrets.token_urlsafe(24)
    uploads = Uploads(args.db, args.db.default_recordings())
    try:
        uploads.register_agent(args.agent, token)
    finally:
        uploads.close()
    print(f"{args.agent}: put this in its site config: [upload] token = {token!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
