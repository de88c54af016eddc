"""`offline_in_hours`: the centre's verdicts about rooms not online during their school hours (pure), and its rows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from central.fleet_rows import Seen
from central.fleetdb import FleetDB
from central.hours import ALARM, HoursFleet, HoursWatch, verdicts
from contract import Info, Status, to_iso

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
HOURS = [{"start": "2026-11-23T00:00:00Z", "end": "2026-11-23T04:00:00Z"}]
LATER = [{"start": "2026-11-24T00:00:00Z", "end": "2026-11-24T04:00:00Z"}]


def agent(agent_id: str, state: str, hours: Any = HOURS, **more: Any) -> dict[str, Any]:
    return {"agent_id": agent_id, "site": "east", "state": state, "hours": hours, "since": "S", "last_seen": "L"} | more


def test_only_a_room_away_inside_its_hours_is_raised_and_only_an_open_one_back_online_is_cleared() -> None:
    fleet = [
        agent("online", "online"),
        agent("lost", "lost"),
        agent("offline-later", "offline", LATER),
        agent("silent", "silent"),
        agent("no-hours", "offline", []),
        agent("damaged", "offline", [{"start": "yesterday"}, 5, "x"]),
        agent("back", "online"),
        agent("still-away", "offline"),
    ]
    found = verdicts(fleet, {"back", "still-away"}, NOW)
    assert [(v.agent_id, v.raise_, v.since) for v in found] == [
        ("lost", True, "S"),  # since its status changed
        ("silent", True, "L"),  # since it was last heard
        ("back", False, ""),
    ]
    assert found[0].window == ("2026-11-23T00:00:00Z", "2026-11-23T04:00:00Z")


async def test_the_watch_raises_once_and_clears_when_the_room_is_back(tmp_path: Path) -> None:
    db = FleetDB(tmp_path / "fleet.db")
    now = to_iso(NOW)
    hours = (("2026-11-23T00:00:00Z", "2026-11-23T04:00:00Z"),)
    db.write_batch(
        [
            Seen("east", "r1", Status("online", 1, now, "1.0"), now),
            Seen("east", "r1", Info("高一(1)班", "pc", "1.0", (), hours=hours), now),
            Seen("east", "r1", Status("lost", 1, now, "1.0"), now, retained=True),
        ]
    )

    async def put(row: Any) -> None:
        db.write_batch([row])

    watch = HoursWatch(HoursFleet(db.agents, lambda: db.alarms(open_only=True)), put, clock=lambda: NOW)
    try:
        assert [v.raise_ for v in await watch.once()] == [True]
        assert await watch.once() == []  # open already: raised once
        [alarm] = db.alarms(agent_id="r1")
        assert (alarm["type"], alarm["severity"], alarm["params"]["start"]) == (ALARM, "critical", hours[0][0])
        before = db.agent("r1")
        assert before is not None and before["state"] == "lost"  # the centre's alarm is no news of the agent
        db.write_batch([Seen("east", "r1", Status("online", 2, now, "1.0"), now)])
        assert [v.raise_ for v in await watch.once()] == [False]
        assert db.alarms(agent_id="r1") == []
    finally:
        db.close()
