"""The dashboard's wake button: ``POST /api/agents/{agent_id}/wake`` (technician, admin).

The room's own agent is asleep with its PC, so the centre sends ``power.wake`` to another agent
of the site (`central.wake.Waker`); the answer says which one, and each packet's outcome.  200
with ``status: succeeded``; 404 for an unknown agent; 409 when it cannot be woken (no MAC known);
503 when no neighbour could send the packet.
"""

from __future__ import annotations

from aiohttp import web

from central.users import COMMANDERS
from central.wake import Waker
from central.web_auth import ROLE_KEY, USER_KEY

WAKER_KEY = web.AppKey("waker", Waker)


def add_wake_routes(app: web.Application, waker: Waker) -> None:
    """Add the wake route to the dashboard `app` (its login middleware guards it)."""
    app[WAKER_KEY] = waker
    app.router.add_post("/api/agents/{agent_id}/wake", wake)


async def wake(request: web.Request) -> web.Response:
    """Wake the agent's PC through a neighbour, as the logged-in user."""
    if request[ROLE_KEY] not in COMMANDERS:
        return web.json_response({"error": f"role {request[ROLE_KEY]!r} may not do this"}, status=403)
    if request.content_type != "application/json":  # a form posted from another site cannot send JSON
        return web.json_response({"error": "expected application/json"}, status=415)
    agent_id = request.match_info["agent_id"]
    outcome = await request.app[WAKER_KEY].wake(agent_id, request[USER_KEY])
    http = {"succeeded": 200, "unknown_agent": 404, "no_mac": 409}
    return web.json_response(outcome, status=http.get(outcome.get("code", outcome["status"]), 503))
