"""agent.db: what the agent must remember across a reboot (sqlite-utils, WAL).

The session counter, the outbox of events and replies not yet delivered, the ids of
recent commands with the reply each got, the index of recordings, how far each upload to the centre
got and where each delivery to another target (``[[upload.targets]]``) stands.  A file written by an
older agent is brought up to date when opened: missing tables are created, missing columns added.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlite_utils

SEEN_KEEP_S = 24 * 3600.0
RECORDING_COLUMNS = {
    "id": str, "lesson": str, "teacher": str, "started": str, "ended": str, "sources": str, "layout": str,
    "path": str, "size": int, "sha256": str, "state": str, "error": str,
}  # fmt: skip
UPLOAD_COLUMNS = {
    "recording_id": str, "upload_id": str, "offset": int, "size": int, "error": str,
    "error_final": int,  # 1: the centre rejected the whole file; not retried by itself
    "updated": float,
}  # fmt: skip
DELIVERY_COLUMNS = {
    "recording_id": str, "target": str,
    "dest": str,  # where it goes, without credentials: a changed destination starts the file over
    "state": str,  # DeliveryState
    "offset": int, "size": int,  # bytes the target has (as last seen), of the file's size
    "ranges": int,  # HTTP: -1 not known yet, 0 the server ignores or refuses Content-Range, 1 it honours it
    "attempts": int, "error": str, "delivered": str, "updated": float,
}  # fmt: skip


class RecordingState(StrEnum):
    """A recording's ``state`` column in agent.db (the stored values never change: old files keep working)."""

    RECORDING = "recording"  # being recorded; at startup a leftover means the agent crashed
    INTERRUPTED = "interrupted"  # halted or crashed: its lesson may continue it, else it is finished later
    FINISHING = "finishing"  # being remuxed after its lesson: no longer resumable
    FINISHED = "finished"  # final MP4 written and checksummed: the uploader sends it
    UPLOADED = "uploaded"  # the centre confirmed the whole file: retention may delete it
    FAILED = "failed"  # nothing playable could be written; ``error`` says why


class DeliveryState(StrEnum):
    """A recording's delivery to one target (``deliveries.state``)."""

    PENDING = "pending"  # not there yet (never tried, under way, or failed and retried with the backoff)
    DELIVERED = "delivered"  # the file, its .sha256 and its .json are at the target
    GIVEN_UP = "given_up"  # the local file is gone or changed: tried again when the delivery service restarts


@dataclass(frozen=True, slots=True)
class RecordingRow:
    """One recording as agent.db's index has it (``sources`` in role order)."""

    id: str
    lesson: str = ""
    teacher: str = ""
    started: str = ""
    ended: str = ""
    sources: tuple[str, ...] = ()
    layout: str = ""
    path: str = ""
    size: int = 0
    sha256: str = ""
    state: RecordingState = RecordingState.RECORDING
    error: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecordingRow:
        """A row from its columns; a column never written (NULL) reads as empty."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known and v is not None}
        if isinstance(values.get("sources"), str):
            values["sources"] = json.loads(values["sources"] or "[]")
        values["sources"] = tuple(values.get("sources", ()))
        values["state"] = RecordingState(values.get("state", RecordingState.RECORDING))
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The columns, ``sources`` as a list and ``state`` as its stored string."""
        return {**asdict(self), "sources": list(self.sources), "state": str(self.state)}


@dataclass(frozen=True, slots=True)
class Pending:
    """One outbox entry."""

    id: int
    topic: str
    payload: bytes


