"""The auto-tracking commands: ``tracking.enable``, ``tracking.disable`` and ``tracking.status``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.commands.table import Arg, CommandDef, CommandTable
from agent.tracking.service import TrackingService


def add_tracking_commands(table: CommandTable, services: Mapping[str, TrackingService]) -> None:
    """Register the tracking commands over the tracking cameras (by camera device id)."""
    camera = Arg("camera", choices=lambda: tuple(services), doc="a camera with a [[tracking]] table")

    async def enable(args: Mapping[str, Any]) -> dict[str, Any]:
        return await services[args["camera"]].enable()

    async def disable(args: Mapping[str, Any]) -> dict[str, Any]:
        return await services[args["camera"]].disable()

    async def status(args: Mapping[str, Any]) -> dict[str, Any]:
        return {"cameras": [s.status() for s in services.values()]}

    about_on = "switch auto-tracking on for a camera: it goes to its home preset and searches"
    table.add(CommandDef("tracking.enable", (camera,), enable, about_on))
    about_off = "switch auto-tracking off for a camera: it stops where it is"
    table.add(CommandDef("tracking.disable", (camera,), disable, about_off))
    about = "each tracking camera: on or off, what it follows, its commands per minute"
    table.add(CommandDef("tracking.status", (), status, about, read_only=True))
