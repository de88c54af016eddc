"""Bridged school brokers: a school's Mosquitto carries its own rooms and forwards them to the district's.

One ``[[bridges]]`` row of the broker registry describes one bridge, and the same row goes into
both registries (docs/bridges.md):

- on the **district** broker it is an account: the bridge logs in with `name` and its password,
  and may do exactly what each room behind it may do (`room_rights`), plus publish its own
  connection state; nothing else of its site, nothing of another site;
- on the **school** broker (``broker-config --bridge NAME``) it is a ``connection`` block: TLS to
  `district`, a persistent session, the site's topics out and its rooms' commands and WebRTC
  signalling in (`connection_text`).

This module reads rows and writes text; the registry (`central.broker_registry`) checks names,
passwords and which rooms sit behind which bridge.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from contract import ROOT
from drivers.checks import Checks, at, join

# What an agent publishes under classroom/v1/<site>/<agent>/ (a new kind in the contract goes here).
AGENT_WRITES = ("status", "info", "state/#", "telemetry", "event", "reply", "rtc/#")
_QOS0 = frozenset({"telemetry"})  # the contract's QoS 0 kind: periodic, not queued while the bridge is down
DISTRICT_PORT = 8883
MAX_RECONNECT_S = 3600
ROW_KEYS = (
    "name", "site", "agents", "password", "password_file", "district", "cafile", "reconnect_s", "reconnect_max_s",
)  # fmt: skip
_HOST = re.compile(r"^[\w.:-]+$")  # a host name or address: nothing that could end a line of mosquitto.conf


@dataclass(frozen=True, slots=True)
class BridgeAccount:
    """A school broker's bridge to the district broker: one site, the rooms behind it, and its account there."""

    name: str
    site: str
    agents: tuple[str, ...]
    password: str = field(repr=False)
    district: str = ""  # mqtts://HOST[:PORT]; only the school side needs it
    cafile: str = ""  # the CA of the district broker's certificate (PEM); empty: the system's CAs
    reconnect_s: int = 5  # Mosquitto's restart_timeout: the first wait before reconnecting ...
    reconnect_max_s: int = 60  # ... growing, with jitter, up to this

    @property
    def username(self) -> str:
        """The bridge's username (and client id) on the district broker: its name."""
        return self.name


def room_rights(site: str, agent_id: str) -> list[str]:
    """ACL lines: what one room's agent may do (and so what a bridge carrying that room may do).

    Write its own subtree's kinds, never its own ``cmd/#``; read its own commands and the WebRTC
    signalling addressed to it from any school (a peer writes ``rtc/<this agent>`` in its own subtree).
    """
    own = f"{ROOT}/{site}/{agent_id}"
    lines = [f"topic write {own}/{kind}" for kind in AGENT_WRITES]
    return [*lines, f"topic read {own}/cmd/#", f"topic read {ROOT}/+/+/rtc/{agent_id}"]


def notification_topic(bridge: BridgeAccount) -> str:
    """Where Mosquitto publishes the bridge's state, retained ``1`` (up) or ``0`` (down), on both brokers.

    Mosquitto's own default topic: outside ``classroom/v1/``, so the centre never reads it.
    """
    return f"$SYS/broker/connection/{bridge.name}/state"


def bridge_acl(bridge: BridgeAccount) -> list[str]:
    """The district broker's ACL block for the bridge account: its rooms' rights, and its state topic."""
    lines = [f"user {bridge.username}", f"topic write {notification_topic(bridge)}"]
    for agent_id in bridge.agents:
        lines += room_rights(bridge.site, agent_id)
    return [*lines, ""]


def connection_text(bridge: BridgeAccount) -> str:
    """The school broker's ``connection`` block: the site's rooms to the district, their commands back.

    Mosquitto reads the bridge settings up to the next ``connection`` line; keep this block last.
    """
    host, port = district_address(bridge.district)
    lines = [
        f"# Bridge {bridge.name}: site {bridge.site}'s rooms to the district broker (classroom-central broker-config).",
        f"connection {bridge.name}",
        f"address {host}:{port}",
        "bridge_protocol_version mqttv311",
        # The remote broker then knows a bridge: it sends none of the bridge's own messages back (no loops).
        "try_private true",
        f"remote_clientid {bridge.name}",
        # No account name can hold ':' (mosquitto_passwd), so no client of this broker can take this id over.
        f"local_clientid bridge:{bridge.name}",
        f"remote_username {bridge.username}",
        f"remote_password {bridge.password}",
        # Persistent sessions on both sides: what the rooms send while the district is unreachable waits
        # here (max_queued_messages), and commands sent meanwhile wait there.
        "cleansession false",
        "local_cleansession false",
        f"restart_timeout {bridge.reconnect_s} {bridge.reconnect_max_s}",
        "notifications true",
        f"notification_topic {notification_topic(bridge)}",
        f"bridge_cafile {bridge.cafile}" if bridge.cafile else "bridge_capath /etc/ssl/certs",
        "bridge_insecure false",
    ]
    own = f"{ROOT}/{bridge.site}/+"
    lines += [f"topic {own}/{kind} out {0 if kind in _QOS0 else 1}" for kind in AGENT_WRITES]
    lines.append(f"topic {own}/cmd/# in 1")
    # Signalling from rooms of other schools (专递课堂 across schools), addressed to each room behind the bridge.
    lines += [f"topic {ROOT}/+/+/rtc/{agent_id} in 1" for agent_id in bridge.agents]
    return "\n".join(lines) + "\n"


