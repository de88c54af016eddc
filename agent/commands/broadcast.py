"""The broadcast commands in the one command table: ``broadcast.start`` and ``broadcast.stop``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.broadcast.service import BroadcastService
from agent.commands.table import Arg, CommandDef, CommandTable, ListArg
from agent.lesson.pictures import recordable
from agent.recording.service import PICTURE_REFS

# The first connection to the platform has `[broadcast] connect_s` (at most 120 s) and the push
# process's start; stopping waits for the stream's end to go out.
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 60.0


def add_broadcast_commands(table: CommandTable, broadcast: BroadcastService) -> None:
    """Register ``broadcast.start`` and ``broadcast.stop``."""

    async def start(args: Mapping[str, Any]) -> dict[str, Any]:
        return await broadcast.start(args["target"], args.get("layout", ""), args.get("sources", ()))

    async def stop(args: Mapping[str, Any]) -> dict[str, Any]:
        return await broadcast.stop()

    start_args = (
        Arg("target", choices=lambda: broadcast.targets, doc="a [broadcast.targets.NAME] of the site config"),
        Arg("layout", required=False, doc="single, pip, side_by_side, grid, courseware_teacher or directed"),
        ListArg(
            "sources", required=False, choices=lambda: tuple(broadcast.sources),
            doc="in role order (default: [broadcast] sources)",
            also=lambda name: recordable(broadcast.sources, name), also_expected=PICTURE_REFS,
        ),
    )  # fmt: skip
    about = "push the room's programme (picture and sound) live to a platform"
    table.add(CommandDef("broadcast.start", start_args, start, about, START_TIMEOUT_S))
    table.add(CommandDef("broadcast.stop", (), stop, "end the live broadcast", STOP_TIMEOUT_S))
