"""Who may connect to the fleet's Mosquitto, and what each may read and write.

``classroom-central broker-config`` turns a registry of accounts into three files for Mosquitto:
a password file (hashed by ``mosquitto_passwd``), an ACL file, and a ``mosquitto.conf`` snippet.

The registry of accounts (a TOML file or flags) is `central.broker_registry`.

Roles and rights (``S``/``A`` are the agent's own site and id, pinned in its own ACL block):

- agent: write ``classroom/v1/S/A/<kind>`` for every kind the agent publishes (status, info,
  state/#, telemetry, event, reply, rtc/#), never ``classroom/v1/S/A/cmd/#``; read only
  ``classroom/v1/S/A/cmd/#`` and ``classroom/v1/_central/status``.
- central (the classroom-central service): read ``classroom/v1/#``; write
  ``classroom/v1/+/+/cmd/#`` and ``classroom/v1/_central/#``.
  A central row with ``collectors = N`` also gets ``NAME-1`` … ``NAME-(N-1)``, same password and
  rights: the helpers of ``run --collectors N`` log in so (each account is its own client id here).
- technician (``mosquitto_sub`` on the whole fleet): read ``classroom/v1/#``, write nothing.
- central and technician also read ``$SYS/broker/connection/+/state``: whether each school's bridge is up.
- bridge (a school broker's, `central.broker_bridge`): exactly the rights of each room behind it.

With ``--bridge NAME`` this broker is a school's: it connects to the district broker of the
``[[bridges]]`` row NAME (a ``connection`` block at the end of ``mosquitto.conf``, which then
holds that bridge's password and is written readable by its owner only).

Mosquitto's ``pattern`` lines cannot express the agent's rules: ``%u`` cannot pin the site level,
and a ``deny`` entry on ``cmd/#`` would also deny the agent reading its own commands.  So each
account gets its own ``user`` block and the agent's writable kinds are listed one by one (a
new kind in the contract must be added to `central.broker_bridge.AGENT_WRITES`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from central.broker_bridge import BridgeAccount, bridge_acl, connection_text, room_rights
from central.broker_registry import (
    AgentAccount,
    Registry,
    UserAccount,
    load_registry,
    parse_agent_flag,
    parse_user_flag,
)
from central.errors import ConfigError, MosquittoError
from central.mosquitto import TlsFiles
from contract import CENTRAL_STATUS, ROOT
from contract.limits import LARGEST, PACKET_OVERHEAD

PASSWORD_FILE = "mosquitto.passwd"
ACL_FILE = "mosquitto.acl"
CONF_FILE = "mosquitto.conf"
MAX_QUEUED = 100_000  # QoS 1 messages the broker keeps per absent persistent session (the centre's)
AUTOSAVE_S = 5  # a school broker's crash loses at most this many seconds of what it queued for the district
BRIDGE_STATES = "$SYS/broker/connection/+/state"  # each bridge's state, retained 1 (up) or 0 (down)


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    """The three files written for Mosquitto."""

    password_file: Path
    acl_file: Path
    conf_file: Path


def acl_text(registry: Registry, connect: Sequence[str] = ()) -> str:
    """The Mosquitto ACL file: one ``user`` block per account, nothing for anyone else.

    The bridges this broker `connect`s (the school side) have no account here: Mosquitto's own
    bridge client is not subject to the ACL.
    """
    lines = ["# Written by classroom-central broker-config; regenerate rather than edit.", ""]
    for agent in registry.agents:
        # WebRTC signalling (DESIGN.md): a peer writes rtc/<this agent> in its own subtree, in any
        # school; this agent may read exactly the messages addressed to it.
        lines += [f"user {agent.username}", *room_rights(agent.site, agent.agent_id)]
        lines += [f"topic read {CENTRAL_STATUS}", ""]
    for user in (login for account in registry.users for login in account.logins()):
        lines += [f"user {user.username}", f"topic read {ROOT}/#", f"topic read {BRIDGE_STATES}"]
        if user.role == "central":
            lines += [f"topic write {ROOT}/+/+/cmd/#", f"topic write {ROOT}/_central/#"]
        lines.append("")
    for bridge in registry.bridges:
        if bridge.name not in connect:
            lines += bridge_acl(bridge)
    return "\n".join(lines)


def conf_text(
    files: BrokerFiles,
    tls: TlsFiles | None,
    port: int,
    bind_address: str = "",
    bridges: Sequence[BridgeAccount] = (),
) -> str:
    """The ``mosquitto.conf`` snippet: one listener, no anonymous clients, our password and ACL; then `bridges`."""
    listener = f"listener {port} {bind_address}".rstrip()
    lines = [
        "# Written by classroom-central broker-config.",
        "# The broker's user (Debian: mosquitto) must be able to read every file named here.",
        listener,
        # Each account's client id is its user name: nobody can take over (and knock off) another's.
        "use_username_as_clientid true",
    ]
    if tls:
        lines += [
            f"cafile {Path(tls.cafile).resolve()}",
            f"certfile {Path(tls.certfile).resolve()}",
            f"keyfile {Path(tls.keyfile).resolve()}",
            "tls_version tlsv1.2",
        ]
    lines += ["allow_anonymous false", f"password_file {files.password_file}", f"acl_file {files.acl_file}"]
    # The contract's largest payload (contract.limits); anything bigger is dropped (or its client cut off) here.
    lines += [f"message_size_limit {LARGEST}", f"max_packet_size {LARGEST + PACKET_OVERHEAD}"]
    # The centre's persistent session holds the fleet's QoS 1 messages while it restarts; beyond
    # Mosquitto's default of 1,000 queued messages the broker would drop them (docs/security.md).
    # It also bounds what a school broker keeps for its bridge while the district is unreachable.
    lines.append(f"max_queued_messages {MAX_QUEUED}")
    if bridges:
        # A school broker holds what its rooms sent while the district is unreachable: written to disk
        # every few seconds, not only at a clean stop (Mosquitto's default is every 30 minutes).
        lines.append(f"autosave_interval {AUTOSAVE_S}")
    return "\n".join(lines) + "\n" + "".join("\n" + connection_text(bridge) for bridge in bridges)


def mosquitto_passwd_binary() -> str:
    """The mosquitto_passwd executable (Debian: package mosquitto)."""
    found = shutil.which("mosquitto_passwd") or shutil.which("mosquitto_passwd", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise MosquittoError("mosquitto_passwd is not installed (Debian: apt-get install mosquitto)")
    return found


def write_password_file(accounts: Iterable[AgentAccount | UserAccount | BridgeAccount], path: Path) -> None:
    """Hash every password with ``mosquitto_passwd`` (PBKDF2-SHA512), never on a command line."""
    accounts = list(accounts)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    # `mosquitto_passwd -U` hashes a whole plain-text file at once, but cuts a password at its
    # first ':'; those few accounts are added one by one, the password typed twice on stdin.
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.writelines(f"{a.username}:{a.password}\n" for a in accounts if ":" not in a.password)
    try:
        _mosquitto_passwd(["-U", str(tmp)])
        for account in (a for a in accounts if ":" in a.password):
            _mosquitto_passwd([str(tmp), account.username], stdin=f"{account.password}\n" * 2)
        _readable_by_broker(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _mosquitto_passwd(args: list[str], stdin: str = "") -> None:
    done = subprocess.run(
        [mosquitto_passwd_binary(), *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise MosquittoError(f"mosquitto_passwd {args[0]} failed ({done.returncode}): {done.stderr.strip()}")


def _readable_by_broker(path: Path) -> None:
    # Mosquitto started as root drops to user `mosquitto` *before* it reads the password file,
    # so a root-only 0600 file would stop the broker at start.
    if getattr(os, "geteuid", lambda: -1)() != 0:
        return
    try:
        import grp

        gid = grp.getgrnam("mosquitto").gr_gid
    except (ImportError, KeyError):
        return
    os.chown(path, -1, gid)
    os.chmod(path, 0o640)


def write_private(path: Path, text: str) -> None:
    """Write `text` readable by its owner only (and the broker's group, when root writes it), atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        _readable_by_broker(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_broker_config(
    registry: Registry,
    out_dir: Path,
    tls: TlsFiles | None,
    port: int,
    *,
    bind_address: str = "",
    bridges: Sequence[str] = (),
) -> BrokerFiles:
    """Write the password file, the ACL and the conf snippet into `out_dir`; return their paths.

    `bridges`: the ``[[bridges]]`` rows this broker is the school side of (it connects to their
    district broker); every other row is an account here.
    """
    registry.validate(bridges)
    if tls:
        missing = [str(p) for p in (tls.cafile, tls.certfile, tls.keyfile) if not Path(p).is_file()]
        if missing:
            raise ConfigError(f"TLS file(s) not found: {', '.join(missing)}")
    if not 0 < port < 65536:
        raise ConfigError(f"port: got {port}, expected 1-65535")
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    files = BrokerFiles(out / PASSWORD_FILE, out / ACL_FILE, out / CONF_FILE)
    write_password_file(registry.accounts(bridges), files.password_file)
    files.acl_file.write_text(acl_text(registry, bridges), encoding="utf-8")
    connections = [registry.bridge(name) for name in dict.fromkeys(bridges)]
    # With a bridge it holds the bridge's password (Mosquitto has no other place for it).
    write_private(files.conf_file, conf_text(files, tls, port, bind_address, connections))
    return files


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``broker-config`` subcommand to an argparse subparsers object."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "broker-config",
        help="write Mosquitto's password file, ACL and conf snippet for the registered accounts",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--registry", type=Path, help="TOML registry of agents and users")
    parser.add_argument(
        "--agent", action="append", default=[], metavar="SITE/AGENT_ID:PASSWORD", help="an agent (repeatable)"
    )
    parser.add_argument(
        "--user", action="append", default=[], metavar="NAME:PASSWORD:ROLE", help="central or technician (repeatable)"
    )
    parser.add_argument(
        "--bridge",
        action="append",
        default=[],
        metavar="NAME",
        help="this is a school broker: bridge it to the district broker of the registry's [[bridges]] row NAME"
        " (repeatable; docs/bridges.md)",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="where to write the three files")
    parser.add_argument("--port", type=int, help="listener port (default 8883 with TLS, 1883 without)")
    parser.add_argument("--bind", default="", metavar="HOST", help="listen on this address only (default: all)")
    parser.add_argument("--tls-ca", type=Path, metavar="FILE", help="CA certificate that signed the broker's")
    parser.add_argument("--tls-cert", type=Path, metavar="FILE", help="the broker's certificate")
    parser.add_argument("--tls-key", type=Path, metavar="FILE", help="the broker's private key")
    return parser