def district_address(url: str) -> tuple[str, int]:
    """Host and port of a district URL (check `district_problem` first)."""
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or DISTRICT_PORT


def district_problem(url: str) -> str:
    """Why `url` cannot be a bridge's district broker ("" when it can): ``mqtts://HOST[:PORT]`` only."""
    parts = urlsplit(url)
    expected = "expected mqtts://HOST[:PORT]"
    if parts.scheme != "mqtts":
        return f"got {url[:100]!r}, {expected} (the bridge carries a password across the network: TLS only)"
    if parts.username or parts.password:
        return f"{expected}, without credentials (give password or password_file)"
    try:
        port = parts.port
    except ValueError:
        port = 0
    if not parts.hostname or not _HOST.match(parts.hostname) or port == 0 or parts.path.strip("/") or parts.query:
        return f"got {url[:100]!r}, {expected}"
    return ""


def bridge_problems(check: Checks, where: str, bridge: BridgeAccount) -> None:
    """What a row must be whichever side reads it, besides its names and password (the registry's checks)."""
    if not bridge.agents:
        check.add(join(where, "agents"), "empty: list the agent ids of the rooms behind this bridge")
    if bridge.district and (problem := district_problem(bridge.district)):
        check.add(join(where, "district"), problem)
    if any(c in bridge.cafile for c in "\r\n\0") or bridge.cafile != bridge.cafile.strip():
        check.add(join(where, "cafile"), "contains a line break, a NUL or surrounding spaces")
    if bridge.reconnect_max_s < bridge.reconnect_s:
        check.add(join(where, "reconnect_max_s"), f"got {bridge.reconnect_max_s}, expected at least reconnect_s")


def school_problems(check: Checks, where: str, bridge: BridgeAccount, agents: Mapping[str, str]) -> None:
    """The school side of `bridge` (`agents`: this broker's agent ids and their sites).

    It needs the district's address, and exactly its site's agents behind it: a room left out
    would never reach the district, one listed but not here could never send anything.
    """
    if not bridge.district:
        check.add(join(where, "district"), "missing: the district broker's mqtts://HOST[:PORT] (--bridge needs it)")
    if bridge.cafile and not Path(bridge.cafile).is_file():
        check.add(join(where, "cafile"), f"{bridge.cafile}: no such file")
    for agent_id in bridge.agents:
        if agents.get(agent_id) != bridge.site:
            check.add(join(where, "agents"), f"{agent_id!r} is not an agent of site {bridge.site!r} in this registry")
    for agent_id in sorted(a for a, site in agents.items() if site == bridge.site and a not in bridge.agents):
        check.add(
            join(where, "agents"),
            f"{agent_id!r} of site {bridge.site!r} is registered here but not listed: the district would never see it",
        )


def bridge_rows(check: Checks, data: Mapping[str, Any], base: Path) -> list[BridgeAccount]:
    """The ``[[bridges]]`` rows of a parsed registry; relative paths are taken from `base`."""
    rows = data.get("bridges", [])
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        check.add("bridges", "expected an array of tables ([[bridges]])")  # no "got": rows hold passwords
        return []
    found = []
    for i, row in enumerate(rows):
        where = at("bridges", i)
        check.known(row, where, ROW_KEYS, listed=True)
        check.table(row, where, required=("name", "site", "agents"))
        found.append(_row(check, where, row, base))
    return found


def _row(check: Checks, where: str, row: Mapping[str, Any], base: Path) -> BridgeAccount:
    agents = check.array(row, "agents", where) if "agents" in row else []
    reconnect = check.integer(row, "reconnect_s", where, 5, low=1, high=MAX_RECONNECT_S)
    reconnect_max = check.integer(row, "reconnect_max_s", where, max(60, reconnect), low=1, high=MAX_RECONNECT_S)
    cafile = check.text(row, "cafile", where)
    return BridgeAccount(
        name=row.get("name", ""),  # as written: the registry's name check says what is wrong with it
        site=row.get("site", ""),
        agents=tuple(agents),
        password=_password(check, where, row, base),
        district=check.text(row, "district", where),
        cafile=str(base / cafile) if cafile else "",
        reconnect_s=reconnect,
        reconnect_max_s=reconnect_max,
    )


def _password(check: Checks, where: str, row: Mapping[str, Any], base: Path) -> str:
    """``password``, or the first line of ``password_file`` (neither ever shown in a problem)."""
    if "password" in row and "password_file" in row:
        check.add(join(where, "password"), "give password or password_file, not both")
        return ""
    if "password_file" not in row:
        if "password" not in row:
            check.add(join(where, "password"), "missing (or give password_file)")
        password = row.get("password", "")
        return password if isinstance(password, str) else ""
    name = check.text(row, "password_file", where)
    try:
        password = (base / name).read_text(encoding="utf-8").partition("\n")[0].rstrip("\r") if name else ""
        if not password:
            check.add(join(where, "password_file"), f"{base / name}: its first line (the password) is empty")
        return password
    except OSError as exc:
        check.add(join(where, "password_file"), f"cannot read {base / name}: {exc.strerror or type(exc).__name__}")
    except UnicodeDecodeError:  # its message would show a byte of the secret
        check.add(join(where, "password_file"), f"{base / name}: not UTF-8 text")
    return ""
