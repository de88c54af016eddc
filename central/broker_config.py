"""Who may connect to the fleet's Mosquitto, and what each may read and write.

``classroom-central broker-config`` turns a registry of accounts into three files for Mosquitto:
a password file (hashed by ``mosquitto_passwd``), an ACL file, and a ``mosquitto.conf`` snippet.

The registry is a TOML file (or repeated ``--agent`` / ``--user`` flags)::

    # one table per classroom PC; the MQTT username is the agent id
    [[agents]]
    site = "school-a"          # the <site> topic level
    id = "room-101"            # the agent_id: the <agent> topic level and the username
    password = "long-random-secret"

    # people and services that see the whole fleet
    [[users]]
    name = "central"           # the MQTT username
    password = "another-secret"
    role = "central"           # central | technician

Roles and rights (``S``/``A`` are the agent's own site and id, pinned in its own ACL block):

- agent: write ``classroom/v1/S/A/<kind>`` for every kind the agent publishes (status, info,
  state/#, telemetry, event, reply, rtc/#), never ``classroom/v1/S/A/cmd/#``; read only
  ``classroom/v1/S/A/cmd/#`` and ``classroom/v1/_central/status``.
- central (the classroom-central service): read ``classroom/v1/#``; write
  ``classroom/v1/+/+/cmd/#`` and ``classroom/v1/_central/#``.
- technician (``mosquitto_sub`` on the whole fleet): read ``classroom/v1/#``, write nothing.

Mosquitto's ``pattern`` lines cannot express the agent's rules: ``%u`` cannot pin the site level,
and a ``deny`` entry on ``cmd/#`` would also deny the agent reading its own commands.  So each
account gets its own ``user`` block and the agent's writable kinds are listed one by one (a
new kind in the contract must be added to `AGENT_WRITES`).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from central.errors import ConfigError, MosquittoError
from central.mosquitto import TlsFiles
from contract import CENTRAL_STATUS, ROOT
from contract.limits import LARGEST, PACKET_OVERHEAD
from drivers.checks import Checks, at, join

ROLES = ("central", "technician")
AGENT_WRITES = ("status", "info", "state/#", "telemetry", "event", "reply", "rtc/#")
PASSWORD_FILE = "mosquitto.passwd"
ACL_FILE = "mosquitto.acl"
CONF_FILE = "mosquitto.conf"
_TABLES = ("agents", "users")

# A topic level that is safe as a username, in an ACL line and in the password file.
_NAME = re.compile(r"^[\w.-]+$")
_RESERVED_SITES = ("_central",)
_MAX_PASSWORD = 256


@dataclass(frozen=True, slots=True)
class AgentAccount:
    """A classroom PC: its site, its agent id (the username) and its password."""

    site: str
    agent_id: str
    password: str = field(repr=False)

    @property
    def username(self) -> str:
        """The MQTT username: the agent id."""
        return self.agent_id


@dataclass(frozen=True, slots=True)
class UserAccount:
    """A person or service that sees the whole fleet: ``central`` or ``technician``."""

    name: str
    password: str = field(repr=False)
    role: str

    @property
    def username(self) -> str:
        """The MQTT username."""
        return self.name


@dataclass(frozen=True, slots=True)
class Registry:
    """Every account allowed to connect to the broker."""

    agents: tuple[AgentAccount, ...] = ()
    users: tuple[UserAccount, ...] = ()

    def merged(self, other: Registry) -> Registry:
        """The accounts of both registries, ours first."""
        return Registry(self.agents + other.agents, self.users + other.users)

    def problems(self) -> list[str]:
        """Every reason this registry cannot be written, as ``key: got X, expected Y``."""
        check = Checks()
        for i, agent in enumerate(self.agents):
            where = at("agents", i)
            _name(check, join(where, "site"), agent.site)
            if agent.site in _RESERVED_SITES:
                check.add(join(where, "site"), f"got {agent.site!r}, which is reserved for the centre")
            _name(check, join(where, "id"), agent.agent_id)
            _password(check, join(where, "password"), agent.password)
        for i, user in enumerate(self.users):
            where = at("users", i)
            _name(check, join(where, "name"), user.name)
            _password(check, join(where, "password"), user.password)
            if user.role not in ROLES:
                check.add(join(where, "role"), f"got {user.role!r}, expected one of {', '.join(ROLES)}")
        seen: set[str] = set()
        for name in [a.username for a in self.agents] + [u.username for u in self.users]:
            if name in seen:
                check.add(f"username {name!r}", "registered twice (agent ids and user names share one namespace)")
            seen.add(name)
        return check.problems

    def validate(self) -> Registry:
        """Return self, or raise ConfigError listing every problem at once (an empty registry is one)."""
        found = self.problems()
        if not self.agents and not self.users:
            found.append("registry: no agents and no users")
        if found:
            raise ConfigError("; ".join(found))
        return self


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    """The three files written for Mosquitto."""

    password_file: Path
    acl_file: Path
    conf_file: Path


def _name(check: Checks, path: str, value: object) -> None:
    if not isinstance(value, str) or not _NAME.match(value):
        check.add(path, f"got {value!r}, expected letters, digits, '.', '_' or '-'")


def _password(check: Checks, path: str, value: object) -> None:
    # The password itself never appears in a problem: the message ends up in logs and terminals.
    if not isinstance(value, str) or not value:
        check.add(path, "missing or empty")
    elif any(c in value for c in "\r\n\0"):
        check.add(path, "contains a line break or NUL")
    elif value != value.strip():
        check.add(path, "starts or ends with a space, which mosquitto_passwd does not keep")
    elif len(value) > _MAX_PASSWORD:
        check.add(path, f"longer than {_MAX_PASSWORD} characters")


def load_registry(path: Path) -> Registry:
    """Read a TOML registry; ConfigError names the file and every bad key."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not TOML: {exc}") from exc
    try:
        return registry_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def registry_from_dict(data: Mapping[str, Any]) -> Registry:
    """Build a registry from parsed TOML; ConfigError lists every unknown, missing or bad key."""
    check = Checks()
    check.known(data, "", _TABLES, listed=True)
    # Values are taken as written: Registry.problems() names a wrong one more precisely than a type would.
    agents = [
        AgentAccount(row.get("site", ""), row.get("id", ""), row.get("password", ""))
        for row in _rows(check, data, "agents", ("site", "id", "password"))
    ]
    users = [
        UserAccount(row.get("name", ""), row.get("password", ""), row.get("role", ""))
        for row in _rows(check, data, "users", ("name", "password", "role"))
    ]
    registry = Registry(tuple(agents), tuple(users))
    reported = {p.split(":")[0] for p in check.problems}  # a missing key is not also reported as empty
    check.extend(p for p in registry.problems() if p.split(":")[0] not in reported)
    if check.problems:
        raise ConfigError("; ".join(check.problems))
    return registry


