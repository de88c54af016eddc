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

import central
from central.errors import ConfigError
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

    check_folders(args.db, args.recordings)
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
                client_id=args.client_id,
                wake_port=args.wake_port,
            )
        )
    except Exception as exc:  # a port that cannot be listened on is one line naming --http; the rest goes on up
        raise bind_failure(exc, args.http) or exc from None
    return 0


def check_folders(db: Path, recordings: Path | None) -> None:
    """fleet.db's folder must exist and be writable, the recordings' creatable: ConfigError naming the flag."""
    if problem := folder_problem(db.parent.absolute(), [db.name], create=False):
        raise ConfigError(f"--db {db}: {problem}")
    if problem := folder_problem(recordings or db.parent / "recordings"):
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
    if args.password or BrokerAddress.parse(args.broker).password:
        raise ConfigError("a broker password given on the command line would be in the unit: use --password-file")
    port = http[1] if http else 0
    command, environment = entry_point(NAME, "central.cli", central.__file__)
    db = absolute(args.db)
    recordings = absolute(args.recordings) if args.recordings else db.parent / "recordings"
    unit = ServiceUnit(
        description="classroom-central: the fleet's collector and dashboard",
        exec_start=(*command, "run", *run_words(args, defaults)),
        user=args.user,
        writable=(db.parent, recordings),
        environment=environment,
        low_port=0 < port < 1024,
    )
    reads = [Path(absolute(p)) for p in (args.password_file, args.ca_file) if p]
    secrets = reads[:1] if args.password_file else []
    return install(unit, NAME, args, reads=reads, secrets=secrets)


def run_words(args: argparse.Namespace, defaults: Mapping[str, Any]) -> list[str]:
    """``run``'s options that differ from their defaults, as words; paths absolute (the service runs in /).

    ``--db`` is always there: its default is relative to wherever the command was typed.
    """
    words = ["--db", str(absolute(args.db))]
    for dest, default in defaults.items():
        value = getattr(args, dest, default)
        if dest in _NOT_RUN_OPTIONS or dest == "db" or value == default or value is None:
            continue
        if isinstance(value, os.PathLike) or dest.endswith("_file"):
            value = str(absolute(value)) if str(value) else value
        words += [f"--{dest.replace('_', '-')}", _text(value)]
    return words


def _text(value: object) -> str:
    """A value as argparse reads it back (a float without a needless ``.0``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
