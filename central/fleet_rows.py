"""The rows the centre's single writer applies to fleet.db, one per message or housekeeping step, and how.

`RowWriter` turns each row into SQL on the writer connection; `central.fleetdb.FleetDB` owns that
connection, its lock and the one transaction per batch.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from central.store import Store
from contract import Command, CommandReply, DeviceState, Event, Info, Status, Telemetry, for_audit
from contract.drops import Drops

log = logging.getLogger(__name__)

Payload = Status | Info | DeviceState | Telemetry | Event


@dataclass(frozen=True, slots=True)
class Seen:
    """A contract message from an agent (``retained``: replayed by the broker, not heard live)."""

    site: str
    agent_id: str
    payload: Payload
    received: str
    retained: bool = False


@dataclass(frozen=True, slots=True)
class Silent:
    """The agent has sent nothing for 3 telemetry intervals."""

    agent_id: str
    received: str
    last_seen: str = ""  # when given: only if nothing was heard since (a group's watch reads the store)


@dataclass(frozen=True, slots=True)
class CommandSent:
    """A command published to an agent (the audit log's first line)."""

    site: str
    agent_id: str
    command: Command
    sent_ts: str


@dataclass(frozen=True, slots=True)
class CommandReplied:
    """An agent's reply to a command."""

    agent_id: str
    reply: CommandReply
    received: str


@dataclass(frozen=True, slots=True)
class CommandTimedOut:
    """No reply came in time."""

    command_id: str
    received: str
    agent_id: str = ""  # the agent it went to: keeps the row in that agent's order within a batch


@dataclass(frozen=True, slots=True)
class Dropped:
    """A message from the agent that broke the contract (counted, with its reason; its content is gone)."""

    site: str
    agent_id: str
    reason: str
    received: str


@dataclass(frozen=True, slots=True)
class CentreAlarm:
    """An alarm the centre raises or clears about an agent by itself (``offline_in_hours``: `central.hours`).

    Unlike an agent's event, it is no news of the agent: last_seen and its state stay as they are.
    """

    site: str
    agent_id: str
    event: Event
    received: str


@dataclass(frozen=True, slots=True)
class PruneTelemetry:
    """Retention: delete telemetry received before `before`."""

    before: str


PRUNE_SQL = {
    "events": "DELETE FROM events WHERE received < ?",
    "alarms": "DELETE FROM alarms WHERE cleared_ts IS NOT NULL AND cleared_ts < ?",  # never an open alarm
    "commands": "DELETE FROM commands WHERE sent_ts < ?",
    "status_history": "DELETE FROM status_history WHERE ts < ?",
}


@dataclass(frozen=True, slots=True)
class Prune:
    """Retention: delete the rows of `table` (a key of `PRUNE_SQL`) older than `before`."""

    table: str
    before: str

    def __post_init__(self) -> None:
        """Refuse a table retention does not know."""
        if self.table not in PRUNE_SQL:
            raise ValueError(f"table: got {self.table!r}, expected one of {', '.join(PRUNE_SQL)}")


Row = Seen | Silent | CommandSent | CommandReplied | CommandTimedOut | PruneTelemetry | Prune | Dropped | CentreAlarm
Change = tuple[str, str]  # (kind, agent_id)

COMMAND_COLUMNS = 'id, agent_id, name, args, "by", sent_ts, expires, status, result, error, replied_ts, code, params'

_TOUCH = """
INSERT INTO agents (agent_id, site, last_seen) VALUES (:agent, :site, :heard)
ON CONFLICT (agent_id) DO UPDATE SET site = excluded.site,
  last_seen = CASE WHEN :live THEN excluded.last_seen ELSE coalesce(agents.last_seen, excluded.last_seen) END
"""
# One more message of the agent dropped: counted, with the last reason and when (a bounded record, whatever the rate).
_DROP = """
INSERT INTO agents (agent_id, site, dropped, dropped_reason, dropped_ts) VALUES (:agent, :site, 1, :reason, :ts)
ON CONFLICT (agent_id) DO UPDATE SET dropped = agents.dropped + 1, dropped_reason = excluded.dropped_reason,
  dropped_ts = excluded.dropped_ts
"""
_DROP_KNOWN = (
    "UPDATE agents SET dropped = dropped + 1, dropped_reason = :reason, dropped_ts = :ts WHERE agent_id = :agent"
)
REASON_CHARS = 300


def _ended(state: str) -> bool:
    """Whether `state` closes an agent's session (nothing of that session comes after it)."""
    return state in ("offline", "lost")


def flag(value: bool | None) -> int | None:
    """A bool as the INTEGER column holds it (PostgreSQL will not put a boolean in an integer)."""
    return None if value is None else int(value)


def to_json(value: object) -> str:
    """The JSON text stored in fleet.db: never NaN or Infinity (ValueError), which no browser's JSON reads."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


class RowWriter:
    """Applies rows to fleet.db on the writer connection; the caller holds the lock and the transaction."""

    def __init__(self, db: Store) -> None:
        """Write through `db` (FleetDB's writer connection)."""
        self._w = db
        # A forging agent may send thousands: one line per agent's reply topic a minute.
        self._forged = Drops(log)

    def apply(self, row: Row) -> Change | None:
        """Apply one row; the (kind, agent_id) it changed, if any."""
        match row:
            case Seen(payload=Status() as status):
                return ("agent", row.agent_id) if self._status(row, status) else None
            case Seen(payload=Info() as info):
                self._info(row, info)
                return ("agent", row.agent_id)
            case Seen(payload=DeviceState() as state):
                self._device(row, state)
                return ("device", row.agent_id)
            case Seen(payload=Telemetry() as telemetry):
                self._telemetry(row, telemetry)
                return ("agent", row.agent_id)
            case Seen(payload=Event() as event):
                return ("alarm", row.agent_id) if self._event(row, event) else None
            case CentreAlarm():
                return ("alarm", row.agent_id) if self._alarm(row.site, row.agent_id, row.event, row.received) else None
            case Silent():
                return ("agent", row.agent_id) if self._silent(row) else None
            case CommandSent() | CommandReplied() | CommandTimedOut():
                return self._command(row)
            case Dropped():
                self.dropped(row, row.reason)
                return ("agent", row.agent_id)
            case PruneTelemetry():
                count = self._w.changed("DELETE FROM telemetry WHERE received < ?", [row.before])
                log.info("fleet store: retention deleted %d telemetry rows before %s", count, row.before)
            case Prune():
                count = self._w.changed(PRUNE_SQL[row.table], [row.before])
                log.info("fleet store: retention deleted %d %s rows before %s", count, row.table, row.before)
        return None

    def dropped(self, row: Row, reason: str) -> Change | None:
        """Count a message of `row`'s agent as dropped (a malformed payload, or a row SQLite refused)."""
        agent_id, site = getattr(row, "agent_id", None), getattr(row, "site", None)
        if agent_id is None:
            return None
        values = {"agent": agent_id, "site": site, "reason": reason[:REASON_CHARS], "ts": getattr(row, "received", "")}
        self._w.execute(_DROP if site is not None else _DROP_KNOWN, values)
        return ("agent", agent_id)

    def _touch(self, site: str, agent_id: str, heard: str, live: bool) -> None:
        """Make sure the agent exists; a live message is news of it: last_seen, silent -> online."""
        self._w.execute(_TOUCH, {"agent": agent_id, "site": site, "heard": heard, "live": live})
        if live:
            cur = self._w.execute(
                "UPDATE agents SET state = 'online' WHERE agent_id = ? AND state = 'silent' RETURNING session",
                [agent_id],
            ).fetchone()
            if cur is not None:
                self._history(agent_id, "online", cur[0], None, heard)

    def _history(self, agent_id: str, state: str, session: int, since: str | None, ts: str) -> None:
        self._w.execute(
            "INSERT INTO status_history (agent_id, state, session, since, ts) VALUES (?, ?, ?, ?, ?)",
            [agent_id, state, session, since, ts],
        )

    def _status(self, row: Seen, status: Status) -> bool:
        sql = f"SELECT state, session FROM agents WHERE agent_id = ?{self._w.lock}"
        current = self._w.execute(sql, [row.agent_id]).fetchone()
        if current is not None:
            state, session = current
            stale = status.session == session and _ended(state) and not _ended(status.state)
            if status.session < session or stale:
                # Older news (shared subscriptions may commit one agent's messages out of order):
                # within a session an agent is online first and offline / lost last.
                log.info(
                    "%s: ignored a late %r from session %d (now %d)",
                    row.agent_id,
                    status.state,
                    status.session,
                    session,
                )
                return False
            if row.retained and (status.state, status.session) == ("online", session) and state == "silent":
                return False  # a replay of the retained truth is no news that a silent agent is back
            if (state, session) == (status.state, status.session):
                return False
        live = not row.retained and status.state == "online"  # a Will is the broker speaking, not the agent
        self._touch(row.site, row.agent_id, row.received if live else status.since, live)
        self._w.execute(
            "UPDATE agents SET state = ?, session = ?, since = ?, version = CASE WHEN ? != '' THEN ? ELSE version END"
            " WHERE agent_id = ?",
            [status.state, status.session, status.since, status.version, status.version, row.agent_id],
        )
        self._history(row.agent_id, status.state, status.session, status.since, row.received)
        return True

    def _info(self, row: Seen, info: Info) -> None:
        """The room's description: names, devices (with what people call them and a display's inputs), hours."""
        self._touch(row.site, row.agent_id, row.received, not row.retained)
        sources = [{"id": s.id, "kind": s.kind, "name": s.name} for s in info.sources]  # never the URL
        hours = [{"start": start, "end": end} for start, end in info.hours]
        self._w.execute(
            "UPDATE agents SET room = ?, hostname = ?, version = ?, telemetry_interval_s = ?, nics = ?, wake = ?,"
            " sources = ?, hours = ? WHERE agent_id = ?",
            [info.room, info.hostname, info.version, info.telemetry_interval_s]
            + [to_json([n.to_dict() for n in info.nics]), to_json(list(info.wake))]
            + [to_json(sources), to_json(hours), row.agent_id],
        )
        ids = [device.id for device in info.devices]
        gone = f" AND device_id NOT IN ({','.join('?' * len(ids))})" if ids else ""  # "IN ()" is SQLite's alone
        self._w.execute(f"DELETE FROM devices WHERE agent_id = ?{gone}", [row.agent_id, *ids])
        for device in info.devices:
            self._w.execute(
                "INSERT INTO devices (agent_id, device_id, kind, profile, name, inputs) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (agent_id, device_id) DO UPDATE SET kind = excluded.kind, profile = excluded.profile,"
                " name = excluded.name, inputs = excluded.inputs",
                [row.agent_id, device.id, device.kind, device.profile, device.name, to_json(list(device.inputs))],
            )

    def _device(self, row: Seen, state: DeviceState) -> None:
        self._touch(row.site, row.agent_id, row.received if not row.retained else state.ts, not row.retained)
        self._w.execute(
            "INSERT INTO devices (agent_id, device_id, online, state, error, ts, code) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (agent_id, device_id) DO UPDATE SET online = excluded.online, state = excluded.state,"
            " error = excluded.error, ts = excluded.ts, code = excluded.code"
            # Collectors of a group may commit one device's states out of order: never an older over a newer.
            " WHERE devices.ts IS NULL OR excluded.ts >= devices.ts",
            [row.agent_id, state.device, flag(state.online), to_json(dict(state.state)), state.error, state.ts]
            + [state.code],
        )

    def _telemetry(self, row: Seen, telemetry: Telemetry) -> None:
        data = to_json(telemetry.to_dict())
        self._touch(row.site, row.agent_id, row.received, True)
        self._w.execute("UPDATE agents SET telemetry = ? WHERE agent_id = ?", [data, row.agent_id])
        self._w.execute(
            "INSERT INTO telemetry (agent_id, ts, received, data) VALUES (?, ?, ?, ?)",
            [row.agent_id, telemetry.ts, row.received, data],
        )

    def _event(self, row: Seen, event: Event) -> bool:
        """Record the event; open or close an alarm.  Whether an alarm changed."""
        self._touch(row.site, row.agent_id, row.received, True)
        return self._alarm(row.site, row.agent_id, event, row.received)

    def _alarm(self, site: str, agent: str, event: Event, received: str) -> bool:
        """Store `event` once (by its id) and open, update or close its alarm.  Whether an alarm changed."""
        inserted = self._w.changed(
            "INSERT INTO events (agent_id, site, type, severity, action, device, message, ts, received, data, event_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [agent, site, event.type, event.severity, event.action, event.device, event.message, event.ts]
            + [received, to_json(dict(event.extra)), event.id or None],
        )
        if not inserted:
            # Delivered again (the broker after a restart of the centre, the agent's outbox after a crash of
            # its own): stored already, and its alarm change applied; applying it twice could re-open a cleared one.
            log.debug("%s: event %r already stored", agent, event.id)
            return False
        key = [agent, event.type, event.device]
        if event.action == "clear":
            sql = (
                "UPDATE alarms SET cleared_ts = ? WHERE agent_id = ? AND type = ? AND device = ? AND cleared_ts IS NULL"
            )
            return bool(self._w.changed(sql, [event.ts, *key]))
        if event.action != "raise":
            return False
        params = event.extra.get("params")
        words = to_json(params if isinstance(params, dict) else {})  # what the alarm's code is worded with
        sql = "UPDATE alarms SET severity = ?, message = ?, params = ? WHERE agent_id = ? AND type = ? AND device = ?"
        changes = [event.severity, event.message, words, *key]
        if self._w.changed(f"{sql} AND cleared_ts IS NULL", changes):
            return True  # already open: a re-raise updates it rather than opening a second one
        self._w.execute(
            "INSERT INTO alarms (agent_id, site, type, severity, device, message, raised_ts, params)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [agent, site, event.type, event.severity, event.device, event.message, event.ts, words],
        )
        return True

    def _silent(self, row: Silent) -> bool:
        sql = "UPDATE agents SET state = 'silent' WHERE agent_id = ? AND state = 'online'"
        heard = [row.last_seen] if row.last_seen else []
        sql += " AND last_seen = ? RETURNING session" if heard else " RETURNING session"
        cur = self._w.execute(sql, [row.agent_id, *heard]).fetchone()
        if cur is None:
            return False
        self._history(row.agent_id, "silent", cur[0], None, row.received)
        return True

    def _command(self, row: CommandSent | CommandReplied | CommandTimedOut) -> Change | None:
        if isinstance(row, CommandSent):
            c = row.command
            self._w.execute(
                f"INSERT INTO commands ({COMMAND_COLUMNS}, site) VALUES ({', '.join('?' * 14)})"
                " ON CONFLICT DO NOTHING",
                [c.id, row.agent_id, c.name, to_json(for_audit(c.args)), c.by, row.sent_ts]
                + [c.expires, "sent", None, "", None, "", "{}", row.site],
            )
            return ("command", row.agent_id)
        if isinstance(row, CommandTimedOut):
            sql = "UPDATE commands SET status = 'timeout', replied_ts = ? WHERE id = ? AND status = 'sent'"
            sql += " RETURNING agent_id"
            found = self._w.execute(sql, [row.received, row.command_id]).fetchone()
        else:
            r = row.reply
            kept = for_audit(r.result) if isinstance(r.result, dict) else r.result
            result = None if kept is None else to_json(kept)
            # Only the agent the command went to may answer it: the reply topic names who is speaking.
            # The same reply delivered again (a restart of the centre) changes nothing, not even replied_ts.
            sql = "UPDATE commands SET status = ?, result = ?, error = ?, replied_ts = ?, code = ?, params = ?"
            sql += " WHERE id = ? AND agent_id = ? AND (status, result, error) IS DISTINCT FROM (?, ?, ?)"
            sql += " RETURNING agent_id"
            values = [r.status, result, r.error, row.received, r.code, to_json(dict(r.params)), r.id, row.agent_id]
            values += [r.status, result, r.error]
            found = self._w.execute(sql, values).fetchone()
            known = "SELECT 1 FROM commands WHERE id = ? AND agent_id = ?"
            if found is None and self._w.execute(known, [r.id, row.agent_id]).fetchone() is None:
                why = f"a reply to {r.id[:80]!r}: no command sent to it has that id"
                self._forged.drop(f"{row.agent_id}/reply", why)
                return self.dropped(row, f"reply: {why}")  # counted against the agent that said it
        return ("command", str(found[0])) if found else None
