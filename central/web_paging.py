"""A classroom's alarms and command log, a page at a time (newest first), so the room page stays small.

- ``GET /api/agents/{agent_id}/alarms?limit=N&before=ALARM_ID``: ``{"alarms": [...], "more": bool}``
- ``GET /api/agents/{agent_id}/commands?limit=N&before=COMMAND_ID``: ``{"commands": [...], "more": bool}``

``before`` is the last row of the page already shown; ``more`` says whether older rows remain.  The room
page's first pages come with the page itself (`first_pages`).  Bad parameters get a 400 naming them.
"""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

PAGE = 20  # rows per page on the room page
MAX_PAGE = 500


class PagedFleet(Protocol):
    """What paging reads from the fleet database (`central.fleetdb.FleetDB`)."""

    def agent(self, agent_id: str) -> Any:
        """One agent, None when unknown."""

    def alarms(
        self, *, open_only: bool = True, agent_id: str | None = None, limit: int = -1, before: int | None = None
    ) -> Any:
        """Alarms, newest first."""

    def commands(self, *, agent_id: str | None = None, limit: int = 100, before: str | None = None) -> Any:
        """The command audit log, newest first."""

    def command(self, command_id: str) -> Any:
        """One command of the audit log, None when unknown."""


def _page(rows: list[dict[str, Any]], limit: int) -> tuple[list[dict[str, Any]], bool]:
    """The first `limit` rows of `limit` + 1 fetched, and whether there were more."""
    return rows[:limit], len(rows) > limit


def alarms_page(db: PagedFleet, agent_id: str, limit: int = PAGE, before: int | None = None) -> dict[str, Any]:
    """One page of an agent's alarms: ``{"alarms", "more"}``."""
    rows, more = _page(db.alarms(open_only=False, agent_id=agent_id, limit=limit + 1, before=before), limit)
    return {"alarms": rows, "more": more}


def commands_page(db: PagedFleet, agent_id: str, limit: int = PAGE, before: str | None = None) -> dict[str, Any]:
    """One page of an agent's command log: ``{"commands", "more"}``."""
    rows, more = _page(db.commands(agent_id=agent_id, limit=limit + 1, before=before), limit)
    return {"commands": rows, "more": more}


def first_pages(db: PagedFleet, agent_id: str) -> dict[str, Any]:
    """The room page's first page of alarms and of commands, each with whether more remain."""
    alarms, commands = alarms_page(db, agent_id), commands_page(db, agent_id)
    return {
        "alarms": alarms["alarms"],
        "alarms_more": alarms["more"],
        "commands": commands["commands"],
        "commands_more": commands["more"],
    }


class BadParameter(ValueError):
    """A query parameter that cannot be used (the message names it)."""


def _limit(query: Any) -> int:
    text = query.get("limit", str(PAGE))
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
        raise BadParameter(f"limit: got {text[:40]!r}, expected 1-{MAX_PAGE}")
    return int(text)


def add_paging_routes(app: web.Application, db: PagedFleet) -> None:
    """Serve the two paged lists from `db`."""

    def agent_or_404(request: web.Request) -> str:
        agent_id = request.match_info["agent_id"]
        if db.agent(agent_id) is None:
            raise web.HTTPNotFound(text=f'{{"error": "unknown agent {agent_id!r}"}}', content_type="application/json")
        return agent_id

    async def alarms(request: web.Request) -> web.Response:
        agent_id = agent_or_404(request)
        try:
            limit, before = _limit(request.query), request.query.get("before")
            if before is not None and not before.isdigit():
                raise BadParameter(f"before: got {before[:40]!r}, expected an alarm id")
        except BadParameter as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(alarms_page(db, agent_id, limit, None if before is None else int(before)))

    async def commands(request: web.Request) -> web.Response:
        agent_id = agent_or_404(request)
        try:
            limit, before = _limit(request.query), request.query.get("before")
            found = db.command(before) if before is not None else None
            if before is not None and (found is None or found["agent_id"] != agent_id):
                raise BadParameter(f"before: got {before[:40]!r}, expected the id of a command sent to {agent_id}")
        except BadParameter as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(commands_page(db, agent_id, limit, before))

    app.router.add_get("/api/agents/{agent_id}/alarms", alarms)
    app.router.add_get("/api/agents/{agent_id}/commands", commands)
