"""The fleet store's schema: Alembic keeps it, and a fleet.db made before migrations is upgraded in place."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fleet_stores import fleet_at

from central.fleet_rows import Seen
from central.fleetdb import FleetDB
from central.schema import HEAD, SCRIPTS, version
from central.store import Store, to_pyformat
from central.upload_store import Uploads
from central.users import Users
from contract import Event, Status

ROOT = Path(__file__).resolve().parents[2]
V0 = Path(__file__).with_name("data") / "fleet-v0.db"  # made by main at a62671f (data/make_fleet_v0.py)
V1 = Path(__file__).with_name("data") / "fleet-v1.db"  # the last release without migrations (data/make_fleet_v1.py)


def columns(location: Any) -> dict[str, set[str]]:
    """Each table's column names, read back through the engine's own catalogue."""
    store = Store(location)
    try:
        if store.dialect == "sqlite":
            tables = [r["name"] for r in store.query("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return {t: {r["name"] for r in store.query(f"PRAGMA table_info({t})")} for t in tables}
        found: dict[str, set[str]] = {}
        sql = "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
        for r in store.query(sql):
            found.setdefault(r["table_name"], set()).add(r["column_name"])
        return found
    finally:
        store.close()


def revision(location: Any) -> str | None:
    store = Store(location)
    try:
        return version(store)
    finally:
        store.close()


def test_head_is_the_newest_revision_of_the_scripts() -> None:
    from alembic.script import ScriptDirectory

    assert ScriptDirectory(str(SCRIPTS)).get_current_head() == HEAD


async def test_a_fleet_db_made_before_migrations_is_upgraded_in_place_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "fleet.db"
    shutil.copy(V0, path)
    assert revision(path) is None  # no Alembic in it yet
    db = FleetDB(path)
    try:
        assert revision(path) == HEAD
        agent = db.agent("room-101")
        assert agent is not None
        assert (agent["room"], agent["state"], agent["session"]) == ("101 教室", "online", 3)
        assert [(d["id"], d["online"], d["state"]) for d in agent["devices"]] == [("panel", True, {"power": "on"})]
        assert agent["telemetry"]["cpu_percent"] == 12.5
        assert [(a["type"], a["device"]) for a in db.alarms()] == [("panel.offline", "panel")]
        command = db.command("cmd-1")
        assert command is not None and (command["status"], command["result"]) == ("succeeded", {"pong": True})
        assert [r["recording_id"] for r in db.recordings("room-101")] == ["rec-1"]
        # ... and it is written as before: a newer session of the agent
        db.write_batch([Seen("school-a", "room-101", Status("offline", 4, "2026-11-22T09:00:00Z", "1.1"), "now")])
        assert [h["session"] for h in db.status_history("room-101")] == [4, 3]
    finally:
        db.close()
    users = Users(path)
    try:
        assert users.check("tech-li", "a long password") == "technician"
    finally:
        users.close()
    uploads = Uploads(path, tmp_path / "recordings")
    try:
        uploads.authenticate("room-101", "token-0123456789abcdef")  # raises when the token is not there
    finally:
        uploads.close()


async def test_a_fleet_db_of_the_last_release_without_migrations_keeps_its_names_codes_and_params(
    tmp_path: Path,
) -> None:
    path = tmp_path / "fleet.db"
    shutil.copy(V1, path)
    assert revision(path) is None
    db = FleetDB(path)
    try:
        assert revision(path) == HEAD
        agent = db.agent("room-102")
        assert agent is not None
        assert agent["sources"] == [{"id": "front", "kind": "rtsp", "name": "前方摄像机"}]
        assert agent["hours"] == [{"start": "2026-12-02T00:00:00Z", "end": "2026-12-02T08:00:00Z"}]
        [projector] = agent["devices"]
        assert (projector["name"], projector["inputs"]) == ("投影机", ["HDMI 1", "VGA"])
        assert projector["code"] == "device_unreachable"
        [alarm] = db.alarms()
        assert (alarm["type"], alarm["params"]) == ("lamp_end_of_life", {"hours": 3100, "limit": 3000})
        command = db.command("cmd-2")
        assert command is not None
        assert (command["status"], command["code"]) == ("rejected", "arg_range")
        assert command["params"] == {"arg": "level", "value": 200, "min": 0, "max": 100}
        # ... and written as before: the lamp's hours move on, the same alarm carries them
        lamp = {"params": {"hours": 3200, "limit": 3000}}
        event = Event("lamp_end_of_life", "warning", "raise", "2026-12-02T09:00:00Z", "lamp", "projector", lamp, "e-8")
        db.write_batch([Seen("school-a", "room-102", event, "2026-12-02T09:00:01Z")])
        assert [a["params"]["hours"] for a in db.alarms()] == [3200]
    finally:
        db.close()
    users = Users(path)
    try:
        assert users.check("tech-wang", "another long password") == "viewer"
    finally:
        users.close()


@pytest.mark.parametrize("made_by", [V0, V1], ids=["v0", "v1"])
def test_an_upgraded_fleet_db_has_the_columns_of_a_new_one(tmp_path: Path, made_by: Path) -> None:
    old = tmp_path / "old.db"
    shutil.copy(made_by, old)
    FleetDB(old).close()
    Uploads(old, tmp_path / "recordings").close()
    FleetDB(tmp_path / "new.db").close()
    assert columns(old) == columns(tmp_path / "new.db")


def test_postgresql_gets_the_same_tables_and_columns_as_sqlite(tmp_path: Path, pg_url: str) -> None:
    FleetDB(tmp_path / "fleet.db").close()
    FleetDB(pg_url).close()
    lite, pg = columns(tmp_path / "fleet.db"), columns(pg_url)
    pg["commands"].discard("seq")  # SQLite orders commands by rowid, PostgreSQL by this identity
    assert pg == lite


def test_stores_opened_at_once_by_several_processes_migrate_once(pg_url: str) -> None:
    opener = "import sys; from central.fleetdb import FleetDB; FleetDB(sys.argv[1]).close()"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-c", opener, pg_url]
    procs = [subprocess.Popen(args, env=env, stderr=subprocess.PIPE) for _ in range(3)]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    assert revision(pg_url) == HEAD


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM t WHERE a = ? AND b = :name", "SELECT * FROM t WHERE a = %s AND b = %(name)s"),
        (
            "SELECT '?', ':x', \"a?\" FROM t WHERE c LIKE '10%' AND d = ?",
            "SELECT '?', ':x', \"a?\" FROM t WHERE c LIKE '10%%' AND d = %s",
        ),
        ("SELECT x::text, 5 % 2", "SELECT x::text, 5 %% 2"),
    ],
)
def test_parameters_are_rewritten_for_psycopg_outside_quotes_only(sql: str, expected: str) -> None:
    assert to_pyformat(sql) == expected


def test_a_replay_lease_lapses_after_its_own_length_not_at_the_next_whole_second(tmp_path: Path) -> None:
    db = FleetDB(fleet_at(tmp_path))
    try:
        assert db.take_lease("replay:g", "c2", 0.3)
        assert not db.take_lease("replay:g", "c1", 0.3)  # held
        assert db.take_lease("replay:g", "c2", 0.3)  # its own, renewed
        time.sleep(0.5)  # (setup) longer than the lease: with whole-second stamps it could still hold for up to 1 s
        assert db.take_lease("replay:g", "c1", 30.0)
    finally:
        db.close()