def connect(path: str | Path) -> tuple[sqlite3.Connection, sqlite_utils.Database]:
    """Open (creating if needed) agent.db in WAL mode, autocommit, usable from worker threads."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Owner only (SQLite gives -wal and -shm the same mode): it keeps commands' arguments and alarms.
    # O_EXCL: closing a descriptor of an open database would drop this process's SQLite locks on it.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    if (mode := path.stat().st_mode & 0o777) & 0o077:
        os.chmod(path, mode & 0o700)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db = sqlite_utils.Database(conn)
    db.enable_wal()
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn, db


class AgentStore:
    """The agent's one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        """Open (creating if needed) the database in WAL mode."""
        self.conn, self.db = connect(path)
        self._create()

    def _create(self) -> None:
        if "meta" not in self.db.table_names():
            self.db.table("meta").create({"key": str, "value": str}, pk="key")
        if "outbox" not in self.db.table_names():
            self.db.table("outbox").create({"id": int, "topic": str, "payload": bytes, "created": float}, pk="id")
        if "seen" not in self.db.table_names():
            self.db.table("seen").create({"id": str, "reply": str, "at": float}, pk="id")
        if "recordings" not in self.db.table_names():
            self.db.table("recordings").create(RECORDING_COLUMNS, pk="id", defaults={"size": 0})
            self.db.table("recordings").create_index(["lesson"])
        if "uploads" not in self.db.table_names():
            self.db.table("uploads").create(UPLOAD_COLUMNS, pk="recording_id", defaults={"offset": 0, "error_final": 0})
        if "deliveries" not in self.db.table_names():
            defaults = {"state": "pending", "offset": 0, "size": 0, "ranges": -1, "attempts": 0}
            self.db.table("deliveries").create(DELIVERY_COLUMNS, pk=("recording_id", "target"), defaults=defaults)
        for name, columns in (("recordings", RECORDING_COLUMNS), ("uploads", UPLOAD_COLUMNS)):
            self._add_missing(name, columns)
        self._add_missing("deliveries", DELIVERY_COLUMNS)

    def _add_missing(self, name: str, columns: Mapping[str, type]) -> None:
        """Columns a newer agent added to a table of an older file (NULL in the old rows)."""
        table = self.db.table(name)
        have = set(table.columns_dict)
        for column, kind in columns.items():
            if column not in have:
                table.add_column(column, kind)

    def recording_put(self, row: RecordingRow | Mapping[str, Any]) -> None:
        """Insert or update one recording (a whole row, or some columns by name with its ``id``)."""
        columns = row.to_dict() if isinstance(row, RecordingRow) else row
        values = {
            k: (json.dumps(list(v), allow_nan=False) if k == "sources" else v)
            for k, v in columns.items()
            if k in RECORDING_COLUMNS
        }
        self.db.table("recordings").upsert(values, pk="id")

    def recording(self, recording_id: str) -> RecordingRow | None:
        """One recording by id, or None."""
        rows = self._select("id = ?", (recording_id,))
        return RecordingRow.from_dict(rows[0]) if rows else None

    def recordings_in(self, *states: RecordingState) -> list[RecordingRow]:
        """The recordings in any of `states`, newest first."""
        marks = ", ".join("?" * len(states))
        return [RecordingRow.from_dict(r) for r in self._select(f"state IN ({marks})", tuple(map(str, states)))]

    def uploaded_before(self, cutoff: str) -> list[RecordingRow]:
        """Uploaded recordings that ended before `cutoff` (an ISO time: retention's candidates), newest first."""
        where = "state = ? AND ended != '' AND ended < ?"
        return [RecordingRow.from_dict(r) for r in self._select(where, (str(RecordingState.UPLOADED), cutoff))]

    def ended_before(self, cutoff: str, *states: RecordingState) -> list[RecordingRow]:
        """Recordings in any of `states` that ended before `cutoff` (an ISO time), newest first."""
        where = f"state IN ({', '.join('?' * len(states))}) AND ended != '' AND ended < ?"
        return [RecordingRow.from_dict(r) for r in self._select(where, (*map(str, states), cutoff))]

    def mark(self, recording_id: str, state: RecordingState, **columns: Any) -> None:
        """Set one recording's state (and any other `columns`, by name)."""
        self.recording_put({**columns, "id": recording_id, "state": str(state)})

    def recordings(self) -> list[dict[str, Any]]:
        """The whole index as plain dicts, newest first, for inspection (a technician, a test).

        The agent itself asks the named queries (`recording`, `recordings_in`, ...) for `RecordingRow`s.
        """
        rows = self._select("", ())
        for row in rows:
            row["sources"] = json.loads(row["sources"] or "[]")
        return rows

    def _select(self, where: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        sql = "SELECT * FROM recordings" + (f" WHERE {where}" if where else "") + " ORDER BY started DESC"
        cursor = self.conn.execute(sql, params)
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor]

    def recordings_interrupted(self) -> int:
        """Mark recordings left ``recording`` by a crash as ``interrupted`` (resumable); how many."""
        sql = "UPDATE recordings SET state = ? WHERE state = ?"
        return int(self.conn.execute(sql, (str(RecordingState.INTERRUPTED), str(RecordingState.RECORDING))).rowcount)

    def recording_delete(self, recording_id: str) -> None:
        """Forget one recording (and where its deliveries stood)."""
        self.conn.execute("DELETE FROM recordings WHERE id = ?", (recording_id,))
        self.conn.execute("DELETE FROM deliveries WHERE recording_id = ?", (recording_id,))

    def upload_progress(self, recording_id: str) -> dict[str, Any] | None:
        """How far a recording's upload got: ``{upload_id, offset, size, error}``; None before it began."""
        cursor = self.conn.execute("SELECT * FROM uploads WHERE recording_id = ?", (recording_id,))
        names = [c[0] for c in cursor.description]
        row = cursor.fetchone()
        return dict(zip(names, row, strict=True)) if row else None

    def upload_put(self, recording_id: str, **values: Any) -> None:
        """Record upload progress (columns as in `UPLOAD_COLUMNS`)."""
        row = {"recording_id": recording_id, **values, "updated": time.time()}
        self.db.table("uploads").upsert({k: v for k, v in row.items() if k in UPLOAD_COLUMNS}, pk="recording_id")

    def delivery(self, recording_id: str, target: str) -> dict[str, Any] | None:
        """Where a recording's delivery to `target` stands (columns as in `DELIVERY_COLUMNS`); None before it began."""
        sql = "SELECT * FROM deliveries WHERE recording_id = ? AND target = ?"
        cursor = self.conn.execute(sql, (recording_id, target))
        names = [c[0] for c in cursor.description]
        row = cursor.fetchone()
        return dict(zip(names, row, strict=True)) if row else None

    def deliveries_to(self, target: str) -> dict[str, dict[str, Any]]:
        """Every recording's delivery to `target`, by recording id."""
        cursor = self.conn.execute("SELECT * FROM deliveries WHERE target = ?", (target,))
        names = [c[0] for c in cursor.description]
        rows = [dict(zip(names, r, strict=True)) for r in cursor]
        return {str(r["recording_id"]): r for r in rows}

    def delivery_put(self, recording_id: str, target: str, **values: Any) -> None:
        """Record a delivery's progress (columns as in `DELIVERY_COLUMNS`)."""
        row = {"recording_id": recording_id, "target": target, **values, "updated": time.time()}
        values = {k: v for k, v in row.items() if k in DELIVERY_COLUMNS}
        self.db.table("deliveries").upsert(values, pk=("recording_id", "target"))

    def deliveries_given_up_retry(self) -> int:
        """Make every given-up delivery pending again (a restarted delivery service checks its file anew); how many."""
        sql = "UPDATE deliveries SET state = ? WHERE state = ?"
        return int(self.conn.execute(sql, ("pending", "given_up")).rowcount)

    def close(self) -> None:
        """Close the file."""
        self.conn.close()

    def next_session(self) -> int:
        """Increment and return the session counter (one per broker connection)."""
        with self.conn:
            row = self.conn.execute("SELECT value FROM meta WHERE key='session'").fetchone()
            session = int(row[0]) + 1 if row else 1
            self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('session', ?)", (str(session),))
        return session

    def outbox_add(self, topic: str, payload: bytes) -> int:
        """Queue a message; it stays until `outbox_remove` says it was delivered."""
        cur = self.conn.execute(
            "INSERT INTO outbox(topic, payload, created) VALUES (?, ?, ?)", (topic, payload, time.time())
        )
        return int(cur.lastrowid or 0)

    def outbox_peek(self, limit: int = 100) -> list[Pending]:
        """The oldest undelivered messages, in order."""
        rows = self.conn.execute("SELECT id, topic, payload FROM outbox ORDER BY id LIMIT ?", (limit,))
        return [Pending(int(i), str(t), bytes(p)) for i, t, p in rows]

    def outbox_remove(self, ids: list[int]) -> None:
        """Forget delivered messages."""
        if ids:
            with self.conn:
                self.conn.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

    def outbox_size(self) -> int:
        """How many messages wait."""
        return int(self.conn.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def outbox_trim(self, max_age_s: float, max_rows: int) -> int:
        """Drop what is too old or beyond the size bound (oldest first); returns how many."""
        with self.conn:
            old = self.conn.execute("DELETE FROM outbox WHERE created < ?", (time.time() - max_age_s,)).rowcount
            over = self.conn.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id DESC LIMIT -1 OFFSET ?)",
                (max_rows,),
            ).rowcount
        return int(old) + int(over)

    def seen_reply(self, command_id: str) -> dict[str, object] | None:
        """The reply a command id already got, if it ran recently."""
        row = self.conn.execute("SELECT reply FROM seen WHERE id = ?", (command_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def remember(self, command_id: str, reply: dict[str, object]) -> None:
        """Record a command's reply, so a redelivery is answered again, not run again."""
        now = time.time()
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO seen(id, reply, at) VALUES (?, ?, ?)",
                (command_id, json.dumps(reply, allow_nan=False), now),
            )
            self.conn.execute("DELETE FROM seen WHERE at < ?", (now - SEEN_KEEP_S,))
