"""fleet.db: what the centre knows about every agent, written by one batched writer.

Writes arrive as typed rows (`central.fleet_rows`: one per MQTT message, command or housekeeping
step, and the SQL each becomes) and are applied many at a time in ONE transaction by
`FleetDB.write_batch`, on a connection of their own (the writer may run in a worker thread).
Reads use a second connection: with WAL they never wait for the writer.  Timestamps are stored
as contract ISO strings, so they compare as text.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from central.fleet_bulk import BulkWriter, waves
from central.fleet_rows import COMMAND_COLUMNS, Change, Row, RowWriter, Seen
from central.live_store import Commits
from central.schema import migrate
from central.store import Location, Store
from contract import now_iso

log = logging.getLogger(__name__)

# Below this many rows a run is cheaper one row at a time (measured: SQLite breaks even at ~12, PostgreSQL at ~3).
BULK_MIN = 12
_NO_LIMIT = 2**62  # LIMIT -1 is SQLite's "no limit", an error in PostgreSQL
_ALARM_COLUMNS = (
    "id, agent_id, site, type, severity, device, message, raised_ts, cleared_ts, acked_by, acked_ts, params"
)


class FleetDB:
    """The fleet store (a SQLite file in WAL mode, or PostgreSQL): one writer connection, one reader connection."""

    def __init__(self, location: str | os.PathLike[str] | Location) -> None:
        """Open (creating the tables, or bringing an older store up to date, if needed)."""
        self.location = Location.parse(location)
        self._w = Store(self.location)
        try:
            migrate(self._w)
            self._r = Store(self.location)
        except BaseException:
            self._w.close()
            raise
        self._writer = RowWriter(self._w)
        self._bulk = BulkWriter(self._w)
        self._lock = threading.Lock()
        self.commits = Commits(self._w)  # the other processes hear what this one commits (central.live_store)

    @property
    def path(self) -> Path:
        """The SQLite file (ConfigError for a PostgreSQL store: use `location`)."""
        return self.location.path

    def close(self) -> None:
        """Close both connections (after the write in progress, if any)."""
        with self._lock:
            self._w.close()
        self._r.close()

    # ---- writes ------------------------------------------------------------------------

    def write_batch(self, rows: list[Row]) -> list[Change]:
        """Apply `rows` in order, in ONE transaction; the (kind, agent_id) pairs that changed.

        A row the engine refuses (an int it cannot hold, a constraint) is set aside with its reason
        and counted against its agent; the other rows of the batch are written.  The common case pays
        nothing for that: only a batch with a refused row is applied again, each row in a savepoint.
        StoreUnavailable (locked, a deadlock, the server gone): nothing of the batch was written.
        """
        with self._lock:
            try:
                with self._w.transaction(), self._w.pipeline():  # (see central.store.Store.pipeline)
                    self._lock_agents(rows)
                    return self.commits.announce(self._apply(rows, careful=False))
            except self._w.refused:
                with self._w.transaction():
                    self._lock_agents(rows)
                    return self.commits.announce(self._apply(rows, careful=True))

    def _lock_agents(self, rows: list[Row]) -> None:
        """On PostgreSQL, lock the batch's agents first, in one order in every process.

        Several collectors write at once there: locking the agents' rows in the order the rows
        come would let two batches wait for each other (a deadlock, which costs a retry).  An agent
        heard of for the first time has no row to lock: it is inserted first (a second writer's
        insert of it waits for this commit), else two collectors could both find it new and both
        write its first status (tests/central/test_group.py saw its history row twice).
        """
        if not self._w.lock:
            return  # SQLite: the transaction holds the whole file already
        sites = {_agent_of(row): site for row in rows if (site := getattr(row, "site", None)) is not None}
        if sites:
            table, params = self._w.table(("text", "text"), sorted([agent, site] for agent, site in sites.items()))
            insert = f"INSERT INTO agents (agent_id, site) SELECT c1, c2 FROM {table} WHERE true"
            self._w.execute(f"{insert} ON CONFLICT (agent_id) DO NOTHING", params)
        agents = sorted({a for a in map(_agent_of, rows) if a})
        if agents:
            table, params = self._w.table(("text",), [[agent] for agent in agents])
            sql = f"SELECT 1 FROM agents WHERE agent_id IN (SELECT c1 FROM {table}) ORDER BY agent_id FOR UPDATE"
            self._w.execute(sql, params)

    def _apply(self, rows: list[Row], *, careful: bool) -> list[Change]:
        """Apply `rows`, each agent's in order: telemetry and device states in bulk, unless `careful`.

        `careful`: each row in a savepoint, in arrival order, so a row the engine refuses is set aside alone.
        """
        changes: dict[Change, None] = {}
        if careful:
            for row in rows:
                if change := self._apply_one(row):
                    changes[change] = None
            return list(changes)
        for one_by_one, bulk in waves(rows):
            for row in one_by_one:
                if change := self._writer.apply(row):
                    changes[change] = None
            changes.update(dict.fromkeys(self._apply_run(bulk)))
        return list(changes)

    def _apply_run(self, run: list[Seen]) -> list[Change]:
        """A run of telemetry and device states: in bulk, unless so short that one by one costs less."""
        if len(run) >= BULK_MIN:
            return self._bulk.apply(run)
        return [change for row in run if (change := self._writer.apply(row))]

    def _apply_one(self, row: Row) -> Change | None:
        """One row in a savepoint: a row the engine refuses is counted against its agent instead."""
        self._w.execute("SAVEPOINT fleet_row")
        try:
            change = self._writer.apply(row)
        except self._w.refused as exc:
            self._w.execute("ROLLBACK TO SAVEPOINT fleet_row")
            reason = f"the fleet store refused the row: {type(exc).__name__}: {exc}"
            log.error("fleet store: set aside %s of %s: %s", type(row).__name__, _agent_of(row) or "?", reason)
            change = self._writer.dropped(row, reason)
        self._w.execute("RELEASE SAVEPOINT fleet_row")
        return change

    def next_session(self) -> int:
        """The centre's own session counter, incremented (for its status topic)."""
        with self._lock, self._w.transaction():
            sql = "INSERT INTO meta (key, value) VALUES ('session', '1') ON CONFLICT (key) DO UPDATE"
            sql += " SET value = CAST(CAST(meta.value AS INTEGER) + 1 AS TEXT) RETURNING value"
            return int(self._w.scalar(sql))

    def session_secret(self) -> bytes:
        """The dashboard's cookie-signing secret, made once and kept, so logins survive a restart."""
        with self._lock, self._w.transaction():
            fresh = os.urandom(32).hex()
            sql = "INSERT INTO meta (key, value) VALUES ('session_secret', ?) ON CONFLICT DO NOTHING"
            self._w.execute(sql, [fresh])
            return bytes.fromhex(str(self._w.scalar("SELECT value FROM meta WHERE key = 'session_secret'")))

    def take_lease(self, key: str, holder: str, seconds: float) -> bool:
        """Whether `holder` now holds the lease `key` for `seconds` (free, lapsed, or its own already)."""
        # To the microsecond, fixed width (the text compares as the time): a lease of 0.5 s is not 1.5 s.
        now, stamp = datetime.now(UTC), "%Y-%m-%dT%H:%M:%S.%fZ"
        value = f"{(now + timedelta(seconds=seconds)).strftime(stamp)}|{holder}"
        sql = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        sql += " WHERE meta.value < ? OR substr(meta.value, 29) = ? RETURNING value"
        with self._lock, self._w.transaction():
            return self._w.execute(sql, [f"lease:{key}", value, now.strftime(stamp), holder]).fetchone() is not None

    def ack_alarm(self, alarm_id: int, user: str) -> bool:
        """Acknowledge an alarm; False when there is no such alarm or it is already acknowledged."""
        with self._lock, self._w.transaction():
            sql = "UPDATE alarms SET acked_by = ?, acked_ts = ? WHERE id = ? AND acked_by IS NULL RETURNING agent_id"
            acked = self._w.execute(sql, [user, now_iso(), alarm_id]).fetchone()
            if acked is None:
                return False
            self.commits.announce([("alarm", str(acked[0]))])  # the other processes' dashboards
            return True

    # ---- reads -------------------------------------------------------------------------

    def _rows(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        return self._r.query(sql, params or [])

    def agents(
        self, *, site: str | None = None, offline_only: bool = False, alarms_only: bool = False
    ) -> list[dict[str, Any]]:
        """Every agent (filtered), with its devices, open alarm count and latest telemetry."""
        where, params = ["1=1"], list[Any]()
        if site is not None:
            where.append("site = ?")
            params.append(site)
        if offline_only:
            where.append("state != 'online'")
        return self._agents(" AND ".join(where), params, alarms_only)

    def agent(self, agent_id: str) -> dict[str, Any] | None:
        """One agent, in the shape of `agents`; None when unknown."""
        found = self._agents("agent_id = ?", [agent_id], False)
        return found[0] if found else None

    def _agents(self, where: str, params: list[Any], alarms_only: bool) -> list[dict[str, Any]]:
        agents = self._rows(
            "SELECT agent_id, site, room, hostname, version, state, session, since, last_seen, telemetry,"
            " dropped, dropped_reason, dropped_ts, nics, wake, sources, hours,"
            " (SELECT count(*) FROM alarms a WHERE a.agent_id = agents.agent_id AND a.cleared_ts IS NULL)"
            " AS open_alarms, (SELECT count(*) FROM alarms a WHERE a.agent_id = agents.agent_id"
            f" AND a.cleared_ts IS NULL AND a.acked_by IS NULL) AS unacked_alarms FROM agents WHERE {where}"
            " ORDER BY site, room, agent_id",
            params,
        )
        if alarms_only:
            agents = [a for a in agents if a["open_alarms"]]
        devices: dict[str, list[dict[str, Any]]] = {a["agent_id"]: [] for a in agents}
        for d in self._rows(
            f"SELECT * FROM devices WHERE agent_id IN (SELECT agent_id FROM agents WHERE {where})", params
        ):
            if d["agent_id"] in devices:
                devices[d["agent_id"]].append(_device_dict(d))
        for a in agents:
            a["devices"] = sorted(devices[a["agent_id"]], key=lambda d: str(d["id"]))
            a["telemetry"] = _loads(a["telemetry"]) if a["telemetry"] else None
            for key in ("nics", "wake", "sources", "hours"):
                a[key] = _loads(a[key])
        return agents

    def site_of(self, agent_id: str) -> str | None:
        """The site an agent reports under; None when unknown."""
        found = self._rows("SELECT site FROM agents WHERE agent_id = ?", [agent_id])
        return str(found[0]["site"]) if found else None

    def wake_plans(self) -> list[dict[str, Any]]:
        """``{"agent_id", "state", "wake"}`` of each agent that published wake times (`central.wake.WakeSchedule`)."""
        rows = self._rows("SELECT agent_id, state, wake FROM agents WHERE wake != '[]'")
        for r in rows:
            r["wake"] = _loads(r["wake"])
        return rows

    def online_heard(self) -> list[dict[str, Any]]:
        """``agent_id``, ``last_seen``, ``telemetry_interval_s`` of every online agent (the group's silence watch)."""
        sql = "SELECT agent_id, last_seen, telemetry_interval_s FROM agents"
        sql += " WHERE state = 'online' AND last_seen IS NOT NULL"
        return self._rows(sql)

    def telemetry_intervals(self) -> dict[str, float]:
        """Each agent's telemetry interval in seconds (for the silence watch)."""
        rows = self._rows("SELECT agent_id, telemetry_interval_s FROM agents")
        return {str(r["agent_id"]): float(r["telemetry_interval_s"]) for r in rows}

    def sites(self) -> list[str]:
        """Every site, sorted."""
        return [str(r["site"]) for r in self._rows("SELECT DISTINCT site FROM agents ORDER BY site")]

    def status_history(self, agent_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """State changes of one agent, newest first."""
        sql = "SELECT state, session, ts, since FROM status_history WHERE agent_id = ? ORDER BY id DESC LIMIT ?"
        return self._rows(sql, [agent_id, limit])

    def telemetry_history(self, agent_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """Telemetry of one agent, newest first (each as the agent sent it)."""
        sql = "SELECT data FROM telemetry WHERE agent_id = ? ORDER BY id DESC LIMIT ?"
        return [_loads(r["data"]) for r in self._rows(sql, [agent_id, limit])]

    def alarms(
        self, *, open_only: bool = True, agent_id: str | None = None, limit: int = -1, before: int | None = None
    ) -> list[dict[str, Any]]:
        """Alarms, newest first (only the open ones unless `open_only` is False; `before`: ids below it)."""
        where, params = ["1=1"], list[Any]()
        if open_only:
            where.append("cleared_ts IS NULL")
        if agent_id is not None:
            where.append("agent_id = ?")
            params.append(agent_id)
        if before is not None:
            where.append("id < ?")
            params.append(before)
        sql = f"SELECT {_ALARM_COLUMNS} FROM alarms WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"
        return [_alarm_dict(row) for row in self._rows(sql, [*params, limit if limit >= 0 else _NO_LIMIT])]

    def alarm(self, alarm_id: int) -> dict[str, Any] | None:
        """One alarm by its id; None when there is none."""
        found = self._rows(f"SELECT {_ALARM_COLUMNS} FROM alarms WHERE id = ?", [alarm_id])
        return _alarm_dict(found[0]) if found else None

    def commands(
        self, *, agent_id: str | None = None, limit: int = 100, before: str | None = None
    ) -> list[dict[str, Any]]:
        """The command audit log, newest first (`before`: the commands sent before the one with that id)."""
        where, params = ["1=1"], list[Any]()
        if agent_id is not None:
            where.append("agent_id = ?")
            params.append(agent_id)
        if before is not None:  # a cursor that survives new commands arriving while someone pages
            order = self._r.order_key
            where.append(f"(sent_ts, {order}) < (SELECT sent_ts, {order} FROM commands WHERE id = ?)")
            params.append(before)
        return self._commands(" AND ".join(where), [*params, limit])

    def command(self, command_id: str) -> dict[str, Any] | None:
        """One command of the audit log by its id; None when there is none."""
        found = self._commands("id = ?", [command_id, 1])
        return found[0] if found else None

    def _commands(self, where: str, params: list[Any]) -> list[dict[str, Any]]:
        order = self._r.order_key
        sql = f"SELECT {COMMAND_COLUMNS} FROM commands WHERE {where} ORDER BY sent_ts DESC, {order} DESC LIMIT ?"
        rows = self._rows(sql, params)
        for r in rows:
            r["args"], r["params"] = json.loads(r["args"]), _loads(r["params"] or "{}")
            r["result"] = json.loads(r["result"]) if r["result"] is not None else None
        return rows

    def recordings(self, agent_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """Recordings received from one agent, newest first (``url``: where the dashboard plays it)."""
        sql = (
            "SELECT id, recording_id, lesson, started, size, sha256, received FROM recordings WHERE agent_id = ?"
            " ORDER BY received DESC, id DESC LIMIT ?"
        )
        rows = self._rows(sql, [agent_id, limit])
        for r in rows:
            r["url"] = f"/recordings/{r['id']}"
        return rows


def _loads(text: str) -> Any:
    """Stored JSON; a NaN or Infinity written before they were refused reads as null, so the API stays JSON."""
    return json.loads(text, parse_constant=lambda _: None)


def _alarm_dict(row: dict[str, Any]) -> dict[str, Any]:
    """An alarm row with its params (the values its code is worded with) as a JSON object."""
    params = _loads(row["params"] or "{}")
    return {**row, "params": params if isinstance(params, dict) else {}}


def _device_dict(row: dict[str, Any]) -> dict[str, Any]:
    online = row["online"]
    return {
        "id": row["device_id"],
        "kind": row["kind"],
        "profile": row["profile"],
        "online": None if online is None else bool(online),
        "state": json.loads(row["state"]),
        "error": row["error"],
        "code": row["code"],  # why it is offline (contract.codes)
        "ts": row["ts"],
        "name": row["name"],
        "inputs": _loads(row["inputs"] or "[]"),
    }


def _agent_of(row: Row) -> str:
    return str(getattr(row, "agent_id", ""))
