"""巡课 through the centre: ``media.watch``, ``media.unwatch`` and ``media.viewers`` in the one command table.

The agent's local API listens behind the school's NAT, so a technician's dashboard cannot reach
its WHEP endpoint; the centre relays the browser's offer as a command instead (authenticated,
ACL'd, audited) and media then flows browser <-> agent by ICE.  The commands use the very
`streaming.whep.WhepService` of the local API (found on the app once the lesson's web part has
mounted it), so HTTP and MQTT viewers share one cap and one lifetime.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from agent.commands.table import Arg, CommandDef, CommandTable, Failed, Rejected
from agent.web.api import WebPart

if TYPE_CHECKING:
    from streaming.whep import WhepService

# The agent answers once ICE gathering is done; the service's own deadline is 20 s.
WATCH_TIMEOUT_S = 30.0


class WatchDesk:
    """Opens and closes viewer sessions for commands, on the local API's WHEP service once it is mounted."""

    def __init__(self, known: Callable[[], Iterable[str]]) -> None:
        """`known()` names what can be watched (the room's sources, received pictures)."""
        self.known = known
        self.service: WhepService | None = None

    def web_part(self) -> WebPart:
        """Finds the WHEP service on the local API; add it after the part that mounts WHEP."""

        def add(app: web.Application) -> None:
            from streaming.whep import WHEP_KEY

            self.service = app.get(WHEP_KEY)

        return add

    def _whep(self) -> WhepService:
        if self.service is None:
            raise Failed("live viewing is not running on this agent (its local API has no WHEP)")
        return self.service

    def choices(self) -> tuple[str, ...]:
        """What ``source`` may name, sorted."""
        return tuple(sorted(self.known()))

    async def watch(self, source: str, offer: str) -> dict[str, Any]:
        """Open a viewer session: ``{session, answer}``; Rejected/Failed with the reason."""
        from streaming.whep import WhepRefused

        try:
            viewer = await self._whep().open_viewer(source, offer)
        except WhepRefused as exc:
            if exc.status == 404:
                raise Rejected(f"source: {exc.reason} (live: {', '.join(self.choices()) or 'none'})") from None
            if exc.status in (400, 413):
                raise Rejected(f"offer: {exc.reason}") from None
            raise Failed(exc.reason) from None
        return {"session": viewer.session, "answer": viewer.answer}

    async def unwatch(self, session: str) -> dict[str, Any]:
        """End a viewer session: ``{session, viewers}``; Rejected when there is no such session."""
        whep = self._whep()
        if not await whep.close_viewer(session):
            raise Rejected(f"session: no viewer session {session!r} (already ended?)")
        return {"session": session, "viewers": whep.viewers}

    def viewers(self) -> dict[str, Any]:
        """How many watch now, the cap, and each viewer's source and state."""
        whep = self._whep()
        return {"viewers": whep.viewers, "max_viewers": whep.max_viewers, "sessions": whep.viewer_list()}


def add_watch_commands(table: CommandTable, web_parts: list[WebPart], known: Callable[[], Iterable[str]]) -> None:
    """Register ``media.watch``, ``media.unwatch`` and ``media.viewers``; append the part that finds WHEP."""
    desk = WatchDesk(known)
    web_parts.append(desk.web_part())

    async def watch(args: Mapping[str, Any]) -> dict[str, Any]:
        return await desk.watch(args["source"], args["offer"])

    async def unwatch(args: Mapping[str, Any]) -> dict[str, Any]:
        return await desk.unwatch(args["session"])

    async def viewers(args: Mapping[str, Any]) -> dict[str, Any]:
        return desk.viewers()

    watch_args = (
        Arg("source", choices=desk.choices, doc="a source of this room, or a received picture (agent/source)"),
        Arg("offer", doc="the viewer's SDP offer, every ICE candidate included (at most 64 KB)"),
    )
    session = Arg("session", doc="the session media.watch answered with")
    table.add(CommandDef("media.watch", watch_args, watch, "watch a source live (巡课): SDP offer in, answer out",
                         WATCH_TIMEOUT_S))  # fmt: skip
    table.add(CommandDef("media.unwatch", (session,), unwatch, "stop watching: end a viewer session"))
    table.add(CommandDef("media.viewers", (), viewers, "who watches this room's sources live now", read_only=True))
