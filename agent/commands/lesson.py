"""The lesson commands: start, stop, join, leave, status, mute and peers (``lesson.*``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from agent.commands.table import Arg, CommandDef, CommandTable, ListArg
from agent.lesson.service import LessonService

MODES = ("zhuandi", "dual_teacher")
# join waits for the leader's offer; start builds the encoders
JOIN_TIMEOUT_S = 60.0


def add_lesson_commands(table: CommandTable, lesson: LessonService, sources: Callable[[], tuple[str, ...]]) -> None:
    """Register the lesson commands; `sources` names the room's sources (what ``sources`` may list)."""

    async def start(args: Mapping[str, Any]) -> dict[str, Any]:
        return await lesson.start(args["mode"], args.get("remotes", ()), args.get("sources", ()))

    async def stop(args: Mapping[str, Any]) -> dict[str, Any]:
        return await lesson.stop()

    async def join(args: Mapping[str, Any]) -> dict[str, Any]:
        return await lesson.join(args["main"])

    async def leave(args: Mapping[str, Any]) -> dict[str, Any]:
        return await lesson.leave()

    async def status(args: Mapping[str, Any]) -> dict[str, Any]:
        return lesson.status()

    async def mute(args: Mapping[str, Any]) -> dict[str, Any]:
        lesson.media.mute(args["on"])
        return {"muted": args["on"]}

    async def peers(args: Mapping[str, Any]) -> dict[str, Any]:
        return await lesson.peers()

    start_args = (
        Arg("mode", choices=MODES, doc="zhuandi (one main classroom, N remote) or dual_teacher (one remote)"),
        ListArg("remotes", required=False, doc="the remote classrooms' agent ids (default: lesson.remotes)"),
        ListArg("sources", required=False, choices=sources, doc="the sources to send (default: lesson.send)"),
    )
    main = Arg("main", doc="the agent id of the classroom leading the lesson")
    table.add(CommandDef("lesson.start", start_args, start, "lead a live lesson to remote classrooms"))
    table.add(CommandDef("lesson.stop", (), stop, "end the live lesson (or leave it, in a remote classroom)"))
    table.add(CommandDef("lesson.join", (main,), join, "ask a main classroom to take this room in", JOIN_TIMEOUT_S))
    table.add(CommandDef("lesson.leave", (), leave, "leave the live lesson led by another classroom"))
    about_status = "the live lesson: mode, role, peers and their link stats"
    table.add(CommandDef("lesson.status", (), status, about_status, read_only=True))
    on = Arg("on", "bool", doc="true: send silence to every other classroom and viewer; false: the sound again")
    table.add(CommandDef("lesson.mute", (on,), mute, "mute (or unmute) this classroom's outgoing sound"))
    about = "the classrooms a lesson may link (trusted + remotes): online or not, room name, free or in a lesson"
    table.add(CommandDef("lesson.peers", (), peers, about, read_only=True))
