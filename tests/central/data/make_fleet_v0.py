"""Makes fleet-v0.db: a fleet.db as classroom-central wrote it before migrations (main at a62671f).

Run with that code first on the path (it no longer runs against this tree):
    git worktree add /tmp/v0 a62671f && PYTHONPATH=/tmp/v0 python tests/central/data/make_fleet_v0.py OUT.db
tests/central/test_schema.py upgrades a copy and reads every row below back.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from pathlib import Path

from central.fleet_rows import CommandReplied, CommandSent, Seen
from central.fleetdb import FleetDB
from central.upload_store import UploadRequest, Uploads
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
    Telemetry,
)

SITE, AGENT, TS = "school-a", "room-101", "2026-11-22T08:00:00Z"


async def upload(path: Path) -> None:
    uploads = Uploads(path, path.parent / "recordings")
    try:
        uploads.register_agent(AGENT, "token-0123456789abcdef")
        data = b"not really an mp4"
        digest = hashlib.sha256(data).hexdigest()
        begun = await uploads.begin(UploadRequest(AGENT, "rec-1", "数学", len(data), digest, TS))
        await uploads.append(begun, 0, data, digest)
    finally:
        uploads.close()


def main(out: str) -> None:
    path = Path(out)
    db = FleetDB(path)
    devices = (DeviceInfo("panel", "panel", "nec-p"),)
    db.write_batch(
        [
            Seen(SITE, AGENT, Status("online", 3, TS, "1.0"), TS),
            Seen(SITE, AGENT, Info("101 教室", "pc-101", "1.0", devices, 10.0), TS),
            Seen(SITE, AGENT, DeviceState("panel", True, TS, {"power": "on"}), TS),
            Seen(SITE, AGENT, Telemetry(TS, 12.5, 41.0, 10**11, 37.5, {}, 60.0, {}), TS),
            Seen(SITE, AGENT, Event("panel.offline", "warning", "raise", TS, "no answer", "panel", id="e-1"), TS),
            CommandSent(SITE, AGENT, Command("cmd-1", "agent.ping", {}, "2099-01-01T00:00:00Z", "tech-li"), TS),
            CommandReplied(AGENT, CommandReply("cmd-1", CommandStatus.SUCCEEDED, {"pong": True}), TS),
        ]
    )
    db.session_secret()
    db.close()
    users = Users(path)
    users.add("tech-li", "a long password", "technician")
    users.close()
    asyncio.run(upload(path))


if __name__ == "__main__":
    main(sys.argv[1])
