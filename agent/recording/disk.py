"""The recordings' disk: enough space before a recording starts, retention once it is everywhere it goes."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.alarms import Alarms
from agent.commands.table import Failed
from agent.config.site import RecordingConfig
from agent.recording.resource import resource_bytes
from agent.store import AgentStore, RecordingRow, RecordingState
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


def uploaded(row: RecordingRow) -> bool:
    """The rule without other targets: the centre confirmed the recording."""
    return row.state == RecordingState.UPLOADED


async def delete_expired(
    config: RecordingConfig, store: AgentStore, may_delete: Callable[[RecordingRow], bool] = uploaded
) -> int:
    """Delete recordings (rows and files) older than ``retention_days`` that `may_delete` lets go; how many.

    `may_delete` says whether everywhere the recording must go has it (the centre, each ``[[upload.targets]]``).
    """
    cutoff = to_iso(datetime.now(UTC) - timedelta(days=config.retention_days))
    ended = store.ended_before(cutoff, RecordingState.FINISHED, RecordingState.UPLOADED)
    expired = [row for row in ended if may_delete(row)]
    root = config.dir.resolve()
    for row in expired:
        path = Path(row.path).resolve()
        if path.is_relative_to(root) and path != root:  # never delete outside the recordings directory
            await asyncio.to_thread(shutil.rmtree, path, True)
        store.recording_delete(row.id)
        log.info("retention: deleted recording %s (delivered, ended %s)", row.id, row.ended)
    return len(expired)
