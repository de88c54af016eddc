"""The lesson commands: start, stop, join, leave, status and mute (``lesson.*``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agent.commands import Arg, CommandDef, CommandTable, Rejected
from agent.lesson import LessonService

MODES = ("zhuandi", "dual_teacher")
# join waits for the leader's offer; start builds the encoders
JOIN_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class ListArg(Arg):
    """A list of names: a JSON list, or ``a,b`` from the command line (each checked against `choices`)."""

    def check(self, value: Any) -> Any:
        """A tuple of names; Rejected naming the argument when one is wrong."""
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # ``remotes=101`` from the command line: an id that looks like a number
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not items:
            raise Rejected(f"{self.name}: got {value!r}, expected a list of names (CLI: {self.name}=a,b)")
        names = tuple(item.strip() if isinstance(item, str) else item for item in items)
        options = self.choices() if callable(self.choices) else self.choices
        for name in names:
            if not isinstance(name, str) or not name or any(c in name for c in "/+#"):
                raise Rejected(f"{self.name}: got {name!r}, expected a name without / + #")
            if options and name not in options:
                raise Rejected(f"{self.name}: got {name!r}, expected one of {', '.join(options)}")
        return names


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
    table.add(CommandDef("lesson.status", (), status, "the live lesson: mode, role, peers and their link stats"))
    on = Arg("on", "bool", doc="true: send silence to every other classroom and viewer; false: the sound again")
    table.add(CommandDef("lesson.mute", (on,), mute, "mute (or unmute) this classroom's outgoing sound"))
