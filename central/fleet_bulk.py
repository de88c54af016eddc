"""The common rows, telemetry and device states, applied a few statements per batch instead of 3-4 per row.

Nearly every message a fleet sends is one of these two.  Applied one by one, each costs 3-4
statements (make sure the agent exists, bring a silent one back, the row itself): on PostgreSQL
every statement is a round trip and a plan execution, ~100 us here, so one collector committed
~1,000 messages a second.  `BulkWriter.apply` writes a run of them with one multi-row statement
per table, with exactly the result `central.fleet_rows.RowWriter` gives applying them in order:

- the agent: its last site; `last_seen` the last live message's time (a retained state only fills
  an empty one); a silent agent is back online at its first live message (one history row);
- telemetry: every row inserted, the agent's latest kept on its row;
- a device: the state with the newest `ts` (the last of equal ones), never over a newer stored one.

The caller holds the transaction; a value the engine refuses fails the whole statement, and the
caller applies the batch again row by row to set that one aside.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from central.fleet_rows import Change, Row, Seen, flag, to_json
from central.store import Store
from contract import DeviceState, Telemetry

_TEXT = ("text",)
_TOUCH = (
    "INSERT INTO agents (agent_id, site, last_seen) SELECT c1, c2, c3 FROM {rows} WHERE true"
    " ON CONFLICT (agent_id) DO UPDATE SET site = excluded.site, last_seen = {last_seen}"
)
_LIVE, _RETAINED = "excluded.last_seen", "coalesce(agents.last_seen, excluded.last_seen)"
_BACK_ONLINE = (
    "UPDATE agents SET state = 'online' WHERE state = 'silent' AND agent_id IN (SELECT c1 FROM {rows})"
    " RETURNING agent_id, session"
)
_HISTORY = (
    "INSERT INTO status_history (agent_id, state, session, since, ts) SELECT c1, 'online', c2, NULL, c3 FROM {rows}"
)
_TELEMETRY = "INSERT INTO telemetry (agent_id, ts, received, data) SELECT c1, c2, c3, c4 FROM {rows}"
_TELEMETRY_LATEST = "UPDATE agents SET telemetry = t.c2 FROM {rows} WHERE agents.agent_id = t.c1"
_DEVICE = (
    "INSERT INTO devices (agent_id, device_id, online, state, error, ts, code)"
    " SELECT c1, c2, c3, c4, c5, c6, c7 FROM {rows} WHERE true"
    " ON CONFLICT (agent_id, device_id) DO UPDATE SET online = excluded.online, state = excluded.state,"
    " error = excluded.error, ts = excluded.ts, code = excluded.code"
    " WHERE devices.ts IS NULL OR excluded.ts >= devices.ts"
)
_DEVICE_TYPES = ("text", "text", "integer", "text", "text", "text", "text")


def is_bulk(row: Row) -> bool:
    """Whether `row` is one `BulkWriter` applies (an agent's telemetry or device state)."""
    return isinstance(row, Seen) and isinstance(row.payload, Telemetry | DeviceState)


def waves(rows: Sequence[Row]) -> Iterator[tuple[list[Row], list[Seen]]]:
    """`rows` regrouped for writing, wave after wave: (rows to apply one at a time, rows to apply in bulk).

    Only each agent's own order matters: rows of different agents touch different rows of the store.
    So each wave takes, of every agent, its next row of another kind or its next stretch of telemetry
    and device states, and all those stretches make one bulk run.  A reconnect storm (status, info,
    telemetry, states of thousands of rooms) then writes its telemetry and states in bulk, which in
    arrival order come three at a time.  A row of no agent (retention) stays between what came
    before it and what came after.
    """
    part: list[Row] = []
    for row in rows:
        if getattr(row, "agent_id", ""):
            part.append(row)
            continue
        yield from _waves(part)
        part = []
        yield [row], []
    yield from _waves(part)


def _waves(rows: list[Row]) -> Iterator[tuple[list[Row], list[Seen]]]:
    stretches: dict[str, list[list[Row]]] = {}  # each agent's rows: one of another kind, or a stretch of bulk ones
    for row in rows:
        own = stretches.setdefault(str(getattr(row, "agent_id", "")), [])
        if is_bulk(row) and own and is_bulk(own[-1][0]):
            own[-1].append(row)
        else:
            own.append([row])
    for k in range(max(map(len, stretches.values()), default=0)):
        one_by_one: list[Row] = []
        bulk: list[Seen] = []
        for own in stretches.values():
            if k < len(own):
                if is_bulk(own[k][0]):
                    bulk += [row for row in own[k] if isinstance(row, Seen)]
                else:
                    one_by_one.append(own[k][0])
        yield one_by_one, bulk


class BulkWriter:
    """Applies runs of telemetry and device-state rows on the writer connection (the caller's transaction)."""

    def __init__(self, db: Store) -> None:
        """Write through `db` (FleetDB's writer connection)."""
        self._w = db

    def apply(self, rows: Sequence[Seen]) -> list[Change]:
        """Apply `rows` (each `is_bulk`) as if one by one, in order; the (kind, agent_id) pairs changed."""
        site: dict[str, str] = {}
        live_first: dict[str, str] = {}  # a silent agent is back at its first live message
        live_last: dict[str, str] = {}
        retained_first: dict[str, str] = {}
        telemetry: list[list[Any]] = []
        latest: dict[str, str] = {}
        devices: dict[tuple[str, str], tuple[str, int, list[Any]]] = {}
        changes: dict[Change, None] = {}
        for index, row in enumerate(rows):
            agent, payload = row.agent_id, row.payload
            site[agent] = row.site
            if isinstance(payload, Telemetry):
                live, heard = True, row.received
                data = to_json(payload.to_dict())
                telemetry.append([agent, payload.ts, row.received, data])
                latest[agent] = data
                changes[("agent", agent)] = None
            else:
                assert isinstance(payload, DeviceState)
                live = not row.retained
                heard = row.received if live else payload.ts
                values = [agent, payload.device, flag(payload.online), to_json(dict(payload.state)), payload.error]
                values += [payload.ts, payload.code]
                key = (agent, payload.device)
                kept = devices.get(key)
                if kept is None or (payload.ts, index) >= kept[:2]:  # the newest ts; of equal ones, the last
                    devices[key] = (payload.ts, index, values)
                changes[("device", agent)] = None
            if live:
                live_first.setdefault(agent, heard)
                live_last[agent] = heard
            else:
                retained_first.setdefault(agent, heard)
        # Rows in agent order: writers of one PostgreSQL store lock them in one order (no deadlock).
        self._touch(site, live_last, retained_first)
        self._back_online(live_first)
        self._run(_TELEMETRY, _TEXT * 4, telemetry)
        self._run(_TELEMETRY_LATEST, _TEXT * 2, sorted([agent, data] for agent, data in latest.items()))
        self._run(_DEVICE, _DEVICE_TYPES, [devices[key][2] for key in sorted(devices)])
        return list(changes)

    def _touch(self, site: dict[str, str], live: dict[str, str], retained: dict[str, str]) -> None:
        """Make sure every agent exists, with its last site and when it was last heard."""
        heard_live = sorted([a, site[a], heard] for a, heard in live.items())
        self._run(_TOUCH.replace("{last_seen}", _LIVE), _TEXT * 3, heard_live)
        only_retained = sorted([a, site[a], heard] for a, heard in retained.items() if a not in live)
        self._run(_TOUCH.replace("{last_seen}", _RETAINED), _TEXT * 3, only_retained)

    def _back_online(self, first_heard: dict[str, str]) -> None:
        """Silent agents heard live are online again: one history row each, at their first live message."""
        if not first_heard:
            return
        table, params = self._w.table(_TEXT, sorted([agent] for agent in first_heard))
        back = self._w.execute(_BACK_ONLINE.replace("{rows}", table), params).fetchall()
        history = sorted([agent, session, first_heard[agent]] for agent, session in back)
        self._run(_HISTORY, ("text", "integer", "text"), history)

    def _run(self, template: str, types: tuple[str, ...], rows: list[list[Any]]) -> None:
        """Run `template` once, its ``{rows}`` standing for `rows` (nothing to do without rows)."""
        if rows:
            table, params = self._w.table(types, rows)
            self._w.execute(template.replace("{rows}", table), params)