def _rows(check: Checks, data: Mapping[str, Any], key: str, keys: tuple[str, ...]) -> list[Mapping[str, Any]]:
    """``[[key]]`` rows, each with its unknown and missing keys recorded."""
    rows = data.get(key, [])
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        # No "got ...": the rows would carry passwords into the message.
        check.add(key, f"expected an array of tables ([[{key}]])")
        return []
    for i, row in enumerate(rows):
        check.known(row, at(key, i), keys, listed=True)
        check.table(row, at(key, i), required=keys)
    return rows


def parse_agent_flag(text: str) -> AgentAccount:
    """``SITE/AGENT_ID:PASSWORD`` (the password may contain ``:``); ConfigError when malformed."""
    who, sep, password = text.partition(":")
    site, slash, agent_id = who.partition("/")
    if not sep or not slash or not site or not agent_id or not password:
        raise ConfigError(f"--agent {text!r}: expected SITE/AGENT_ID:PASSWORD")
    return AgentAccount(site, agent_id, password)


def parse_user_flag(text: str) -> UserAccount:
    """``NAME:PASSWORD:ROLE`` (the password may contain ``:``); ConfigError when malformed."""
    rest, sep, role = text.rpartition(":")
    name, sep2, password = rest.partition(":")
    if not sep or not sep2 or not name or not password or not role:
        raise ConfigError(f"--user {text!r}: expected NAME:PASSWORD:ROLE with ROLE one of {', '.join(ROLES)}")
    return UserAccount(name, password, role)


