"""fleet.db: what the centre knows about every agent, written by one batched writer.

Writes arrive as typed rows (`central.fleet_rows`: one per MQTT message, command or housekeeping
step, and the SQL each becomes) and are applied many at a time in ONE transaction by
`FleetDB.write_batch`, on a connection of their own (the writer may run in a worker thread).
Reads use a second connection: with WAL they never wait for the writer.  Timestamps are stored
as contract ISO strings, so they compare as text.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import sqlite_utils

from central.fleet_rows import (
    COMMAND_COLUMNS,
    Change,
    Row,
    RowWriter,
)
from contract import now_iso

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS agents (
  agent_id TEXT PRIMARY KEY, site TEXT NOT NULL, room TEXT NOT NULL DEFAULT '',
  hostname TEXT NOT NULL DEFAULT '', version TEXT NOT NULL DEFAULT '', state TEXT NOT NULL DEFAULT 'offline',
  session INTEGER NOT NULL DEFAULT 0, since TEXT, last_seen TEXT, telemetry_interval_s REAL NOT NULL DEFAULT 10,
  telemetry TEXT, dropped INTEGER NOT NULL DEFAULT 0, dropped_reason TEXT NOT NULL DEFAULT '', dropped_ts TEXT);
CREATE TABLE IF NOT EXISTS devices (
  agent_id TEXT NOT NULL, device_id TEXT NOT NULL, kind TEXT NOT NULL DEFAULT '',
  profile TEXT NOT NULL DEFAULT '', online INTEGER, state TEXT NOT NULL DEFAULT '{}',
  error TEXT NOT NULL DEFAULT '', ts TEXT, PRIMARY KEY (agent_id, device_id));
CREATE TABLE IF NOT EXISTS status_history (
  id INTEGER PRIMARY KEY, agent_id TEXT NOT NULL, state TEXT NOT NULL, session INTEGER NOT NULL,
  since TEXT, ts TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS status_history_agent ON status_history (agent_id, id);
CREATE TABLE IF NOT EXISTS telemetry (
  id INTEGER PRIMARY KEY, agent_id TEXT NOT NULL, ts TEXT NOT NULL, received TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS telemetry_agent ON telemetry (agent_id, id);
CREATE INDEX IF NOT EXISTS telemetry_received ON telemetry (received);
CREATE TABLE IF NOT EXISTS alarms (
  id INTEGER PRIMARY KEY, agent_id TEXT NOT NULL, site TEXT NOT NULL, type TEXT NOT NULL,
  severity TEXT NOT NULL, device TEXT NOT NULL DEFAULT '', message TEXT NOT NULL DEFAULT '',
  raised_ts TEXT NOT NULL, cleared_ts TEXT, acked_by TEXT, acked_ts TEXT, params TEXT NOT NULL DEFAULT '{}');
CREATE INDEX IF NOT EXISTS alarms_open ON alarms (agent_id, type, device, cleared_ts);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY, agent_id TEXT NOT NULL, site TEXT NOT NULL, type TEXT NOT NULL,
  severity TEXT NOT NULL, action TEXT NOT NULL, device TEXT NOT NULL DEFAULT '',
  message TEXT NOT NULL DEFAULT '', ts TEXT NOT NULL, received TEXT NOT NULL, data TEXT NOT NULL DEFAULT '{}',
  event_id TEXT);
CREATE INDEX IF NOT EXISTS events_agent ON events (agent_id, id);
CREATE TABLE IF NOT EXISTS commands (
  id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, site TEXT NOT NULL, name TEXT NOT NULL,
  args TEXT NOT NULL DEFAULT '{}', "by" TEXT NOT NULL DEFAULT '', sent_ts TEXT NOT NULL, expires TEXT NOT NULL,
  status TEXT NOT NULL, result TEXT, error TEXT NOT NULL DEFAULT '', replied_ts TEXT);
CREATE INDEX IF NOT EXISTS commands_agent ON commands (agent_id, sent_ts);
CREATE INDEX IF NOT EXISTS events_received ON events (received);
CREATE INDEX IF NOT EXISTS alarms_cleared ON alarms (cleared_ts);
CREATE INDEX IF NOT EXISTS commands_sent ON commands (sent_ts);
CREATE INDEX IF NOT EXISTS status_history_ts ON status_history (ts);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Recordings received from agents (written by `central.uploads.Uploads`; ``file`` is relative to its store).
RECORDINGS_SCHEMA = """
CREATE TABLE IF NOT EXISTS recordings (
  id INTEGER PRIMARY KEY, agent_id TEXT NOT NULL, recording_id TEXT NOT NULL, lesson TEXT NOT NULL DEFAULT '',
  started TEXT NOT NULL DEFAULT '', size INTEGER NOT NULL, sha256 TEXT NOT NULL, file TEXT NOT NULL,
  received TEXT NOT NULL, UNIQUE (agent_id, recording_id));
