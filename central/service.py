"""classroom-central as a service of the technicians' server: checks before ``run``, and its systemd unit.

``install-service`` takes the same options as ``run`` and writes a unit whose ``ExecStart`` runs
``run`` with them (paths made absolute). The broker password never goes into the unit: use
``--password-file``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import central
from central.errors import ConfigError
from central.store import Location
from contract.mqtt import BrokerAddress
from hosting import package_version
from hosting.folders import folder_problem
from hosting.install import absolute, entry_point, install
from hosting.unit import ServiceUnit
from websession.serve import bind_error_in

if TYPE_CHECKING:
    from central.retention import Retention

NAME = "classroom-central"
_NOT_RUN_OPTIONS = {"cmd", "verbose"}  # the parser's own, not `run`'s


def run(args: argparse.Namespace, http: tuple[str, int] | None, broker: BrokerAddress, retention: Retention) -> int:
    """``classroom-central run`` until SIGTERM: its folders checked first, a port it cannot have said in one line."""
    from central.app import run_central
    from central.collector import default_client_id
    from central.collectors import PARENT_ENV, plan

    check_folders(args.db, args.recordings)
    client_id = args.client_id or default_client_id(broker)
    if args.leave:
        return leave(args, broker, client_id)
    recordings = args.recordings or args.db.default_recordings()
    helpers = plan(args.collectors, args.group, args.db, broker, client_id, recordings)  # flags that do not go together
    try:
        asyncio.run(
            run_central(
                broker,
                args.db,
                http,
                retention=retention,
                version=package_version(),
                recordings_dir=args.recordings,
                max_recording_bytes=int(args.max_recording_gib * 2**30),
                client_id=client_id,
                wake_port=args.wake_port,
                group=args.group,
                housekeeping=not args.collector_only,
                helpers=helpers,
                watch_parent=os.environ.get(PARENT_ENV) == "stdin" and args.collector_only,
            )
        )
    except Exception as exc:  # a port that cannot be listened on is one line naming --http; the rest goes on up
        raise bind_failure(exc, args.http) or exc from None
    return 0


def leave(args: argparse.Namespace, broker: BrokerAddress, client_id: str) -> int:
    """``run --leave``: member `client_id` leaves ``--group`` for good (`central.leave`); one line says what it did."""
    from central.collectors import plan
    from central.leave import leave_group

    if not args.group or args.collectors != 1:
        raise ConfigError("--leave needs --group NAME (and the leaving member's --client-id), without --collectors")
    plan(1, args.group, args.db, broker, client_id, Path("."))  # the group's name checked
    stored = asyncio.run(leave_group(broker, args.db, args.group, client_id, timeout=10.0))
    print(f"{client_id} left group {args.group}: {stored} queued messages stored, its session ended")
    return 0


def check_folders(db: Location, recordings: Path | None) -> None:
    """fleet.db's folder must exist and be writable, the recordings' creatable: ConfigError naming the flag.

    A PostgreSQL store has no folder here: the server answers (or not) when the store is opened.
    """
    if db.is_sqlite and (problem := folder_problem(db.path.parent.absolute(), [db.path.name], create=False)):
        raise ConfigError(f"--db {db.display}: {problem}")
    if problem := folder_problem(recordings or db.default_recordings()):
        raise ConfigError(f"--recordings: {problem}")


def bind_failure(exc: BaseException, http: str) -> ConfigError | None:
    """A ConfigError naming --http when `exc` is (or holds) a port that could not be listened on."""
    if (failure := bind_error_in(exc)) is None:
        return None
    return ConfigError(f"--http {http}: {failure}; choose another HOST:PORT")


def install_service(args: argparse.Namespace, defaults: Mapping[str, Any], http: tuple[str, int] | None) -> int:
    """Print (`--dry-run`) or write the unit that runs ``classroom-central run`` with the options given.

    `defaults` are ``run``'s option defaults (only options that differ go into the unit); `http`
    the checked ``--http``.
    """
    if args.leave:
        raise ConfigError("--leave is done once, by hand, not by a service")
    if args.password or BrokerAddress.parse(args.broker).password:
        raise ConfigError("a broker password given on the command line would be in the unit: use --password-file")
    db: Location = args.db
    if not db.is_sqlite and urlsplit(db.target).password is not None:
        raise ConfigError("a database password in --db would be in the unit: put it in the service user's ~/.pgpass")
    if not db.is_sqlite and not args.recordings:
        raise ConfigError("--db postgresql://… needs --recordings DIR (no fleet.db folder to keep them beside)")
    port = http[1] if http else 0
    command, environment = entry_point(NAME, "central.cli", central.__file__)
    recordings = absolute(args.recordings or db.default_recordings())
    folders = (absolute(db.path).parent, recordings) if db.is_sqlite else (recordings,)
    unit = ServiceUnit(
        description="classroom-central: the fleet's collector and dashboard",
        exec_start=(*command, "run", *run_words(args, defaults)),
        user=args.user,
        writable=folders,
        environment=environment,
        low_port=0 < port < 1024,
    )
    reads = [Path(absolute(p)) for p in (args.password_file, args.ca_file) if p]
    secrets = reads[:1] if args.password_file else []
    return install(unit, NAME, args, reads=reads, secrets=secrets)


def run_words(args: argparse.Namespace, defaults: Mapping[str, Any]) -> list[str]:
    """``run``'s options that differ from their defaults, as words; paths absolute (the service runs in /).

    ``--db`` is always there: its default is relative to wherever the command was typed (a
    PostgreSQL URL goes as given).
    """
    db: Location = args.db
    words = ["--db", str(absolute(db.path)) if db.is_sqlite else db.target]
    for dest, default in defaults.items():
        value = getattr(args, dest, default)
        if dest in _NOT_RUN_OPTIONS or dest == "db" or value == default or value is None:
            continue
        flag = f"--{dest.replace('_', '-')}"
        if value is True:  # a switch (--collector-only) takes no value
            words.append(flag)
            continue
        if isinstance(value, os.PathLike) or dest.endswith("_file"):
            value = str(absolute(value)) if str(value) else value
        words += [flag, _text(value)]
    return words


def _text(value: object) -> str:
    """A value as argparse reads it back (a float without a needless ``.0``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
