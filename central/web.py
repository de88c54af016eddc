"""The technicians' dashboard: pages, the JSON API and live updates (Server-Sent Events).

Routes (everything but ``/login``, ``/lang/…``, ``/static/…`` and ``/api/uploads…`` needs a logged-in user):

- ``GET /``: the fleet at a glance (filters ``site``, ``offline=1``, ``alarms=1``)
- ``GET /room/{agent_id}``: one classroom: devices, controls, history, commands, alarms
- ``GET /api/fleet``: ``{"agents", "sites", "filters"}`` (same filters)
- ``GET /api/agents/{agent_id}``: ``{"agent", "status_history", "telemetry", "commands", "alarms", "recordings",
  "rooms"}`` (``?brief=1``: ``{"agent"}`` only); alarms and commands are first pages (``alarms_more``,
  ``commands_more``); ``rooms`` names the other classrooms the page mentions (``{agent_id: room}``)
- ``GET /api/agents/{agent_id}/alarms|commands?limit=N&before=ID``: the next page (`central.web_paging`)
- ``POST /api/agents/{agent_id}/commands`` ``{"name", "args"}``: the reply (technician, admin)
- ``POST /api/agents/{agent_id}/wake``: wake its PC through another agent of the site (`central.web_wake`)
- ``POST /api/alarms/{alarm_id}/ack``: acknowledge an alarm (technician, admin)
- ``GET /api/events``: ``text/event-stream`` of change events (``?agent=ID`` for one agent; a ``refresh``,
  which names no agent, goes to every stream: `central.live`)
- ``GET /recordings/{id}``: a received recording's MP4 (ranges), when uploads are on
- ``/api/uploads…``: the agents' uploads, token-authenticated, not logged in (`central.uploads`)

Pages are a shell (`central.web_shell`): the page's data and the strings of the chosen language
travel as JSON in the page, and the scripts render them with text nodes only (never ``innerHTML``),
so room names and every other piece of fleet data are shown as text, never run as markup.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from central.errors import CentralError
from central.store import Location
from central.upload_store import Uploads
from central.uploads import add_routes as add_upload_routes
from central.users import COMMANDERS, Users
from central.wake import Waker
from central.web_auth import (
    ROLE_KEY,
    SESSION_SECONDS,
    USER_KEY,
    LoginLimits,
    add_routes,
    make_middleware,
    request_lang,
)
from central.web_paging import add_paging_routes, first_pages
from central.web_shell import favicon, peer_ids, room_names, shell
from central.web_text import strings
from central.web_wake import add_wake_routes
from central.web_watch import add_watch_routes
from contract.errors import BrokerError
from websession import BodyError, Sessions, read_json_object

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
SSE_KEEPALIVE_S = 15.0
TRUE_WORDS = frozenset({"1", "true", "on", "yes"})


class FleetView(Protocol):
    """What the dashboard reads from the fleet database (`central.fleetdb.FleetDB`)."""

    location: Location

    def agents(self, *, site: str | None = None, offline_only: bool = False, alarms_only: bool = False) -> Any:
        """Agents with their devices, open alarm count and latest telemetry."""

    def agent(self, agent_id: str) -> Any:
        """One agent, None when unknown."""

    def sites(self) -> Any:
        """Every site name."""

    def status_history(self, agent_id: str, limit: int = 100) -> Any:
        """Status changes, newest first."""

    def telemetry_history(self, agent_id: str, limit: int = 100) -> Any:
        """Telemetry samples, newest first."""

    def alarms(
        self, *, open_only: bool = True, agent_id: str | None = None, limit: int = -1, before: int | None = None
    ) -> Any:
        """Alarms, newest first."""

    def alarm(self, alarm_id: int) -> Any:
        """One alarm, None when unknown."""

    def ack_alarm(self, alarm_id: int, user: str) -> bool:
        """Acknowledge; False when there is no such open alarm."""

    def session_secret(self) -> bytes:
        """The kept cookie-signing secret."""

    def commands(self, *, agent_id: str | None = None, limit: int = 100, before: str | None = None) -> Any:
        """The command audit log, newest first."""

    def command(self, command_id: str) -> Any:
        """One command of the audit log, None when unknown."""

    def recordings(self, agent_id: str, limit: int = 100) -> Any:
        """Recordings received from one agent, newest first."""


class ChangeFeed(Protocol):
    """Change notifications (`central.live.Changes`)."""

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        """A queue receiving every change from now on."""

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """Stop feeding `queue`."""

    def publish(self, event: dict[str, Any]) -> None:
        """Tell every subscriber."""


class Sender(Protocol):
    """Sends a command and waits for its reply (`central.sender.CommandSender`)."""

    async def send(
        self, agent_id: str, name: str, args: dict[str, Any], by: str, *, timeout: float = 10.0, ttl: float = 60.0
    ) -> dict[str, Any]:
        """The outcome: ``{"id", "status", "result" | "error"}``."""


DB_KEY = web.AppKey("db", FleetView)
CHANGES_KEY = web.AppKey("changes", ChangeFeed)
SENDER_KEY = web.AppKey("sender", Sender)
STREAMS_KEY: web.AppKey[set[asyncio.Task[Any]]] = web.AppKey("streams")


def create_app(
    db: FleetView,
    changes: ChangeFeed,
    sender: Sender,
    *,
    users: Users | None = None,
    secret: bytes | None = None,
    uploads: Uploads | None = None,
    login_limits: LoginLimits | None = None,
    waker: Waker | None = None,
) -> web.Application:
    """The dashboard application; users default to the ``users`` table of the fleet database.

    With `uploads`, agents upload recordings here and the room page plays them (`central.uploads`).
    `login_limits`: how failed logins slow down and lock (`LoginLimits.default()` when None).
    `waker` wakes a room's PC through a neighbour (default: one on `db` and `sender`, magic packets to port 9).
    """
    own_users = users is None
    users = users if users is not None else Users(db.location)
    sessions = Sessions(secret if secret is not None else db.session_secret(), SESSION_SECONDS)
    app = web.Application(middlewares=[_security_headers, make_middleware(sessions, users)])
    app[DB_KEY], app[CHANGES_KEY], app[SENDER_KEY] = db, changes, sender
    app[STREAMS_KEY] = set()
    add_routes(app, sessions, users, login_limits)
    app.router.add_get("/", fleet_page)
    app.router.add_get("/room/{agent_id}", room_page)
    app.router.add_get("/api/fleet", api_fleet)
    app.router.add_get("/api/agents/{agent_id}", api_agent)
    app.router.add_post("/api/agents/{agent_id}/commands", api_command)
    app.router.add_post("/api/alarms/{alarm_id}/ack", api_ack)
    app.router.add_get("/api/events", api_events)
    add_paging_routes(app, db)
    add_watch_routes(app, db, sender)  # 巡课: WHEP relayed to the agent as media.watch
    add_wake_routes(app, waker if waker is not None else Waker(db, sender))
    app.router.add_static("/static/", STATIC, name="static")
    app.router.add_get("/favicon.ico", favicon)
    if uploads is not None:
        add_upload_routes(app, uploads)
    app.on_shutdown.append(_end_streams)
    if own_users:

        async def close_users(_: web.Application) -> None:
            users.close()

        app.on_cleanup.append(close_users)
    return app


@web.middleware
async def _security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    """A strict content security policy: our own scripts only, nothing inline runs."""
    response: web.StreamResponse = await handler(request)
    # img-src blob: for a camera's still (camera.snapshot), which the room page shows from the reply's bytes.
    csp = "default-src 'self'; script-src 'self'; img-src 'self' blob:; object-src 'none'; frame-ancestors 'none'"
    response.headers.setdefault("Content-Security-Policy", csp)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


# --- pages -------------------------------------------------------------------------------


def _filters(query: Any) -> dict[str, Any]:
    return {
        "site": query.get("site") or None,
        "offline_only": query.get("offline", "").lower() in TRUE_WORDS,
        "alarms_only": query.get("alarms", "").lower() in TRUE_WORDS,
    }


def _fleet(db: FleetView, filters: dict[str, Any]) -> dict[str, Any]:
    return {"agents": db.agents(**filters), "sites": db.sites(), "filters": filters}


def _room(db: FleetView, agent_id: str) -> dict[str, Any] | None:
    agent = db.agent(agent_id)
    if agent is None:
        return None
    room = {
        "agent": agent,
        "status_history": db.status_history(agent_id, limit=50),
        "telemetry": db.telemetry_history(agent_id, limit=20),
        **first_pages(db, agent_id),  # alarms and commands: the rest a page at a time
        "recordings": db.recordings(agent_id, limit=50),
    }
    return room | {"rooms": room_names(db, peer_ids(room))}  # other classrooms by their names


async def fleet_page(request: web.Request) -> web.Response:
    """The fleet at a glance."""
    t = strings(request_lang(request))
    return shell(request, "fleet", t["title"], _fleet(request.app[DB_KEY], _filters(request.query)))


async def room_page(request: web.Request) -> web.Response:
    """One classroom (404 with a readable page when the agent is unknown)."""
    t = strings(request_lang(request))
    agent_id = request.match_info["agent_id"]
    room = _room(request.app[DB_KEY], agent_id)
    if room is None:
        return shell(request, "room", t["room_not_found"], {"agent_id": agent_id, "agent": None}, status=404)
    title = f"{room['agent'].get('room') or agent_id} · {t['title']}"
    return shell(request, "room", title, {"agent_id": agent_id, **room})


# --- JSON API ----------------------------------------------------------------------------


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def api_fleet(request: web.Request) -> web.Response:
    """Every agent matching the filters, the site list, and the filters applied."""
    return web.json_response(_fleet(request.app[DB_KEY], _filters(request.query)))


async def api_agent(request: web.Request) -> web.Response:
    """One agent with its history, commands and alarms (``?brief=1``: the agent only)."""
    db, agent_id = request.app[DB_KEY], request.match_info["agent_id"]
    if request.query.get("brief", "").lower() in TRUE_WORDS:
        agent = db.agent(agent_id)
        return web.json_response({"agent": agent}) if agent is not None else _error(404, f"no agent {agent_id!r}")
    room = _room(db, agent_id)
    return web.json_response(room) if room is not None else _error(404, f"no agent {agent_id!r}")


def _forbidden(request: web.Request) -> web.Response | None:
    if request[ROLE_KEY] not in COMMANDERS:
        return _error(403, f"role {request[ROLE_KEY]!r} may not do this")
    if request.content_type != "application/json":
        # Only a script of our own origin can send JSON: a form posted from elsewhere cannot.
        return _error(415, "expected application/json")
    return None


async def api_command(request: web.Request) -> web.Response:
    """Send ``{"name", "args"}`` to the agent as the logged-in user and answer with the reply."""
    if (refusal := _forbidden(request)) is not None:
        return refusal
    agent_id = request.match_info["agent_id"]
    if request.app[DB_KEY].agent(agent_id) is None:
        return _error(404, f"no agent {agent_id!r}")
    try:
        body = await read_json_object(request)
    except BodyError as exc:
        return _error(exc.status, str(exc))
    name, args = body.get("name"), body.get("args", {})
    if not isinstance(name, str) or not name:
        return _error(400, "name: expected a command name such as panel.power")
    if not isinstance(args, dict):
        return _error(400, "args: expected a JSON object")
    try:
        outcome = await request.app[SENDER_KEY].send(agent_id, name, args, by=request[USER_KEY])
    except (CentralError, BrokerError) as exc:
        log.warning("command %s to %s by %s not sent: %s", name, agent_id, request[USER_KEY], exc)
        return web.json_response({"status": "failed", "error": f"not sent: {exc}"}, status=503)
    return web.json_response(outcome)


async def api_ack(request: web.Request) -> web.Response:
    """Acknowledge an open alarm as the logged-in user."""
    if (refusal := _forbidden(request)) is not None:
        return refusal
    try:
        alarm_id = int(request.match_info["alarm_id"])
    except ValueError:
        return _error(404, "no such alarm")
    db = request.app[DB_KEY]
    alarm = db.alarm(alarm_id)
    if alarm is None or not db.ack_alarm(alarm_id, request[USER_KEY]):
        return _error(404, f"no open alarm {alarm_id}")
    request.app[CHANGES_KEY].publish({"kind": "alarm", "agent_id": alarm["agent_id"]})
    return web.json_response({"id": alarm_id, "acked_by": request[USER_KEY]})


async def api_events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: one ``data: {json}`` per change (``?agent=ID``: that agent's only)."""
    only = request.query.get("agent") or None
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    changes, streams = request.app[CHANGES_KEY], request.app[STREAMS_KEY]
    queue = changes.subscribe()
    task = asyncio.current_task()
    if task is not None:
        streams.add(task)  # cancelled at shutdown, so that a stopping server does not wait for browsers
    try:
        await response.write(b"retry: 2000\nevent: ready\ndata: {}\n\n")
        while True:
            try:
                async with asyncio.timeout(SSE_KEEPALIVE_S):
                    event = await queue.get()
            except TimeoutError:
                await response.write(b": keepalive\n\n")  # also how a vanished browser is noticed
                continue
            if only is None or event.get("agent_id", only) == only:  # a refresh names no agent: for every page
                await response.write(f"data: {json.dumps(event, allow_nan=False)}\n\n".encode())
    except ConnectionResetError:
        pass
    finally:
        changes.unsubscribe(queue)
        if task is not None:
            streams.discard(task)
    return response


async def _end_streams(app: web.Application) -> None:
    streams = app[STREAMS_KEY]
    for task in tuple(streams):
        task.cancel()
