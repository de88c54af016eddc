"""The accounts allowed on the fleet's Mosquitto: the registry `classroom-central broker-config` reads.

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
    collectors = 2             # (central only) `run --collectors 2`: its helper logs in as central-1

``[[bridges]]`` rows (a school broker's bridge to the district broker) are `central.broker_bridge`'s.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from central.broker_bridge import BridgeAccount, bridge_problems, bridge_rows, school_problems
from central.errors import ConfigError
from drivers.checks import Checks, at, join

ROLES = ("central", "technician")
_TABLES = ("agents", "users", "bridges")

# A topic level that is safe as a username, in an ACL line and in the password file.
_NAME = re.compile(r"^[\w.-]+$")
_RESERVED_SITES = ("_central",)
_MAX_PASSWORD = 256
MAX_COLLECTORS = 64  # a users row's `collectors`: processes of one `run --collectors N`


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
    collectors: int = 1  # role central: `run --collectors N`, whose helpers log in as NAME-1 … NAME-(N-1)

    @property
    def username(self) -> str:
        """The MQTT username."""
        return self.name

    def logins(self) -> tuple[UserAccount, ...]:
        """The account itself, and one per helper of ``run --collectors N`` (``NAME-k``: same password and role).

        A broker that takes the user name as the client id (``use_username_as_clientid``) would give
        every process of one account the same client id: each helper needs an account of its own.
        """
        count = self.collectors if _is_count(self.collectors) else 1
        return (self, *(UserAccount(f"{self.name}-{k}", self.password, self.role) for k in range(1, count)))


@dataclass(frozen=True, slots=True)
class Registry:
    """Every account allowed to connect to the broker, and the bridges of school brokers."""

    agents: tuple[AgentAccount, ...] = ()
    users: tuple[UserAccount, ...] = ()
    bridges: tuple[BridgeAccount, ...] = ()

    def merged(self, other: Registry) -> Registry:
        """The accounts of both registries, ours first."""
        return Registry(self.agents + other.agents, self.users + other.users, self.bridges + other.bridges)

    def bridge(self, name: str) -> BridgeAccount:
        """The ``[[bridges]]`` row called `name`; KeyError when there is none."""
        for bridge in self.bridges:
            if bridge.name == name:
                return bridge
        raise KeyError(name)

    def accounts(self, connect: Collection[str] = ()) -> list[AgentAccount | UserAccount | BridgeAccount]:
        """Who logs in to this broker: its agents, its users, the bridges it accepts (not those it `connect`s)."""
        users = [login for user in self.users for login in user.logins()]
        return [*self.agents, *users, *(b for b in self.bridges if b.name not in connect)]

    def problems(self, connect: Collection[str] | None = ()) -> list[str]:
        """Every reason this registry cannot be written, as ``key: got X, expected Y``.

        `connect` names the ``[[bridges]]`` rows this broker is the school side of (``--bridge``);
        every other row is an account on this broker, the district's.  None: only what holds on
        either side (a registry being read, before anyone says which side it is).
        """
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
            if not _is_count(user.collectors):
                check.add(join(where, "collectors"), f"got {user.collectors!r}, expected 1 to {MAX_COLLECTORS}")
            elif user.collectors > 1 and user.role != "central":
                check.add(join(where, "collectors"), f"got {user.collectors}, but only a central account has helpers")
        for i, bridge in enumerate(self.bridges):
            where = at("bridges", i)
            for key, value in (("name", bridge.name), ("site", bridge.site)):
                _name(check, join(where, key), value)
            if bridge.site in _RESERVED_SITES:
                check.add(join(where, "site"), f"got {bridge.site!r}, which is reserved for the centre")
            for j, agent_id in enumerate(bridge.agents):
                _name(check, at(join(where, "agents"), j), agent_id)
            _password(check, join(where, "password"), bridge.password)
            bridge_problems(check, where, bridge)
        seen: set[str] = set()
        for name in [account.username for account in self.accounts()]:
            if name in seen:
                check.add(f"username {name!r}", "registered twice (agents, users and bridges share one namespace)")
            seen.add(name)
        if connect is not None:
            self._rooms_reach_once(check, connect)
        return check.problems

    def _rooms_reach_once(self, check: Checks, connect: Collection[str]) -> None:
        """A room reaches this broker one way: as an agent of it, or behind exactly one bridge."""
        names = {b.name for b in self.bridges}
        for name in sorted(set(connect) - names):
            rows = ", ".join(sorted(names)) or "none"
            check.add(f"--bridge {name!r}", f"no [[bridges]] row has this name (rows: {rows})")
        direct = {a.agent_id: a.site for a in self.agents}
        behind: dict[str, str] = {}
        for i, bridge in enumerate(self.bridges):
            where = at("bridges", i)
            for agent_id in bridge.agents:
                if behind.setdefault(agent_id, bridge.name) != bridge.name:
                    check.add(join(where, "agents"), f"{agent_id!r} is also behind bridge {behind[agent_id]!r}")
            if bridge.name in connect:
                school_problems(check, where, bridge, direct)
                continue
            for agent_id in (a for a in bridge.agents if a in direct):
                check.add(
                    join(where, "agents"),
                    f"{agent_id!r} is also an agent of this broker: a room reaches it directly or through its"
                    " school's bridge, not both",
                )

    def validate(self, connect: Collection[str] = ()) -> Registry:
        """Return self, or raise ConfigError listing every problem at once (an empty registry is one)."""
        found = self.problems(connect)
        if not self.agents and not self.users and not self.bridges:
            found.append("registry: no agents and no users")
        if found:
            raise ConfigError("; ".join(found))
        return self


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_COLLECTORS


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


def load_registry(path: Path, *, also: Registry | None = None, connect: Collection[str] | None = None) -> Registry:
    """Read a TOML registry (and add `also`, the accounts given as flags); ConfigError names the file and every bad key.

    With `connect` (``--bridge``), the school side's problems are reported in the same breath.
    """
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not TOML: {exc}") from exc
    try:
        return registry_from_dict(data, Path(path).resolve().parent, also=also, connect=connect)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def registry_from_dict(
    data: Mapping[str, Any],
    base: Path | None = None,
    *,
    also: Registry | None = None,
    connect: Collection[str] | None = None,
) -> Registry:
    """Build a registry from parsed TOML (plus `also`); ConfigError lists every unknown, missing or bad key.

    A bridge's relative ``password_file`` and ``cafile`` are taken from `base` (the registry's
    folder; default: the working directory).  `connect`: as `Registry.problems`.
    """
    check = Checks()
    check.known(data, "", _TABLES, listed=True)
    # Values are taken as written: Registry.problems() names a wrong one more precisely than a type would.
    agents = [
        AgentAccount(row.get("site", ""), row.get("id", ""), row.get("password", ""))
        for row in _rows(check, data, "agents", ("site", "id", "password"))
    ]
    users = [
        UserAccount(row.get("name", ""), row.get("password", ""), row.get("role", ""), row.get("collectors", 1))
        for row in _rows(check, data, "users", ("name", "password", "role"), optional=("collectors",))
    ]
    bridges = bridge_rows(check, data, base or Path.cwd())
    registry = Registry(tuple(agents), tuple(users), tuple(bridges)).merged(also or Registry())
    reported = {p.split(":")[0] for p in check.problems}  # a missing key is not also reported as empty
    reported |= {p.removesuffix("_file") for p in reported if p.endswith(".password_file")}  # nor an unread file
    check.extend(p for p in registry.problems(connect) if p.split(":")[0] not in reported)
    if check.problems:
        raise ConfigError("; ".join(check.problems))
    return registry


def _rows(
    check: Checks, data: Mapping[str, Any], key: str, keys: tuple[str, ...], optional: tuple[str, ...] = ()
) -> list[Mapping[str, Any]]:
    """``[[key]]`` rows, each with its unknown and missing keys recorded (`keys` required, `optional` not)."""
    rows = data.get(key, [])
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        # No "got ...": the rows would carry passwords into the message.
        check.add(key, f"expected an array of tables ([[{key}]])")
        return []
    for i, row in enumerate(rows):
        check.known(row, at(key, i), keys + optional, listed=True)
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