def acl_text(registry: Registry) -> str:
    """The Mosquitto ACL file: one ``user`` block per account, nothing for anyone else."""
    lines = ["# Written by classroom-central broker-config; regenerate rather than edit.", ""]
    for agent in registry.agents:
        own = f"{ROOT}/{agent.site}/{agent.agent_id}"
        lines.append(f"user {agent.username}")
        lines += [f"topic write {own}/{kind}" for kind in AGENT_WRITES]
        # WebRTC signalling (DESIGN.md): a peer writes rtc/<this agent> in its own subtree, in any
        # school; this agent may read exactly the messages addressed to it.
        lines += [f"topic read {own}/cmd/#", f"topic read {ROOT}/+/+/rtc/{agent.agent_id}"]
        lines += [f"topic read {CENTRAL_STATUS}", ""]
    for user in registry.users:
        lines += [f"user {user.username}", f"topic read {ROOT}/#"]
        if user.role == "central":
            lines += [f"topic write {ROOT}/+/+/cmd/#", f"topic write {ROOT}/_central/#"]
        lines.append("")
    return "\n".join(lines)


def conf_text(files: BrokerFiles, tls: TlsFiles | None, port: int, bind_address: str = "") -> str:
    """The ``mosquitto.conf`` snippet: one listener, no anonymous clients, our password and ACL."""
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
    return "\n".join(lines) + "\n"


def mosquitto_passwd_binary() -> str:
    """The mosquitto_passwd executable (Debian: package mosquitto)."""
    found = shutil.which("mosquitto_passwd") or shutil.which("mosquitto_passwd", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise MosquittoError("mosquitto_passwd is not installed (Debian: apt-get install mosquitto)")
    return found


def write_password_file(accounts: Iterable[AgentAccount | UserAccount], path: Path) -> None:
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


def write_broker_config(
    registry: Registry, out_dir: Path, tls: TlsFiles | None, port: int, *, bind_address: str = ""
) -> BrokerFiles:
    """Write the password file, the ACL and the conf snippet into `out_dir`; return their paths."""
    registry.validate()
    if tls:
        missing = [str(p) for p in (tls.cafile, tls.certfile, tls.keyfile) if not Path(p).is_file()]
        if missing:
            raise ConfigError(f"TLS file(s) not found: {', '.join(missing)}")
    if not 0 < port < 65536:
        raise ConfigError(f"port: got {port}, expected 1-65535")
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    files = BrokerFiles(out / PASSWORD_FILE, out / ACL_FILE, out / CONF_FILE)
    write_password_file([*registry.agents, *registry.users], files.password_file)
    files.acl_file.write_text(acl_text(registry), encoding="utf-8")
    files.conf_file.write_text(conf_text(files, tls, port, bind_address), encoding="utf-8")
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
        files = write_broker_config(registry, args.out, tls, port, bind_address=args.bind)
    except ConfigError as exc:
        print(f"broker-config: {exc}", file=sys.stderr)
        return 2
    except (MosquittoError, OSError) as exc:
        print(f"broker-config: {exc}", file=sys.stderr)
        return 1
    for path in (files.password_file, files.acl_file, files.conf_file):
        print(path)
    return 0


def _registry_from_args(args: argparse.Namespace) -> Registry:
    registry = load_registry(args.registry) if args.registry else Registry()
    flags = Registry(
        tuple(parse_agent_flag(a) for a in args.agent),
        tuple(parse_user_flag(u) for u in args.user),
    )
    return registry.merged(flags).validate()


def _tls_from_args(args: argparse.Namespace) -> TlsFiles | None:
    given: Sequence[Path | None] = (args.tls_ca, args.tls_cert, args.tls_key)
    if not any(given):
        return None
    if not all(given):
        raise ConfigError("TLS needs all three of --tls-ca, --tls-cert and --tls-key")
    return TlsFiles(args.tls_ca, args.tls_cert, args.tls_key)
