"""Live changes across processes sharing one fleet store: what this process's writer tells the others.

Several processes may write one fleet store (a group of collectors on PostgreSQL; on SQLite a second
``run`` or the CLI's ``send``).  Each process's dashboard hears its own writer in-process
(`central.live.Changes`); this module carries the rest:

- PostgreSQL: `Commits.announce` sends a batch's changes with ``pg_notify`` on `CHANNEL` inside the
  batch's transaction, so they are delivered exactly when it commits (and never when it rolls back).
  A batch can change thousands of agents and a payload holds under 8,000 bytes: the changes go
  grouped by kind, in as many payloads as they need.  Each payload names its origin (this
  process's writer), so the listener of the same process skips what it already heard in-process.
- SQLite: nothing is sent; `Commits.data_version` is SQLite's ``PRAGMA data_version`` on the
  writer's own connection, which moves only when ANOTHER connection commits (`central.live_feed`
  polls it).

The listening side is `central.live_feed`.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

from central.fleet_rows import Change
from central.live import KINDS, REFRESH
from central.store import Store

log = logging.getLogger(__name__)

CHANNEL = "classroom_fleet_changes"
MAX_PAYLOAD = 7900  # PostgreSQL refuses a payload of 8,000 bytes or more
_NOTIFY = "SELECT pg_notify(?, payload) FROM unnest(?::text[]) AS payload"


def _dumps(value: Any) -> str:
    # ASCII only: a payload is measured in bytes, and \u escapes are what PostgreSQL's text takes of anything.
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)


def encode(origin: str, changes: list[Change]) -> list[str]:
    """`changes` as JSON payloads of under `MAX_PAYLOAD` bytes each: ``{"o": origin, "k": {kind: [ids]}}``.

    An agent id too long to go in any payload turns into ``"r": 1`` (refresh what you show).
    """
    payloads: list[str] = []
    head = len(_dumps({"o": origin, "k": {}, "r": 1}))
    groups: dict[str, list[str]] = {}
    size, refresh = head, False

    def close() -> None:
        nonlocal size, refresh
        if groups or refresh:
            payloads.append(_dumps({"o": origin, "k": groups, **({"r": 1} if refresh else {})}))
        groups.clear()
        size, refresh = head, False

    for kind, agent_id in changes:
        cost = len(_dumps(agent_id)) + 1 + (0 if kind in groups else len(_dumps(kind)) + 4)
        if head + cost > MAX_PAYLOAD:
            refresh = True  # this one id would not fit even alone
            continue
        if size + cost > MAX_PAYLOAD:
            close()
            cost = len(_dumps(agent_id)) + 1 + len(_dumps(kind)) + 4
        groups.setdefault(kind, []).append(agent_id)
        size += cost
    close()
    return payloads


def decode(payload: str, own: str) -> list[dict[str, Any]]:
    """The change events of one payload from ANOTHER process; [] for our own or for anything malformed.

    The channel is open to anyone who may connect to the database: every field is checked.
    """
    if len(payload) > MAX_PAYLOAD + 100:
        return []
    try:
        message = json.loads(payload)
    except (ValueError, RecursionError):  # nested deeper than the parser goes: under 8,000 bytes, it can be
        log.debug("live: a change notification that is not JSON was ignored")
        return []
    if not isinstance(message, dict) or not isinstance(message.get("o"), str) or message["o"] == own:
        return []
    groups = message.get("k")
    if not isinstance(groups, dict):
        return []
    events = [
        {"kind": kind, "agent_id": agent_id}
        for kind, ids in groups.items()
        if kind in KINDS and isinstance(ids, list)
        for agent_id in ids
        if isinstance(agent_id, str) and agent_id
    ]
    if message.get("r") == 1:
        events.append({"kind": REFRESH})
    return events


class Commits:
    """The writer connection of this process as the other processes see it (a hook of `central.fleetdb.FleetDB`)."""

    def __init__(self, store: Store) -> None:
        """`store`: the writer's connection; `origin` names this writer in what it announces."""
        self._store = store
        self._notify = not store.location.is_sqlite
        self.origin = secrets.token_hex(8)

    def announce(self, changes: list[Change]) -> list[Change]:
        """Tell the other processes about `changes` when the transaction in progress commits; `changes`."""
        if self._notify and changes:
            self._store.execute(_NOTIFY, [CHANNEL, encode(self.origin, changes)])
        return changes

    def data_version(self) -> int:
        """SQLite's ``PRAGMA data_version`` on the writer's connection: moves when another connection commits."""
        return int(self._store.scalar("PRAGMA data_version"))
