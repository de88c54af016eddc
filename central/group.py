"""Several collectors in one group (``run --group NAME``): the fleet's topics split between them.

Each collector of a group subscribes ``$share/NAME/classroom/v1/+/+/#``: the broker hands every
message to one of them (Mosquitto: in turn, a stopped member's share kept in its persistent session
until it is back).  What one collector did alone, the group must still do once:

- **Retained truth.** A shared subscription gets no retained messages (MQTT 5, 4.8.2; Mosquitto
  2.0 sends them to every member as it subscribes, which would make N writers), so a group
  that starts with a fresh session would never learn the status, info and device states the fleet
  published before, or learn them N times.  A member writes a retained message only while it replays
  (`Replay.takes`).  `Replay`: when a collector connects, it takes the group's replay lease in the
  fleet store (one holder at a time), subscribes the retained topics without sharing, and reads
  until its own marker comes back on ``classroom/v1/_central`` (the broker sends it after every
  retained message it queued for that subscription); then it lets go of them.  The lease is kept
  `QUIET_S` longer, so collectors starting together replay once.  Rows from a replay are replays
  (no ``last_seen``, no "back online"), and every write is idempotent, so a live copy received
  twice in that window changes nothing.
- **Silence.** A collector hears only its share of each agent, so silence is read from the store's
  ``last_seen`` (`due_silent`), not from what one process heard.
- **Replies.** A command's reply may reach another collector: the sender also follows the agent's
  reply topic while it waits (`central.sender`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from typing import Any, Protocol

from contract import FLEET, ROOT
from contract.errors import PayloadError
from contract.mqtt import Client, MqttError
from contract.timestamps import parse_iso

log = logging.getLogger(__name__)

REPLAY_MARK = f"{ROOT}/_central"  # under the centre's own ACL; no fleet subscription matches it
RETAINED = (f"{ROOT}/+/+/status", f"{ROOT}/+/+/info", f"{ROOT}/+/+/state/+")
LEASE_S = 600.0  # how long a replay may take before another collector may try
QUIET_S = 30.0  # after a replay, the group's others do not replay again for this long
SILENT_AFTER = 3.0  # telemetry intervals without a live message


def check_group(name: str) -> str:
    """A group name as a topic level takes it; ValueError naming the problem otherwise."""
    if not name or len(name) > 64 or not name.isprintable() or any(c in name for c in "/+#$ "):
        raise ValueError(f"group {name!r}: 1 to 64 printable characters, none of / + # $ or space")
    return name


def shared(group: str) -> str:
    """The fleet subscription of a collector of `group`."""
    return f"$share/{group}/{FLEET}"


class Lease(Protocol):
    """The store side of the replay lease (`central.fleetdb.FleetDB.take_lease`)."""

    def take_lease(self, key: str, holder: str, seconds: float) -> bool:
        """Whether `holder` holds `key` for `seconds` from now (taken, or renewed)."""


class Replay:
    """The group's retained messages, read by one collector at a time (see the module's doc)."""

    def __init__(self, store: Lease, group: str, holder: str, *, quiet_s: float = QUIET_S) -> None:
        """`holder`: the collector's client id."""
        self._store = store
        self._key = f"replay:{group}"
        self._holder = holder
        self._quiet = quiet_s
        self._token = ""
        self._marked = asyncio.Event()
        self._seen: set[tuple[str, int]] = set()
        self.replays = 0

    def is_marker(self, topic: str, payload: Any) -> bool:
        """Whether a message is a replay marker (ours ends the replay; another's is ignored)."""
        if topic != REPLAY_MARK:
            return False
        if self._token and payload == self._token.encode():
            self._marked.set()
        return True

    def takes(self, topic: str, payload: Any) -> bool:
        """Whether this collector writes a retained message: only while it replays, and each once.

        Brokers differ: MQTT 5 says a shared subscription gets no retained messages, Mosquitto 2.0
        sends them to each member as it subscribes, and sends a member that subscribes a retained
        topic each message once per subscription it holds (measured: twice).  Outside its replay a
        member leaves them to the replaying one; within it, a second copy is acknowledged, not written.
        """
        if not self._token:
            return False
        key = (topic, hash(bytes(payload) if isinstance(payload, bytes | bytearray) else str(payload)))
        if key in self._seen:
            return False
        self._seen.add(key)
        return True

    async def run(self, client: Client, timeout: float) -> None:
        """Replay the retained topics on `client` if the lease is ours; nothing otherwise."""
        if not await asyncio.to_thread(self._store.take_lease, self._key, self._holder, LEASE_S):
            log.info("%s: another collector of the group replays the retained messages", self._holder)
            return
        self._token, self._marked, self._seen = uuid.uuid4().hex, asyncio.Event(), set()
        filters = [(topic, 1) for topic in (*RETAINED, REPLAY_MARK)]
        try:
            async with asyncio.timeout(timeout):
                await client.subscribe(filters)
                await client.publish(REPLAY_MARK, self._token.encode(), qos=1)
            async with asyncio.timeout(LEASE_S):
                await self._marked.wait()
            async with asyncio.timeout(timeout):
                await client.unsubscribe([topic for topic, _ in filters])
        except (MqttError, TimeoutError) as exc:
            log.warning("%s: replay of the retained messages cut short (%s)", self._holder, exc or "timeout")
            return
        finally:
            self._token, self._seen = "", set()
        self.replays += 1
        log.info("%s: retained messages replayed", self._holder)
        await asyncio.to_thread(self._store.take_lease, self._key, self._holder, self._quiet)


def due_silent(online: list[dict[str, Any]], now: float) -> list[tuple[str, str]]:
    """``(agent_id, last_seen)`` of the online agents not heard for `SILENT_AFTER` telemetry intervals.

    `online`: rows with ``agent_id``, ``last_seen`` and ``telemetry_interval_s``; `now`: epoch seconds.
    """
    out = []
    for row in online:
        try:
            heard = parse_iso(str(row["last_seen"])).timestamp()
        except (PayloadError, ValueError):
            continue
        interval = float(row["telemetry_interval_s"] or 10.0)
        if not math.isfinite(interval) or interval <= 0:
            interval = 10.0
        if now - heard > SILENT_AFTER * interval:
            out.append((str(row["agent_id"]), str(row["last_seen"])))
    return out


def wall_clock() -> float:
    """Epoch seconds (the store's timestamps are wall-clock)."""
    return time.time()