def run(args: argparse.Namespace) -> int:
    """Carry out ``broker-config``: 0 when written, 2 on bad input (one line on stderr)."""
    try:
        registry = _registry_from_args(args)
        tls = _tls_from_args(args)
        port = args.port if args.port is not None else (8883 if tls else 1883)
        files = write_broker_config(registry, args.out, tls, port, bind_address=args.bind, bridges=args.bridge)
    except ConfigError as exc:
        print(f"broker-config: {exc}", file=sys.stderr)
        return 2
    except (MosquittoError, OSError) as exc:
        print(f"broker-config: {exc}", file=sys.stderr)
        return 1
    for path in (files.password_file, files.acl_file, files.conf_file):
        print(path)
    examples = example_passwords(registry)
    if examples:
        print(
            f"broker-config: warning: {', '.join(examples)}: an example password (as in examples/broker-registry.toml);"
            " anyone who has read the example can connect as them: give each account a long random password",
            file=sys.stderr,
        )
    return 0


# Passwords the examples and docs show: an account using one is open to whoever read them.
EXAMPLE_PASSWORDS = frozenset({"long-random-secret", "another-secret", "secret", "password"})


def example_passwords(registry: Registry) -> list[str]:
    """The user names whose password is an example one (``change-me…``, or one the docs show)."""
    accounts: list[AgentAccount | UserAccount] = [*registry.agents, *registry.users]
    weak = [a for a in accounts if "change-me" in a.password.lower() or a.password in EXAMPLE_PASSWORDS]
    return [a.username for a in weak]


def _registry_from_args(args: argparse.Namespace) -> Registry:
    flags = Registry(
        tuple(parse_agent_flag(a) for a in args.agent),
        tuple(parse_user_flag(u) for u in args.user),
    )
    # Every problem at once: the file's, the flags' and those of the school side (--bridge).
    registry = load_registry(args.registry, also=flags, connect=args.bridge) if args.registry else flags
    return registry.validate(args.bridge)


def _tls_from_args(args: argparse.Namespace) -> TlsFiles | None:
    given: Sequence[Path | None] = (args.tls_ca, args.tls_cert, args.tls_key)
    if not any(given):
        return None
    if not all(given):
        raise ConfigError("TLS needs all three of --tls-ca, --tls-cert and --tls-key")
    return TlsFiles(args.tls_ca, args.tls_cert, args.tls_key)
