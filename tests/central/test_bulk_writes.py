"""Telemetry and device states written a statement per table (central/fleet_bulk.py), on both engines.

The bulk path must leave the store exactly as applying the same rows one by one does
(`RowWriter`, the reference), whatever the mix: agents new and known, silent ones coming back,
retained states, a device's states out of order or with equal timestamps, several agents' rows
interleaved, rows of other kinds between them (statuses, infos, events, silences, regrouped by
agent in waves).  And a row the engine refuses in a bulk run costs that row alone.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import pytest

from central.fleet_rows import Row, RowWriter, Seen, Silent
from central.fleetdb import BULK_MIN, FleetDB
from central.store import Store
from contract import DeviceInfo, DeviceState, Event, Info, Status, Telemetry
from tests.central.fleet_stores import fleet_at, rows

TABLES = {
    "agents": "SELECT agent_id, site, last_seen, state, session, telemetry, dropped FROM agents ORDER BY agent_id",
    "devices": "SELECT agent_id, device_id, online, state, error, ts, code FROM devices ORDER BY agent_id, device_id",
    "telemetry": "SELECT agent_id, ts, received, data FROM telemetry ORDER BY agent_id, id",
    "history": "SELECT agent_id, state, session, since, ts FROM status_history ORDER BY agent_id, id",  # per agent
    "agents_info": "SELECT agent_id, room, hostname, version, sources FROM agents ORDER BY agent_id",
    "devices_info": "SELECT agent_id, device_id, kind, profile, name, inputs FROM devices ORDER BY agent_id, device_id",
    "events": "SELECT agent_id, type, action, device, ts, event_id FROM events ORDER BY agent_id, id",
    "alarms": "SELECT agent_id, type, device, raised_ts, cleared_ts FROM alarms ORDER BY agent_id, id",
}


def stamp(second: int) -> str:
    return f"2026-12-02T08:{second // 60:02d}:{second % 60:02d}Z"


def setup_rows() -> list[Row]:
    """Agents a0..a5 online; a1 and a3 then silent (their next live message brings them back)."""
    out: list[Row] = []
    for k in range(6):
        out.append(Seen("s1", f"a{k}", Status("online", 1, stamp(k), "1.0"), stamp(k)))
    out += [Silent("a1", stamp(30)), Silent("a3", stamp(30))]
    return out


def hot_rows(seed: int, count: int, *, mixed: bool = False) -> list[Row]:
    """A shuffled mix of telemetry and device states of known and new agents, live and retained.

    `mixed`: with rows of every other kind an agent sends between them.
    """
    rng = random.Random(seed)
    out: list[Row] = []
    for k in range(count):
        agent = f"a{rng.randrange(9)}"  # a6..a8 are new
        received = stamp(100 + k)
        pick = rng.random()
        if mixed and pick < 0.25:
            out.append(other_row(rng, agent, k, received))
        elif pick < 0.5:
            payload: Any = Telemetry(received, rng.uniform(0, 100), 40.0, 10**11, 30.0, {"cpu": 40.0}, 60.0 + k, {})
            out.append(Seen(rng.choice(["s1", "s2"]), agent, payload, received))
        else:
            ts = stamp(rng.choice([50, 60, 60, 70, 120 + k]))  # older, equal and newer than one another
            state = DeviceState(f"d{rng.randrange(3)}", rng.random() < 0.8, ts, {"power": rng.choice(["on", "off"])})
            out.append(Seen("s1", agent, state, received, retained=rng.random() < 0.25))
    return out


def other_row(rng: random.Random, agent: str, k: int, received: str) -> Row:
    """A status (new session, offline, a replay), an info, an alarm raised or cleared, or a silence."""
    pick = rng.randrange(5)
    if pick == 0:
        state = rng.choice(["online", "offline"])
        return Seen("s1", agent, Status(state, rng.choice([1, 2]), received, "1.0"), received, rng.random() < 0.3)
    if pick == 1:
        devices = tuple(DeviceInfo(f"d{d}", "panel", "nec-p", f"屏{d}") for d in range(rng.randrange(1, 4)))
        return Seen("s1", agent, Info(f"R{k}", f"pc-{k}", "1.0", devices), received)
    if pick == 2:
        event = Event("projector.lamp", "warning", rng.choice(["raise", "clear"]), received, device="d1", id=f"e{k}")
        return Seen("s1", agent, event, received)
    return Silent(agent, received)


def one_by_one(location: Any, batch: list[Row]) -> set[tuple[str, str]]:
    """The reference: each row applied by RowWriter in its own transaction; the changes it reported."""
    store = Store(location)
    changes = set()
    try:
        writer = RowWriter(store)
        for row in batch:
            with store.transaction():
                if change := writer.apply(row):
                    changes.add(change)
    finally:
        store.close()
    return changes


def snapshot(location: Any) -> dict[str, list[tuple[Any, ...]]]:
    return {name: rows(location, sql) for name, sql in TABLES.items()}


@pytest.mark.parametrize(("seed", "mixed"), [(1, False), (2, False), (3, True), (4, True), (5, True)])
def test_a_bulk_batch_leaves_the_store_as_one_row_at_a_time_does(tmp_path: Path, seed: int, mixed: bool) -> None:
    bulk_at = fleet_at(tmp_path)
    (tmp_path / "reference").mkdir()
    reference_at = fleet_at(tmp_path / "reference")
    FleetDB(reference_at).close()  # (the schema)
    db = FleetDB(bulk_at)
    try:
        one_by_one(reference_at, setup_rows())
        one_by_one(bulk_at, setup_rows())
        batch = hot_rows(seed, 160, mixed=mixed)
        expected = one_by_one(reference_at, batch)
        changes = db.write_batch(batch)
    finally:
        db.close()
    bulk, reference = snapshot(bulk_at), snapshot(reference_at)
    assert bulk == reference
    assert set(changes) == expected
    # the mix really had what the bulk path must get right
    assert len(bulk["telemetry"]) > 20 and len(bulk["devices"]) > 10
    if mixed:
        assert bulk["events"] and bulk["alarms"] and {"silent", "offline"} <= {h[1] for h in bulk["history"]}
    else:
        assert [h[:2] for h in bulk["history"] if h[1] == "online"].count(("a1", "online")) == 2  # a1 came back


def test_a_row_the_store_refuses_in_a_bulk_run_is_set_aside_alone(tmp_path: Path) -> None:
    """A NUL in a text value: PostgreSQL refuses it (SQLite keeps it); the rest of the run is written."""
    location = fleet_at(tmp_path)
    db = FleetDB(location)
    try:
        batch: list[Row] = []
        for k in range(10):
            error = "lamp\x00" if k == 4 else ""
            batch.append(Seen("s1", f"r{k}", DeviceState("projector", k != 4, stamp(k), {}, error), stamp(k)))
            batch.append(Seen("s1", f"r{k}", Telemetry(stamp(k), 1.0, 2.0, 3, 4.0, {}, 5.0, {}), stamp(k)))
        db.write_batch(batch)
    finally:
        db.close()
    devices = rows(location, "SELECT agent_id FROM devices ORDER BY agent_id")
    dropped = rows(location, "SELECT agent_id, dropped FROM agents WHERE dropped > 0")
    assert len(rows(location, "SELECT 1 FROM telemetry")) == 10  # every telemetry row, r4's too
    if isinstance(location, Path):
        assert len(devices) == 10 and dropped == []
    else:
        assert [d[0] for d in devices] == [f"r{k}" for k in range(10) if k != 4]
        assert dropped == [("r4", 1)]


def test_a_row_of_another_kind_between_two_runs_keeps_its_place(tmp_path: Path) -> None:
    """Heard, gone silent, heard again, in one batch: the agent ends online, its history says all three."""
    location = fleet_at(tmp_path)
    db = FleetDB(location)
    heard = [Seen("s1", "r1", DeviceState(f"d{k}", True, stamp(1), {"power": "on"}), stamp(1)) for k in range(BULK_MIN)]
    again = [
        Seen("s1", "r1", DeviceState(f"d{k}", True, stamp(9), {"power": "off"}), stamp(9)) for k in range(BULK_MIN)
    ]
    try:
        db.write_batch([Seen("s1", "r1", Status("online", 1, stamp(0), "1.0"), stamp(0))])
        db.write_batch([*heard, Silent("r1", stamp(5)), *again])
    finally:
        db.close()
    assert rows(location, "SELECT state, last_seen FROM agents") == [("online", stamp(9))]
    assert rows(location, "SELECT state, ts FROM status_history ORDER BY id") == [
        ("online", stamp(0)),
        ("silent", stamp(5)),
        ("online", stamp(9)),
    ]
    assert rows(location, "SELECT DISTINCT state FROM devices") == [('{"power": "off"}',)]


def test_two_writers_hearing_of_new_agents_at_once_write_each_first_status_once(tmp_path: Path) -> None:
    """Collectors of a group: one commits agents' live status while another commits their replayed copy.

    Neither may find an agent new that the other is writing (its first status twice in the history),
    and neither may wait for the other in a cycle (a deadlock: the batch is written again later).
    """
    location = fleet_at(tmp_path)
    one, two = FleetDB(location), FleetDB(location)
    failures: list[BaseException] = []
    start = threading.Barrier(2)

    def write(db: FleetDB, batch: list[Row]) -> None:
        start.wait()
        try:
            db.write_batch(batch)
        except BaseException as exc:  # (a deadlock, without the fix)
            failures.append(exc)

    try:
        for round_ in range(6):
            agents = [f"n{round_}-{k}" for k in range(40)]
            live = [Seen("s1", a, Status("online", 1, stamp(1), "1.0"), stamp(2)) for a in agents]
            replayed = [Seen("s1", a, Status("online", 1, stamp(1), "1.0"), stamp(2), retained=True) for a in agents]
            if round_ % 2:
                replayed.reverse()  # the other writer meets them in another order
            threads = [threading.Thread(target=write, args=pair) for pair in ((one, live), (two, replayed))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        one.close()
        two.close()
    assert failures == []
    twice = rows(location, "SELECT agent_id, count(*) FROM status_history GROUP BY agent_id HAVING count(*) > 1")
    assert twice == []
    assert rows(location, "SELECT count(*) FROM agents WHERE state = 'online'") == [(240,)]
