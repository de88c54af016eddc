"""The recordings' disk: enough space before a recording starts, retention after its upload."""

from __future__ import annotations

import asyncio
import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.alarms import Alarms
from agent.commands.table import Failed
from agent.config.site import RecordingConfig
from agent.recording.resource import resource_bytes
from agent.store import AgentStore
from contract import to_iso

log = logging.getLogger(__name__)

GIB = 2**30


async def check_space(config: RecordingConfig, path: Path, own_files: int, alarms: Alarms) -> None:
    """Refuse to start (Failed, ``disk_low``) when the recording and its `own_files` source files could not finish."""
    where = path
    while not where.exists() and where != where.parent:
        where = where.parent
    free = (await asyncio.to_thread(shutil.disk_usage, where)).free
    needed = config.needed_bytes() + own_files * resource_bytes(config)
    if free < needed:
        each = f" and {own_files} source file(s) of resource mode" if own_files else ""
        message = (
            f"not enough disk space to record: {free / GIB:.1f} GiB free on {where}, {needed / GIB:.1f} GiB needed "
            f"({config.planned_minutes:g} min at {config.bitrate_mbps:g} Mbit/s for the composed picture{each}, "
            f"plus the final files, at least {config.disk_min_free_gb:g} GiB)"
        )
        params = {"free_gb": round(free / GIB, 1), "needed_gb": round(needed / GIB, 1)}
        alarms.raise_("disk_low", "critical", message, "recording", params)
        raise Failed(message, code="disk_low", params=params)
    alarms.clear("disk_low", "recording")


async def delete_expired(config: RecordingConfig, store: AgentStore) -> int:
    """Delete uploaded recordings (rows and files) older than ``retention_days``; how many."""
    cutoff = to_iso(datetime.now(UTC) - timedelta(days=config.retention_days))
    expired = store.uploaded_before(cutoff)
    root = config.dir.resolve()
    for row in expired:
        path = Path(row.path).resolve()
        if path.is_relative_to(root) and path != root:  # never delete outside the recordings directory
            await asyncio.to_thread(shutil.rmtree, path, True)
        store.recording_delete(row.id)
        log.info("retention: deleted recording %s (uploaded, ended %s)", row.id, row.ended)
    return len(expired)
