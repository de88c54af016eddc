"""The recording commands: ``record.start``, ``record.stop`` and ``director.override``, in the one command table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.commands import Arg, CommandDef, CommandTable
from agent.recording import RecordingService

# Stopping remuxes the whole lesson into the final MP4 and checksums it: minutes, not seconds.
STOP_TIMEOUT_S = 3600.0
START_TIMEOUT_S = 120.0


def add_record_commands(table: CommandTable, recording: RecordingService) -> None:
    """Register ``record.start``, ``record.stop`` and ``director.override``."""

    async def start(args: Mapping[str, Any]) -> dict[str, Any]:
        return await recording.start(args.get("lesson", ""), args.get("teacher", ""), args.get("layout", ""))

    async def stop(args: Mapping[str, Any]) -> dict[str, Any]:
        return await recording.stop()

    async def override(args: Mapping[str, Any]) -> dict[str, Any]:
        return recording.override(args.get("source"))

    start_args = (
        Arg("lesson", required=False, doc="the lesson's name; the same name continues an interrupted recording"),
        Arg("teacher", required=False),
        Arg("layout", required=False, doc="single, pip, side_by_side, grid, courseware_teacher or directed"),
    )
    source = Arg("source", required=False, choices=recording.director_sources, doc="omit to hand back to the rules")
    table.add(CommandDef("record.start", start_args, start, "start recording the room's sources", START_TIMEOUT_S))
    table.add(CommandDef("record.stop", (), stop, "stop recording and write the final MP4", STOP_TIMEOUT_S))
    table.add(CommandDef("director.override", (source,), override, "show one source in the directed layout"))
