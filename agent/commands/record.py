"""The recording commands in the one command table.

``record.start``, ``record.stop``, ``director.override`` and ``upload.retry`` (a recording whose
upload was given up, sent again from zero: see `agent.recording.upload.retry`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.commands.table import Arg, CommandDef, CommandTable, ListArg
from agent.lesson.pictures import recordable
from agent.recording import upload
from agent.recording.service import PICTURE_REFS, RecordingService

# Stopping remuxes the whole lesson into the final MP4 and checksums it: minutes, not seconds.
STOP_TIMEOUT_S = 3600.0
START_TIMEOUT_S = 120.0


def add_record_commands(table: CommandTable, recording: RecordingService) -> None:
    """Register ``record.start``, ``record.stop``, ``director.override`` and ``upload.retry``."""

    async def start(args: Mapping[str, Any]) -> dict[str, Any]:
        lesson, teacher, layout = (args.get(key, "") for key in ("lesson", "teacher", "layout"))
        return await recording.start(lesson, teacher, layout, args.get("sources", ()))

    async def stop(args: Mapping[str, Any]) -> dict[str, Any]:
        return await recording.stop()

    async def override(args: Mapping[str, Any]) -> dict[str, Any]:
        return recording.override(args.get("source"))

    async def retry(args: Mapping[str, Any]) -> dict[str, Any]:
        return upload.retry(recording.store, args["recording"])

    sources = ListArg(
        "sources", required=False, choices=lambda: tuple(recording.sources),
        doc="in role order, room sources or lesson pictures (default: [recording] sources)",
        also=lambda name: recordable(recording.sources, name), also_expected=PICTURE_REFS,
    )  # fmt: skip
    start_args = (
        Arg("lesson", required=False, doc="the lesson's name; the same name continues an interrupted recording"),
        Arg("teacher", required=False),
        Arg("layout", required=False, doc="single, pip, side_by_side, grid, courseware_teacher or directed"),
        sources,
    )
    source = Arg("source", required=False, choices=recording.director_sources, doc="omit to hand back to the rules")
    table.add(CommandDef("record.start", start_args, start, "start recording the room's sources", START_TIMEOUT_S))
    table.add(CommandDef("record.stop", (), stop, "stop recording and write the final MP4", STOP_TIMEOUT_S))
    table.add(CommandDef("director.override", (source,), override, "show one source in the directed layout"))
    given_up = Arg("recording", doc="the recording's id (agent.db; telemetry upload.last_error names it)")
    table.add(CommandDef("upload.retry", (given_up,), retry, "send a recording whose upload was given up again"))
