"""Retention on real fleet.db files: old events, alarms, audit and history go; recent ones and open alarms stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fleet_stores import fleet_at, rows
from test_collector import make_central, running, until

from central.app import Central
from central.cli import main
from central.fleet_rows import CommandSent, Row, Seen
from central.fleetdb import FleetDB
from central.mosquitto import LocalBroker
from central.retention import Retention
from contract import Command, Event, Status, to_iso
from contract.mqtt import BrokerAddress

SITE = "school-1"
NOW = datetime.now(UTC)


def days_ago(days: float) -> str:
    return to_iso(NOW - timedelta(days=days))


def aged_rows(agent: str, days: float) -> list[Row]:
    """One of everything retention looks after, `days` old: an event pair, a cleared alarm, a command, history."""
    ts = days_ago(days)
    command = Command(f"{agent}-{days:g}", "agent.ping", {}, ts, "tech1")
    return [
        Seen(SITE, agent, Status("online", int(1000 - days), ts, "1.0"), ts),
        Seen(SITE, agent, Event("disk_low", "warning", "raise", ts, "low"), ts),
        Seen(SITE, agent, Event("disk_low", "warning", "clear", ts, "ok"), ts),
        CommandSent(SITE, agent, command, ts),
    ]


def counts(location: Any) -> dict[str, int]:
    tables = ("events", "alarms", "commands", "status_history")
    return {t: rows(location, f"SELECT count(*) FROM {t}")[0][0] for t in tables}


def fill(db: FleetDB, ages: list[float]) -> None:
    rows: list[Row] = []
    for age in sorted(ages, reverse=True):
        rows += aged_rows("a1", age)
    # An alarm raised long ago and still open is kept whatever its age.
    rows.append(Seen(SITE, "a1", Event("lamp", "critical", "raise", days_ago(400), "lamp"), days_ago(400)))
    db.write_batch(rows)


def test_by_default_logs_are_kept_180_days_and_older_rows_go(tmp_path: Path) -> None:
    db = FleetDB(fleet_at(tmp_path))
    fill(db, [400, 200, 179, 1])
    before = counts(db.location)
    db.write_batch(Retention().rows(NOW))
    after = counts(db.location)
    commands = {c["id"] for c in db.commands()}
    open_alarms = [a["type"] for a in db.alarms()]
    db.close()
    assert before == {"events": 9, "alarms": 5, "commands": 4, "status_history": 4}
    assert after == {"events": 4, "alarms": 3, "commands": 2, "status_history": 2}
    assert commands == {"a1-179", "a1-1"} and open_alarms == ["lamp"]


def test_shorter_limits_prune_each_table_on_its_own(tmp_path: Path) -> None:
    db = FleetDB(fleet_at(tmp_path))
    fill(db, [20, 5])
    db.write_batch(Retention(events_days=10, audit_days=365, history_days=3).rows(NOW))
    after = counts(db.location)
    db.close()
    assert after == {"events": 2, "alarms": 1 + 1, "commands": 2, "status_history": 0}


async def test_the_running_centre_prunes_periodically(broker: LocalBroker, tmp_path: Path) -> None:
    db = FleetDB(fleet_at(tmp_path))
    fill(db, [30, 1])
    db.close()
    retention = Retention(events_days=7, audit_days=7, history_days=7)
    central = Central(BrokerAddress.parse(broker.url), fleet_at(tmp_path), retention=retention)
    async with running(central):
        await until(lambda: counts(fleet_at(tmp_path))["commands"] == 1, "the 30-day-old command pruned")
    assert counts(fleet_at(tmp_path)) == {"events": 2, "alarms": 2, "commands": 1, "status_history": 1}


def test_the_audit_log_defaults_to_at_least_180_days(broker: LocalBroker, tmp_path: Path) -> None:
    assert Retention().audit_days >= 180
    central = make_central(broker, tmp_path)
    try:
        assert central._retention.audit_days >= 180
    finally:
        central.close()


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--keep-audit-days", "0"], "--keep-audit-days: got 0.0"),
        (["--keep-events-days", "nan"], "--keep-events-days: got nan"),
        (["--keep-history-days", "-1", "--retention-days", "inf"], "--retention-days: got inf"),
    ],
)
def test_bad_retention_flags_exit_2_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], named: str
) -> None:
    status = main(["run", "--broker", "mqtt://127.0.0.1:1", "--db", str(tmp_path / "fleet.db"), *argv])
    err = capsys.readouterr().err
    assert status == 2 and named in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "fleet.db").exists()
