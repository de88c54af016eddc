"""The ``schedule.*`` commands and the timetable in force.

A timetable set by ``schedule.set`` (from the centre, the CLI or the local page) is kept in
agent.db's ``timetable`` table and **overrides the site config's ``[timetable]`` across
restarts**, until ``schedule.clear`` removes it; then the site config's applies again.  A stored
timetable that no longer passes the checks (after an upgrade) is logged and ignored.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.commands.table import Arg, CommandDef, CommandTable, Rejected
from agent.store import connect
from agent.timetable.model import Timetable, TimetableError
from agent.timetable.parse import parse_timetable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredTimetable:
    """The persisted timetable: its JSON form, and when and by whom it was set."""

    data: dict[str, Any]
    set_at: str
    set_by: str


class TimetableStore:
    """The ``timetable`` table of agent.db: at most one row."""

    def __init__(self, path: str | Path) -> None:
        """Open (creating if needed) the table in the agent's SQLite file."""
        self.conn, db = connect(path)
        if "timetable" not in db.table_names():
            db.table("timetable").create({"id": int, "json": str, "set_at": str, "set_by": str}, pk="id")

    def load(self) -> StoredTimetable | None:
        """The stored timetable, if any."""
        row = self.conn.execute("SELECT json, set_at, set_by FROM timetable WHERE id = 1").fetchone()
        return StoredTimetable(json.loads(row[0]), str(row[1]), str(row[2])) if row else None

    def save(self, data: Mapping[str, Any], set_at: str, set_by: str) -> None:
        """Replace the stored timetable."""
        self.conn.execute(
            "INSERT OR REPLACE INTO timetable(id, json, set_at, set_by) VALUES (1, ?, ?, ?)",
            (json.dumps(data, ensure_ascii=False, allow_nan=False), set_at, set_by),
        )

    def clear(self) -> bool:
        """Forget the stored timetable; whether there was one."""
        return bool(self.conn.execute("DELETE FROM timetable WHERE id = 1").rowcount)

    def close(self) -> None:
        """Close the file."""
        self.conn.close()


class Schedule:
    """The timetable in force: the stored one if any, else the site config's."""

    def __init__(
        self,
        store: TimetableStore,
        configured: Timetable,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Read the stored timetable once; `configured` comes from the site config."""
        self.store = store
        self.configured = configured
        self.clock = clock
        self._stored: tuple[Timetable, StoredTimetable] | None = None
        stored = store.load()
        if stored is not None:
            try:
                self._stored = (parse_timetable(stored.data), stored)
            except TimetableError as exc:
                log.error("stored timetable (set %s by %s) ignored: %s", stored.set_at, stored.set_by, exc)

    def current(self) -> Timetable:
        """The timetable the scheduler follows."""
        return self._stored[0] if self._stored else self.configured

    def set(self, timetable: Timetable, by: str = "") -> None:
        """Store a timetable; it overrides the site config's from now on, across restarts."""
        stored = StoredTimetable(timetable.to_dict(), self.clock().isoformat(timespec="seconds"), by)
        self.store.save(stored.data, stored.set_at, stored.set_by)
        self._stored = (timetable, stored)

    def clear(self) -> bool:
        """Go back to the site config's timetable; whether a stored one was removed."""
        self._stored = None
        return self.store.clear()

    def describe(self) -> dict[str, Any]:
        """The ``schedule.get`` result."""
        if self._stored is None:
            return {"source": "config", "set_at": None, "set_by": None, "timetable": self.configured.to_dict()}
        timetable, stored = self._stored
        return {"source": "command", "set_at": stored.set_at, "set_by": stored.set_by, "timetable": timetable.to_dict()}


class TimetableArg(Arg):
    """An argument holding a whole timetable (an object, or its JSON text from the CLI)."""

    __slots__ = ()

    def check(self, value: Any) -> Timetable:
        """The checked Timetable; Rejected lists every problem."""
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise Rejected(f"{self.name}: not valid JSON: {exc}") from None
        try:
            return parse_timetable(value, self.name)
        except TimetableError as exc:
            raise Rejected("; ".join(exc.problems)) from None


def register_schedule_commands(table: CommandTable, schedule: Schedule, on_change: Callable[[], None]) -> None:
    """Add ``schedule.set``, ``schedule.get`` and ``schedule.clear``; `on_change` is told after a change."""

    async def set_(args: Mapping[str, Any]) -> dict[str, Any]:
        timetable: Timetable = args["timetable"]
        schedule.set(timetable, args.get("by", ""))
        on_change()
        return {"lessons": len(timetable.lessons), "set_at": schedule.describe()["set_at"]}

    async def get(args: Mapping[str, Any]) -> dict[str, Any]:
        return schedule.describe()

    async def clear(args: Mapping[str, Any]) -> dict[str, Any]:
        removed = schedule.clear()
        on_change()
        return {"removed": removed, "source": "config"}

    by = Arg("by", required=False, doc="who set it (shown by schedule.get)")
    timetable = TimetableArg("timetable", "object", doc="the whole timetable, as in the site config's [timetable]")
    table.add(CommandDef("schedule.set", (timetable, by), set_, "replace the room's timetable (kept across restarts)"))
    table.add(CommandDef("schedule.get", (), get, "the timetable in force and where it comes from", read_only=True))
    table.add(CommandDef("schedule.clear", (), clear, "drop the timetable set by command; the site config's applies"))
