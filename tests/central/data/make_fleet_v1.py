"""Makes fleet-v1.db: a fleet.db as the last classroom-central without migrations wrote it (main at d0ac357).

That release added its columns on open (names, inputs, codes, params, sources, school hours), so a
file from it has every column revision 0001 knows, and no Alembic.  Run with that code first on
the path (it no longer runs against this tree):
    git worktree add /tmp/v1 d0ac357 && PYTHONPATH=/tmp/v1 python tests/central/data/make_fleet_v1.py OUT.db
tests/central/test_schema.py upgrades a copy and reads every row below back.
"""

from __future__ import annotations

import sys
from pathlib import Path

from central.fleet_rows import CommandReplied, CommandSent, Seen
from central.fleetdb import FleetDB
from central.users import Users
from contract import (
    Command,
    CommandReply,
    CommandStatus,
    DeviceInfo,
    DeviceState,
    Event,
    Info,
    Status,
)
from contract.payloads import SourceInfo
from contract.power import Nic

SITE, AGENT, TS = "school-a", "room-102", "2026-12-02T08:00:00Z"
HOURS = (("2026-12-02T00:00:00Z", "2026-12-02T08:00:00Z"),)


def main(out: str) -> None:
    path = Path(out)
    db = FleetDB(path)
    devices = (DeviceInfo("projector", "projector", "pjlink", "投影机", ("HDMI 1", "VGA")),)
    sources = (SourceInfo("front", "rtsp", "rtsp://user:secret@10.0.0.9/main", "前方摄像机"),)
    info = Info("102 教室", "pc-102", "1.2", devices, 10.0, sources, (Nic("eth0", "02:00:00:00:01:02"),), (), HOURS)
    offline = DeviceState("projector", False, TS, {}, "/dev/ttyUSB7: cannot open", "device_unreachable")
    lamp = {"params": {"hours": 3100, "limit": 3000}}
    alarm = Event("lamp_end_of_life", "warning", "raise", TS, "lamp", "projector", lamp, "e-7")
    command = Command("cmd-2", "panel.volume", {"level": 200}, "2099-01-01T00:00:00Z", "li")
    refusal = {"arg": "level", "value": 200, "min": 0, "max": 100}
    reply = CommandReply("cmd-2", CommandStatus.REJECTED, error="level: out of range", code="arg_range", params=refusal)
    db.write_batch(
        [
            Seen(SITE, AGENT, Status("online", 5, TS, "1.2"), TS),
            Seen(SITE, AGENT, info, TS),
            Seen(SITE, AGENT, offline, TS),
            Seen(SITE, AGENT, alarm, TS),
            CommandSent(SITE, AGENT, command, TS),
            CommandReplied(AGENT, reply, TS),
        ]
    )
    db.session_secret()
    db.close()
    users = Users(path)
    users.add("tech-wang", "another long password", "viewer")
    users.close()


if __name__ == "__main__":
    main(sys.argv[1])