"""
# Columns added since the first fleet.db: an older file gets them when opened.
_ADDED_COLUMNS = {
    "agents": [
        "dropped INTEGER NOT NULL DEFAULT 0",
        "dropped_reason TEXT NOT NULL DEFAULT ''",
        "dropped_ts TEXT",
        "nics TEXT NOT NULL DEFAULT '[]'",  # info.nics: the PC's network cards, to wake it through a neighbour
        "wake TEXT NOT NULL DEFAULT '[]'",  # info.wake: when its timetable wants it woken (central.wake)
        "sources TEXT NOT NULL DEFAULT '[]'",  # info.sources: id, kind, display name (no URL)
        "hours TEXT NOT NULL DEFAULT '[]'",  # info.hours: its school hours (central.hours)
    ],
    "events": ["event_id TEXT"],
    "alarms": ["params TEXT NOT NULL DEFAULT '{}'"],
    # info: a device's display name and inputs; state: the code of why it is offline.
    "devices": ["name TEXT NOT NULL DEFAULT ''", "inputs TEXT NOT NULL DEFAULT '[]'", "code TEXT NOT NULL DEFAULT ''"],
    "commands": ["code TEXT NOT NULL DEFAULT ''", "params TEXT NOT NULL DEFAULT '{}'"],  # a refusal's, a failure's
}
# Indexes on added columns: made once the columns exist.  An event with an id is stored once per agent.
_LATE_INDEXES = (
    "CREATE UNIQUE INDEX IF NOT EXISTS events_identity ON events (agent_id, event_id) WHERE event_id IS NOT NULL",
)
# What SQLite (or the JSON written into it) refuses in one row: that row is set aside, never its batch.
# OperationalError (locked, disk full) is not here: it is about the database, and the whole batch is retried.
_REFUSED = (
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
    sqlite3.DataError,
    sqlite3.ProgrammingError,
    OverflowError,
    ValueError,
    TypeError,
)
_ALARM_COLUMNS = (
    "id, agent_id, site, type, severity, device, message, raised_ts, cleared_ts, acked_by, acked_ts, params"
)


def create_private(path: str | Path) -> None:
    """Create `path` readable by its owner only (0600), or take group and others' access off an existing one.

    fleet.db holds the cookie-signing secret, password hashes and upload tokens' hashes; SQLite gives
    its -wal and -shm files the same mode as the database.
    """
    path = Path(path)
    # Never open (and close) an existing database here: closing any descriptor of a file drops every
    # POSIX lock this process holds on it, SQLite's included.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        os.chmod(path, mode & 0o700)


def _open(path: Path) -> sqlite_utils.Database:
    create_private(path)
    conn = sqlite3.connect(str(path), timeout=10.0, check_same_thread=False)
    return sqlite_utils.Database(conn)


class FleetDB:
    """fleet.db (sqlite-utils, WAL): one writer connection, one reader connection."""

    def __init__(self, path: str | Path) -> None:
        """Open (creating the tables if needed)."""
        self.path = Path(path)
        self._w = _open(self.path)
        self._w.enable_wal()
        self._w.execute("PRAGMA synchronous=NORMAL")
        with self._w.atomic():
            for statement in (_SCHEMA + RECORDINGS_SCHEMA).split(";"):
                if statement.strip():
                    self._w.execute(statement)
            _add_columns(self._w)
            for statement in _LATE_INDEXES:
                self._w.execute(statement)
        self._r = _open(self.path)
        self._writer = RowWriter(self._w)
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close both connections (after the write in progress, if any)."""
        with self._lock:
            self._w.close()
        self._r.close()

    # ---- writes ------------------------------------------------------------------------

    def write_batch(self, rows: list[Row]) -> list[Change]:
        """Apply `rows` in order, in ONE transaction; the (kind, agent_id) pairs that changed.

        A row SQLite refuses (an int it cannot hold, a constraint) is set aside with its reason and
        counted against its agent; the other rows of the batch are written.  The common case pays
        nothing for that: only a batch with a refused row is applied again, each row in a savepoint.
        """
        with self._lock:
            try:
                with self._w.atomic():
                    return self._apply(rows, careful=False)
            except _REFUSED:
                with self._w.atomic():
                    return self._apply(rows, careful=True)

    def _apply(self, rows: list[Row], *, careful: bool) -> list[Change]:
        changes: dict[Change, None] = {}
        for row in rows:
            if careful:
                self._w.execute("SAVEPOINT fleet_row")
            try:
                change = self._writer.apply(row)
            except _REFUSED as exc:
                if not careful:
                    raise
                self._w.execute("ROLLBACK TO fleet_row")
                reason = f"fleet.db refused the row: {type(exc).__name__}: {exc}"
                log.error("fleet.db: set aside %s of %s: %s", type(row).__name__, getattr(row, "agent_id", "?"), reason)
                change = self._writer.dropped(row, reason)
            if careful:
                self._w.execute("RELEASE fleet_row")
            if change:
                changes[change] = None
        return list(changes)

    def next_session(self) -> int:
        """The centre's own session counter, incremented (for its status topic)."""
        with self._lock, self._w.atomic():
            cur = self._w.execute("SELECT value FROM meta WHERE key = 'session'").fetchone()
            session = int(cur[0]) + 1 if cur else 1
            self._w.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('session', ?)", [str(session)])
        return session

    def session_secret(self) -> bytes:
        """The dashboard's cookie-signing secret, made once and kept, so logins survive a restart."""
        with self._lock, self._w.atomic():
            cur = self._w.execute("SELECT value FROM meta WHERE key = 'session_secret'").fetchone()
            if cur:
                return bytes.fromhex(cur[0])
            secret = os.urandom(32)
            self._w.execute("INSERT INTO meta (key, value) VALUES ('session_secret', ?)", [secret.hex()])
        return secret

    def ack_alarm(self, alarm_id: int, user: str) -> bool:
        """Acknowledge an alarm; False when there is no such alarm or it is already acknowledged."""
        with self._lock, self._w.atomic():
            sql = "UPDATE alarms SET acked_by = ?, acked_ts = ? WHERE id = ? AND acked_by IS NULL"
            return bool(self._w.execute(sql, [user, now_iso(), alarm_id]).rowcount)

    # ---- reads -------------------------------------------------------------------------

    def _rows(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        cursor = self._r.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]

    def agents(
        self, *, site: str | None = None, offline_only: bool = False, alarms_only: bool = False
    ) -> list[dict[str, Any]]:
        """Every agent (filtered), with its devices, open alarm count and latest telemetry."""
        where, params = ["1"], []
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
        where, params = ["1"], list[Any]()
        if open_only:
            where.append("cleared_ts IS NULL")
        if agent_id is not None:
            where.append("agent_id = ?")
            params.append(agent_id)
        if before is not None:
            where.append("id < ?")
            params.append(before)
        sql = f"SELECT {_ALARM_COLUMNS} FROM alarms WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"
        return [_alarm_dict(row) for row in self._rows(sql, [*params, limit])]

    def alarm(self, alarm_id: int) -> dict[str, Any] | None:
        """One alarm by its id; None when there is none."""
        found = self._rows(f"SELECT {_ALARM_COLUMNS} FROM alarms WHERE id = ?", [alarm_id])
        return _alarm_dict(found[0]) if found else None

    def commands(
        self, *, agent_id: str | None = None, limit: int = 100, before: str | None = None
    ) -> list[dict[str, Any]]:
        """The command audit log, newest first (`before`: the commands sent before the one with that id)."""
        where, params = ["1"], []
        if agent_id is not None:
            where.append("agent_id = ?")
            params.append(agent_id)
        if before is not None:  # a cursor that survives new commands arriving while someone pages
            where.append("(sent_ts, rowid) < (SELECT sent_ts, rowid FROM commands WHERE id = ?)")
            params.append(before)
        return self._commands(" AND ".join(where), [*params, limit])

    def command(self, command_id: str) -> dict[str, Any] | None:
        """One command of the audit log by its id; None when there is none."""
        found = self._commands("id = ?", [command_id, 1])
        return found[0] if found else None

    def _commands(self, where: str, params: list[Any]) -> list[dict[str, Any]]:
        sql = f"SELECT {COMMAND_COLUMNS} FROM commands WHERE {where} ORDER BY sent_ts DESC, rowid DESC LIMIT ?"
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


def _add_columns(db: sqlite_utils.Database) -> None:
    """Add the columns an older fleet.db lacks."""
    for table, columns in _ADDED_COLUMNS.items():
        have = {row[1] for row in db.execute(f"PRAGMA table_info({table})").fetchall()}
        for column in columns:
            if column.split()[0] not in have:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")


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
